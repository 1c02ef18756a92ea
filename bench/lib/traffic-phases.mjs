/**
 * The phases for real coding-tool traffic (DESIGN.md section 11), run by run.mjs after the others:
 *
 *   long    for each API shape (Anthropic Messages, OpenAI Chat Completions, OpenAI Responses) one
 *           stream of `events` events written `gapMs` apart, one event per chunk, through the null
 *           Worker and each gateway path, in paired rounds (order alternating per round): serving
 *           process CPU per answer and per event, the gateway's excess over the null Worker per round
 *           (mean ± standard error), each event's delay to the client, every event counted
 *   bigreq  Claude-Code-shaped request bodies (a tiny one, then `bigSizes`), `bigN` sequential
 *           requests per measurement, answered with the fake's small JSON: CPU per request over the
 *           null Worker, and what the big body adds beyond the tiny one. With `bigSettleMs`, a pause
 *           after each measurement: a member's outcome flush (about a second after its requests,
 *           src/pool/snapshots.ts) then falls in the pause, not in the next path's measurement (with
 *           several gateway paths, e.g. --limits, the flushes of the others otherwise land in a
 *           path's measurement by the rounds' rhythm)
 *   turn    a coding turn: the `turnBytes` request with "stream": true, answered by `turnEvents`
 *           Anthropic events written `gapMs` apart
 *
 * CPU is the serving process's (lib/procs.mjs cpuReading: its threads' schedstat, ns resolution),
 * read before and after each measured request sequence. Each phase also checks that the usage subpool
 * recorded for the traffic user's accounts (GET /api/accounts/:id/usage) grew by what the answers
 * stated (polled for a few seconds: the gateway reports usage after the answer).
 */
import { agent, sleep, summarize, timed } from "./measure.mjs";
import { cpuDeltaMs, cpuReading } from "./procs.mjs";
import { PATH_OF, PROVIDER_OF, SHAPES, baseHeadersOf, claudeCodeRequest, clockOffset, recordedTotals, statedUsage, streamBody, streamRequest } from "./traffic.mjs";

export const TINY_BYTES = 200;

/** mean ± standard error of paired differences (or any values); se is NaN for fewer than 2. */
export function meanSe(values) {
  const v = values.filter(Number.isFinite);
  const n = v.length;
  if (n === 0) return { mean: NaN, se: NaN, n: 0 };
  const mean = v.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, se: NaN, n };
  const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  return { mean, se: sd / Math.sqrt(n), n };
}

const mean = (v) => meanSe(v).mean;
const lite = (s) => ({ n: s.n, p50: s.p50, p90: s.p90, p99: s.p99, max: s.max, mean: s.mean });

/** The URL of a shape's API on a path (subpool: its provider prefix; the null Worker: the fake's path). */
function urlOf(T, shape) {
  return T.url[PROVIDER_OF[shape]] + PATH_OF[shape];
}

function headersOf(T, shape, extra = {}) {
  return { ...baseHeadersOf(shape), ...T.auth[PROVIDER_OF[shape]], ...extra };
}

/**
 * What subpool should have recorded for the traffic user: per gateway path and provider account,
 * answers (200) and the tokens they stated. check() polls GET /api/accounts/:id/usage until the
 * recorded growth matches, or a few seconds pass.
 */
class Ledger {
  constructor(S, gateways) {
    this.S = S;
    this.gateways = gateways;
    this.expected = {};
    this.before = {};
  }
  async start() {
    for (const p of this.gateways) {
      const T = this.S.traffic[p];
      this.before[p] = {};
      this.expected[p] = {};
      for (const [prov, id] of Object.entries(T.accounts)) {
        this.before[p][prov] = await totalsOf(T, id);
        this.expected[p][prov] = { requests: 0, input: 0, output: 0 };
      }
    }
  }
  add(p, provider, status, usage) {
    const e = this.expected[p]?.[provider];
    if (!e || status !== 200) return;
    e.requests++;
    if (usage) {
      e.input += usage.input;
      e.output += usage.output;
    }
  }
  async check(timeoutMs = 8000) {
    const out = {};
    for (const p of this.gateways) {
      const T = this.S.traffic[p];
      out[p] = {};
      for (const [prov, id] of Object.entries(T.accounts)) {
        const exp = this.expected[p][prov];
        if (exp.requests === 0) continue;
        const b = this.before[p][prov];
        let got = null;
        const until = Date.now() + timeoutMs;
        for (;;) {
          const now = await totalsOf(T, id);
          got = now && b ? { requests: now.requests - b.requests, input: now.input - b.input, output: now.output - b.output } : null;
          const same = got && got.requests === exp.requests && got.input === exp.input && got.output === exp.output;
          if (same || Date.now() > until) break;
          await sleep(400);
        }
        out[p][prov] = { expected: exp, recorded: got, ok: !!got && got.requests === exp.requests && got.input === exp.input && got.output === exp.output };
      }
    }
    return out;
  }
}

async function totalsOf(T, id) {
  try {
    return recordedTotals((await T.usageOf(id)).days);
  } catch {
    return null;
  }
}

function usageOfJson(text) {
  try {
    const u = JSON.parse(text).usage;
    return u ? { input: (u.input_tokens ?? 0) + (u.cache_read_input_tokens ?? 0) + (u.cache_creation_input_tokens ?? 0), output: u.output_tokens ?? 0 } : null;
  } catch {
    return null;
  }
}

/** Paths of the traffic phases: the null Worker first, then subpool and its variants, as asked for. */
export function trafficPaths(S, paths) {
  const gateways = paths.filter((p) => (p === "subpool" || p.startsWith("subpool:")) && S.traffic[p]);
  return { all: S.traffic.null ? ["null", ...gateways] : gateways, gateways };
}

/** One measured stream on path p: its CPU, events, delays, the usage it stated. */
async function measuredStream(S, p, shape, { events, gapMs, body, headers = {}, agents, offsetMs }) {
  const T = S.traffic[p];
  const h = headersOf(T, shape, { ...headers, "x-bench-events": String(events), "x-bench-gap-ms": String(gapMs) });
  const c0 = cpuReading(T.pid);
  const r = await streamRequest(urlOf(T, shape), { headers: h, body, agent: agents[p], offsetMs });
  const cpuMs = cpuDeltaMs(c0, cpuReading(T.pid));
  const usage = statedUsage(PROVIDER_OF[shape], r.usageEvents);
  return { status: r.status, events: r.events, timedEvents: r.timedEvents, cpuMs, cpuUsPerEvent: (cpuMs * 1000) / events, wallMs: r.tEnd, delays: r.delays, usage, error: r.text };
}

/** Per-path summary and gateway-minus-null pairs of a stream phase's runs. */
function summarizeStreams(runs, all, gateways, expectedEvents) {
  const byPath = {};
  for (const p of all) {
    const rs = runs.filter((r) => r.path === p);
    const delays = rs.flatMap((r) => r.delays);
    byPath[p] = {
      statuses: rs.map((r) => r.status),
      complete: rs.length > 0 && rs.every((r) => r.status === 200 && r.events === expectedEvents),
      events: rs.map((r) => r.events),
      cpuMsPerAnswer: mean(rs.map((r) => r.cpuMs)),
      cpuUsPerEvent: mean(rs.map((r) => r.cpuUsPerEvent)),
      wallMsPerAnswer: mean(rs.map((r) => r.wallMs)),
      delayMs: delays.length ? lite(summarize(delays)) : null,
      errors: rs.filter((r) => r.status !== 200).map((r) => `${r.status} ${String(r.error ?? "").slice(0, 200)}`).slice(0, 3),
    };
  }
  const added = {};
  if (all.includes("null")) {
    for (const g of gateways) {
      const rounds = [...new Set(runs.map((r) => r.round))];
      const pairs = rounds
        .map((k) => [runs.find((r) => r.round === k && r.path === g), runs.find((r) => r.round === k && r.path === "null")])
        .filter(([a, b]) => a && b && a.status === 200 && b.status === 200);
      added[g] = {
        perEventUs: meanSe(pairs.map(([a, b]) => a.cpuUsPerEvent - b.cpuUsPerEvent)),
        perAnswerMs: meanSe(pairs.map(([a, b]) => a.cpuMs - b.cpuMs)),
      };
    }
  }
  return { paths: byPath, added };
}

// ---- long --------------------------------------------------------------------------------------------
export async function longPhase(S, paths, O, log) {
  const { all, gateways } = trafficPaths(S, paths);
  const { offset: offsetMs, rtt } = await clockOffset(S.FAKE);
  log(`long streams: ${O.events} events ${O.gapMs} ms apart, shapes ${SHAPES.join(", ")}, paths ${all.join(", ")}, ${O.rounds} paired round(s) (clock offset to the fake ${offsetMs.toFixed(3)} ms, round trip ${rtt.toFixed(3)} ms)`);
  const agents = Object.fromEntries(all.map((p) => [p, agent()]));
  const ledger = new Ledger(S, gateways);
  await ledger.start();
  const runs = Object.fromEntries(SHAPES.map((s) => [s, []]));
  try {
    // Warm-up: a short stream per shape and path (the isolates' code paths compiled, connections open).
    for (const shape of SHAPES) {
      for (const p of all) {
        const r = await measuredStream(S, p, shape, { events: 100, gapMs: 0, body: streamBody(shape), agents, offsetMs });
        if (p !== "null") ledger.add(p, PROVIDER_OF[shape], r.status, r.usage);
        if (r.status !== 200) log(`  warm-up ${shape} via ${p}: HTTP ${r.status} ${String(r.error ?? "").slice(0, 200)}`);
      }
    }
    for (let round = 1; round <= O.rounds; round++) {
      const order = round % 2 === 1 ? all : [...all].reverse();
      for (const shape of SHAPES) {
        const line = [];
        for (const p of order) {
          const r = await measuredStream(S, p, shape, { events: O.events, gapMs: O.gapMs, body: streamBody(shape), agents, offsetMs });
          if (p !== "null") ledger.add(p, PROVIDER_OF[shape], r.status, r.usage);
          runs[shape].push({ round, path: p, ...r });
          const d = r.delays.length ? summarize(r.delays) : null;
          line.push(`${p} ${r.status} ${r.events}/${O.events} ev, ${r.cpuMs.toFixed(1)} ms CPU = ${r.cpuUsPerEvent.toFixed(1)} us/ev, delay p50 ${d ? d.p50.toFixed(2) : "n/a"} p99 ${d ? d.p99.toFixed(2) : "n/a"} ms`);
        }
        log(`  round ${round} ${shape.padEnd(9)} ${line.join(" | ")}`);
      }
    }
  } finally {
    for (const a of Object.values(agents)) a.destroy();
  }
  const shapes = {};
  for (const shape of SHAPES) shapes[shape] = { ...summarizeStreams(runs[shape], all, gateways, O.events), runs: runs[shape].map(({ delays, error, ...r }) => r) };
  return { events: O.events, gapMs: O.gapMs, rounds: O.rounds, clockOffsetMs: offsetMs, clockRttMs: rtt, paths: all, gateways, shapes, usage: await ledger.check() };
}

// ---- bigreq ------------------------------------------------------------------------------------------
export async function bigreqPhase(S, paths, O, log) {
  const { all, gateways } = trafficPaths(S, paths);
  const sizes = [TINY_BYTES, ...O.bigSizes];
  const reqs = sizes.map((b) => claudeCodeRequest(b, { stream: false }));
  log(`big requests: Claude-Code-shaped bodies of ${reqs.map((r) => r.body.length).join(", ")} bytes, ${O.bigN} sequential requests per measurement, paths ${all.join(", ")}, ${O.rounds} paired round(s)`);
  const agents = Object.fromEntries(all.map((p) => [p, agent()]));
  const ledger = new Ledger(S, gateways);
  await ledger.start();
  const runs = [];
  const send = async (p, req) => {
    const T = S.traffic[p];
    const r = await timed(urlOf(T, "anthropic"), { headers: { ...req.headers, ...T.auth.anthropic }, body: req.body, agent: agents[p], keepBody: true });
    if (p !== "null") ledger.add(p, "anthropic", r.status, usageOfJson(r.text));
    return r;
  };
  try {
    for (const req of reqs) for (const p of all) for (let i = 0; i < 5; i++) await send(p, req);
    for (let round = 1; round <= O.rounds; round++) {
      const order = round % 2 === 1 ? all : [...all].reverse();
      for (let s = 0; s < sizes.length; s++) {
        const line = [];
        for (const p of order) {
          const statuses = {};
          const c0 = cpuReading(S.traffic[p].pid);
          for (let i = 0; i < O.bigN; i++) {
            const r = await send(p, reqs[s]);
            statuses[r.status] = (statuses[r.status] ?? 0) + 1;
          }
          const cpuMs = cpuDeltaMs(c0, cpuReading(S.traffic[p].pid));
          runs.push({ round, size: sizes[s], bytes: reqs[s].body.length, path: p, requests: O.bigN, statuses, ok: statuses[200] === O.bigN, cpuUsPerReq: (cpuMs * 1000) / O.bigN });
          if (O.bigSettleMs) await sleep(O.bigSettleMs);
          line.push(`${p} ${(cpuMs * 1000 / O.bigN).toFixed(0)} us/req${statuses[200] === O.bigN ? "" : ` statuses ${JSON.stringify(statuses)}`}`);
        }
        log(`  round ${round} ${String(reqs[s].body.length).padStart(8)} B  ${line.join(" | ")}`);
      }
    }
  } finally {
    for (const a of Object.values(agents)) a.destroy();
  }
  const at = (round, size, p) => runs.find((r) => r.round === round && r.size === size && r.path === p);
  const rounds = [...new Set(runs.map((r) => r.round))];
  const bySize = sizes.map((size, s) => {
    const pathsOut = {};
    for (const p of all) {
      const rs = runs.filter((r) => r.size === size && r.path === p);
      pathsOut[p] = { cpuUsPerReq: mean(rs.map((r) => r.cpuUsPerReq)), ok: rs.length > 0 && rs.every((r) => r.ok), statuses: rs.map((r) => r.statuses) };
    }
    // What the body itself costs the null Worker: this size minus the tiny request, per round.
    const nullOverTiny = all.includes("null") ? meanSe(rounds.map((k) => at(k, size, "null")?.cpuUsPerReq - at(k, TINY_BYTES, "null")?.cpuUsPerReq)) : null;
    const added = {};
    const beyondTiny = {};
    for (const g of gateways) {
      if (!all.includes("null")) continue;
      const add = (k, sz) => at(k, sz, g)?.cpuUsPerReq - at(k, sz, "null")?.cpuUsPerReq;
      added[g] = meanSe(rounds.map((k) => add(k, size)));
      beyondTiny[g] = meanSe(rounds.map((k) => add(k, size) - add(k, TINY_BYTES)));
    }
    // Another gateway path (a variant, a member with limits) minus subpool, round by round.
    const overSubpool = {};
    for (const g of gateways.filter((x) => x !== "subpool" && gateways.includes("subpool"))) overSubpool[g] = meanSe(rounds.map((k) => at(k, size, g)?.cpuUsPerReq - at(k, size, "subpool")?.cpuUsPerReq));
    return { size, bytes: reqs[s].body.length, tiny: size === TINY_BYTES, paths: pathsOut, nullOverTinyUs: nullOverTiny, addedUs: added, addedBeyondTinyUs: beyondTiny, overSubpoolUs: overSubpool };
  });
  return { sizes: bySize, requestsPerMeasurement: O.bigN, settleMs: O.bigSettleMs ?? 0, rounds: O.rounds, paths: all, gateways, runs, usage: await ledger.check() };
}

// ---- turn --------------------------------------------------------------------------------------------
export async function turnPhase(S, paths, O, log) {
  const { all, gateways } = trafficPaths(S, paths);
  const req = claudeCodeRequest(O.turnBytes, { stream: true });
  const { offset: offsetMs } = await clockOffset(S.FAKE);
  log(`coding turns: a ${req.body.length}-byte Claude-Code-shaped request with "stream": true, answered by ${O.turnEvents} Anthropic events ${O.gapMs} ms apart; paths ${all.join(", ")}, ${O.rounds} paired round(s)`);
  const agents = Object.fromEntries(all.map((p) => [p, agent()]));
  const ledger = new Ledger(S, gateways);
  await ledger.start();
  const runs = [];
  const one = async (p, events, gapMs) => {
    const r = await measuredStream(S, p, "anthropic", { events, gapMs, body: req.body, headers: req.headers, agents, offsetMs });
    if (p !== "null") ledger.add(p, "anthropic", r.status, r.usage);
    return r;
  };
  try {
    for (const p of all) await one(p, 50, 0);
    for (let round = 1; round <= O.rounds; round++) {
      const order = round % 2 === 1 ? all : [...all].reverse();
      const line = [];
      for (const p of order) {
        const r = await one(p, O.turnEvents, O.gapMs);
        runs.push({ round, path: p, ...r });
        line.push(`${p} ${r.status} ${r.events}/${O.turnEvents} ev, ${r.cpuMs.toFixed(1)} ms CPU`);
      }
      log(`  round ${round} ${line.join(" | ")}`);
    }
  } finally {
    for (const a of Object.values(agents)) a.destroy();
  }
  return { events: O.turnEvents, bytes: req.body.length, gapMs: O.gapMs, rounds: O.rounds, paths: all, gateways, ...summarizeStreams(runs, all, gateways, O.turnEvents), runs: runs.map(({ delays, error, ...r }) => r), usage: await ledger.check() };
}
