/**
 * Turns one run's figures into the tables (console and BENCHMARKS.md) and checks the targets.
 */
import { summarize } from "./measure.mjs";

const LABEL = {
  direct: "direct to the fake provider",
  null: "null Worker (workerd)",
  floor: "floor Worker (workerd)",
  subpool: "subpool (workerd)",
  portkey: "Portkey gateway (Node)",
  "subpool:limits": 'subpool, member with limits (models ["*"])',
  "subpool:limits-no-models": "subpool, member with limits, no model list",
};
const label = (p) => LABEL[p] ?? (p.startsWith("subpool:") ? `${p} (workerd)` : p);
/** The gateways compared with the null Worker in the ratios table: subpool, its variants, the floor. */
const compared = (p) => p === "subpool" || p.startsWith("subpool:") || p === "floor";

const f = (v, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : "n/a");
const ms = (v) => (Number.isFinite(v) ? (v < 10 ? v.toFixed(3) : v.toFixed(1)) : "n/a");
/** A difference as printed: "+0.120", "-0.030". */
const plus = (s) => (s.startsWith("-") ? s : `+${s}`);
const int = (v) => (Number.isFinite(v) ? Math.round(v).toLocaleString("en-US") : "n/a");

/** Per (path, concurrency): rounds merged (requests / seconds; every response time). */
export function aggregate(report) {
  const out = new Map();
  for (const m of report.matrix) {
    const k = `${m.path}|${m.conc}`;
    let a = out.get(k);
    if (!a) out.set(k, (a = { path: m.path, conc: m.conc, ok: 0, seconds: 0, non2xx: 0, errors: 0, rounds: [], samples: [], foreign: [], cpuUs: [], cpuW: 0 }));
    a.foreign.push(m.foreignCpuPct);
    if (m.cpuUsPerReq && Number.isFinite(m.cpuUsPerReq.serving)) {
      a.cpuUs.push(m.cpuUsPerReq.serving * (m.ok + m.non2xx));
      a.cpuW += m.ok + m.non2xx;
    }
    a.ok += m.ok;
    a.seconds += m.seconds;
    a.non2xx += m.non2xx;
    a.errors += m.errors;
    a.rounds.push(m.rps);
    if (m.samples) for (const s of m.samples) a.samples.push(s);
    else a.lat = m.lat;
  }
  for (const a of out.values()) {
    a.rps = a.ok / a.seconds;
    a.msPerReq = (1000 * a.conc) / a.rps; // at c=1: the mean time per request
    a.cpuUsPerReq = a.cpuW ? a.cpuUs.reduce((x, y) => x + y, 0) / a.cpuW : NaN;
    if (a.samples.length) a.lat = summarize(a.samples);
    delete a.samples;
  }
  return out;
}

export function evaluateTargets(report) {
  const agg = aggregate(report);
  const get = (p, c) => agg.get(`${p}|${c}`);
  const t = [];
  const add = (name, ok, measured, target) => t.push({ name, ok, measured, target });

  const s1 = get("subpool", 1);
  const n1 = get("null", 1);
  const d1 = get("direct", 1);
  const k1 = get("portkey", 1);
  const s16 = get("subpool", 16);
  const n16 = get("null", 16);
  const k16 = get("portkey", 16);
  if (s1 && n1) {
    const added = s1.msPerReq - n1.msPerReq;
    add("c=1: time per request <= null Worker's + 0.25 ms", added <= 0.25, `subpool ${ms(s1.msPerReq)} ms, null ${ms(n1.msPerReq)} ms: +${ms(added)} ms (p50 +${ms(s1.lat.p50 - n1.lat.p50)} ms)`, "+0.250 ms");
  }
  if (s16 && n16) {
    const cpu = Number.isFinite(s16.cpuUsPerReq) && Number.isFinite(n16.cpuUsPerReq) ? `; workerd CPU ${f(s16.cpuUsPerReq, 0)} vs ${f(n16.cpuUsPerReq, 0)} us/request (+${f(s16.cpuUsPerReq - n16.cpuUsPerReq, 0)}; 0.8 x allows +${f(n16.cpuUsPerReq / 0.8 - n16.cpuUsPerReq, 0)})` : "";
    add("c=16: throughput >= 0.8 x null Worker's", s16.rps >= 0.8 * n16.rps, `${int(s16.rps)} vs ${int(n16.rps)} req/s = ${f(s16.rps / n16.rps)} x${cpu}`, ">= 0.80 x");
  }
  if (s16 && k16) {
    const bound = n16 ? `; the null Worker itself is ${f(n16.rps / k16.rps)} x Portkey` : "";
    add("c=16: throughput >= 3 x Portkey's", s16.rps >= 3 * k16.rps, `${int(s16.rps)} vs ${int(k16.rps)} req/s = ${f(s16.rps / k16.rps)} x${bound}`, ">= 3.00 x");
  }
  if (s1 && k1) add("c=1: p50 lower than Portkey's", s1.lat.p50 < k1.lat.p50, `${ms(s1.lat.p50)} vs ${ms(k1.lat.p50)} ms`, "lower");

  for (const [p, st] of [["subpool", report.storage], ...Object.entries(report.storageLimited ?? {})]) {
    if (!st || !(st.proxied > 0)) continue;
    const kv = st.kv.get + st.kv.put + st.kv.delete + st.kv.list;
    const perSecond = st.runs.map((r) => r.doPerSecond);
    const maxPerSecond = Math.max(...perSecond);
    add(
      `steady state: no KV or DO round trip per proxied request${p === "subpool" ? "" : ` (${label(p)})`}`,
      kv === 0 && maxPerSecond <= 2.2,
      `${int(st.proxied)} proxied: KV ${kv}; DO ${st.do.calls} = ${f(st.do.calls / st.proxied, 5)}/request, ${f(Math.min(...perSecond))}-${f(maxPerSecond)}/s per run whatever the load (the 1/s snapshot refresh and 1/s counter flush)`,
      "0 KV; DO calls per second bounded, not per request",
    );
  }
  if (report.cooldown) {
    const c = report.cooldown;
    const local = c.trials.every((x) => x.aRequestsToBenchedAfter === 0 && x.a2Account === "another");
    add("a cooldown is honoured by other requests within 1 s", local && c.maxMs <= 1000, `same isolate: ${local ? "at once" : "NOT at once"}; other isolate: after ${c.trials.map((x) => Math.round(x.honouredAfterMs)).join(", ")} ms (max ${Math.round(c.maxMs)})`, "<= 1000 ms");
  }
  if (report.sse?.subpool?.ttfb && report.sse?.null?.ttfb) {
    const d = report.sse.subpool.ttfb.p50 - report.sse.null.ttfb.p50;
    add("SSE time to first byte within 1 ms of the null Worker's", d <= 1, `p50 ${ms(report.sse.subpool.ttfb.p50)} vs ${ms(report.sse.null.ttfb.p50)} ms: +${ms(d)} ms`, "+1.000 ms");
  }
  if (report.memory?.subpool) {
    const m = report.memory.subpool;
    add("memory growth < 20 MB while 200 MB stream through", m.complete && m.growthMB < 20, `+${f(m.growthMB, 1)} MB (RSS of the workerd process)${m.complete ? "" : " — stream INCOMPLETE"}`, "< 20 MB");
  }
  if (report.memory?.["subpool (hostile SSE)"]) {
    const m = report.memory["subpool (hostile SSE)"];
    add("memory growth < 20 MB while a 200 MB event that never ends streams through", m.complete && m.growthMB < 20, `+${f(m.growthMB, 1)} MB (RSS of the workerd process)${m.complete ? "" : " — stream INCOMPLETE"}`, "< 20 MB");
  }
  if (report.failover) {
    const fo = report.failover;
    const added = fo.failover.p50 - fo.normal.p50;
    const rttWorker = fo.null.p50 - fo.local.p50;
    const budget = rttWorker + 1;
    add(
      "one failover costs one upstream round trip + at most 1 ms",
      added <= budget && fo.badAttempts === 0,
      `+${ms(added)} ms (p50 ${ms(fo.failover.p50)} vs ${ms(fo.normal.p50)} ms); one upstream round trip from a Worker: ${ms(rttWorker)} ms (direct from the client: ${ms(fo.direct.p50)} ms)`,
      `<= ${ms(budget)} ms`,
    );
  }
  trafficTargets(report, add);
  return t;
}

// ---- the real-traffic phases (lib/traffic-phases.mjs) -----------------------------------------------------
const SHAPE_LABEL = { anthropic: "Anthropic Messages", chat: "OpenAI Chat Completions", responses: "OpenAI Responses" };
/** "+12.3 ± 1.0 us (3 rounds)"; one round has no standard error. */
function pm(x, d = 1, unit = "us") {
  if (!x || !Number.isFinite(x.mean)) return "n/a";
  const v = `${x.mean >= 0 ? "+" : ""}${x.mean.toFixed(d)}`;
  return Number.isFinite(x.se) ? `${v} ± ${x.se.toFixed(d)} ${unit} (${x.n} rounds)` : `${v} ${unit} (${x.n} round)`;
}
const delays = (d) => (d ? `${ms(d.p50)} / ${ms(d.p99)} / ${ms(d.max)}` : "n/a");
const kb = (b) => (b >= 995_000 ? `${f(b / 1e6, 2)} MB` : b >= 1000 ? `${f(b / 1000, 0)} KB` : `${b} B`);

function trafficTargets(report, add) {
  const g = "subpool";
  const L = report.long;
  if (L?.shapes) {
    for (const [shape, r] of Object.entries(L.shapes)) {
      const a = r.added?.[g];
      if (!a) continue;
      add(`long stream (${SHAPE_LABEL[shape]}): added CPU per event <= 5 us`, a.perEventUs.mean <= 5, `${pm(a.perEventUs)} per event over null (null ${f(r.paths.null?.cpuUsPerEvent, 1)}, subpool ${f(r.paths[g]?.cpuUsPerEvent, 1)} us per event; ${L.events} events)`, "<= 5 us");
    }
    const per = Object.entries(L.shapes).filter(([, r]) => r.added?.[g]).map(([shape, r]) => [shape, (r.added[g].perAnswerMs.mean * 2000) / L.events]);
    if (per.length) {
      const how = L.events === 2000 ? "measured" : `extrapolated from ${L.events} events (x ${f(2000 / L.events, 2)})`;
      add("a 2,000-event answer: added CPU <= +10 ms", per.every(([, v]) => v <= 10), `${per.map(([shape, v]) => `${shape} ${plus(f(v, 2))} ms`).join(", ")} (${how})`, "<= +10 ms");
    }
    const rows = Object.entries(L.shapes).filter(([, r]) => r.paths[g] && r.paths.null);
    if (rows.length) {
      const ok = rows.every(([, r]) => r.paths[g].complete && r.paths[g].delayMs && r.paths.null.delayMs && r.paths[g].delayMs.p99 <= r.paths.null.delayMs.p99 + 2);
      add(
        "long streams: every event arrives, each at once (p99 delay within 2 ms of the null Worker's)",
        ok,
        rows.map(([shape, r]) => `${shape} ${r.paths[g].complete ? "complete" : "INCOMPLETE"}, p99 ${ms(r.paths[g].delayMs?.p99)} vs ${ms(r.paths.null.delayMs?.p99)} ms`).join("; "),
        "all events; p99 <= null's + 2 ms",
      );
    }
  }
  const B = report.bigreq;
  if (B?.sizes) {
    const tiny = B.sizes.find((s) => s.tiny);
    for (const s of B.sizes.filter((x) => !x.tiny)) {
      const b = s.addedBeyondTinyUs?.[g];
      if (!b) continue;
      add(
        `big request (${kb(s.bytes)}): added CPU <= the tiny request's + 20 us`,
        b.mean <= 20,
        `${pm(b, 0)} beyond the tiny one's (added over null: ${pm(s.addedUs[g], 0)} here, ${pm(tiny?.addedUs?.[g], 0)} for ${tiny?.bytes} B; the null Worker itself pays ${pm(s.nullOverTinyUs, 0)} for this body)`,
        "<= +20 us",
      );
    }
  }
  const usage = [["long", L], ["bigreq", B], ["turn", report.turn]].filter(([, x]) => x?.usage?.[g]);
  if (usage.length) {
    const checks = usage.flatMap(([name, x]) => Object.entries(x.usage[g]).map(([prov, u]) => [name, prov, u]));
    add("usage subpool recorded = what the answers stated", checks.length > 0 && checks.every(([, , u]) => u.ok), checks.map(([name, prov, u]) => `${name}/${prov} ${u.ok ? "equal" : `DIFFERENT (${JSON.stringify(u.recorded)} vs ${JSON.stringify(u.expected)})`}`).join(", "), "equal");
  }
}

function rowsLong(report) {
  const L = report.long;
  if (!L?.shapes) return null;
  const rows = [];
  for (const [shape, r] of Object.entries(L.shapes)) {
    for (const [p, x] of Object.entries(r.paths)) {
      const a = r.added?.[p];
      rows.push([
        SHAPE_LABEL[shape] ?? shape,
        label(p),
        `${x.complete ? "all" : "INCOMPLETE:"} ${x.events.join(" / ")}${x.errors.length ? ` (${x.errors.join("; ")})` : ""}`,
        f(x.cpuMsPerAnswer, 1),
        f(x.cpuUsPerEvent, 1),
        a ? pm(a.perEventUs) : "",
        a ? pm(a.perAnswerMs, 2, "ms") : "",
        delays(x.delayMs),
      ]);
    }
  }
  return { head: ["API shape", "path", "events per answer (each round)", "CPU ms per answer", "CPU us per event", "added per event over null (mean ± SE)", "added per answer over null", "event delay p50 / p99 / max ms"], rows };
}

function rowsBigreq(report) {
  const B = report.bigreq;
  if (!B?.sizes) return null;
  const rows = [];
  // With more than one gateway path (variants, --limits): each one's CPU minus subpool's, paired by round.
  const vs = B.sizes.some((s) => Object.keys(s.overSubpoolUs ?? {}).length > 0);
  for (const s of B.sizes) {
    for (const [p, x] of Object.entries(s.paths)) {
      const isNull = p === "null";
      rows.push([
        s.tiny ? `${s.bytes} B (tiny)` : `${kb(s.bytes)} (${s.bytes} B)`,
        label(p),
        f(x.cpuUsPerReq, 0),
        isNull ? "" : pm(s.addedUs[p], 0),
        s.tiny ? "" : isNull ? `${pm(s.nullOverTinyUs, 0)} (what the body costs the null Worker)` : pm(s.addedBeyondTinyUs[p], 0),
        ...(vs ? [s.overSubpoolUs?.[p] ? pm(s.overSubpoolUs[p], 0) : ""] : []),
        x.ok ? "all 200" : `NOT ALL: ${x.statuses.map((st) => JSON.stringify(st)).join(" ")}`,
      ]);
    }
  }
  return { head: ["request body", "path", "CPU us per request", "added over null (mean ± SE)", "added beyond the tiny request's (mean ± SE)", ...(vs ? ["over subpool's (mean ± SE)"] : []), "answers"], rows };
}

function rowsTurn(report) {
  const T = report.turn;
  if (!T?.paths) return null;
  const rows = [];
  for (const [p, x] of Object.entries(T.paths)) {
    const a = T.added?.[p];
    rows.push([label(p), `${x.complete ? "all" : "INCOMPLETE:"} ${x.events.join(" / ")}`, f(x.cpuMsPerAnswer, 2), a ? pm(a.perAnswerMs, 2, "ms") : "", a ? pm(a.perEventUs) : "", delays(x.delayMs)]);
  }
  return { head: ["path", "events per turn (each round)", "CPU ms per turn", "added per turn over null (mean ± SE)", "added per event", "event delay p50 / p99 / max ms"], rows };
}

function rowsUsage(report) {
  const rows = [];
  for (const [name, x] of [["long", report.long], ["bigreq", report.bigreq], ["turn", report.turn]]) {
    for (const [p, byProv] of Object.entries(x?.usage ?? {})) {
      for (const [prov, u] of Object.entries(byProv)) {
        const t = (v) => (v ? `${v.requests} answers, ${v.input} in / ${v.output} out` : "n/a");
        rows.push([name, label(p), prov, t(u.expected), t(u.recorded), u.ok ? "equal" : "DIFFERENT"]);
      }
    }
  }
  return rows.length ? { head: ["phase", "path", "account", "stated by the answers (200)", "recorded by subpool (GET /api/accounts/:id/usage)", ""], rows } : null;
}

function trafficConsole(report) {
  const out = [];
  const L = report.long;
  if (L) out.push(`Long streams: ${L.events} events ${L.gapMs} ms apart, one per chunk; serving process CPU, paired rounds (${L.rounds})`, textTable(rowsLong(report)), "");
  const B = report.bigreq;
  if (B) out.push(`Big requests: Claude-Code-shaped bodies, ${B.requestsPerMeasurement} sequential requests per measurement, small JSON answer; paired rounds (${B.rounds})`, textTable(rowsBigreq(report)), "");
  const T = report.turn;
  if (T) out.push(`Coding turn: a ${kb(T.bytes)} request with "stream": true answered by ${T.events} Anthropic events ${T.gapMs} ms apart; paired rounds (${T.rounds})`, textTable(rowsTurn(report)), "");
  const U = rowsUsage(report);
  if (U) out.push("Usage recorded by subpool for the traffic user's accounts, against what the answers stated", textTable(U), "");
  return out;
}

function trafficMarkdown(report) {
  const out = [];
  const L = report.long;
  if (L) {
    out.push(`### Long streams (${L.events} events ${L.gapMs} ms apart, one per chunk)
`);
    out.push(`The fake writes one event per chunk, ${L.gapMs} ms after the previous one; each event carries its write time, so "event delay" is when the client got it minus when the fake wrote it (clocks aligned over the least round trip). CPU: the serving workerd process's, per answer; "added" is subpool minus the null Worker, paired round by round (${L.rounds} round(s), the order alternating), mean ± standard error.
`);
    out.push(mdTable(rowsLong(report)), "");
  }
  const B = report.bigreq;
  if (B) {
    out.push(`### Big requests (Claude-Code-shaped bodies, small JSON answer)
`);
    out.push(`${B.requestsPerMeasurement} sequential requests per measurement, keep-alive; body keys in Claude Code's order, \`metadata.user_id\` a JSON string naming the session, \`x-claude-code-session-id\` the same uuid. "Beyond the tiny request's" is (added at this size) − (added for the tiny body), per round: what the body's size costs subpool beyond what it costs the null Worker.
`);
    out.push(mdTable(rowsBigreq(report)), "");
  }
  const T = report.turn;
  if (T) {
    out.push(`### A coding turn (a ${kb(T.bytes)} request with \`"stream": true\`, ${T.events} Anthropic events ${T.gapMs} ms apart)
`);
    out.push(mdTable(rowsTurn(report)), "");
  }
  const U = rowsUsage(report);
  if (U) out.push(`### Usage recorded for the traffic phases
`, mdTable(U), "");
  return out.join("\n");
}

function rowsMatrix(report) {
  const agg = aggregate(report);
  const rows = [];
  const concs = [...new Set(report.matrix.map((m) => m.conc))];
  const paths = [...new Set(report.matrix.map((m) => m.path))];
  for (const c of concs) {
    for (const p of paths) {
      const a = agg.get(`${p}|${c}`);
      if (!a) continue;
      rows.push([
        String(c),
        label(p),
        int(a.rps),
        a.rounds.map((r) => int(r)).join(" / "),
        ms(a.lat.p50),
        ms(a.lat.p99),
        ms(a.msPerReq / c),
        f(a.cpuUsPerReq, 0),
        a.non2xx || a.errors ? `${a.non2xx}/${a.errors}` : "0",
        a.foreign.map((x) => (Number.isFinite(x) ? x.toFixed(0) : "?")).join(" / "),
      ]);
    }
  }
  return { head: ["c", "path", "req/s", "req/s per round", "p50 ms", "p99 ms", "mean ms/req (c/rps)", "serving process CPU us/req", "non-2xx/errors", "other processes' CPU % per round"], rows };
}

function rowsRatios(report) {
  const agg = aggregate(report);
  const concs = [...new Set(report.matrix.map((m) => m.conc))];
  const paths = [...new Set(report.matrix.map((m) => m.path))].filter(compared);
  const rows = [];
  for (const c of concs) {
    for (const p of paths) {
      const s = agg.get(`${p}|${c}`);
      const n = agg.get(`null|${c}`);
      const d = agg.get(`direct|${c}`);
      const k = agg.get(`portkey|${c}`);
      if (!s) continue;
      rows.push([
        String(c),
        label(p),
        n ? `${f(s.msPerReq / n.msPerReq)} x (${plus(ms(s.msPerReq / c - n.msPerReq / c))} ms)` : "n/a",
        d ? `${f(s.msPerReq / d.msPerReq)} x (${plus(ms(s.msPerReq / c - d.msPerReq / c))} ms)` : "n/a",
        n ? `${f(s.rps / n.rps)} x` : "n/a",
        d ? `${f(s.rps / d.rps)} x` : "n/a",
        k ? `${f(s.rps / k.rps)} x` : "n/a",
        n ? `${ms(s.lat.p50 - n.lat.p50)} / ${ms(s.lat.p99 - n.lat.p99)}` : "n/a",
        n && Number.isFinite(s.cpuUsPerReq) ? `${f(s.cpuUsPerReq / n.cpuUsPerReq)} x (${plus(f(s.cpuUsPerReq - n.cpuUsPerReq, 0))} us)` : "n/a",
      ]);
    }
  }
  return { head: ["c", "path", "time/request vs null", "time/request vs direct", "req/s vs null", "req/s vs direct", "req/s vs Portkey", "p50 / p99 added over null (ms)", "CPU per request vs null"], rows };
}

/** What the "against" table compares subpool with: other builds, and with --limits members with limits. */
function variantsWhat(report) {
  const paths = [...new Set(report.matrix.map((m) => m.path))].filter((p) => p.startsWith("subpool:"));
  const members = paths.some((p) => LABEL[p]);
  const builds = paths.some((p) => !LABEL[p]);
  return [builds ? "other builds" : null, members ? "the same build for members with the team's limits (--limits)" : null].filter(Boolean).join(" and ");
}

/** subpool (the current tree) against each variant, e.g. the baseline: the before/after of one run. */
function rowsVariants(report) {
  const agg = aggregate(report);
  const concs = [...new Set(report.matrix.map((m) => m.conc))];
  const variants = [...new Set(report.matrix.map((m) => m.path))].filter((p) => p.startsWith("subpool:"));
  if (!variants.length) return null;
  const signed = (v, d) => (Number.isFinite(v) ? `${v >= 0 ? "+" : ""}${v.toFixed(d)}` : "n/a");
  const rows = [];
  for (const c of concs) {
    const s = agg.get(`subpool|${c}`);
    for (const v of variants) {
      const b = agg.get(`${v}|${c}`);
      if (!s || !b) continue;
      rows.push([
        String(c),
        v,
        `${int(s.rps)} vs ${int(b.rps)} = ${f(s.rps / b.rps)} x`,
        `${ms(s.msPerReq / c)} vs ${ms(b.msPerReq / c)} (${signed(s.msPerReq / c - b.msPerReq / c, 3)} ms)`,
        `${ms(s.lat.p50)} vs ${ms(b.lat.p50)} / ${ms(s.lat.p99)} vs ${ms(b.lat.p99)}`,
        `${f(s.cpuUsPerReq, 0)} vs ${f(b.cpuUsPerReq, 0)} (${signed(s.cpuUsPerReq - b.cpuUsPerReq, 0)} us)`,
        pairedCpu(report, v, c),
        `${s.rounds.map((r) => int(r)).join(" / ")} vs ${b.rounds.map((r) => int(r)).join(" / ")}`,
      ]);
    }
  }
  return { head: ["c", "against", "req/s (subpool vs it)", "mean ms/req", "p50 / p99 ms", "CPU us/req", "CPU difference per round (mean ± SE)", "req/s per round"], rows };
}

/**
 * subpool's serving CPU per request minus the variant's, round by round (each pair measured minutes
 * apart at most), as mean ± standard error. Runs on this machine drift by ±50 µs between rounds; the
 * paired difference cancels most of that drift, and its standard error says which differences are
 * real (more rounds shrink it: --rounds 8 or more for a 20 µs question).
 */
function pairedCpu(report, variant, c) {
  const at = (p) => new Map(report.matrix.filter((m) => m.path === p && m.conc === c).map((m) => [m.round, m.cpuUsPerReq.serving]));
  const mine = at("subpool");
  const theirs = at(variant);
  const d = [...mine.keys()].filter((r) => theirs.has(r)).map((r) => mine.get(r) - theirs.get(r));
  if (d.length === 0) return "n/a";
  const mean = d.reduce((a, b) => a + b, 0) / d.length;
  if (d.length === 1) return `${mean >= 0 ? "+" : ""}${mean.toFixed(0)} us (1 round)`;
  const sd = Math.sqrt(d.reduce((a, b) => a + (b - mean) ** 2, 0) / (d.length - 1));
  return `${mean >= 0 ? "+" : ""}${mean.toFixed(0)} ± ${(sd / Math.sqrt(d.length)).toFixed(0)} us (${d.length} rounds)`;
}

function rowsSse(report) {
  const rows = [];
  for (const [p, r] of Object.entries(report.sse ?? {})) {
    if (r.failed) rows.push([label(p), `failed (HTTP ${r.status})`, "", "", "", ""]);
    else rows.push([label(p), ms(r.ttfb.p50), ms(r.ttfb.p99), ms(r.headers.p50), ms(r.total.p50), String(r.events)]);
  }
  return { head: ["path", "first byte p50 ms", "first byte p99 ms", "headers p50 ms", "whole stream p50 ms", "events"], rows };
}

function rowsMemory(report) {
  const rows = [];
  for (const [p, m] of Object.entries(report.memory ?? {})) {
    const okRuns = m.runs.filter((r) => r.status === 200);
    if (!okRuns.length) {
      rows.push([label(p), `failed (HTTP ${m.runs[0]?.status})`, "", "", ""]);
      continue;
    }
    rows.push([label(p), f(Math.min(...okRuns.map((r) => r.baselineMB)), 1), f(Math.max(...okRuns.map((r) => r.peakMB)), 1), `+${f(m.growthMB, 1)}`, okRuns.map((r) => f(r.mbps, 0)).join(" / ") + (m.complete ? "" : " (incomplete)")]);
  }
  return { head: ["process", "RSS before MB", "RSS peak MB", "growth MB", "MB/s per run"], rows };
}

function rowsStorage(report, st = report.storage) {
  if (!st) return null;
  const by = Object.entries(st.do.byMethod).filter(([, n]) => n > 0).map(([m, n]) => `${m} ${n}`).join(", ") || "none";
  const kv = st.kv.get + st.kv.put + st.kv.delete + st.kv.list;
  return {
    head: ["proxied requests", "load seconds", "upstream fetches", "KV ops (get/put/delete/list)", "KV per request", "DO calls (by method)", "DO per request", "DO per second (per run, c=" + [...new Set(st.runs.map((r) => r.conc))].join("/") + ")"],
    rows: [[int(st.proxied), f(st.seconds, 1), int(st.upstreamFetches), `${kv} (${st.kv.get}/${st.kv.put}/${st.kv.delete}/${st.kv.list})`, f(kv / st.proxied, 6), `${st.do.calls} (${by})`, f(st.do.calls / st.proxied, 6), st.runs.map((r) => f(r.doPerSecond, 1)).join(" ")]],
  };
}

function rowsFailover(report) {
  const fo = report.failover;
  if (!fo) return null;
  return {
    head: ["", "p50 ms", "p99 ms", "mean ms"],
    rows: [
      ["direct to the fake (one upstream round trip)", ms(fo.direct.p50), ms(fo.direct.p99), ms(fo.direct.mean)],
      ["null Worker forwarding to the fake", ms(fo.null.p50), ms(fo.null.p99), ms(fo.null.mean)],
      ["null Worker answering by itself (GET /__local)", ms(fo.local.p50), ms(fo.local.p99), ms(fo.local.mean)],
      ["= one upstream round trip from inside a Worker", ms(fo.null.p50 - fo.local.p50), "", ms(fo.null.mean - fo.local.mean)],
      ["subpool, first account answers", ms(fo.normal.p50), ms(fo.normal.p99), ms(fo.normal.mean)],
      ["subpool, first account 429 -> second answers", ms(fo.failover.p50), ms(fo.failover.p99), ms(fo.failover.mean)],
      ["added by the failover", ms(fo.failover.p50 - fo.normal.p50), ms(fo.failover.p99 - fo.normal.p99), ms(fo.failover.mean - fo.normal.mean)],
    ],
  };
}

function rowsCooldown(report) {
  const c = report.cooldown;
  if (!c) return null;
  return {
    head: ["trial", "A: attempts of the 429'd request", "A: next request used", "A: requests to the benched account after", "B: requests to it after", "B: last one after (ms)", "B: requests in trial"],
    rows: c.trials.map((t, i) => [String(i + 1), String(t.a1Attempts), t.a2Account, String(t.aRequestsToBenchedAfter), String(t.bRequestsToBenchedAfter), f(t.honouredAfterMs, 1), String(t.bRequests)]),
  };
}

function mdTable(t) {
  if (!t) return "";
  const line = (cells) => `| ${cells.join(" | ")} |`;
  return [line(t.head), line(t.head.map(() => "---")), ...t.rows.map(line)].join("\n");
}

function textTable(t) {
  if (!t) return "";
  const w = t.head.map((h, i) => Math.max(h.length, ...t.rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => String(c).padEnd(w[i])).join("  ");
  return [line(t.head), w.map((n) => "-".repeat(n)).join("  "), ...t.rows.map(line)].join("\n");
}

function targetsTable(report) {
  return { head: ["target", "result", "measured", "limit"], rows: report.targets.map((t) => [t.name, t.ok ? "met" : "MISSED", t.measured, t.target]) };
}

export function renderConsole(report) {
  const parts = [
    "Throughput and latency (rounds merged)",
    textTable(rowsMatrix(report)),
    "",
    "subpool relative to the null Worker, direct, Portkey (same run)",
    textTable(rowsRatios(report)),
    "",
    ...(rowsVariants(report) ? [`subpool (this tree) against ${variantsWhat(report)} in the same run`, textTable(rowsVariants(report)), ""] : []),
    "SSE (50 events): time to first body byte, sequential requests",
    textTable(rowsSse(report)),
    "",
    "Memory while 200 MB stream through (RSS of the serving process)",
    textTable(rowsMemory(report)),
    "",
    "Failover cost (sequential, interleaved; first account answers 429 with retry-after-ms: 1)",
    textTable(rowsFailover(report)),
    "",
    "Storage operations of subpool's isolate during the measured load runs (GET /admin/stats)",
    textTable(rowsStorage(report)),
    "",
    ...Object.entries(report.storageLimited ?? {}).flatMap(([p, st]) => [`The same for the ${label(p)}`, textTable(rowsStorage(report, st)), ""]),
    "Cooldown recorded by isolate A, honoured by isolate B",
    textTable(rowsCooldown(report)),
    "",
    ...trafficConsole(report),
    "Targets",
    textTable(targetsTable(report)),
  ];
  return parts.join("\n");
}

export function renderMarkdown(report) {
  const e = report.env;
  const o = report.options;
  return `## Last run

- **Command:** \`${e.command}\` (${o.rounds} round(s); concurrency ${o.conc.join(", ")}; ${o.warmup} s warm-up + ${o.duration} s per point; paths interleaved, round 2 in reverse order; ${o.seqN} sequential requests per path for SSE and failover; ${o.trials} cooldown trials). Whole run: ${Math.round(report.wallSeconds)} s, ${report.startedAt}.
- **Machine:** ${e.cpu}, ${e.cores} cores, ${e.memGiB} GiB, ${e.distro ?? ""} (${e.kernel}). Load generator, fake provider, gateways all on this machine.
- **Versions:** ${e.node} (bench, fake provider, Portkey); ${e.workerd} (\`workerd\` ${e.versions.workerd}); wrangler ${e.versions.wrangler} (bundle: \`wrangler deploy --dry-run\`, ${Math.round(report.setup.bundleBytes / 1024)} KiB); autocannon ${e.versions.autocannon}; @portkey-ai/gateway ${e.versions.portkey}; hono ${e.versions.hono}. subpool at ${e.commit ?? "?"}${e.dirty ? " with uncommitted changes in src/" : ""}${report.options.src ? `, built from \`${report.options.src}\` (a variant)` : ""}${o.baseline ? `; \`subpool:baseline\` is \`${o.baseline.ref}\` = ${o.baseline.commit.slice(0, 12)}` : ""}.

### Targets

${mdTable(targetsTable(report))}

### Throughput and latency

Fixed ~300-byte JSON answer, \`POST /v1/messages\`. Latencies from autocannon's per-response hrtime (sub-millisecond); req/s = 2xx answers / wall time. Rounds merged.

${mdTable(rowsMatrix(report))}

### subpool relative to the null Worker, direct and Portkey

${mdTable(rowsRatios(report))}
${rowsVariants(report) ? `\n### subpool (this tree) against ${variantsWhat(report)} in the same run\n\n${mdTable(rowsVariants(report))}\n` : ""}
### SSE time to first byte (50 events, sequential)

${mdTable(rowsSse(report))}

### Memory while 200 MB stream through

${mdTable(rowsMemory(report))}

### One failover (first account answers 429 with \`retry-after-ms: 1\`)

${mdTable(rowsFailover(report))}

### KV and Durable Object operations in steady state

Counted by subpool itself (\`GET /admin/stats\`, per isolate) over the measured load runs only (not warm-ups).

${mdTable(rowsStorage(report))}
${Object.entries(report.storageLimited ?? {})
  .map(([p, st]) => `\nThe same for the ${label(p)} (\`--limits\`):\n\n${mdTable(rowsStorage(report, st))}\n`)
  .join("")}
### A cooldown recorded in one isolate, honoured in another

Isolate B (second copy of the bundle in the same workerd, same KV and Durable Object) sends requests back to back; isolate A's request gets one 429 (\`retry-after-ms: 3000\`) on account 1 and fails over. "B: last one after" is the time from that 429 to B's last request that still reached account 1 (the fake provider's clock).

${mdTable(rowsCooldown(report))}
${report.long || report.bigreq || report.turn ? `\n${trafficMarkdown(report)}` : ""}`;
}
