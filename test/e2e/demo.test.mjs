// End to end: `npm run demo`, the README's first command. Its non-interactive part (--once) shows a
// failover within two minutes, and OpenAI's API (Chat Completions, a streamed Responses call as Codex
// CLI sends it) through the same gateway; left running, the lines it prints work against it (curl,
// the CLI, `eval "$(npx subpool env …)"`, the OpenAI SDK, Codex's config), --fake-port and --var
// reach the fake and the gateway, and Ctrl-C stops both. Each run gets its own --dir and --port, so
// it never touches .wrangler/demo or a gateway the developer has running.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
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
    // OpenAI's API through the same gateway: what the OpenAI SDKs and Codex CLI send.
    assert.match(s, /POST http:\/\/localhost:\d+\/openai\/v1\/chat\/completions {2}-> {2}200 {2}"Hello from subpool's demo provider/);
    assert.match(s, /POST http:\/\/localhost:\d+\/openai\/v1\/responses, streamed as Codex CLI sends it {2}-> {2}200, \d+ events ending in response\.completed/);
    // Where the admin token is, and that the page has an Admin view.
    assert.match(s, /admin token +ADMIN_TOKEN in \.dev\.vars: sign in with it at http:\/\/localhost:\d+\/ for the Admin view/);
    // The pool as `subpool accounts` prints it.
    const rows = s
      .split("\n")
      .filter((l) => l.startsWith("│"))
      .map((l) => l.split("│").slice(1, -1).map((c) => c.trim()));
    assert.deepEqual(rows[0], ["#", "provider", "label", "type", "status", "cooldown", "last used", "last status", "ok/fail", "5h used", "week used", "id"]);
    assert.deepEqual(rows.slice(1).map((c) => [c[0], c[1], c[2], c[4], c[8]]), [
      ["1", "anthropic", "limited", "cooling", "0/1"],
      ["2", "anthropic", "healthy", "active", "2/0"],
      ["1", "openai", "openai", "active", "2/0"],
    ]);
    assert.match(rows[1][5], /^(2m|1m 5\ds)$/);
    const shown = Number(/Failover shown ([\d.]+) s after the demo started/.exec(s)?.[1]);
    assert.ok(shown > 0 && shown < 120, `failover shown after ${shown} s`);
    assert.equal(await listening(port), false, "--once stops the gateway");
  });

  it("left running: the printed curl, CLI, SDK and Codex lines work against it; --fake-port and --var are used; Ctrl-C stops everything", { timeout: 150_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "subpool-demo-"));
    dirs.push(dir);
    const port = await freePort();
    const fakePort = await freePort();
    const child = spawn("npm", ["run", "-s", "demo", "--", "--port", String(port), "--fake-port", String(fakePort), "--var", "MAX_BODY_BYTES:20000", "--dir", dir], { cwd: ROOT, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
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

      // --fake-port: the fake provider listens where it was told, and says so.
      assert.match(out, new RegExp(`fake provider +http://127\\.0\\.0\\.1:${fakePort} `));
      const models = await fetch(`http://127.0.0.1:${fakePort}/v1/models`, { headers: { authorization: "Bearer sk-demo-openai-ok" } });
      assert.equal(models.status, 200);
      assert.equal((await models.json()).object, "list");
      // --var reached the gateway: a body over MAX_BODY_BYTES (20000 here, 32 MiB by default) is refused.
      const key = /key (sp_\S+)/.exec(out)[1];
      const big = await fetch(`http://127.0.0.1:${port}/anthropic/v1/messages`, {
        method: "POST",
        headers: { "x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json" },
        body: JSON.stringify({ model: "claude-sonnet-4-5", max_tokens: 8, messages: [{ role: "user", content: "x".repeat(30_000) }] }),
      });
      assert.equal(big.status, 413, await big.text());

      // The printed tool lines: eval "$(npx subpool env …)" sets what the tools read.
      const lineOf = (re) => new RegExp(`^ {2}(${re}) +# `, "m").exec(out)?.[1];
      const claudeLine = lineOf(`eval "\\$\\(npx subpool env claude-code\\)"`);
      const openaiLine = lineOf(`eval "\\$\\(npx subpool env openai-sdk\\)"`);
      assert.ok(claudeLine && openaiLine, out);
      const claudeEnv = execFileSync("sh", ["-c", `${exportLine}\n${claudeLine}\nprintf '%s|%s' "$ANTHROPIC_BASE_URL" "$ANTHROPIC_API_KEY"`], { cwd: ROOT, env, encoding: "utf8" });
      assert.equal(claudeEnv, `http://localhost:${port}/anthropic|${key}`);
      const [baseURL, apiKey] = execFileSync("sh", ["-c", `${exportLine}\n${openaiLine}\nprintf '%s|%s' "$OPENAI_BASE_URL" "$OPENAI_API_KEY"`], { cwd: ROOT, env, encoding: "utf8" }).split("|");
      assert.equal(baseURL, `http://localhost:${port}/openai/v1`);
      assert.equal(apiKey, key);

      // The OpenAI SDK through the demo: Chat Completions (plain and streamed) and a streamed Responses call.
      const { default: OpenAI } = await import("openai");
      const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
      const chat = await client.chat.completions.create({ model: "gpt-5-demo", messages: [{ role: "user", content: "hi from the SDK" }] });
      assert.match(chat.choices[0].message.content, /Hello from subpool's demo provider.*hi from the SDK/);
      let streamed = "";
      let usage = null;
      for await (const chunk of await client.chat.completions.create({ model: "gpt-5-demo", messages: [{ role: "user", content: "stream it" }], stream: true, stream_options: { include_usage: true } })) {
        streamed += chunk.choices[0]?.delta?.content ?? "";
        usage = chunk.usage ?? usage;
      }
      assert.match(streamed, /You said: "stream it"/);
      assert.ok(usage?.completion_tokens > 0, JSON.stringify(usage));
      const rs = client.responses.stream({ model: "gpt-5-demo", instructions: "You are Codex.", input: [{ type: "message", role: "user", content: [{ type: "input_text", text: "codex here" }] }], store: false });
      const types = [];
      for await (const ev of rs) types.push(ev.type);
      const final = await rs.finalResponse();
      assert.match(final.output_text, /You said: "codex here"/);
      assert.ok(types.includes("response.output_text.delta") && types.at(-1) === "response.completed", types.join(", "));

      // Codex CLI: the printed CODEX_HOME holds a config.toml that sends Codex to the gateway with $SUBPOOL_KEY.
      const codexHome = /^ {2}CODEX_HOME=(\S+) codex +# /m.exec(out)?.[1];
      assert.ok(codexHome, out);
      const { parse: parseToml } = await import("smol-toml");
      const codex = parseToml(readFileSync(join(codexHome.startsWith("/") ? "" : ROOT, codexHome, "config.toml"), "utf8"));
      assert.equal(codex.model_provider, "subpool");
      assert.deepEqual({ ...codex.model_providers.subpool }, { name: "subpool", base_url: `http://localhost:${port}/openai/v1`, env_key: "SUBPOOL_KEY", wire_api: "responses" });
      assert.ok(existsSync(join(dir, "codex", "config.toml")), "in the demo's own directory");

      // The dashboard, and the admin token for its Admin view.
      assert.match(out, new RegExp(`^ {2}http://localhost:${port}/ +# the dashboard: sign in with the key above$`, "m"));
      assert.match(out, /The dashboard has an Admin view too \(users, new keys\): sign in there with the admin token, ADMIN_TOKEN in \.dev\.vars/);
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
