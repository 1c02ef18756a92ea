// A teammate with only the gateway's address and Node gets a working CLI in one command: the gateway
// started the README's way serves its own one-file CLI (wrangler.toml [build] + [assets]), and `npx
// <gateway>/cli/subpool-cli.tgz` runs it from a directory with no checkout, on the machine's Node.
// There is no `subpool` command on that machine: what the CLI suggests next must run as printed.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { ROOT, startGateway } from "./gateway.mjs";

const version = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version;

/** The machine's own node (npm puts node_modules/.bin, with Node 22, first on PATH). */
function systemNode() {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir || dir.includes(join("node_modules", ".bin"))) continue;
    const p = join(dir, "node");
    if (existsSync(p)) return p;
  }
  return process.execPath;
}

describe("the CLI from the gateway", { timeout: 240_000 }, () => {
  let gw;
  let dir = "";
  let env = {};
  before(async () => {
    gw = await startGateway();
    dir = mkdtempSync(join(tmpdir(), "subpool-teammate-"));
    env = { ...process.env, HOME: dir, npm_config_cache: join(dir, "npm-cache"), npm_config_update_notifier: "false", NO_COLOR: "1", SUBPOOL_CONFIG: join(dir, "config.json") };
    for (const k of ["SUBPOOL_URL", "SUBPOOL_KEY", "SUBPOOL_PROFILE"]) delete env[k];
  });
  after(async () => {
    await gw?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("GET /cli names the one command", async () => {
    const res = await fetch(`${gw.url}/cli`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), new RegExp(`npx ${gw.url.replace(/[.]/g, "\\.")}/cli/subpool-cli\\.tgz setup --url`));
  });

  it("npx <gateway>/cli/subpool-cli.tgz runs the gateway's own version, outside any checkout", () => {
    const r = spawnSync("npx", ["--yes", `${gw.url}/cli/subpool-cli.tgz`, "--version"], { cwd: dir, env, encoding: "utf8", timeout: 180_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(version.replace(/\./g, "\\.")));
  });

  it("the one file runs on the machine's own Node and talks to the gateway", async () => {
    const res = await fetch(`${gw.url}/cli/subpool-cli.mjs`);
    assert.equal(res.status, 200);
    writeFileSync(join(dir, "subpool-cli.mjs"), Buffer.from(await res.arrayBuffer()));
    const user = await gw.api("POST", "/admin/users", gw.adminToken, { name: `teammate${Date.now()}` });
    assert.equal(user.status, 201, user.text);
    const r = spawnSync(systemNode(), [join(dir, "subpool-cli.mjs"), "accounts", "--json"], {
      cwd: dir,
      env: { ...env, SUBPOOL_URL: gw.url, SUBPOOL_KEY: user.json.key },
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { accounts: [] });
  });

  const esc = (t) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

  it("setup through npx: the commands it suggests run as printed (npx <gateway>/cli/subpool-cli.tgz …), it offers the global install, and env claude-code uses the saved key", async () => {
    const user = await gw.api("POST", "/admin/users", gw.adminToken, { name: `npx${Date.now()}` });
    assert.equal(user.status, 201, user.text);
    const spec = `${gw.url}/cli/subpool-cli.tgz`;
    const r = spawnSync("npx", ["--yes", spec, "setup", "--url", gw.url, "--key", user.json.key], { cwd: dir, env, encoding: "utf8", timeout: 180_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^  npx ${esc(spec)} login anthropic \\| openai \\| github-copilot +# sign in to a subscription$`, "m"), r.stdout);
    assert.match(r.stdout, new RegExp(`^  npx ${esc(spec)} import +# `, "m"));
    assert.match(r.stdout, new RegExp(`^  npx ${esc(spec)} env claude-code +# `, "m"));
    assert.doesNotMatch(r.stdout, /^ {2}subpool /m, "no `subpool …` line: that command does not exist here");
    assert.match(r.stdout, new RegExp(`install it once as the command \`subpool\`: npm install -g ${esc(spec)}$`, "m"));

    // The printed lines, run as printed in a shell of this machine (no subpool on PATH, no SUBPOOL_KEY).
    const run = (line) => spawnSync("sh", ["-c", line], { cwd: dir, env, encoding: "utf8", timeout: 120_000 });
    const envLine = new RegExp(`^  (npx ${esc(spec)} env claude-code)`, "m").exec(r.stdout)[1];
    const evaluated = run(`eval "$(${envLine} --shell sh)" && printf '%s|%s' "$ANTHROPIC_BASE_URL" "$ANTHROPIC_API_KEY"`);
    assert.equal(evaluated.status, 0, evaluated.stderr);
    assert.equal(evaluated.stdout, `${gw.url}/anthropic|${user.json.key}`, "the saved key, not a refusal");
    const accounts = run(`npx ${spec} accounts`);
    assert.equal(accounts.status, 0, accounts.stderr);
    assert.match(accounts.stdout, /No accounts yet/);
    assert.match(accounts.stderr, new RegExp(`Add one: \`npx ${esc(spec)} login anthropic\\|openai\\|github-copilot\`, \`npx ${esc(spec)} import\``));
    const help = run(`npx ${spec} --help`);
    assert.match(help.stdout, new RegExp(`^  npx ${esc(spec)} login anthropic +sign in`, "m"));

    // The one file, run with node: its suggestions say `node subpool-cli.mjs …`.
    const one = spawnSync(systemNode(), ["subpool-cli.mjs", "setup", "--url", gw.url, "--key", user.json.key], { cwd: dir, env, encoding: "utf8", timeout: 60_000 });
    assert.equal(one.status, 0, one.stderr);
    assert.match(one.stdout, /^ {2}node subpool-cli\.mjs login anthropic \| openai \| github-copilot +# /m);
    assert.match(one.stdout, new RegExp(`npm install -g ${esc(spec)}$`, "m"));
  });
});
