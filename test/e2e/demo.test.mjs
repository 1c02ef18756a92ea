// End to end: `npm run demo`, the README's first command. Its non-interactive part (--once) shows a
// failover within two minutes; left running, the lines it prints work against it, and Ctrl-C stops
// the gateway and the fake provider. Each run gets its own --dir and --port, so it never touches
// .wrangler/demo or a gateway the developer has running.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ROOT, freePort } from "./gateway.mjs";

const env = { ...process.env, NO_COLOR: "1", WRANGLER_SEND_METRICS: "false" };
for (const k of Object.keys(env)) if (k.startsWith("SUBPOOL_")) delete env[k];

const listening = (port) => fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) }).then(() => true, () => false);

describe("npm run demo", { timeout: 300_000 }, () => {
  const dirs = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("--once: a rate-limited account, a failover the client never sees, the cooldown and the pool, within two minutes", { timeout: 150_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "subpool-demo-"));
    dirs.push(dir);
    const port = await freePort();
    const started = Date.now();
    const r = spawnSync("npm", ["run", "-s", "demo", "--", "--once", "--port", String(port), "--dir", dir], { cwd: ROOT, env, encoding: "utf8", timeout: 140_000 });
    const out = `${r.stdout}\n--- stderr ---\n${r.stderr}`;
    assert.equal(r.status, 0, out);
    assert.ok(Date.now() - started < 120_000, `took ${Date.now() - started} ms`);
    const s = r.stdout;
    assert.match(s, /POST \/admin\/users \{"name":"demo"\} {2}-> {2}201, key sp_\S+/);
    assert.match(s, /#1 "limited" {2}-> {2}429 rate_limit_error, retry-after: 120/);
    assert.match(s, /#2 "healthy" {2}-> {2}200/);
    assert.match(s, /the client got ONE answer: 200 {2}"Hello from subpool's demo provider/);
    assert.match(s, /x-subpool-attempts: 2\n/);
    assert.match(s, /x-subpool-account: {2}acc_\S+ {2}\("healthy"\)/);
    assert.match(s, /"limited" is cooling for (2m 0s|1m 5\ds)/);
    assert.match(s, /Another request while "limited" cools: 200 from "healthy", x-subpool-attempts: 1 \(the provider saw 1 request\)/);
    // The pool as `subpool accounts` prints it.
    const rows = s
      .split("\n")
      .filter((l) => l.startsWith("│"))
      .map((l) => l.split("│").slice(1, -1).map((c) => c.trim()));
    assert.deepEqual(rows[0], ["#", "provider", "label", "type", "status", "cooldown", "last used", "last status", "ok/fail", "5h used", "week used", "id"]);
    assert.deepEqual(rows.slice(1).map((c) => [c[0], c[2], c[4], c[8]]), [
      ["1", "limited", "cooling", "0/1"],
      ["2", "healthy", "active", "2/0"],
    ]);
    assert.match(rows[1][5], /^(2m|1m 5\ds)$/);
    const shown = Number(/Failover shown ([\d.]+) s after the demo started/.exec(s)?.[1]);
    assert.ok(shown > 0 && shown < 120, `failover shown after ${shown} s`);
    assert.equal(await listening(port), false, "--once stops the gateway");
  });

  it("left running: the printed curl and CLI lines work against it; Ctrl-C stops everything", { timeout: 150_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "subpool-demo-"));
    dirs.push(dir);
    const port = await freePort();
    const child = spawn("npm", ["run", "-s", "demo", "--", "--port", String(port), "--dir", dir], { cwd: ROOT, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    try {
      for (const until = Date.now() + 120_000; !/Ctrl-C stops the demo/.test(out); await sleep(200)) {
        assert.ok(Date.now() < until && child.exitCode === null, out);
      }
      const exportLine = /^ {2}(export SUBPOOL_URL=\S+ SUBPOOL_KEY=\S+)$/m.exec(out)?.[1];
      const curlLine = /^ {2}(curl -s \$SUBPOOL_URL\/anthropic\/v1\/messages .*)$/m.exec(out)?.[1];
      assert.ok(exportLine && curlLine, out);
      assert.equal(exportLine, `export SUBPOOL_URL=http://localhost:${port} SUBPOOL_KEY=${/key (sp_\S+)/.exec(out)[1]}`);
      const answer = execFileSync("sh", ["-c", `${exportLine}\n${curlLine}`], { env, encoding: "utf8" });
      assert.match(answer, /^HTTP\/1\.1 200/);
      assert.match(answer, /x-subpool-attempts: 1/i, "the limited account is still cooling: skipped");
      // The CLI lines, as printed (npx subpool runs the checkout's build).
      for (const line of ["npx subpool accounts disable healthy", "npx subpool accounts enable healthy"]) assert.ok(out.includes(`  ${line}`), `${line} is printed`);
      const cliRun = (args) => execFileSync("sh", ["-c", `${exportLine}\nnpx subpool ${args}`], { cwd: ROOT, env, encoding: "utf8" });
      assert.match(cliRun("accounts disable healthy"), /Disabled anthropic #2 "healthy"/);
      const busy = spawnSync("sh", ["-c", `${exportLine}\n${curlLine}`], { env, encoding: "utf8" });
      assert.match(busy.stdout, /^HTTP\/1\.1 429/, "every account is cooling or off");
      assert.match(busy.stdout, /^retry-after: \d+/im);
      const table = cliRun("accounts");
      assert.match(table, /│ 1 +│ anthropic +│ limited +│ api key +│ cooling /);
      assert.match(table, /│ 2 +│ anthropic +│ healthy +│ api key +│ disabled /);
      assert.match(cliRun("accounts enable healthy"), /Enabled anthropic #2 "healthy"/);
      assert.match(execFileSync("sh", ["-c", `${exportLine}\n${curlLine}`], { env, encoding: "utf8" }), /^HTTP\/1\.1 200/);
    } finally {
      process.kill(-child.pid, "SIGINT");
      // As a terminal's Ctrl-C: the whole foreground group gets SIGINT; npm itself ends by that signal.
      const end = await Promise.race([new Promise((r) => child.once("exit", (code, signal) => r({ code, signal }))), sleep(15_000).then(() => null)]);
      if (!end) process.kill(-child.pid, "SIGKILL");
      assert.ok(end && (end.code === 0 || end.signal === "SIGINT"), `${JSON.stringify(end)}\n${out}`);
      assert.doesNotMatch(out, /subpool demo: the gateway stopped/);
    }
    assert.equal(await listening(port), false, "Ctrl-C stops the gateway");
  });
});
