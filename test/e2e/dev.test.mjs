// End to end: `npm run dev` itself (scripts/dev.mjs).
// - Extra arguments reach wrangler whole, with or without --port (`npm run dev -- --var K:V` used to
//   lose its first argument).
// - The local state remembers which MASTER_KEY wrote it (a SHA-256 fingerprint, never the key): a
//   start with another key over that state stops with what happened and what to do, and so does a
//   start after .dev.vars was deleted; `--reset-local-state` starts over.
// The missing-.dev.vars case runs in a copy of the project (its own .dev.vars and .wrangler/), so
// the checkout's .dev.vars, which other suites share, is never touched.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ROOT, freePort, startGateway } from "./gateway.mjs";

const T = { timeout: 120_000 };
const A = randomBytes(32).toString("base64");
const B = randomBytes(32).toString("base64");
const sha256 = (s) => createHash("sha256").update(s).digest("hex");
const cleanEnv = { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" };

/** `npm run dev -- <args>` in `cwd` to its end (it should stop by itself); output and exit code. */
function devRun(args, { cwd = ROOT, env = {}, timeoutMs = 60_000 } = {}) {
  const r = spawnSync("npm", ["run", "-s", "dev", "--", ...args], { cwd, env: { ...cleanEnv, ...env }, encoding: "utf8", timeout: timeoutMs });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** Starts `npm run dev` in `cwd` on a free port; resolves once healthy, with stop(). */
async function devStart(cwd, extra = []) {
  const port = await freePort();
  const child = spawn("npm", ["run", "dev", "--", "--port", String(port), ...extra], { cwd, detached: true, stdio: ["ignore", "pipe", "pipe"], env: cleanEnv });
  let log = "";
  child.stdout.on("data", (d) => (log += d));
  child.stderr.on("data", (d) => (log += d));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const done = new Promise((r) => child.once("exit", r));
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {}
    await Promise.race([done, sleep(5000)]);
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {}
  };
  const url = `http://127.0.0.1:${port}`;
  for (const until = Date.now() + 60_000; Date.now() < until; ) {
    if (child.exitCode !== null) throw new Error(`npm run dev exited early:\n${log}`);
    const ok = await fetch(`${url}/healthz`).then((r) => r.ok, () => false);
    if (ok) return { url, stop, log: () => log };
    await sleep(250);
  }
  await stop();
  throw new Error(`npm run dev not healthy in 60 s:\n${log}`);
}

describe("npm run dev", { timeout: 400_000 }, () => {
  const dirs = [];
  const tmp = (name) => {
    const d = mkdtempSync(join(tmpdir(), `subpool-dev-${name}-`));
    dirs.push(d);
    return d;
  };
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("passes every extra argument to wrangler, with or without --port", T, () => {
    const state = tmp("args");
    const run = (args) => {
      const r = devRun(args, { env: { SUBPOOL_DEV_DRY_RUN: "1" } });
      assert.equal(r.code, 0, r.out);
      return JSON.parse(/^wrangler (.*)$/m.exec(r.out)[1]);
    };
    assert.deepEqual(run(["--var", "ANTHROPIC_API_BASE:http://127.0.0.1:4000", "--persist-to", state]), ["dev", "--port", "8787", "--var", "ANTHROPIC_API_BASE:http://127.0.0.1:4000", "--persist-to", state]);
    assert.deepEqual(run(["--var", "A:1", "--port", "9000", "--persist-to", state]), ["dev", "--port", "9000", "--var", "A:1", "--persist-to", state]);
    assert.deepEqual(run(["--port=9001", "--var", "A:1", "--persist-to", state]), ["dev", "--port", "9001", "--var", "A:1", "--persist-to", state]);
  });

  it("a start with --var first (and --port=N) really runs", T, async () => {
    const state = tmp("var-first");
    const port = await freePort();
    const child = spawn("npm", ["run", "dev", "--", "--var", "ANTHROPIC_API_BASE:http://127.0.0.1:9", `--port=${port}`, "--persist-to", state], { cwd: ROOT, detached: true, stdio: ["ignore", "pipe", "pipe"], env: cleanEnv });
    let log = "";
    child.stdout.on("data", (d) => (log += d));
    child.stderr.on("data", (d) => (log += d));
    try {
      let healthy = false;
      for (const until = Date.now() + 60_000; Date.now() < until && !healthy; await sleep(250)) {
        assert.equal(child.exitCode, null, log);
        healthy = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false);
      }
      assert.ok(healthy, log);
      assert.doesNotMatch(log, /entry-point file/);
    } finally {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {}
      await sleep(1000);
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
    }
  });

  it("refuses to run another MASTER_KEY over local state written under the first; --reset-local-state starts over", T, async () => {
    const state = tmp("fingerprint");
    const gw = await startGateway({ vars: { MASTER_KEY: A }, persistTo: state, secrets: [A, B] });
    try {
      assert.equal((await gw.api("POST", "/admin/users", gw.adminToken, { name: "old-state" })).status, 201);
    } finally {
      await gw.stop();
    }
    const fp = readFileSync(join(state, "subpool-master-key.sha256"), "utf8");
    assert.equal(fp.trim(), sha256(A), "the fingerprint is the key's SHA-256");
    assert.ok(!fp.includes(A));

    const port = String(await freePort());
    const refused = devRun(["--port", port, "--persist-to", state, "--var", `MASTER_KEY:${B}`]);
    assert.equal(refused.code, 1, refused.out);
    assert.match(refused.out, /was written under another MASTER_KEY/);
    assert.match(refused.out, /--reset-local-state/);
    assert.ok(!refused.out.includes(A) && !refused.out.includes(B), "no key is printed");

    // The same key again is fine; a rotation (the old key in OLD_MASTER_KEYS) is fine too.
    const dry = { SUBPOOL_DEV_DRY_RUN: "1" };
    assert.equal(devRun(["--persist-to", state, "--var", `MASTER_KEY:${A}`], { env: dry }).code, 0);
    assert.equal(devRun(["--persist-to", state, "--var", `MASTER_KEY:${B}`, "--var", `OLD_MASTER_KEYS:1:${A}`], { env: dry }).code, 0);
    assert.equal(devRun(["--persist-to", state, "--var", `MASTER_KEY:${B}`], { env: dry }).code, 0, "after a rotation start, B is recorded");
    assert.equal(devRun(["--persist-to", state, "--var", `MASTER_KEY:${A}`], { env: dry }).code, 1, "once B ran alone, A is refused");

    // Starting over.
    const reset = await devStart(ROOT, ["--persist-to", state, "--var", `MASTER_KEY:${A}`, "--reset-local-state"]);
    try {
      const admin = /^ADMIN_TOKEN=(.*)$/m.exec(readFileSync(join(ROOT, ".dev.vars"), "utf8"))[1].trim();
      const users = await fetch(`${reset.url}/admin/users`, { headers: { authorization: `Bearer ${admin}` } }).then((r) => r.json());
      assert.deepEqual(users.users, [], "the old state is gone");
      assert.match(reset.log(), /deleted the local state/);
    } finally {
      await reset.stop();
    }
  });

  it("after .dev.vars is deleted, it stops instead of making a new MASTER_KEY next to the old state", T, async () => {
    // A copy of the project: its own .dev.vars and .wrangler/state.
    const copy = tmp("project");
    for (const f of ["package.json", "wrangler.toml", "tsconfig.json", "src", "scripts", "cli"]) cpSync(join(ROOT, f), join(copy, f), { recursive: true });
    symlinkSync(join(ROOT, "node_modules"), join(copy, "node_modules"));
    const gw = await devStart(copy);
    try {
      const admin = /^ADMIN_TOKEN=(.*)$/m.exec(readFileSync(join(copy, ".dev.vars"), "utf8"))[1].trim();
      const r = await fetch(`${gw.url}/admin/users`, { method: "POST", headers: { authorization: `Bearer ${admin}` }, body: JSON.stringify({ name: "kept" }) });
      assert.equal(r.status, 201);
    } finally {
      await gw.stop();
    }
    assert.ok(existsSync(join(copy, ".wrangler", "state", "subpool-master-key.sha256")));
    unlinkSync(join(copy, ".dev.vars"));
    const r = devRun(["--port", String(await freePort())], { cwd: copy });
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /\.dev\.vars is missing, but \.wrangler\/state holds local state written under its MASTER_KEY/);
    assert.match(r.out, /restore \.dev\.vars/);
    assert.match(r.out, /--reset-local-state/);
    assert.equal(existsSync(join(copy, ".dev.vars")), false, "no new key was made");
  });
});
