// `subpool env codex` outside a git repository: Codex itself asks before it works there, and
// `codex exec` refuses without --skip-git-repo-check. The CLI says so (on stderr, a # comment), so a
// first try in a scratch directory does not look like a fault of the gateway; inside a repository it
// says nothing of the kind. No gateway needed: env takes --url.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "./gateway.mjs";

const CLI = join(ROOT, "dist", "cli", "index.js");

function newestMtime(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** `subpool env codex` in `cwd`, with a home and config of its own. */
function envCodex(cwd, home) {
  const env = { ...process.env, HOME: home, CODEX_HOME: join(home, ".codex"), SUBPOOL_CONFIG: join(home, "config.json"), NO_COLOR: "1" };
  for (const k of ["SUBPOOL_URL", "SUBPOOL_KEY", "SUBPOOL_PROFILE"]) delete env[k];
  const r = spawnSync(process.execPath, [CLI, "env", "codex", "--url", "http://gw.example:9"], { cwd, env, encoding: "utf8", timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  return r;
}

describe("subpool env codex", { timeout: 120_000 }, () => {
  it("outside a git repository, mentions --skip-git-repo-check; inside one, does not", () => {
    if (!existsSync(CLI) || statSync(CLI).mtimeMs < newestMtime(join(ROOT, "cli"))) execFileSync("npm", ["run", "-s", "build:cli"], { cwd: ROOT, stdio: "inherit" });
    const home = mkdtempSync(join(tmpdir(), "subpool-codex-"));
    try {
      const scratch = join(home, "scratch");
      mkdirSync(scratch);
      const outside = envCodex(scratch, home);
      assert.match(outside.stderr, /not in a git repository: Codex asks before it works here, and `codex exec` refuses unless you pass --skip-git-repo-check/);
      assert.doesNotMatch(outside.stdout, /skip-git-repo-check/); // stdout stays what goes into config.toml

      const repo = join(home, "project");
      mkdirSync(join(repo, "src"), { recursive: true });
      execFileSync("git", ["init", "-q", repo]);
      const inside = envCodex(join(repo, "src"), home);
      assert.doesNotMatch(inside.stderr, /skip-git-repo-check/);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
