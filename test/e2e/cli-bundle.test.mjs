// The CLI for machines without this checkout (`npm run build:cli-bundle`): dist/subpool-cli.mjs, one
// file with every dependency inside, and dist/subpool-cli.tgz, a package npx can run. Both are run
// from a temporary directory outside the repository (no node_modules to lean on), the .mjs on the
// machine's own Node (20 here), the .tgz through npx from a path and from an http:// address (what a
// gateway serving it looks like), with a throwaway npm cache.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { ROOT } from "./gateway.mjs";

const MJS = join(ROOT, "dist", "subpool-cli.mjs");
const TGZ = join(ROOT, "dist", "subpool-cli.tgz");
const version = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version;

/** The machine's own node (npm puts node_modules/.bin, with Node 22, first on PATH). */
function systemNode() {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir || dir.includes(join("node_modules", ".bin"))) continue;
    const p = join(dir, process.platform === "win32" ? "node.exe" : "node");
    if (existsSync(p)) return p;
  }
  return process.execPath;
}

describe("the single-file CLI", { timeout: 240_000 }, () => {
  let dir = "";
  let env = {};
  before(() => {
    execFileSync("npm", ["run", "-s", "build:cli-bundle"], { cwd: ROOT, stdio: "inherit" });
    dir = mkdtempSync(join(tmpdir(), "subpool-cli-bundle-"));
    copyFileSync(MJS, join(dir, "subpool-cli.mjs"));
    copyFileSync(TGZ, join(dir, "subpool-cli.tgz"));
    env = { ...process.env, HOME: dir, npm_config_cache: join(dir, "npm-cache"), npm_config_update_notifier: "false", NO_COLOR: "1", SUBPOOL_CONFIG: join(dir, "config.json") };
    for (const k of ["SUBPOOL_URL", "SUBPOOL_KEY", "SUBPOOL_PROFILE"]) delete env[k];
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("node subpool-cli.mjs runs on the machine's Node, outside the repository", { timeout: 60_000 }, () => {
    const node = systemNode();
    const run = (...args) => spawnSync(node, ["subpool-cli.mjs", ...args], { cwd: dir, env, encoding: "utf8" });
    const help = run("--help");
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^Usage: subpool \[options\] \[command\]/);
    // Its examples are written the way it was started: there is no `subpool` command here.
    assert.match(help.stdout, /^ {2}node subpool-cli\.mjs setup +gateway URL and your key/m);
    assert.doesNotMatch(help.stdout, /^ {2}subpool /m);
    assert.equal(run("--version").stdout.trim(), version);
    assert.match(readFileSync(join(dir, "subpool-cli.mjs"), "utf8"), /^#!\/usr\/bin\/env node\n/);
    // The libraries inside work: commander (usage errors), cli-table3 (CommonJS), src/connect.ts.
    const bad = run("accounts", "frob");
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown command 'frob'/);
    assert.match(run("env", "list").stdout, /│ claude-code +│/);
    const lines = spawnSync(node, ["subpool-cli.mjs", "env", "claude-code", "--url", "https://gw.example", "--shell", "sh"], { cwd: dir, env: { ...env, SUBPOOL_KEY: "k" }, encoding: "utf8" });
    assert.match(lines.stdout, /^export ANTHROPIC_BASE_URL="https:\/\/gw\.example\/anthropic"$/m);
    const down = run("accounts");
    assert.equal(down.status, 1);
    assert.match(down.stderr, /no gateway configured/);
  });

  it("npx ./subpool-cli.tgz and npx http://…/subpool-cli.tgz run it", { timeout: 180_000 }, async () => {
    const listing = execFileSync("tar", ["-xzOf", TGZ, "package/package.json"], { encoding: "utf8" });
    const pkg = JSON.parse(listing);
    assert.equal(pkg.version, version);
    assert.deepEqual(pkg.bin, { subpool: "subpool-cli.mjs" });
    assert.equal(pkg.dependencies, undefined, "nothing to download besides the tarball");

    const local = spawnSync("npx", ["--yes", "./subpool-cli.tgz", "--help"], { cwd: dir, env, encoding: "utf8" });
    assert.equal(local.status, 0, local.stderr);
    assert.match(local.stdout, /^Usage: subpool \[options\] \[command\]/);

    // As a gateway would serve it.
    const server = createServer((req, res) => {
      if (req.url !== "/cli/subpool-cli.tgz") return res.writeHead(404).end();
      const body = readFileSync(TGZ);
      res.writeHead(200, { "content-type": "application/gzip", "content-length": body.length });
      res.end(body);
    });
    await new Promise((r) => server.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${server.address().port}/cli/subpool-cli.tgz`;
      const remote = await new Promise((resolve) => {
        const child = execFile("npx", ["--yes", url, "--version"], { cwd: dir, env, encoding: "utf8" }, (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
        child.stdin?.end();
      });
      assert.equal(remote.code, 0, remote.stderr);
      assert.equal(remote.stdout.trim(), version);
    } finally {
      server.close();
    }
  });
});
