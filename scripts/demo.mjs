#!/usr/bin/env node
// `npm run demo`: the gateway failing over, on this machine, with no provider keys and no Cloudflare
// account. It starts a fake Anthropic and OpenAI API (scripts/fake-provider.mjs) and the gateway the
// README's way (`npm run dev -- --persist-to .wrangler/demo/state --var ANTHROPIC_API_BASE:<fake>
// --var OPENAI_API_BASE:<fake>`, state apart from your own `npm run dev`), creates a user with two
// Anthropic accounts of which the first is rate limited and one OpenAI account, sends requests through
// it and shows what happened: the 429, the failover, the cooldown, OpenAI's Chat Completions and a
// streamed Responses call (what Codex CLI sends), the pool as `subpool accounts` shows it. Then it
// keeps running and prints lines to try (curl, the CLI, the OpenAI SDK, Codex CLI, the dashboard).
//
//   npm run demo                        the above, then waits for Ctrl-C
//   npm run demo -- --once              the above, then stops everything (for scripts and tests)
//   npm run demo -- --port 9000         the gateway's port (default 8787, or a free one when that is taken)
//   npm run demo -- --fake-port 4000    the fake provider's port (default: a free one)
//   npm run demo -- --var NAME:value    a Worker var for the gateway, as `npm run dev -- --var` (repeatable)
//   npm run demo -- --dir <path>        another directory for its state and log (default .wrangler/demo)
import { spawn, spawnSync } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { styleText } from "node:util";
import { DEMO_KEYS, OPENAI_DEMO_KEYS, startFakeProvider } from "./fake-provider.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const t0 = Date.now();

const argv = process.argv.slice(2);
const option = (name) => argv.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1) ?? (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
const once = argv.includes("--once") || process.env.SUBPOOL_DEMO_ONCE === "1";
const portArg = option("--port");
const fakePortArg = option("--fake-port");
/** Every --var NAME:value (or --var=NAME:value), in order, for `npm run dev`. */
const extraVars = argv.flatMap((a, i) => (a === "--var" && argv[i + 1] !== undefined ? [argv[i + 1]] : a.startsWith("--var=") ? [a.slice("--var=".length)] : []));
for (const v of extraVars) {
  if (!/^[A-Za-z_][A-Za-z0-9_]*:/.test(v)) {
    process.stderr.write(`subpool demo: --var takes NAME:value (got "${v}"), as npm run dev -- --var does\n`);
    process.exit(2);
  }
}
for (const [name, raw] of [["--port", portArg], ["--fake-port", fakePortArg]]) {
  if (raw !== undefined && !(/^\d+$/.test(raw) && Number(raw) > 0 && Number(raw) < 65536)) {
    process.stderr.write(`subpool demo: ${name} takes a port number from 1 to 65535 (got "${raw}")\n`);
    process.exit(2);
  }
}
const demoDir = resolve(root, option("--dir") ?? join(".wrangler", "demo"));
const stateDir = join(demoDir, "state");
const logFile = join(demoDir, "gateway.log");
const cli = join(root, "dist", "cli", "index.js");
const shown = (p) => (relative(root, p).startsWith("..") ? p : relative(root, p));

const colour = process.stdout.isTTY && !process.env.NO_COLOR;
const st = (style, s) => (colour ? styleText(style, s) : s);
const say = (s = "") => process.stdout.write(`${s}\n`);
const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;

function portFree(port) {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}
async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

// ---- start: the fake provider, then the gateway the README's way ---------------------------------

if (!existsSync(cli)) {
  say("Building the CLI (npm run build:cli)...");
  const b = spawnSync("npm", ["run", "-s", "build:cli"], { cwd: root, stdio: "inherit" });
  if (b.status !== 0) process.exit(1);
}

const fake = await startFakeProvider({ port: fakePortArg ? Number(fakePortArg) : 0 }).catch((e) => {
  process.stderr.write(`subpool demo: the fake provider cannot listen on 127.0.0.1:${fakePortArg} (${e.code ?? e.message}): pick another --fake-port, or leave it out for a free one\n`);
  process.exit(1);
});
const port = portArg ? Number(portArg) : (await portFree(8787)) ? 8787 : await freePort();
const url = `http://localhost:${port}`;
rmSync(stateDir, { recursive: true, force: true });
mkdirSync(demoDir, { recursive: true });
const log = createWriteStream(logFile);
// The demo's vars first, then yours: a --var of the same name given to the demo wins.
const vars = [`ANTHROPIC_API_BASE:${fake.url}`, `OPENAI_API_BASE:${fake.url}`, ...extraVars].flatMap((v) => ["--var", v]);
const gateway = spawn("npm", ["run", "dev", "--", "--port", String(port), "--persist-to", stateDir, ...vars], {
  cwd: root,
  detached: true,
  stdio: ["ignore", "pipe", "pipe"],
  env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" },
});
gateway.stdout.pipe(log, { end: false });
gateway.stderr.pipe(log, { end: false });

let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  try {
    process.kill(-gateway.pid, "SIGTERM");
  } catch {}
  const exited = new Promise((r) => (gateway.exitCode !== null || gateway.signalCode !== null ? r() : gateway.once("exit", r)));
  await Promise.race([exited, sleep(5000)]);
  try {
    process.kill(-gateway.pid, "SIGKILL");
  } catch {}
  await fake.close();
  log.end();
  process.exit(code);
}
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => stop(sig === "SIGINT" ? 0 : 1));

function fail(message) {
  process.stderr.write(`\nsubpool demo: ${message}\n`);
  let tail = "";
  try {
    tail = readFileSync(logFile, "utf8").split("\n").slice(-25).join("\n");
  } catch {}
  if (tail) process.stderr.write(`--- the gateway's last lines (${logFile}) ---\n${tail}\n`);
  return stop(1);
}

say(st("bold", "subpool demo") + ": the gateway and a fake Anthropic and OpenAI API, on this machine only (no provider keys, no Cloudflare account)");
say();
say(`  fake provider        ${fake.url}   (Anthropic's and OpenAI's APIs, scripts/fake-provider.mjs)`);
say(`                       Anthropic keys ${DEMO_KEYS.limited}: always 429, ${DEMO_KEYS.ok}: answers`);
say(`                       OpenAI keys ${OPENAI_DEMO_KEYS.limited}: always 429, ${OPENAI_DEMO_KEYS.ok}: answers`);
say(`  gateway              ${url}   (npm run dev; state in ${shown(stateDir)}, log in ${shown(logFile)})`);
if (extraVars.length) say(`                       with --var ${extraVars.join(" --var ")}`);
say(`  admin token          ADMIN_TOKEN in ${shown(join(root, ".dev.vars"))}: sign in with it at ${url}/ for the Admin view (users, keys)`);

const base = `http://127.0.0.1:${port}`;
let healthy = false;
for (const until = Date.now() + 120_000; Date.now() < until; await sleep(250)) {
  if (gateway.exitCode !== null) {
    await fail(`the gateway exited (code ${gateway.exitCode}) before it answered`);
  }
  healthy = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false);
  if (healthy) break;
}
if (!healthy) await fail("the gateway did not answer /healthz within 2 minutes");
say(`  started in ${secs(Date.now() - t0)}`);
say();

async function call(method, path, key, body, headers = {}) {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body ? { "content-type": "application/json" } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(30_000),
  });
  const text = await r.text();
  let data = null;
  try {
    data = JSON.parse(text);
  } catch {}
  return { status: r.status, headers: r.headers, data, text };
}

try {
  const admin = /^ADMIN_TOKEN=(.*)$/m.exec(readFileSync(join(root, ".dev.vars"), "utf8"))?.[1]?.trim();
  if (!admin) throw new Error(".dev.vars has no ADMIN_TOKEN line");

  // 1. A user.
  const user = await call("POST", "/admin/users", admin, { name: "demo" });
  if (user.status !== 201) throw new Error(`POST /admin/users answered ${user.status}: ${user.text}`);
  const key = user.data.key;
  say(`${st("bold", "1.")} An admin creates a user; the answer holds the user's gateway key (shown once):`);
  say(`     POST /admin/users {"name":"demo"}  ->  ${user.status}, key ${key}`);

  // 2. Two accounts; the first is rate limited at the provider.
  const accounts = [];
  for (const [label, k] of [
    ["limited", DEMO_KEYS.limited],
    ["healthy", DEMO_KEYS.ok],
  ]) {
    const a = await call("POST", "/api/accounts", key, { provider: "anthropic", type: "api", key: k, label });
    if (a.status !== 201) throw new Error(`POST /api/accounts answered ${a.status}: ${a.text}`);
    accounts.push(a.data);
  }
  const [limited, ok] = accounts;
  const oa = await call("POST", "/api/accounts", key, { provider: "openai", type: "api", key: OPENAI_DEMO_KEYS.ok, label: "openai" });
  if (oa.status !== 201) throw new Error(`POST /api/accounts (openai) answered ${oa.status}: ${oa.text}`);
  accounts.push(oa.data);
  say(`${st("bold", "2.")} The user adds two Anthropic API-key accounts, tried in position order, and an OpenAI one:`);
  say(`     anthropic #${limited.position} "limited"   key ${DEMO_KEYS.limited}   (the fake provider rate limits it)`);
  say(`     anthropic #${ok.position} "healthy"   key ${DEMO_KEYS.ok}`);
  say(`     openai    #${oa.data.position} "openai"    key ${OPENAI_DEMO_KEYS.ok}`);

  // 3. One request, exactly as the Anthropic API takes it.
  const message = (text) => ({ model: "claude-sonnet-4-5", max_tokens: 64, messages: [{ role: "user", content: text }] });
  const seen = fake.log.length;
  const first = await call("POST", "/anthropic/v1/messages", key, message("hello, who answers?"), { "anthropic-version": "2023-06-01", "x-api-key": key });
  const upstream = fake.log.slice(seen).filter((e) => e.path === "/v1/messages");
  const byKey = { limited, ok };
  const labelOf = (id) => accounts.find((a) => a.id === id)?.label ?? id;
  say(`${st("bold", "3.")} A request through the gateway:  POST ${url}/anthropic/v1/messages`);
  for (const e of upstream) {
    const a = byKey[e.key];
    say(`     the gateway sent it with #${a?.position} "${a?.label}"  ->  ${e.status === 200 ? st("green", "200") : st("yellow", `${e.status}`)}${e.status === 429 ? " rate_limit_error, retry-after: 120" : ""}`);
  }
  const answerText = first.data?.content?.[0]?.text ?? first.text.slice(0, 120);
  say(`   the client got ONE answer: ${first.status === 200 ? st("green", "200") : first.status}  "${answerText.slice(0, 70)}…"`);
  say(`     x-subpool-account:  ${first.headers.get("x-subpool-account")}  ("${labelOf(first.headers.get("x-subpool-account"))}")`);
  say(`     x-subpool-attempts: ${first.headers.get("x-subpool-attempts")}`);
  const pool = (await call("GET", "/api/accounts", key)).data.accounts;
  const benched = pool.find((a) => a.id === limited.id);
  const left = benched?.cooldownUntil ? Math.round((benched.cooldownUntil - Date.now()) / 1000) : 0;
  say(`   "limited" is cooling for ${Math.floor(left / 60)}m ${left % 60}s (the provider's retry-after); the client never saw its 429.`);
  const failedOver = first.status === 200 && first.headers.get("x-subpool-account") === ok.id && upstream.some((e) => e.key === "limited" && e.status === 429);
  if (!failedOver) throw new Error(`expected a failover from "limited" to "healthy"; got ${first.status} from ${first.headers.get("x-subpool-account")}: ${first.text.slice(0, 300)}`);

  // 4. A second conversation: the cooling account is skipped, no upstream call is wasted on it.
  const seen2 = fake.log.length;
  const second = await call("POST", "/anthropic/v1/messages", key, message("and now?"), { "anthropic-version": "2023-06-01", "x-api-key": key });
  const calls2 = fake.log.slice(seen2).filter((e) => e.path === "/v1/messages").length;
  say(`${st("bold", "4.")} Another request while "limited" cools: ${second.status} from "${labelOf(second.headers.get("x-subpool-account"))}", x-subpool-attempts: ${second.headers.get("x-subpool-attempts")} (the provider saw ${calls2} request${calls2 === 1 ? "" : "s"})`);

  // 5. OpenAI's API through the same gateway: Chat Completions (the OpenAI SDKs), and a streamed
  // Responses call shaped like Codex CLI's (its session header, input items, store: false).
  const chat = await call("POST", "/openai/v1/chat/completions", key, { model: "gpt-5-demo", messages: [{ role: "user", content: "hello from the OpenAI SDK" }] });
  if (chat.status !== 200) throw new Error(`POST /openai/v1/chat/completions answered ${chat.status}: ${chat.text.slice(0, 300)}`);
  const codexLike = await call(
    "POST",
    "/openai/v1/responses",
    key,
    { model: "gpt-5-demo", instructions: "You are Codex.", input: [{ type: "message", role: "user", content: [{ type: "input_text", text: "hello from Codex" }] }], stream: true, store: false },
    { accept: "text/event-stream", session_id: `demo-${Date.now()}` },
  );
  const events = [...codexLike.text.matchAll(/^event: (\S+)$/gm)].map((m) => m[1]);
  if (codexLike.status !== 200 || events.at(-1) !== "response.completed") throw new Error(`POST /openai/v1/responses (stream) answered ${codexLike.status}: ${codexLike.text.slice(0, 300)}`);
  say(`${st("bold", "5.")} OpenAI's API through the same gateway, served by "openai":`);
  say(`     POST ${url}/openai/v1/chat/completions  ->  ${st("green", String(chat.status))}  "${(chat.data?.choices?.[0]?.message?.content ?? "").slice(0, 60)}…"`);
  say(`     POST ${url}/openai/v1/responses, streamed as Codex CLI sends it  ->  ${st("green", String(codexLike.status))}, ${events.length} events ending in ${events.at(-1)}`);
  // Codex CLI's own config for the demo, written by the CLI (`subpool env codex --write`) into a
  // directory of the demo's: CODEX_HOME=<it> codex uses the gateway, your ~/.codex stays as it is.
  const codexHome = join(demoDir, "codex");
  rmSync(join(codexHome, "config.toml"), { force: true });
  rmSync(join(codexHome, "config.toml.bak"), { force: true });
  const codexCfg = spawnSync(process.execPath, [cli, "env", "codex", "--write", "--url", url], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, CODEX_HOME: codexHome, SUBPOOL_PROFILE: "", SUBPOOL_CONFIG: join(demoDir, "no-config.json") },
  });
  if (codexCfg.status !== 0) throw new Error(`subpool env codex --write failed: ${codexCfg.stderr}`);

  // 6. The pool, exactly as the CLI shows it.
  say(`${st("bold", "6.")} The pool, as \`subpool accounts\` shows it:`);
  const table = spawnSync(process.execPath, [cli, "accounts"], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, SUBPOOL_URL: url, SUBPOOL_KEY: key, SUBPOOL_PROFILE: "", SUBPOOL_CONFIG: join(demoDir, "no-config.json") },
  });
  process.stdout.write(table.stdout);
  if (table.status !== 0) throw new Error(`subpool accounts failed: ${table.stderr}`);
  say();
  say(st("bold", `Failover shown ${secs(Date.now() - t0)} after the demo started.`));

  if (once) {
    await stop(0);
  } else {
    const curl = `curl -s $SUBPOOL_URL/anthropic/v1/messages -H "x-api-key: $SUBPOOL_KEY" -H "anthropic-version: 2023-06-01" -H "content-type: application/json" -d '{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"hello"}]}' -i`;
    say();
    say("The demo keeps running. In another terminal, in this directory:");
    say();
    say(`  export SUBPOOL_URL=${url} SUBPOOL_KEY=${key}`);
    say(`  ${curl}`);
    const lines = [
      [`npx subpool accounts`, "the pool: status, cooldown, last use, counts"],
      [`npx subpool accounts disable healthy`, 'the request above now gets 429 with Retry-After: "limited" is still cooling'],
      [`npx subpool accounts enable healthy`, "and it answers again"],
      [`eval "$(npx subpool env claude-code)"`, "then `claude`: Claude Code through the demo (answers come from the fake provider)"],
      [`eval "$(npx subpool env openai-sdk)"`, "then any OpenAI SDK program (OPENAI_BASE_URL, OPENAI_API_KEY): Chat Completions, Responses"],
      [`CODEX_HOME=${shown(codexHome)} codex`, "Codex CLI through the demo: its config there points at the gateway (npx subpool env codex --write wrote it)"],
      [`${url}/`, "the dashboard: sign in with the key above"],
    ];
    const width = Math.max(...lines.map(([c]) => c.length));
    for (const [c, why] of lines) say(`  ${c.padEnd(width)}  # ${why}`);
    say();
    say(`The dashboard has an Admin view too (users, new keys): sign in there with the admin token, ADMIN_TOKEN in ${shown(join(root, ".dev.vars"))}`);
    say(`(grep ADMIN_TOKEN ${shown(join(root, ".dev.vars"))}).`);
    say();
    say("Ctrl-C stops the demo (the gateway and the fake provider).");
    if (gateway.exitCode === null) gateway.once("exit", (code) => stopping || fail(`the gateway stopped (code ${code})`));
  }
} catch (e) {
  await fail(e instanceof Error ? e.message : String(e));
}
