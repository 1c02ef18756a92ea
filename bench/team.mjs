#!/usr/bin/env node
/**
 * `npm run bench:team`: the team features of issue 18 (DESIGN.md section 12), measured locally, the
 * way `npm run bench` runs subpool: the `wrangler deploy --dry-run` bundle under `workerd serve`, the
 * UserPool Durable Object on SQLite (tmpfs), the fake provider (bench/fake-provider.mjs). Here KV
 * (bench/workers/memory-kv.js) runs in a workerd process of its own, so that the team outlives a
 * restart of the gateway's process, and the gateway's process has --isolates copies of the Worker
 * (isolates A, B, C, ...: one bundle, one Durable Object namespace, one KV, as several Cloudflare
 * isolates of one deployment are).
 *
 *   usage      a team of --members (200) members and --admins (3) admins, created through POST
 *              /admin/users; member i gets 1 + (i mod 3) Anthropic API-key accounts (POST /api/accounts
 *              ?check=false, keys the fake answers) and sends --requests (3) real requests through the
 *              gateway (today's row of member_usage_daily, 28 tokens each: the fake's usage). With
 *              --past-days D (89), the D days before today get a row each too, written into every
 *              member's object's SQLite file (node:sqlite) while the gateway is stopped: the same table
 *              the object fills, with the numbers of a busy coding team (workerd's clock cannot be set
 *              back, so usage on past days cannot come through requests); --past-days 0: today's only.
 *              Then GET /admin/usage?days=30, ?days=90 and GET /admin/users, each first cold (the
 *              gateway's process restarted just before: a fresh isolate, no member's object loaded),
 *              then warm, --rounds (7) rounds with the order alternating: min / median / max ms, and the
 *              JSON's size (raw and gzipped). Also the warm figures before the past days were written.
 *   overshoot  how far past a limit a member gets (DESIGN §12: "a request in flight may cross the
 *              line"; isolates reconcile on the ~1 s flush). Per trial a fresh member with one account
 *              and one limit: tokensPerDay = --os-tokens (10,000) or requestsPerMinute = --os-rpm (60);
 *              --os-isolates (1,2,4) isolates with --os-conc (1,4,16) clients each, closed loop (a
 *              client sends its next request when its answer has ended), each client stopping at its
 *              first refusal by the limit (429 with x-subpool-limit). Answers (--os-answers):
 *                json    the fake's JSON, 12 input + 16 output = 28 tokens, about 1-3 ms here
 *                stream  an Anthropic stream of --os-events (30) events --os-gap-ms (3) apart (~90 ms)
 *                        for a ~300-byte request: 75 input (68 of them cache reads) + 25 output = 100
 *                        tokens
 *              Counted from the answers: what was served (200s, their tokens), when the line was
 *              crossed (the answer whose tokens reached T, by end time; for requests per minute the
 *              R-th request, by start time), the requests in flight then, those admitted after it per
 *              isolate and the last of them; then, once every client was refused, one probe per
 *              isolate (refused?) and what the member's object recorded (GET /admin/usage?days=1,
 *              polled until it equals what was served, at most 8 s). Requests-per-minute trials start with at least 5 s (json) or 15 s
 *              (stream) left in the UTC minute so that they fit in one window.
 *
 * Options: --members N (200)  --admins N (3)  --requests N (3)  --past-days D (89)  --rounds N (7)
 *          --only usage,overshoot  --json FILE (raw figures; default in the temp dir)  --do-disk DIR
 *          --isolates N (4: the gateway's copies; the overshoot trials use the first --os-isolates)
 *          --os-tokens T (10000)  --os-rpm R (60)  --os-isolates 1,2,4  --os-conc 1,4,16
 *          --os-answers json,stream  --os-events N (30)  --os-gap-ms G (3)  --os-kinds tokensPerDay,requestsPerMinute
 *          --fan-out 8,256 (also measure GET /admin/usage with USAGE_FAN_OUT, the members' objects asked at
 *                   once, set to these widths: the same bundle with that constant changed, over a copy of
 *                   the same Durable Object storage, cold and in the same warm rounds, paired)
 *          --profile N (after the warm rounds, a V8 CPU profile of the gateway's isolate A, which also
 *                   runs the Durable Object here, over N calls of GET /admin/usage?days=90: top functions)
 * Each timed call also gives the gateway process's CPU time (its threads' schedstat: the Worker, the
 * objects and SQLite, all on this machine's one workerd process) and the share of the machine other
 * processes used meanwhile (other sessions' jobs share these 2 cores: wall times move with them, the
 * CPU time much less).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import crypto from "node:crypto";
import { fileURLToPath } from "node:url";
import { execFileSync } from "node:child_process";
import { cpuDeltaMs, cpuReading, cpuSnapshot, foreignCpu, freePort, installCleanup, startProcess, stopAll, stopProcess, waitForOutput, removeOnExit } from "./lib/procs.mjs";
import { Cdp, analyseProfile, bundleModules, samplingPeriodUs } from "./lib/cdp.mjs";
import { agent, sleep, timed } from "./lib/measure.mjs";
import { buildBundle, readWranglerToml, startWorkerd, workerdVersion, writeSingleWorkerConfig, writeSubpoolConfig } from "./lib/workerd.mjs";
import { JSON_BODY, base, defaultDoDisk, fakeProviderVars } from "./lib/stack.mjs";
import { argv, list, opt } from "./lib/options.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..");

// ---- options ------------------------------------------------------------------------------------
const O = {
  members: Number(opt("members", 200)),
  admins: Number(opt("admins", 3)),
  requests: Number(opt("requests", 3)),
  pastDays: Number(opt("past-days", 89)),
  rounds: Number(opt("rounds", 7)),
  only: new Set(list(opt("only", "usage,overshoot"))),
  json: opt("json", null),
  doDisk: opt("do-disk", undefined),
  isolates: Number(opt("isolates", 4)),
  osTokens: Number(opt("os-tokens", 10_000)),
  osRpm: Number(opt("os-rpm", 60)),
  osIsolates: list(opt("os-isolates", "1,2,4")).map(Number),
  osConc: list(opt("os-conc", "1,4,16")).map(Number),
  osAnswers: list(opt("os-answers", "json,stream")),
  osEvents: Number(opt("os-events", 30)),
  osGapMs: Number(opt("os-gap-ms", 3)),
  osKinds: list(opt("os-kinds", "tokensPerDay,requestsPerMinute")),
  profile: Number(opt("profile", 0)),
  fanOut: list(opt("fan-out", "")).map(Number),
};
O.isolates = Math.max(O.isolates, ...(O.only.has("overshoot") ? O.osIsolates : [1]), 2);

const log = (...a) => console.log(...a);
const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s`;
const say = (m) => log(`${elapsed()} ${m}`);
const work = fs.mkdtempSync(path.join(os.tmpdir(), "subpool-bench-team-"));
installCleanup(() => fs.rmSync(work, { recursive: true, force: true }));

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};
const stat = (v) => ({ n: v.length, min: Math.min(...v), median: median(v), max: Math.max(...v), all: v });
const f = (v, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : "n/a");
const int = (v) => (Number.isFinite(v) ? Math.round(v).toLocaleString("en-US") : "n/a");
const kb = (b) => `${(b / 1024).toFixed(1)} KiB`;

/** Runs `fn` over `items` with at most `width` at once. */
async function pool(items, width, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i], i);
      }
    }),
  );
  return out;
}

async function api(url, init) {
  const r = await fetch(url, init);
  const text = await r.text();
  if (!r.ok) throw new Error(`${init?.method ?? "GET"} ${url} -> ${r.status}: ${text.slice(0, 500)}`);
  return text ? JSON.parse(text) : null;
}

// ---- the processes ---------------------------------------------------------------------------------
/**
 * The fake provider, KV in its own workerd process, the gateway (isolates A, B, ...) in another.
 * restart() stops the gateway's process and starts it again on the same ports, storage and KV.
 */
async function startGateway() {
  const fake = startProcess("fake-provider", process.execPath, [path.join(here, "fake-provider.mjs"), "0"], { env: { ...process.env, BIG_BYTES: String(1 << 20) } });
  const FAKE = `http://127.0.0.1:${Number((await waitForOutput(fake, /LISTENING (\d+)/))[1])}`;
  const wt = readWranglerToml(repo);

  const kvPort = await freePort();
  const kvCfg = writeSingleWorkerConfig({ dir: path.join(work, "kv"), name: "kv", script: path.join(here, "workers", "memory-kv.js"), compatibilityDate: "2026-08-01", vars: {}, port: kvPort });
  await startWorkerd("workerd-kv", kvCfg, `http://127.0.0.1:${kvPort}/?prefix=x`);

  say("building subpool (wrangler deploy --dry-run)");
  const bundle = buildBundle(repo, path.join(work, "dist"), repo);
  const ADMIN = "sp_admin_bench_" + crypto.randomBytes(12).toString("hex");
  const vars = {
    ...wt.vars,
    ...fakeProviderVars(FAKE),
    MASTER_KEY: crypto.randomBytes(32).toString("base64"),
    ADMIN_TOKEN: ADMIN,
  };
  const doDisk = O.doDisk ?? defaultDoDisk() ?? work;
  const shared = { FAKE, ADMIN, vars, wt, doDisk, kvAddress: `127.0.0.1:${kvPort}`, adminH: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" } };
  return gatewayProcess(shared, { name: "subpool", bundle, isolates: O.isolates, inspector: O.profile > 0 });
}

/**
 * One gateway process (`name`): `isolates` copies of the bundle, its own Durable Object directory
 * (`doDir`, or a new one), the shared KV. Not started when `started` is false.
 */
async function gatewayProcess(shared, { name, bundle, isolates: n, inspector = false, doDir = null, started = true }) {
  const ports = [];
  for (let i = 0; i < Math.max(2, n); i++) ports.push(await freePort());
  doDir ??= path.join(shared.doDisk, `subpool-bench-team-do-${name}-${crypto.randomBytes(4).toString("hex")}`);
  removeOnExit(doDir);
  const cfg = writeSubpoolConfig({
    dir: path.join(work, `gateway-${name}`),
    doDir,
    bundle,
    kvScript: path.join(here, "workers", "memory-kv.js"),
    compatibilityDate: shared.wt.compatibilityDate,
    compatibilityFlags: shared.wt.compatibilityFlags,
    vars: shared.vars,
    portA: ports[0],
    portB: ports[1],
    morePorts: ports.slice(2),
    kvAddress: shared.kvAddress,
  });
  const isolates = ports.map((p) => `http://127.0.0.1:${p}`);
  const inspectorPort = inspector ? await freePort() : null;
  const args = inspectorPort ? ["-i", `127.0.0.1:${inspectorPort}`] : [];
  const G = {
    ...shared,
    shared,
    name,
    A: isolates[0],
    isolates,
    doDir,
    bundle,
    inspectorPort,
    bundleBytes: fs.statSync(bundle).size,
    proc: started ? await startWorkerd(`workerd-${name}`, cfg, `${isolates[0]}/healthz`, args) : null,
    async stop() {
      await stopProcess(G.proc);
    },
    async start() {
      G.proc = await startWorkerd(`workerd-${name}`, cfg, `${isolates[0]}/healthz`, args);
    },
    async restart() {
      await G.stop();
      await G.start();
    },
  };
  return G;
}

/**
 * The fan-out ablation (--fan-out): the same bundle with `USAGE_FAN_OUT` (src/api/admin.ts, members'
 * objects asked at once by GET /admin/usage) set to another width, over a copy of the main gateway's
 * Durable Object directory (made while it is stopped), not started yet.
 */
async function fanOutVariant(G, width) {
  const text = fs.readFileSync(G.bundle, "utf8");
  const re = /var USAGE_FAN_OUT = \d+;/;
  if (!re.test(text)) throw new Error("--fan-out: the bundle has no `var USAGE_FAN_OUT = N;` (src/api/admin.ts changed?)");
  const dir = path.join(work, `dist-fanout-${width}`);
  fs.mkdirSync(dir, { recursive: true });
  const bundle = path.join(dir, "index.js");
  fs.writeFileSync(bundle, text.replace(re, `var USAGE_FAN_OUT = ${width};`));
  const doDir = path.join(G.shared.doDisk, `subpool-bench-team-do-fanout-${width}-${crypto.randomBytes(4).toString("hex")}`);
  fs.cpSync(G.doDir, doDir, { recursive: true });
  return gatewayProcess(G.shared, { name: `fanout-${width}`, bundle, isolates: 1, doDir, started: false });
}

/** A member (or admin) through POST /admin/users, with `accounts` Anthropic API-key accounts. */
async function createMember(G, name, { role = "member", accounts = 1, keyPrefix = `sk-team-${name}` } = {}) {
  const u = await api(`${G.A}/admin/users`, { method: "POST", headers: G.adminH, body: JSON.stringify({ name, role }) });
  const h = { authorization: `Bearer ${u.key}`, "content-type": "application/json" };
  for (let j = 1; j <= accounts; j++) {
    await api(`${G.A}/api/accounts?check=false`, { method: "POST", headers: h, body: JSON.stringify({ provider: "anthropic", type: "api", key: `${keyPrefix}-${j}`, label: `${name} ${j}` }) });
  }
  return { id: u.id, name, role, key: u.key, accounts };
}

/**
 * One GET, timed from the call to the last body byte: ms, the body's bytes, gzipped bytes, the JSON;
 * with `pid`, that process's CPU ms over the call and other processes' share of the machine meanwhile.
 */
async function timedGet(url, headers, pid = null) {
  const c0 = pid ? cpuReading(pid) : null;
  const m0 = pid ? cpuSnapshot([process.pid, pid]) : null;
  const t = performance.now();
  const r = await fetch(url, { headers });
  const buf = Buffer.from(await r.arrayBuffer());
  const ms = performance.now() - t;
  const cpuMs = pid ? cpuDeltaMs(c0, cpuReading(pid)) : NaN;
  const foreignPct = pid ? foreignCpu(m0, cpuSnapshot([process.pid, pid])).foreignPct : NaN;
  if (!r.ok) throw new Error(`GET ${url} -> ${r.status}: ${buf.toString().slice(0, 300)}`);
  return { ms, cpuMs, foreignPct, bytes: buf.length, gzipBytes: zlib.gzipSync(buf).length, json: JSON.parse(buf.toString()) };
}

// ---- usage --------------------------------------------------------------------------------------------
const ENDPOINTS = [
  ["usage30", "/admin/usage?days=30"],
  ["usage90", "/admin/usage?days=90"],
  ["users", "/admin/users"],
];

/**
 * Warm rounds: every endpoint once per round on every gateway (the main one and the --fan-out
 * variants, paired: back to back), the order of endpoints and of gateways alternating per round.
 * Returns { [gateway name]: { [endpoint]: figures } }.
 */
async function warmRounds(gws, rounds, expectUsers) {
  const out = Object.fromEntries(gws.map((g) => [g.name, Object.fromEntries(ENDPOINTS.map(([k]) => [k, { ms: [], cpuMs: [], foreignPct: [] }]))]));
  const size = {};
  for (let r = 1; r <= rounds; r++) {
    const order = r % 2 ? ENDPOINTS : [...ENDPOINTS].reverse();
    for (const [k, p] of order) {
      for (const g of r % 2 ? gws : [...gws].reverse()) {
        const x = await timedGet(`${g.A}${p}`, g.adminH, g.proc.pid);
        if (x.json.users.length !== expectUsers) throw new Error(`${g.name} ${p}: ${x.json.users.length} users, expected ${expectUsers}`);
        const o = out[g.name][k];
        o.ms.push(x.ms);
        o.cpuMs.push(x.cpuMs);
        o.foreignPct.push(x.foreignPct);
        size[k] = { bytes: x.bytes, gzipBytes: x.gzipBytes };
      }
    }
  }
  return Object.fromEntries(
    gws.map((g) => [g.name, Object.fromEntries(ENDPOINTS.map(([k, p]) => [k, { path: p, ...stat(out[g.name][k].ms), cpu: stat(out[g.name][k].cpuMs), foreignPct: stat(out[g.name][k].foreignPct), ...size[k] }]))]),
  );
}

/** Past days' usage, written into each object's member_usage_daily while the gateway is stopped. */
async function seedPastDays(doDir, days) {
  // node:sqlite is "experimental" in Node 22 (stable enough for writing rows): no warning on stderr.
  const emit = process.emitWarning;
  process.emitWarning = (w, ...rest) => (String(w).includes("SQLite") ? undefined : emit.call(process, w, ...rest));
  const { DatabaseSync } = await import("node:sqlite");
  const files = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".sqlite")) files.push(p);
    }
  };
  walk(doDir);
  let objects = 0;
  let rows = 0;
  const now = Date.now();
  for (const [m, file] of files.entries()) {
    const db = new DatabaseSync(file);
    try {
      const has = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'member_usage_daily'").get();
      if (!has) continue;
      objects++;
      const ins = db.prepare(
        "INSERT INTO member_usage_daily (date, requests, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (date) DO NOTHING",
      );
      db.exec("BEGIN");
      for (let i = 1; i <= days; i++) {
        const date = new Date(now - i * 86_400_000).toISOString().slice(0, 10);
        // A coding member's day: 5-64 requests of ~50k tokens, mostly cache reads (numbers of realistic width).
        const req = 5 + ((m * 7 + i * 13) % 60);
        rows += ins.run(date, req, req * 1_500, req * 600, req * 45_000, req * 2_500).changes;
      }
      db.exec("COMMIT");
    } finally {
      db.close();
    }
  }
  return { files: files.length, objects, rows };
}

async function usagePhase(G, R) {
  const team = [];
  say(`creating ${O.admins} admins and ${O.members} members (POST /admin/users), 1-3 accounts each (POST /api/accounts?check=false)`);
  const tCreate = performance.now();
  const specs = [
    ...Array.from({ length: O.admins }, (_, i) => ({ name: `admin-${String(i + 1).padStart(3, "0")}`, role: "admin", accounts: 1 })),
    ...Array.from({ length: O.members }, (_, i) => ({ name: `member-${String(i + 1).padStart(3, "0")}`, role: "member", accounts: 1 + (i % 3) })),
  ];
  team.push(...(await pool(specs, 8, (s) => createMember(G, s.name, s))));
  const accounts = team.reduce((n, u) => n + u.accounts, 0);
  say(`  ${team.length} users, ${accounts} accounts in ${f((performance.now() - tCreate) / 1000)} s`);

  say(`${O.requests} requests per user through the gateway (today's usage)`);
  await pool(team, 8, async (u) => {
    const ag = agent();
    try {
      for (let k = 0; k < O.requests; k++) {
        const r = await timed(`${G.A}/anthropic/v1/messages`, { headers: { ...base, "x-api-key": u.key }, body: JSON_BODY, agent: ag });
        if (r.status !== 200) throw new Error(`${u.name}: request ${k + 1} answered ${r.status}`);
      }
    } finally {
      ag.destroy();
    }
  });
  // The outcomes reach each member's object with the isolate's flush (about a second later).
  const until = Date.now() + 15_000;
  let today;
  for (;;) {
    const v = (await timedGet(`${G.A}/admin/usage?days=1`, G.adminH)).json.users;
    today = v.map((u) => u.days.at(-1).requests);
    if (v.length === team.length && today.every((n) => n === O.requests)) break;
    if (Date.now() > until) throw new Error(`GET /admin/usage?days=1: today's requests ${JSON.stringify(today.slice(0, 20))}..., expected ${O.requests} each`);
    await sleep(300);
  }
  say(`  every user's object recorded ${O.requests} requests today`);
  R.usage = { members: O.members, admins: O.admins, users: team.length, accounts, requestsPerUser: O.requests, pastDays: O.pastDays };

  if (O.pastDays > 0) {
    say(`warm, today's usage only (${O.rounds} rounds)`);
    R.usage.warmTodayOnly = (await warmRounds([G], O.rounds, team.length))[G.name];
    printUsage(R.usage.warmTodayOnly, "warm, today's rows only");
    say(`stopping the gateway; writing ${O.pastDays} past days into every member's object`);
  }
  await G.stop();
  if (O.pastDays > 0) {
    R.usage.seeded = await seedPastDays(G.doDir, O.pastDays);
    say(`  ${R.usage.seeded.objects} objects, ${R.usage.seeded.rows} rows`);
  }
  const variants = [];
  for (const w of O.fanOut) variants.push(await fanOutVariant(G, w));
  await G.start();
  const gws = [G, ...variants];
  if (variants.length) say(`fan-out ablation: USAGE_FAN_OUT ${O.fanOut.join(", ")} (bundle constant changed; copies of the same storage), paired with this tree's`);
  // Cold: a restart before each endpoint's first call (fresh isolate, no object loaded).
  R.usage.cold = {};
  for (const g of gws) {
    const cold = {};
    for (const [k, p] of ENDPOINTS) {
      await g.restart();
      const x = await timedGet(`${g.A}${p}`, g.adminH, g.proc.pid);
      if (x.json.users.length !== team.length) throw new Error(`${g.name} ${p}: ${x.json.users.length} users`);
      cold[k] = { path: p, ms: x.ms, cpuMs: x.cpuMs, foreignPct: x.foreignPct, bytes: x.bytes, gzipBytes: x.gzipBytes };
      if (k === "usage90" && g === G) R.usage.check = checkUsage(x.json, team);
      say(`  ${g.name}: cold ${p}: ${f(x.ms)} ms (gateway process CPU ${f(x.cpuMs)} ms; other processes ${f(x.foreignPct, 0)} % of the machine), ${kb(x.bytes)} (${kb(x.gzipBytes)} gzipped)`);
    }
    if (g === G) R.usage.cold = cold;
    else (R.usage.fanOut ??= {})[g.name] = { cold };
  }
  // The last restart (before /admin/users) left every object unloaded: load them before the warm rounds.
  for (const g of gws) await timedGet(`${g.A}/admin/usage?days=90`, g.adminH);
  say(`warm (${O.rounds} rounds, order alternating)`);
  const warm = await warmRounds(gws, O.rounds, team.length);
  R.usage.warm = warm[G.name];
  printUsage(R.usage.warm, O.pastDays > 0 ? `warm, ${O.pastDays} past days + today` : "warm, today's rows only");
  for (const g of variants) {
    R.usage.fanOut[g.name].warm = warm[g.name];
    printUsage(warm[g.name], `${g.name} (USAGE_FAN_OUT changed), warm`);
    await g.stop();
  }
  if (O.profile) {
    R.usage.profile = await profileUsage(G, O.profile, team.length);
    await G.restart();
    R.usage.profileCold = await profileUsage(G, 1, team.length, "cold (after a restart)");
  }
}

/** A V8 CPU profile of isolate A (the Worker and, here, the objects) over n calls of GET /admin/usage?days=90. */
async function profileUsage(G, n, expectUsers, what = "warm") {
  const cdp = new Cdp(`ws://127.0.0.1:${G.inspectorPort}/subpool`);
  await cdp.open();
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: 100 });
  await cdp.send("Profiler.start");
  const calls = [];
  for (let i = 0; i < n; i++) {
    const x = await timedGet(`${G.A}/admin/usage?days=90`, G.adminH, G.proc.pid);
    if (x.json.users.length !== expectUsers) throw new Error(`profile: ${x.json.users.length} users`);
    calls.push({ ms: x.ms, cpuMs: x.cpuMs });
  }
  const { profile } = await cdp.send("Profiler.stop");
  cdp.close();
  const file = path.join(os.tmpdir(), `subpool-team-usage-${Date.now()}.cpuprofile`);
  fs.writeFileSync(file, JSON.stringify(profile));
  const a = analyseProfile(profile, bundleModules(G.bundle), samplingPeriodUs([profile], 100));
  const per = (ms) => ms / n;
  const top = (m, k) => [...m].sort((x, y) => y[1] - x[1]).slice(0, k).map(([name, ms]) => ({ name, msPerCall: per(ms), pct: (100 * ms) / a.lockedMs }));
  const out = {
    calls,
    isolateMsPerCall: per(a.lockedMs),
    kindsMsPerCall: Object.fromEntries(Object.entries(a.kinds).map(([k, v]) => [k, per(v)])),
    what,
    self: top(a.self, 25),
    inclusive: top([...a.incl].filter(([k]) => / (src|hono|zod)\b|index\.js/.test(k)), 30),
    file,
  };
  log(`\n  profile of isolate A over ${n} ${what} call(s) of GET /admin/usage?days=90 (${calls.map((c) => f(c.ms, 0)).join(", ")} ms): isolate ${f(out.isolateMsPerCall)} ms per call (JS ${f(out.kindsMsPerCall.js)}, native ${f(out.kindsMsPerCall.native)}, GC ${f(out.kindsMsPerCall.gc)}, (program) ${f(out.kindsMsPerCall.program)})`);
  log("  self ms/call    %    function");
  for (const t of out.self) log(`  ${f(t.msPerCall, 2).padStart(8)} ${f(t.pct).padStart(6)}  ${t.name}`);
  log("  inclusive ms/call  %  function (subpool's code and its libraries)");
  for (const t of out.inclusive) log(`  ${f(t.msPerCall, 2).padStart(8)} ${f(t.pct).padStart(6)}  ${t.name}`);
  log(`  profile: ${file}\n`);
  return out;
}

/** The days=90 answer holds every user, 90 days each, today's requests and the past days' rows. */
function checkUsage(json, team) {
  const byId = new Map(json.users.map((u) => [u.id, u]));
  let daysWithUsage = 0;
  let requests = 0;
  let tokens = 0;
  for (const t of team) {
    const u = byId.get(t.id);
    if (!u) throw new Error(`GET /admin/usage: user ${t.name} missing`);
    if (u.days.length !== 90) throw new Error(`GET /admin/usage?days=90: ${u.days.length} days for ${t.name}`);
    if (u.accounts.total !== t.accounts) throw new Error(`${t.name}: ${u.accounts.total} accounts, expected ${t.accounts}`);
    if (u.days.at(-1).requests !== O.requests) throw new Error(`${t.name}: ${u.days.at(-1).requests} requests today`);
    for (const d of u.days) {
      if (d.requests) daysWithUsage++;
      requests += d.requests;
      tokens += d.inputTokens + d.outputTokens + d.cacheReadTokens + d.cacheWriteTokens;
    }
  }
  return { users: json.users.length, daysWithUsage, requests, tokens };
}

function printUsage(w, title) {
  log(`\n  ${title}: wall ms and the gateway process's CPU ms (min / median / max over ${w.usage30.n} rounds), JSON size, other processes' share of the machine (median)`);
  for (const [k, p] of ENDPOINTS) {
    const x = w[k];
    log(`    GET ${p.padEnd(22)} ${f(x.min).padStart(7)} / ${f(x.median).padStart(7)} / ${f(x.max).padStart(7)} ms   CPU ${f(x.cpu.min).padStart(6)} / ${f(x.cpu.median).padStart(6)} / ${f(x.cpu.max).padStart(6)} ms   ${kb(x.bytes)} (${kb(x.gzipBytes)} gzipped)   others ${f(x.foreignPct.median, 0)} %`);
  }
  log("");
}

// ---- overshoot -------------------------------------------------------------------------------------------
const STREAM_PAD = "x".repeat(180);
const STREAM_BODY = JSON.stringify({ model: "claude-sonnet-4-5", max_tokens: 64, stream: true, messages: [{ role: "user", content: `count the tokens ${STREAM_PAD}` }] });

/** Tokens an answer states, counted as subpool counts them: input + output + cache reads and writes. */
function tokensOf(text) {
  const num = (re) => [...text.matchAll(re)].map((m) => Number(m[1]));
  const input = num(/"input_tokens":(\d+)/g)[0] ?? 0;
  const read = num(/"cache_read_input_tokens":(\d+)/g)[0] ?? 0;
  const write = num(/"cache_creation_input_tokens":(\d+)/g)[0] ?? 0;
  const output = num(/"output_tokens":(\d+)/g).at(-1) ?? 0;
  return input + read + write + output;
}

/** Waits until at least `needMs` are left in the current UTC minute. */
async function fitInMinute(needMs) {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < needMs) await sleep(left + 150);
}

async function trial(G, { kind, answer, n, c }) {
  const limit = kind === "tokensPerDay" ? O.osTokens : O.osRpm;
  const name = `os-${kind === "tokensPerDay" ? "tpd" : "rpm"}-${answer}-${n}x${c}-${crypto.randomBytes(3).toString("hex")}`;
  const m = await createMember(G, name, { accounts: 1 });
  const set = await api(`${G.A}/admin/users/${m.id}`, { method: "PATCH", headers: G.adminH, body: JSON.stringify({ limits: { [kind]: limit } }) });
  if (set.limits[kind] !== limit) throw new Error(`PATCH limits: ${JSON.stringify(set.limits)}`);
  const stream = answer === "stream";
  const headers = { ...base, "x-api-key": m.key, ...(stream ? { "x-bench-events": String(O.osEvents), "x-bench-gap-ms": String(O.osGapMs) } : {}) };
  const body = stream ? STREAM_BODY : JSON_BODY;
  if (kind === "requestsPerMinute") await fitInMinute(stream ? 15_000 : 5_000);
  const minute = Math.floor(Date.now() / 60_000);
  const start = performance.now();
  const events = [];
  const errors = [];
  const client = async (iso) => {
    const ag = agent();
    try {
      for (;;) {
        const s = performance.now() - start;
        const r = await timed(`${G.isolates[iso]}/anthropic/v1/messages`, { headers, body, agent: ag, keepBody: true });
        const e = performance.now() - start;
        if (r.status === 200) events.push({ iso, s, e, ok: true, tokens: tokensOf(r.text) });
        else if (r.status === 429 && r.headers["x-subpool-limit"] === kind) {
          events.push({ iso, s, e, ok: false, retryAfter: Number(r.headers["retry-after"]) });
          return;
        } else {
          errors.push(`${r.status} ${String(r.text).slice(0, 200)}`);
          if (errors.length > 5) return;
        }
      }
    } finally {
      ag.destroy();
    }
  };
  const clients = [];
  for (let i = 0; i < n; i++) for (let j = 0; j < c; j++) clients.push(client(i));
  await Promise.all(clients);
  const wallMs = performance.now() - start;
  // Every isolate refuses now.
  const probes = [];
  for (let i = 0; i < n; i++) {
    const r = await timed(`${G.isolates[i]}/anthropic/v1/messages`, { headers, body, keepBody: true });
    probes.push(r.status === 429 && r.headers["x-subpool-limit"] === kind);
  }
  const sameMinute = Math.floor(Date.now() / 60_000) === minute;
  const ok = events.filter((x) => x.ok);
  const served = { requests: ok.length, tokens: ok.reduce((a, x) => a + x.tokens, 0) };
  // What the member's object recorded, once the isolates' last flushes arrived (about a second; polled up to 8 s).
  let recorded = null;
  for (const until = Date.now() + 8000; ; ) {
    await sleep(500);
    const v = (await timedGet(`${G.A}/admin/usage?days=1`, G.adminH)).json.users.find((u) => u.id === m.id);
    const d = v?.days.at(-1);
    recorded = d ? { requests: d.requests, tokens: d.inputTokens + d.outputTokens + d.cacheReadTokens + d.cacheWriteTokens } : null;
    if ((recorded && recorded.requests === served.requests && recorded.tokens === served.tokens) || Date.now() > until) break;
  }

  const perRequest = ok.length ? served.tokens / ok.length : NaN;
  // When the line was crossed: tokens, by the answers' end times; requests, the limit-th by start time.
  let cross = NaN;
  if (kind === "tokensPerDay") {
    let sum = 0;
    for (const x of [...ok].sort((a, b) => a.e - b.e)) {
      sum += x.tokens;
      if (sum >= limit) {
        cross = x.e;
        break;
      }
    }
  } else {
    const byStart = [...ok].sort((a, b) => a.s - b.s);
    if (byStart.length >= limit) cross = byStart[limit - 1].s;
  }
  const inFlight = ok.filter((x) => x.s < cross && x.e > cross).length;
  const after = Array.from({ length: n }, (_, i) => ok.filter((x) => x.iso === i && x.s > cross));
  const refusedAt = Array.from({ length: n }, (_, i) => Math.min(...events.filter((x) => x.iso === i && !x.ok).map((x) => x.s)));
  const over = kind === "tokensPerDay" ? served.tokens - limit : served.requests - limit;
  const res = {
    kind,
    limit,
    answer,
    isolates: n,
    conc: c,
    member: m.id,
    served,
    tokensPerRequest: perRequest,
    perIsolate: Array.from({ length: n }, (_, i) => ok.filter((x) => x.iso === i).length),
    over,
    overPct: (100 * over) / limit,
    overRequests: kind === "tokensPerDay" ? served.requests - Math.ceil(limit / perRequest) : over,
    crossMs: cross,
    inFlightAtCross: inFlight,
    admittedAfterCross: after.map((a) => a.length),
    lastAdmittedAfterCrossMs: after.map((a) => (a.length ? Math.max(...a.map((x) => x.s)) - cross : 0)),
    firstRefusalAfterCrossMs: refusedAt.map((t) => t - cross),
    wallMs,
    refusedEverywhere: probes.every(Boolean),
    sameMinute,
    recorded,
    recordedEqual: !!recorded && recorded.requests === served.requests && recorded.tokens === served.tokens,
    errors,
  };
  say(
    `  ${kind} ${limit} ${answer.padEnd(6)} ${n} isolate(s) x c=${String(c).padEnd(2)}: served ${served.requests} requests (${res.perIsolate.join("+")}), ${int(served.tokens)} tokens; ` +
      `over by ${int(over)} ${kind === "tokensPerDay" ? "tokens" : "requests"} (${f(res.overPct)} %); in flight at the line ${inFlight}, admitted after it ${res.admittedAfterCross.join("+")} ` +
      `(last ${res.lastAdmittedAfterCrossMs.map((x) => f(x, 0)).join("/")} ms after); recorded ${recorded ? `${recorded.requests} req ${int(recorded.tokens)} tok` : "n/a"}${res.recordedEqual ? "" : " (DIFFERS)"}` +
      `${res.refusedEverywhere ? "" : "; NOT refused everywhere"}${sameMinute ? "" : "; crossed a minute"}${errors.length ? `; errors ${errors.slice(0, 2).join(" | ")}` : ""}`,
  );
  return res;
}

async function overshootPhase(G, R) {
  say(`overshoot: ${O.osKinds.join(", ")}; answers ${O.osAnswers.join(", ")}; isolates ${O.osIsolates.join(", ")}; clients per isolate ${O.osConc.join(", ")}`);
  R.overshoot = { tokensLimit: O.osTokens, rpmLimit: O.osRpm, stream: { events: O.osEvents, gapMs: O.osGapMs, bodyBytes: STREAM_BODY.length }, trials: [] };
  for (const kind of O.osKinds) for (const answer of O.osAnswers) for (const n of O.osIsolates) for (const c of O.osConc) R.overshoot.trials.push(await trial(G, { kind, answer, n, c }));
  printOvershoot(R.overshoot);
}

function printOvershoot(x) {
  const head = ["limit", "answer", "isolates x clients", "served (per isolate)", "tokens served", "over the limit", "in flight at the line", "admitted after it (per isolate)", "last of them after (ms)", "recorded = served", "refused everywhere"];
  const rows = x.trials.map((t) => [
    `${t.kind} ${int(t.limit)}`,
    `${t.answer} (${f(t.tokensPerRequest, 0)} tok)`,
    `${t.isolates} x ${t.conc}`,
    `${t.served.requests} (${t.perIsolate.join("+")})`,
    int(t.served.tokens),
    `${int(t.over)} ${t.kind === "tokensPerDay" ? "tok" : "req"} (${f(t.overPct)} %)`,
    String(t.inFlightAtCross),
    t.admittedAfterCross.join("+"),
    t.lastAdmittedAfterCrossMs.map((v) => f(v, 0)).join("/"),
    t.recordedEqual ? "yes" : `NO (${t.recorded?.requests} req, ${t.recorded?.tokens} tok)`,
    t.refusedEverywhere ? "yes" : "NO",
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => String(c).padEnd(w[i])).join("  ");
  log(["", "Overshoot", line(head), w.map((n) => "-".repeat(n)).join("  "), ...rows.map(line), ""].join("\n"));
}

// ---- main -------------------------------------------------------------------------------------------------
async function main() {
  const R = { startedAt: new Date().toISOString(), options: { ...O, only: [...O.only] }, env: environment() };
  log(`subpool bench:team: ${[...O.only].join(", ")}; machine ${R.env.cpu} (${R.env.cores} cores), ${R.env.node}, ${R.env.workerd}`);
  const G = await startGateway();
  R.setup = { bundleBytes: G.bundleBytes, isolates: G.isolates.length, doDisk: G.doDisk };
  say(`ready: fake ${G.FAKE}, subpool isolates ${G.isolates.join(" ")}`);
  if (O.only.has("usage")) await usagePhase(G, R);
  if (O.only.has("overshoot")) await overshootPhase(G, R);
  R.wallSeconds = (Date.now() - t0) / 1000;
  const file = O.json ?? path.join(os.tmpdir(), `subpool-bench-team-${R.startedAt.replace(/[:.]/g, "-")}.json`);
  fs.writeFileSync(file, JSON.stringify(R, null, 2));
  if (R.usage) {
    const w = R.usage.warm;
    const worst = Math.max(...Object.values(R.usage.cold).map((x) => x.ms), w.usage30.max, w.usage90.max, w.users.max);
    log(`Team usage for ${R.usage.users} users (${R.usage.members} members): target < 2 s: ${worst < 2000 ? "met" : "MISSED"} (slowest call ${f(worst)} ms)`);
  }
  log(`raw figures: ${file}`);
}

function environment() {
  let commit = null;
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: repo }).toString().trim();
  } catch {}
  let workerd = "workerd ?";
  try {
    workerd = workerdVersion();
  } catch {}
  return { cpu: os.cpus()[0]?.model ?? "unknown", cores: os.availableParallelism?.() ?? os.cpus().length, node: `Node ${process.version}`, workerd, commit, command: `npm run bench:team${argv.length ? " -- " + argv.join(" ") : ""}` };
}

main()
  .catch((e) => {
    console.error(`bench:team failed: ${e.stack ?? e}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await stopAll();
    fs.rmSync(work, { recursive: true, force: true });
  });
