#!/usr/bin/env node
/**
 * `npm run bench:isolate`: the time subpool's own isolate runs per request, which is what Cloudflare's
 * CPU-time limit counts (Free: 10 ms per request; Paid: `limits.cpu_ms`), for the traffic coding tools
 * send: a tiny JSON request, 300 KB and 1 MB Claude-Code-shaped requests with a small JSON answer, a
 * 2,000-event streamed answer in three API shapes, a coding turn (300 KB request, 800-event stream), and
 * the first request of a fresh isolate. The null Worker (bench/workers/null-worker.js) is measured the
 * same way, for comparison. The whole-process CPU the other bench phases measure (schedstat) also counts
 * workerd moving a stream's bytes without the isolate, which Cloudflare does not bill as the Worker's CPU.
 *
 * How (bench/README.md, "Isolate CPU"):
 *   - figures: `workerd serve --async-trace FILE` (lib/async-trace.mjs): every turn of every request
 *     context, with when it took and released the isolate's lock. Per request: the sum of its turns
 *     (its waitUntil work included); the Durable Object's turns apart (in production the DO is another
 *     isolate, its CPU not the Worker's). The subpool Worker measured is isolate "B" of the bench's workerd
 *     process: the same bundle, whose Durable Object lives in isolate "A", as in production.
 *   - cross-check and where the time goes: after the measured rounds, one V8 CPU profile per traffic
 *     shape through workerd's inspector (lib/cdp.mjs), samples weighted by the sampling period (samples
 *     exist only while the isolate runs), top functions by self time.
 *   - storage calls: GET /admin/stats of isolate B before and after each measurement (DO calls, KV ops).
 * Each measurement is followed by --settle-ms (2000) of quiet, so the batched outcome flush (about a
 * second after a request, src/pool/snapshots.ts) falls inside it; requests are sequential.
 *
 * Options: --rounds R (3)  --events N (2000)  --gap-ms G (1)  --tiny-n N (20)  --big-sizes B1,B2
 *          (300000,1000000)  --big-n N (10)  --turn-events N (800)  --turn-bytes B (300000)
 *          --pace GAPxN,... (3000x5,250x20: tiny requests GAP ms apart, for DO calls per request at a pace)
 *          --dashboard N (3: refreshes of the dashboard's Accounts view, 10 s apart: DO calls per refresh)
 *          --settle-ms MS (2000)  --only id,id (scenarios: cold,tiny,big-300000,big-1000000,
 *          stream-anthropic,stream-chat,stream-responses,turn,pace,dashboard)  --no-profile  --interval US (50)
 *          --profile-reps N (3)  --top N (12)  --src DIR | --ref REF (a commit, from a clean git archive)
 *          --json FILE  --keep-traces DIR  --no-trace (workerd without --async-trace: profiles only, to
 *          see what the trace itself costs)
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, installCleanup, stopAll } from "./lib/procs.mjs";
import { agent, sleep, timed } from "./lib/measure.mjs";
import { checkoutRef, startStack } from "./lib/stack.mjs";
import { execFileSync } from "node:child_process";
import { readAsyncTrace } from "./lib/async-trace.mjs";
import { analyseProfile, bundleModules, profilerSession, samplingPeriodUs } from "./lib/cdp.mjs";
import { PATH_OF, PROVIDER_OF, baseHeadersOf, claudeCodeRequest, streamBody, streamRequest } from "./lib/traffic.mjs";
import { argv, opt } from "./lib/options.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..");
const O = {
  rounds: Number(opt("rounds", 3)),
  events: Number(opt("events", 2000)),
  gapMs: Number(opt("gap-ms", 1)),
  tinyN: Number(opt("tiny-n", 20)),
  bigSizes: String(opt("big-sizes", "300000,1000000")).split(",").map(Number).filter((n) => n > 0),
  bigN: Number(opt("big-n", 10)),
  turnEvents: Number(opt("turn-events", 800)),
  turnBytes: Number(opt("turn-bytes", 300000)),
  pace: String(opt("pace", "3000x5,250x20"))
    .split(",")
    .filter(Boolean)
    .map((s) => s.split("x").map(Number))
    .map(([gap, n]) => ({ gap, n })),
  settleMs: Number(opt("settle-ms", 2000)),
  dashboard: Number(opt("dashboard", 3)),
  only: opt("only", null)?.split(","),
  profile: !argv.includes("--no-profile"),
  trace: !argv.includes("--no-trace"),
  interval: Number(opt("interval", 50)),
  profileReps: Number(opt("profile-reps", 3)),
  top: Number(opt("top", 12)),
  json: opt("json", null),
  keepTraces: opt("keep-traces", null),
};
const TINY = 200;
const work = fs.mkdtempSync(path.join(os.tmpdir(), "subpool-isolate-"));
installCleanup(() => fs.rmSync(work, { recursive: true, force: true }));
const log = (m) => console.log(m);
const wall = () => performance.timeOrigin + performance.now();

// ---- the traffic ---------------------------------------------------------------------------------------
const SCENARIOS = [
  { id: "tiny", what: `tiny JSON request (Claude Code shape, ~330 B), small JSON answer`, kind: "json", bytes: TINY, n: O.tinyN },
  ...O.bigSizes.map((b) => ({ id: `big-${b}`, what: `${Math.round(b / 1000)} KB Claude-Code-shaped request, small JSON answer`, kind: "json", bytes: b, n: O.bigN })),
  ...["anthropic", "chat", "responses"].map((shape) => ({ id: `stream-${shape}`, what: `${O.events}-event stream, ${shape === "anthropic" ? "Anthropic Messages" : shape === "chat" ? "OpenAI Chat Completions" : "OpenAI Responses"}, ${O.gapMs} ms apart`, kind: "stream", shape, events: O.events })),
  { id: "turn", what: `coding turn: ${Math.round(O.turnBytes / 1000)} KB request, ${O.turnEvents}-event Anthropic stream`, kind: "turn", bytes: O.turnBytes, events: O.turnEvents },
].filter((s) => !O.only || O.only.includes(s.id));

function endpoints(S) {
  const t = S.users.traffic;
  return {
    subpool: {
      base: { anthropic: `${S.B}/anthropic`, openai: `${S.B}/openai` },
      auth: { anthropic: { "x-api-key": t.key }, openai: { authorization: `Bearer ${t.key}` } },
      api: { base: `${S.B}/api`, headers: { authorization: `Bearer ${t.key}` }, accounts: Object.values(t.accounts) },
    },
    null: {
      base: { anthropic: S.NULLW, openai: S.NULLW },
      auth: { anthropic: { "x-api-key": t.providerKeys.anthropic }, openai: { authorization: `Bearer ${t.providerKeys.openai}` } },
    },
  };
}

/** One unit of traffic on a path: { requests, events, ok, errors }. `small`: the warm-up's size. */
async function runUnit(E, p, sc, ag, { small = false, n = null } = {}) {
  const ep = E[p];
  const out = { requests: 0, events: 0, ok: 0, errors: [] };
  const note = (status, events, text) => {
    out.requests++;
    out.events += events;
    if (status === 200) out.ok++;
    else if (out.errors.length < 3) out.errors.push(`${status} ${String(text ?? "").slice(0, 160)}`);
  };
  if (sc.kind === "json") {
    const req = claudeCodeRequest(sc.bytes, { stream: false });
    const count = n ?? (small ? 3 : sc.n);
    for (let i = 0; i < count; i++) {
      const r = await timed(ep.base.anthropic + PATH_OF.anthropic, { headers: { ...req.headers, ...ep.auth.anthropic }, body: req.body, agent: ag, keepBody: true });
      note(r.status, 0, r.text);
    }
  } else if (sc.kind === "stream") {
    const events = small ? 100 : sc.events;
    const prov = PROVIDER_OF[sc.shape];
    const h = { ...baseHeadersOf(sc.shape), ...ep.auth[prov], "x-bench-events": String(events), "x-bench-gap-ms": String(small ? 0 : O.gapMs) };
    const r = await streamRequest(ep.base[prov] + PATH_OF[sc.shape], { headers: h, body: streamBody(sc.shape), agent: ag });
    note(r.status === 200 && r.events === events ? 200 : r.status, r.events, r.text ?? `${r.events}/${events} events`);
  } else if (sc.kind === "dashboard") {
    // What the dashboard's Accounts view asks for: the list (every 10 s while visible), then each
    // account's usage (at most once a minute).
    const r = await timed(`${ep.api.base}/accounts`, { method: "GET", headers: ep.api.headers, agent: ag, keepBody: true });
    note(r.status, 0, r.text);
    for (const id of ep.api.accounts) {
      const u = await timed(`${ep.api.base}/accounts/${id}/usage?days=14`, { method: "GET", headers: ep.api.headers, agent: ag, keepBody: true });
      note(u.status, 0, u.text);
    }
  } else {
    const req = claudeCodeRequest(sc.bytes, { stream: true });
    const events = small ? 50 : sc.events;
    const h = { ...req.headers, ...ep.auth.anthropic, "x-bench-events": String(events), "x-bench-gap-ms": String(small ? 0 : O.gapMs) };
    const r = await streamRequest(ep.base.anthropic + PATH_OF.anthropic, { headers: h, body: req.body, agent: ag });
    note(r.status === 200 && r.events === events ? 200 : r.status, r.events, r.text ?? `${r.events}/${events} events`);
  }
  return out;
}

// ---- figures ------------------------------------------------------------------------------------------
const median = (v) => {
  const s = v.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const range = (v) => {
  const s = v.filter(Number.isFinite);
  return s.length ? [Math.min(...s), Math.max(...s)] : [NaN, NaN];
};

/** What the traces say about one measured window. */
function attribute(unit, trace, workerName) {
  const inWin = (t) => t >= unit.t0 - 5 && t <= unit.t1;
  const own = [...trace.ctxs.entries()].filter(([, c]) => c.worker === workerName && !c.actor && inWin(c.atMs));
  const ownIds = new Set(own.map(([id]) => id));
  let doMs = 0;
  let doTurns = 0;
  let strayMs = 0;
  let harnessMs = 0;
  for (const t of trace.turns) {
    if (!inWin(t.atMs)) continue;
    const c = trace.ctxs.get(t.ctx);
    if (!c) continue;
    if (c.actor) {
      doMs += t.ms;
      doTurns++;
    } else if (c.worker === workerName) {
      if (!ownIds.has(t.ctx)) strayMs += t.ms;
    } else harnessMs += t.ms;
  }
  const per = own.map(([, c]) => c.lockMs);
  return {
    contexts: own.length,
    workerMs: per.reduce((a, b) => a + b, 0),
    maxInvocationMs: per.length ? Math.max(...per) : NaN,
    turns: own.reduce((a, [, c]) => a + c.turns, 0),
    maxTurnMs: own.reduce((a, [, c]) => Math.max(a, c.maxTurnMs), 0),
    doMs,
    doTurns,
    strayMs,
    otherMs: harnessMs,
    firstCtxDelayMs: own.length ? Math.min(...own.map(([, c]) => c.atMs)) - unit.t0 : NaN,
  };
}

async function main() {
  const inspectorPort = await freePort();
  const nullInspectorPort = await freePort();
  const traces = { subpool: path.join(work, "subpool.trace.jsonl"), null: path.join(work, "null.trace.jsonl") };
  // --ref REF: that commit, clean (git archive into the temp dir; others' uncommitted edits left out).
  let src = opt("src", null);
  let commit = null;
  if (opt("ref", null)) {
    const c = checkoutRef(repo, work, opt("ref", null), "ref");
    src = c.dir;
    commit = c.commit;
  } else if (!src) {
    commit = execFileSync("git", ["rev-parse", "HEAD"], { cwd: repo }).toString().trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src", "wrangler.toml"], { cwd: repo }).toString().trim();
    if (dirty) commit += " + uncommitted changes in src/";
  }
  log(`subpool: ${src ?? repo}${commit ? ` (${commit})` : ""}`);
  const S = await startStack({
    repo,
    src,
    work,
    withPortkey: false,
    withNull: true,
    strict: false,
    inspectorPort: O.profile ? inspectorPort : null,
    nullInspectorPort: O.profile ? nullInspectorPort : null,
    workerdArgs: O.trace ? { subpool: ["--async-trace", traces.subpool], null: ["--async-trace", traces.null] } : {},
    log,
  });
  const E = endpoints(S);
  const agents = { subpool: agent(), null: agent() };
  const statsB = async () => {
    const r = await fetch(`${S.B}/admin/stats`, { headers: { authorization: `Bearer ${S.ADMIN}` } });
    return (await r.json()).isolate;
  };
  const units = [];
  const measure = async (p, sc, round, { small = false, n = null, kind = "measured", settleMs = p === "null" ? 300 : O.settleMs, between = null } = {}) => {
    // Not during a profile: the stats request would be in it.
    const st0 = p === "subpool" && kind !== "profile" ? await statsB() : null;
    await sleep(100);
    const u = { path: p, scenario: sc.id, round, kind, t0: wall(), requests: 0, events: 0, ok: 0, errors: [] };
    if (between) {
      for (let i = 0; i < between.n; i++) {
        if (i > 0) await sleep(between.gap);
        const r = await runUnit(E, p, sc, agents[p], { n: 1 });
        for (const k of ["requests", "events", "ok"]) u[k] += r[k];
        u.errors.push(...r.errors);
      }
    } else {
      const r = await runUnit(E, p, sc, agents[p], { small, n });
      Object.assign(u, { requests: r.requests, events: r.events, ok: r.ok, errors: r.errors });
    }
    u.tDone = wall();
    await sleep(settleMs);
    u.t1 = wall();
    await sleep(100);
    if (st0) {
      const st1 = await statsB();
      u.doCalls = st1.do.calls - st0.do.calls;
      u.doByMethod = Object.fromEntries(Object.entries(st1.do.byMethod).map(([k, v]) => [k, v - (st0.do.byMethod[k] ?? 0)]).filter(([, v]) => v > 0));
      u.kv = Object.fromEntries(Object.entries(st1.kv).map(([k, v]) => [k, v - st0.kv[k]]));
      u.upstreamFetches = st1.upstreamFetches - st0.upstreamFetches;
    }
    if (u.ok !== u.requests) log(`  ${p} ${sc.id}: ${u.requests - u.ok} of ${u.requests} failed: ${u.errors.join(" | ")}`);
    units.push(u);
    return u;
  };

  const want = (id) => !O.only || O.only.includes(id);
  const tinySc = { id: "cold", kind: "json", bytes: TINY, n: 1 };
  if (want("cold")) {
    log("first request of isolate B (subpool's Worker, never used before): one tiny request");
    await measure("subpool", tinySc, 0, { n: 1, kind: "cold" });
  }
  log("warm-up: every traffic shape on both paths, small");
  for (const sc of SCENARIOS) for (const p of ["null", "subpool"]) await runUnit(E, p, sc, agents[p], { small: true });
  await sleep(O.settleMs);

  for (let round = 1; round <= O.rounds; round++) {
    const order = round % 2 ? ["null", "subpool"] : ["subpool", "null"];
    for (const sc of SCENARIOS) {
      for (const p of order) {
        const u = await measure(p, sc, round);
        log(`  round ${round} ${sc.id.padEnd(18)} ${p.padEnd(7)} ${u.ok}/${u.requests} ok${u.events ? `, ${u.events} events` : ""}${u.doCalls !== undefined ? `, DO calls ${u.doCalls}, KV ${JSON.stringify(u.kv)}` : ""}`);
      }
    }
  }
  if (want("pace")) {
    for (const { gap, n } of O.pace) {
      log(`pace: ${n} tiny requests ${gap} ms apart via subpool`);
      const u = await measure("subpool", { id: `pace-${gap}`, kind: "json", bytes: TINY, n: 1 }, 0, { kind: "pace", between: { gap, n } });
      u.gapMs = gap;
      log(`  DO calls ${u.doCalls} (${JSON.stringify(u.doByMethod)}) for ${u.requests} requests over ${((u.t1 - u.t0) / 1000).toFixed(1)} s`);
    }
  }

  if (want("dashboard") && O.dashboard > 0) {
    log(`dashboard: ${O.dashboard} refreshes of the Accounts view 10 s apart (the list, then the usage of each of ${E.subpool.api.accounts.length} accounts)`);
    const u = await measure("subpool", { id: "dashboard", kind: "dashboard" }, 0, { kind: "dashboard", between: { gap: 10_000, n: O.dashboard } });
    log(`  DO calls ${u.doCalls} (${JSON.stringify(u.doByMethod)}) for ${u.requests} requests (${O.dashboard} refreshes), KV ${JSON.stringify(u.kv)}`);
  }

  // ---- profiles --------------------------------------------------------------------------------------
  const profiles = [];
  if (O.profile) {
    log(`profiles: one per traffic shape and path (${O.profileReps} repetitions each, sampling every ${O.interval} us)`);
    const sess = {
      worker: await profilerSession(inspectorPort, "subpool-b", O.interval),
      do: await profilerSession(inspectorPort, "subpool", O.interval),
      null: await profilerSession(nullInspectorPort, "null", O.interval),
    };
    for (const sc of SCENARIOS) {
      for (const p of ["null", "subpool"]) {
        const ss = p === "null" ? { null: sess.null } : { worker: sess.worker, do: sess.do };
        for (const s of Object.values(ss)) await s.send("Profiler.start");
        const t0 = wall();
        const reps = [];
        for (let i = 0; i < O.profileReps; i++) reps.push(await measure(p, sc, i + 1, { kind: "profile" }));
        const got = {};
        for (const [k, s] of Object.entries(ss)) got[k] = (await s.send("Profiler.stop")).profile;
        profiles.push({ path: p, scenario: sc.id, t0, t1: wall(), reps, profiles: got });
      }
    }
    for (const s of Object.values(sess)) s.close();
  }
  for (const a of Object.values(agents)) a.destroy();
  await stopAll(); // workerd writes the end of its trace when it stops
  if (O.keepTraces && O.trace) {
    fs.mkdirSync(O.keepTraces, { recursive: true });
    for (const f of Object.values(traces)) fs.copyFileSync(f, path.join(O.keepTraces, path.basename(f)));
  }

  // ---- attribution -------------------------------------------------------------------------------------
  const empty = { epochMs: 0, ctxs: new Map(), turns: [] };
  const T = O.trace ? { subpool: await readAsyncTrace(traces.subpool), null: await readAsyncTrace(traces.null) } : { subpool: empty, null: empty };
  for (const u of units) Object.assign(u, attribute(u, T[u.path], u.path === "subpool" ? "subpool-b" : "null"));
  const bad = units.filter((u) => u.contexts !== u.requests);
  if (bad.length && O.trace) log(`note: ${bad.length} measurement(s) whose request contexts in the trace (${bad.map((u) => u.contexts).join(",")}) differ from the requests sent (${bad.map((u) => u.requests).join(",")})`);

  const moduleOf = bundleModules(path.join(work, "dist-subpool", "index.js"));
  const report = { options: O, commit, when: new Date().toISOString(), scenarios: [], cold: null, pace: [], profiles: [] };
  const fmt = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : "n/a");
  const cell = (v, d, scale = 1) => {
    const m = median(v) * scale;
    const [lo, hi] = range(v).map((x) => x * scale);
    return v.length > 1 ? `${fmt(m, d)} (${fmt(lo, d)}–${fmt(hi, d)})` : fmt(m, d);
  };

  const rows = [];
  for (const sc of SCENARIOS) {
    const m = (p) => units.filter((u) => u.kind === "measured" && u.scenario === sc.id && u.path === p);
    const sp = m("subpool");
    const nl = m("null");
    const perReq = (u) => u.workerMs / u.requests;
    const row = {
      id: sc.id,
      what: sc.what,
      requests: sp[0]?.requests,
      events: sp[0]?.events,
      subpoolMsPerRequest: sp.map(perReq),
      subpoolMaxInvocationMs: sp.map((u) => u.maxInvocationMs),
      subpoolUsPerEvent: sc.kind === "json" ? [] : sp.map((u) => (1000 * u.workerMs) / u.events),
      nullMsPerRequest: nl.map(perReq),
      nullUsPerEvent: sc.kind === "json" ? [] : nl.map((u) => (1000 * u.workerMs) / u.events),
      turnsPerRequest: sp.map((u) => u.turns / u.requests),
      maxTurnMs: sp.map((u) => u.maxTurnMs),
      doMsPerRequest: sp.map((u) => u.doMs / u.requests),
      doCallsPerRequest: sp.map((u) => u.doCalls / u.requests),
      kvOpsPerRequest: sp.map((u) => (u.kv.get + u.kv.put + u.kv.delete + u.kv.list) / u.requests),
      strayMs: sp.map((u) => u.strayMs),
      allOk: [...sp, ...nl].every((u) => u.ok === u.requests),
    };
    rows.push(row);
  }
  report.scenarios = rows;
  const cold = units.find((u) => u.kind === "cold");
  if (cold) report.cold = { ms: cold.workerMs, turns: cold.turns, maxTurnMs: cold.maxTurnMs, doCalls: cold.doCalls, kv: cold.kv, ok: cold.ok === cold.requests };
  report.pace = units
    .filter((u) => u.kind === "pace")
    .map((u) => ({ gapMs: u.gapMs, requests: u.requests, seconds: (u.t1 - u.t0) / 1000, msPerRequest: u.workerMs / u.requests, maxInvocationMs: u.maxInvocationMs, doCalls: u.doCalls, doByMethod: u.doByMethod, doCallsPerRequest: u.doCalls / u.requests, doMsPerRequest: u.doMs / u.requests, kv: u.kv }));

  log(`\nIsolate time per request (workerd --async-trace: the request's turns, lock taken to lock released; medians over ${O.rounds} round(s), range in brackets)\n`);
  log("| traffic | subpool Worker, ms per request | worst single request, ms | µs per event | null Worker, ms per request | null µs per event | turns per request | DO calls per request | DO isolate, ms per request | KV ops per request |");
  log("|---|---|---|---|---|---|---|---|---|---|");
  for (const r of rows) {
    log(`| ${r.what} | ${cell(r.subpoolMsPerRequest, 3)} | ${cell(r.subpoolMaxInvocationMs, 2)} | ${r.subpoolUsPerEvent.length ? cell(r.subpoolUsPerEvent, 2) : "–"} | ${cell(r.nullMsPerRequest, 3)} | ${r.nullUsPerEvent.length ? cell(r.nullUsPerEvent, 2) : "–"} | ${cell(r.turnsPerRequest, 1)} | ${cell(r.doCallsPerRequest, 2)} | ${cell(r.doMsPerRequest, 3)} | ${cell(r.kvOpsPerRequest, 2)} |${r.allOk ? "" : " (some failed)"}`);
  }
  if (report.cold) log(`\nfirst request of a fresh isolate (tiny): ${fmt(report.cold.ms, 2)} ms in ${report.cold.turns} turns (longest ${fmt(report.cold.maxTurnMs, 2)} ms); DO calls ${report.cold.doCalls}, KV ${JSON.stringify(report.cold.kv)}`);
  const dash = units.find((u) => u.kind === "dashboard");
  if (dash) {
    report.dashboard = { refreshes: O.dashboard, requests: dash.requests, doCalls: dash.doCalls, doByMethod: dash.doByMethod, kv: dash.kv, workerMsPerRequest: dash.workerMs / dash.requests, maxInvocationMs: dash.maxInvocationMs, ok: dash.ok === dash.requests };
    log(`dashboard: ${O.dashboard} refreshes 10 s apart = ${dash.requests} requests: DO calls ${dash.doCalls} (${JSON.stringify(dash.doByMethod)}), KV ${JSON.stringify(dash.kv)}; ${fmt(report.dashboard.workerMsPerRequest, 3)} ms per request (worst ${fmt(dash.maxInvocationMs, 2)})`);
  }
  for (const p of report.pace) log(`pace ${p.gapMs} ms: ${p.requests} tiny requests in ${p.seconds.toFixed(1)} s: ${fmt(p.msPerRequest, 3)} ms per request (worst ${fmt(p.maxInvocationMs, 2)}), DO calls ${p.doCalls} = ${fmt(p.doCallsPerRequest, 2)} per request (${JSON.stringify(p.doByMethod)}), DO isolate ${fmt(p.doMsPerRequest, 3)} ms per request, KV ${JSON.stringify(p.kv)}`);
  const stray = units.filter((u) => u.kind !== "profile").reduce((a, u) => a + u.strayMs, 0);
  const delays = units.map((u) => u.firstCtxDelayMs).filter(Number.isFinite);
  log(`\nchecks: turns of other requests inside the windows ${fmt(stray, 3)} ms in all; first request context ${fmt(Math.min(...delays), 1)}–${fmt(Math.max(...delays), 1)} ms after each window opened (clock alignment)`);

  // ---- profiles: cross-check and top functions ----------------------------------------------------------
  // One sampling period per process (the null Worker's profiles have few samples each).
  const periodOf = {
    subpool: samplingPeriodUs(profiles.filter((p) => p.path === "subpool").flatMap((p) => Object.values(p.profiles)), O.interval),
    null: samplingPeriodUs(profiles.filter((p) => p.path === "null").flatMap((p) => Object.values(p.profiles)), O.interval),
  };
  report.samplingPeriodUs = periodOf;
  for (const pr of profiles) {
    const out = { path: pr.path, scenario: pr.scenario, isolates: {} };
    for (const [k, prof] of Object.entries(pr.profiles)) {
      const a = analyseProfile(prof, k === "null" ? () => "" : moduleOf, periodOf[pr.path]);
      const reqs = pr.reps.reduce((s, u) => s + u.requests, 0);
      const traced = k === "do" ? pr.reps.reduce((s, u) => s + u.doMs, 0) : pr.reps.reduce((s, u) => s + u.workerMs, 0);
      out.isolates[k] = {
        samples: a.samples,
        periodUs: a.periodUs,
        kindsMs: a.kinds,
        busyMsPerRequest: a.busyMs / reqs,
        lockedMsPerRequest: a.lockedMs / reqs,
        programMsPerRequest: a.kinds.program / reqs,
        tracedMsPerRequest: traced / reqs,
        top: [...a.self].sort((x, y) => y[1] - x[1]).slice(0, O.top).map(([f, ms]) => ({ f, msPerRequest: ms / reqs, share: ms / a.lockedMs })),
      };
    }
    report.profiles.push(out);
  }
  for (const pr of report.profiles) {
    for (const [k, v] of Object.entries(pr.isolates)) {
      const label = k === "worker" ? "subpool Worker" : k === "do" ? "subpool's Durable Object" : "null Worker";
      log(`\n${pr.scenario} — ${label}: ${v.samples} samples (period ${v.periodUs} us); per request: sampled ${fmt(v.lockedMsPerRequest, 3)} ms (JS+native+GC ${fmt(v.busyMsPerRequest, 3)}, "(program)" ${fmt(v.programMsPerRequest, 3)}), traced ${fmt(v.tracedMsPerRequest, 3)} ms`);
      log(`  kinds (ms in all): ${Object.entries(v.kindsMs).map(([kk, ms]) => `${kk} ${ms.toFixed(2)}`).join(", ")}`);
      for (const t of v.top) log(`  ${fmt(t.msPerRequest * 1000, 1).padStart(8)} us/req ${(100 * t.share).toFixed(1).padStart(5)} %  ${t.f}`);
    }
  }
  if (O.json) fs.writeFileSync(O.json, JSON.stringify({ ...report, units: units.map(({ errors, ...u }) => u) }, null, 1));
}

main()
  .catch((e) => {
    console.error(`isolate-cpu failed: ${e.stack ?? e}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await stopAll();
    fs.rmSync(work, { recursive: true, force: true });
  });
