#!/usr/bin/env node
/**
 * `npm run bench`: subpool's performance, measured in one run on one machine (see BENCHMARKS.md).
 *
 *   1. a local fake provider (bench/fake-provider.mjs): small JSON, 50-event SSE, 200 MB stream;
 *   2. subpool's real bundle (`wrangler deploy --dry-run`) under the `workerd` binary, with KV, the
 *      UserPool Durable Object (SQLite), three accounts for one user, upstreams -> the fake;
 *   3. autocannon at concurrency 1, 16, 64 (warm-up, then a fixed duration), paths interleaved, two
 *      rounds: direct to the fake, a null forwarding Worker in workerd, subpool, Portkey's gateway
 *      (and, when asked for, the floor Worker and other builds of subpool, e.g. a baseline commit);
 *   4. SSE time to first byte, memory while 200 MB stream through, the added time of one failover;
 *   5. KV and DO operations per proxied request in steady state (GET /admin/stats), and how soon a
 *      cooldown recorded by one isolate is honoured by another;
 *   6. real coding-tool traffic (lib/traffic-phases.mjs): long streams with spaced events in three API
 *      shapes, Claude-Code-shaped big requests, a coding turn; null Worker vs subpool in paired rounds;
 *   7. the tables on stdout and in BENCHMARKS.md (between the bench markers), raw figures as JSON.
 *
 * Options: --duration S (8)  --warmup S (3)  --rounds N (2)  --conc 1,16,64  --quick (1 s + 1 s, 1 round)
 *          --paths direct,null,subpool,portkey (also: floor, the least a Hono gateway with a key check can
 *                   do, bench/workers/floor-worker.js)  --no-write (leave BENCHMARKS.md alone)  --json FILE
 *          --seq N (sequential requests per path for SSE and failover, 300)  --trials N (cooldown, 4)
 *          --skip matrix,sse,failover,cooldown,memory,long,bigreq,turn (leave phases out, for quick experiments)
 *   The real-traffic phases (DESIGN.md section 11; lib/traffic-phases.mjs), null Worker vs subpool (and
 *   its variants) in paired rounds (--rounds), CPU of the serving process:
 *          long: one stream per shape (Anthropic, Chat Completions, Responses) and path per round
 *                --events N (2000 events per stream)  --gap-ms G (1: the time between two events)
 *          bigreq: Claude-Code-shaped request bodies, a tiny one and --big-sizes 300000,1000000 (bytes),
 *                --big-n N sequential requests per measurement (20), --big-settle-ms M (0: a pause after
 *                each measurement so that a member's outcome flush, ~1 s later, falls outside the next
 *                path's measurement; 1200 with --limits, where four members take turns)
 *          turn: a --turn-bytes (300000) request with "stream": true answered by --turn-events N (800)
 *          (--quick: --events 300, --big-n 5, --turn-events 200)
 *          --src DIR (build subpool from DIR, a checkout or an edited copy, instead of this repo)
 *          --variants a=DIR,b=DIR (also measure other builds of subpool as paths "subpool:a", ...)
 *          --baseline REF (also measure this repo at a git ref, e.g. HEAD~3 or a commit, as the path
 *                   "subpool:baseline", interleaved with the current tree: a before/after in one run;
 *                   exported with `git archive` into the temp dir, removed at the end)
 *          --do-disk DIR (where the Durable Object's SQLite lives; default /dev/shm, see lib/workerd.mjs)
 *          --limits (the team's limits, DESIGN §12: with "subpool", also the paths "subpool:limits", a member
 *                   whose limits are all set (requests per minute, tokens per day and month, models ["*"],
 *                   none ever reached) and "subpool:limits-no-models" (the same without a model list),
 *                   served by the same subpool process: the load matrix, the traffic phases and the
 *                   storage table (KV and DO operations per request) for them too; lib/stack.mjs LIMITS)
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { cpuMsOf, cpuSnapshot, foreignCpu, installCleanup, rssOf, stopAll } from "./lib/procs.mjs";
import { agent, load, sleep, summarize, timed } from "./lib/measure.mjs";
import { workerdVersion } from "./lib/workerd.mjs";
import { BIG_BYTES, JSON_BODY, SSE_BODY, base, checkoutRef, startStack } from "./lib/stack.mjs";
import { evaluateTargets, renderConsole, renderMarkdown } from "./lib/report.mjs";
import { bigreqPhase, longPhase, turnPhase } from "./lib/traffic-phases.mjs";
import { argv, list, opt } from "./lib/options.mjs";

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..");

// ---- options ------------------------------------------------------------------------------------
const quick = argv.includes("--quick");
const O = {
  duration: Number(opt("duration", quick ? 1 : 8)),
  warmup: Number(opt("warmup", quick ? 1 : 3)),
  rounds: Number(opt("rounds", quick ? 1 : 2)),
  conc: list(opt("conc", "1,16,64")).map(Number),
  paths: list(opt("paths", "direct,null,subpool,portkey")),
  write: !argv.includes("--no-write"),
  json: opt("json", null),
  seqN: Number(opt("seq", quick ? 60 : 300)),
  trials: Number(opt("trials", quick ? 2 : 4)),
  skip: new Set(list(opt("skip", ""))),
  src: opt("src", null),
  variants: Object.fromEntries(list(opt("variants", "")).map((kv) => kv.split("="))),
  baseline: opt("baseline", null),
  doDisk: opt("do-disk", undefined),
  limits: argv.includes("--limits"),
  events: Number(opt("events", quick ? 300 : 2000)),
  gapMs: Number(opt("gap-ms", 1)),
  bigSizes: list(opt("big-sizes", "300000,1000000")).map(Number),
  bigN: Number(opt("big-n", quick ? 5 : 20)),
  bigSettleMs: Number(opt("big-settle-ms", 0)),
  turnEvents: Number(opt("turn-events", quick ? 200 : 800)),
  turnBytes: Number(opt("turn-bytes", 300000)),
};

const log = (...a) => console.log(...a);
const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(0).padStart(3)}s`;
const work = fs.mkdtempSync(path.join(os.tmpdir(), "subpool-bench-"));
installCleanup(() => fs.rmSync(work, { recursive: true, force: true }));

async function main() {
  const report = { startedAt: new Date().toISOString(), options: { ...O, skip: [...O.skip], variants: { ...O.variants } }, env: environment(), setup: {}, matrix: [], storage: null, storageLimited: null, sse: null, memory: null, failover: null, cooldown: null, long: null, bigreq: null, turn: null };
  log(`subpool bench: ${O.rounds} round(s) x concurrency ${O.conc.join("/")} x paths ${O.paths.join(", ")}, ${O.warmup} s warm-up + ${O.duration} s each`);
  log(`machine: ${report.env.cpu} (${report.env.cores} cores), ${report.env.node}, ${report.env.workerd}`);

  if (O.baseline) {
    const b = checkoutRef(repo, work, O.baseline, "baseline");
    O.variants.baseline = b.dir;
    report.options.baseline = { ref: O.baseline, commit: b.commit };
    log(`${elapsed()} baseline: ${O.baseline} = ${b.commit.slice(0, 12)}, measured as subpool:baseline`);
  }
  const S = await startStack({ repo, src: O.src, variants: O.variants, doDisk: O.doDisk, work, withPortkey: O.paths.includes("portkey"), withFloor: O.paths.includes("floor"), limits: O.limits, log: (m) => log(`${elapsed()} ${m}`) });
  report.setup = S.setup;
  if (O.limits) report.setup.limits = Object.fromEntries(Object.entries(S.limited).map(([p, L]) => [p, L.limits]));
  const paths = O.paths.flatMap((p) => (p === "subpool" ? ["subpool", ...Object.keys(S.limited), ...Object.keys(O.variants).map((v) => `subpool:${v}`)] : [p])).filter((p) => S.PATHS[p]);
  log(`${elapsed()} ready: fake ${S.FAKE}, subpool ${S.A} (isolate B ${S.B}), null Worker ${S.NULLW}${S.FLOOR ? `, floor Worker ${S.FLOOR}` : ""}${S.PK ? `, Portkey ${S.PK}` : ""}`);

  if (!O.skip.has("matrix")) await matrix(S, paths, report);
  if (!O.skip.has("sse")) await sse(S, paths, report);
  if (!O.skip.has("failover")) await failover(S, report);
  if (!O.skip.has("cooldown")) await cooldown(S, report);
  if (!O.skip.has("memory")) await memory(S, report);
  const traffic = (name, phase) => (O.skip.has(name) ? null : phase(S, paths, O, (m) => log(`${elapsed()} ${m}`)));
  report.long = await traffic("long", longPhase);
  report.bigreq = await traffic("bigreq", bigreqPhase);
  report.turn = await traffic("turn", turnPhase);

  report.finishedAt = new Date().toISOString();
  report.wallSeconds = (Date.now() - t0) / 1000;
  report.targets = evaluateTargets(report);
  const jsonFile = O.json ?? path.join(os.tmpdir(), `subpool-bench-${report.startedAt.replace(/[:.]/g, "-")}.json`);
  fs.writeFileSync(jsonFile, JSON.stringify({ ...report, matrix: report.matrix.map(({ samples, ...m }) => m) }, null, 2));
  log("");
  log(renderConsole(report));
  log(`raw figures: ${jsonFile}`);
  if (O.write) {
    writeBenchmarksMd(renderMarkdown(report));
    log(`wrote ${path.join(repo, "BENCHMARKS.md")}`);
  }
}

// ---- 3, 5a. throughput and latency; storage operations of the subpool isolate ----------------------
async function matrix(S, paths, report) {
  const ourPids = [process.pid, ...Object.values(S.procs).map((c) => c.pid)];
  /** The process serving each path: its CPU time per request is the figure least disturbed by other load. */
  const servingPid = (p) => (p === "direct" ? S.procs.fake.pid : S.limited[p] ? S.procs.subpool.pid : S.procs[p]?.pid);
  const width = Math.max(12, ...paths.map((p) => p.length));
  /** Storage operations per subpool path of this process (subpool, and with --limits the members with limits). */
  const storageOf = Object.fromEntries(["subpool", ...Object.keys(S.limited)].map((p) => [p, { seconds: 0, proxied: 0, requests: 0, upstreamFetches: 0, kv: { get: 0, put: 0, delete: 0, list: 0 }, do: { calls: 0, byMethod: {} }, runs: [] }]));
  for (let round = 1; round <= O.rounds; round++) {
    for (const c of O.conc) {
      const order = round % 2 === 1 ? paths : [...paths].reverse();
      for (const p of order) {
        const spec = { url: S.PATHS[p].url, headers: S.PATHS[p].headers, body: JSON_BODY, connections: c };
        await load({ ...spec, seconds: O.warmup });
        const statsFn = S.statsOf[p];
        const before = statsFn ? await statsFn() : null;
        const cpu0 = cpuSnapshot(ourPids);
        const serve0 = cpuMsOf(servingPid(p));
        const fake0 = cpuMsOf(S.procs.fake.pid);
        const gen0 = process.cpuUsage();
        const r = await load({ ...spec, seconds: O.duration });
        const gen = process.cpuUsage(gen0);
        const cpu = foreignCpu(cpu0, cpuSnapshot(ourPids));
        const cpuUsPerReq = {
          serving: ((cpuMsOf(servingPid(p)) - serve0) * 1000) / r.requests,
          fake: ((cpuMsOf(S.procs.fake.pid) - fake0) * 1000) / r.requests,
          loadgen: (gen.user + gen.system) / r.requests,
        };
        let st = null;
        const after = before ? await statsFn() : null;
        if (before && after) {
          const kvSum = (x) => x.kv.get + x.kv.put + x.kv.delete + x.kv.list;
          st = { proxied: after.proxied - before.proxied, kv: kvSum(after) - kvSum(before), do: after.do.calls - before.do.calls };
          const storage = storageOf[p];
          if (storage) {
            storage.seconds += r.seconds;
            storage.runs.push({ round, conc: c, seconds: r.seconds, ...st, doPerSecond: st.do / r.seconds });
            for (const k of ["proxied", "requests", "upstreamFetches"]) storage[k] += after[k] - before[k];
            for (const k of Object.keys(storage.kv)) storage.kv[k] += after.kv[k] - before.kv[k];
            storage.do.calls += after.do.calls - before.do.calls;
            for (const [m, n] of Object.entries(after.do.byMethod)) storage.do.byMethod[m] = (storage.do.byMethod[m] ?? 0) + n - (before.do.byMethod[m] ?? 0);
          }
        }
        const s = summarize(r.lat);
        report.matrix.push({ round, path: p, conc: c, rps: r.rps, ok: r.ok, non2xx: r.non2xx, errors: r.errors, seconds: r.seconds, lat: s, storage: st, foreignCpuPct: cpu.foreignPct, cpuUsPerReq, samples: r.lat });
        log(
          `${elapsed()} round ${round} c=${String(c).padStart(2)} ${p.padEnd(width)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${s.p50.toFixed(3)} ms  p99 ${s.p99.toFixed(3)} ms` +
            `  CPU ${cpuUsPerReq.serving.toFixed(0)} us/req  (other processes: ${cpu.foreignPct.toFixed(0)}% of the machine)` +
            (r.non2xx || r.errors ? `  non-2xx ${r.non2xx}, errors ${r.errors}` : ""),
        );
      }
    }
  }
  report.storage = storageOf.subpool;
  if (Object.keys(S.limited).length) report.storageLimited = Object.fromEntries(Object.keys(S.limited).map((p) => [p, storageOf[p]]));
}

// ---- 4a. SSE: time to first byte ---------------------------------------------------------------------
async function sse(S, paths, report) {
  log(`${elapsed()} SSE time to first byte (${O.seqN} sequential requests per path, interleaved)`);
  const agents = Object.fromEntries(paths.map((p) => [p, agent()]));
  const res = Object.fromEntries(paths.map((p) => [p, { ttfb: [], headers: [], total: [], failed: 0, status: null, events: 0 }]));
  for (let i = -20; i < O.seqN; i++) {
    for (const p of paths) {
      if (res[p].failed >= 3) continue;
      const r = await timed(S.PATHS[p].url, { headers: S.PATHS[p].headers, body: SSE_BODY, agent: agents[p], keepBody: i === 0 });
      if (r.status !== 200) {
        res[p].failed++;
        res[p].status = r.status;
        continue;
      }
      if (i === 0) res[p].events = (r.text.match(/^data: /gm) ?? []).length;
      if (i < 0) continue;
      res[p].ttfb.push(r.tFirstByte);
      res[p].headers.push(r.tHeaders);
      res[p].total.push(r.tEnd);
    }
  }
  for (const a of Object.values(agents)) a.destroy();
  report.sse = Object.fromEntries(
    paths.map((p) => [p, res[p].ttfb.length ? { ttfb: summarize(res[p].ttfb), headers: summarize(res[p].headers), total: summarize(res[p].total), events: res[p].events } : { failed: true, status: res[p].status }]),
  );
}

// ---- 4b. the added time of one failover -----------------------------------------------------------------
async function failover(S, report) {
  log(`${elapsed()} failover cost (${O.seqN} x [direct, null Worker forwarding, null Worker answering itself, subpool, subpool with a 429 first], interleaved)`);
  const { PATHS } = S;
  const ag = { direct: agent(), normal: agent(), failover: agent(), null: agent(), local: agent() };
  const t = { direct: [], normal: [], failover: [], null: [], local: [] };
  let badAttempts = 0;
  for (let i = -30; i < O.seqN; i++) {
    const d = await timed(PATHS.direct.url, { headers: PATHS.direct.headers, body: JSON_BODY, agent: ag.direct });
    const nw = await timed(PATHS.null.url, { headers: PATHS.null.headers, body: JSON_BODY, agent: ag.null });
    const nl = await timed(`${S.NULLW}/__local`, { headers: PATHS.null.headers, body: JSON_BODY, agent: ag.local });
    const n = await timed(PATHS.subpool.url, { headers: PATHS.subpool.headers, body: JSON_BODY, agent: ag.normal });
    const f = await timed(PATHS.subpool.url, { headers: { ...base, "x-api-key": S.users.fo.key }, body: JSON_BODY, agent: ag.failover });
    if (f.status !== 200 || f.headers["x-subpool-attempts"] !== "2" || n.headers["x-subpool-attempts"] !== "1") badAttempts++;
    if (i < 0) continue;
    t.direct.push(d.tEnd);
    t.null.push(nw.tEnd);
    t.local.push(nl.tEnd);
    t.normal.push(n.tEnd);
    t.failover.push(f.tEnd);
  }
  for (const a of Object.values(ag)) a.destroy();
  report.failover = Object.fromEntries([...Object.entries(t).map(([k, v]) => [k, summarize(v)]), ["badAttempts", badAttempts]]);
}

// ---- 5b. a cooldown recorded by isolate A, honoured by isolate B -------------------------------------------
async function cooldown(S, report) {
  log(`${elapsed()} cooldown propagation between isolates (${O.trials} trials)`);
  const { cd } = S.users;
  const trials = [];
  const cdKey = cd.providerKeys[0];
  const url = (origin) => `${origin}/anthropic/v1/messages`;
  await S.ctl({ key: cdKey, mode: "ok", log: true });
  const hA = { ...base, "x-api-key": cd.key, "x-bench-client": "A" };
  const hB = { ...base, "x-api-key": cd.key, "x-bench-client": "B" };
  const agA = agent();
  const agB = agent();
  for (let i = 0; i < 5; i++) await timed(url(S.A), { headers: hA, body: JSON_BODY, agent: agA });
  const RETRY_MS = 3000;
  for (let trial = 0; trial < O.trials; trial++) {
    let running = true;
    let bRequests = 0;
    const bLoop = (async () => {
      while (running) {
        await timed(url(S.B), { headers: hB, body: JSON_BODY, agent: agB });
        bRequests++;
      }
    })();
    await sleep(1200 + Math.random() * 1000); // B is warm; the 429 falls anywhere in B's refresh period
    await fetch(`${S.FAKE}/__log?key=${cdKey}`); // clear
    await S.ctl({ key: cdKey, mode: "429-once", retryAfterMs: RETRY_MS, log: true, onlyClient: "A" });
    const a1 = await timed(url(S.A), { headers: hA, body: JSON_BODY, agent: agA });
    const a2 = await timed(url(S.A), { headers: hA, body: JSON_BODY, agent: agA });
    await sleep(1800);
    running = false;
    await bLoop;
    const { entries } = await (await fetch(`${S.FAKE}/__log?key=${cdKey}`)).json();
    const t429 = entries.find((e) => e.status === 429)?.t;
    const bAfter = entries.filter((e) => e.client === "B" && e.t > t429);
    const aAfter = entries.filter((e) => e.client === "A" && e.t > t429);
    trials.push({
      a1Attempts: Number(a1.headers["x-subpool-attempts"]),
      a2Account: a2.headers["x-subpool-account"] === cd.accounts[0] ? "account 1" : "another",
      aRequestsToBenchedAfter: aAfter.length,
      bRequestsToBenchedAfter: bAfter.length,
      honouredAfterMs: bAfter.length ? bAfter.at(-1).t - t429 : 0,
      bRequests,
    });
    await S.ctl({ key: cdKey, mode: "ok", log: true });
    await sleep(RETRY_MS - 1800 + 300); // the cooldown is over everywhere before the next trial
  }
  agA.destroy();
  agB.destroy();
  report.cooldown = { retryMs: RETRY_MS, trials, maxMs: Math.max(...trials.map((t) => t.honouredAfterMs)) };
}

// ---- 4c. memory while 200 MB stream through -----------------------------------------------------------------
async function memory(S, report) {
  log(`${elapsed()} memory while ${BIG_BYTES / 1048576} MB stream through`);
  const targets = {
    null: { url: `${S.NULLW}/v1/big`, headers: S.PATHS.null.headers, pid: S.procs.null.pid },
    subpool: { url: `${S.A}/anthropic/v1/big`, headers: S.PATHS.subpool.headers, pid: S.procs.subpool.pid },
  };
  if (S.procs.floor) targets.floor = { url: `${S.FLOOR}/anthropic/v1/big`, headers: S.PATHS.floor.headers, pid: S.procs.floor.pid };
  if (S.procs.portkey) targets.portkey = { url: `${S.PK}/v1/big`, headers: S.PATHS.portkey.headers, pid: S.procs.portkey.pid };
  // A hostile stream (one event, then data: lines that never end it) through the SSE path: the
  // gateway's memory per stream must stay bounded whatever arrives (DESIGN §11).
  targets["null (hostile SSE)"] = { url: `${S.NULLW}/v1/hostile-sse`, headers: S.PATHS.null.headers, pid: S.procs.null.pid };
  targets["subpool (hostile SSE)"] = { url: `${S.A}/anthropic/v1/hostile-sse`, headers: S.PATHS.subpool.headers, pid: S.procs.subpool.pid };
  const mem = {};
  for (const [p, T] of Object.entries(targets)) {
    const runs = [];
    for (let i = 0; i < 2; i++) {
      await sleep(300);
      const baseline = rssOf(T.pid);
      let peak = baseline;
      const timer = setInterval(() => (peak = Math.max(peak, rssOf(T.pid))), 10);
      const r = await timed(T.url, { headers: T.headers, body: "{}", onData: () => {} }).catch((e) => ({ status: 0, error: String(e) }));
      clearInterval(timer);
      peak = Math.max(peak, rssOf(T.pid));
      runs.push({ status: r.status, bytes: r.bytes, seconds: r.tEnd / 1000, mbps: r.bytes / 1048576 / (r.tEnd / 1000), baselineMB: baseline / 1048576, peakMB: peak / 1048576, growthMB: (peak - baseline) / 1048576 });
    }
    mem[p] = { runs, complete: runs.every((r) => r.status === 200 && r.bytes >= BIG_BYTES), growthMB: Math.max(...runs.map((r) => r.growthMB)) };
  }
  report.memory = mem;
}

// ---- environment, BENCHMARKS.md ---------------------------------------------------------------------------------
function environment() {
  const cpus = os.cpus();
  const pkg = (name) => {
    for (const file of [() => require.resolve(`${name}/package.json`), () => path.join(repo, "node_modules", name, "package.json")]) {
      try {
        return JSON.parse(fs.readFileSync(file(), "utf8")).version;
      } catch {}
    }
    return null;
  };
  let commit = null;
  let dirty = null;
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: repo }).toString().trim();
    dirty = execFileSync("git", ["status", "--porcelain", "--", "src", "wrangler.toml"], { cwd: repo }).toString().trim().length > 0;
  } catch {}
  let distro = null;
  try {
    distro = /PRETTY_NAME="([^"]+)"/.exec(fs.readFileSync("/etc/os-release", "utf8"))?.[1] ?? null;
  } catch {}
  let workerd = "workerd ?";
  try {
    workerd = workerdVersion();
  } catch {}
  return {
    cpu: cpus[0]?.model ?? "unknown",
    cores: os.availableParallelism?.() ?? cpus.length,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    distro,
    node: `Node ${process.version}`,
    workerd,
    versions: { wrangler: pkg("wrangler"), workerd: pkg("workerd"), autocannon: pkg("autocannon"), portkey: pkg("@portkey-ai/gateway"), hono: pkg("hono") },
    commit,
    dirty,
    command: `npm run bench${argv.length ? " -- " + argv.join(" ") : ""}`,
  };
}

const BEGIN = "<!-- bench:begin (generated by `npm run bench`; edit outside these markers) -->";
const END = "<!-- bench:end -->";

/** Replaces what is between the markers; the text around them (the analysis) stays. */
function writeBenchmarksMd(generated) {
  const file = path.join(repo, "BENCHMARKS.md");
  let text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : `# subpool benchmarks\n\n${BEGIN}\n${END}\n`;
  if (text.indexOf(BEGIN) < 0 || text.indexOf(END) < text.indexOf(BEGIN)) text = `${text.trimEnd()}\n\n${BEGIN}\n${END}\n`;
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  fs.writeFileSync(file, `${text.slice(0, a + BEGIN.length)}\n${generated.trim()}\n${text.slice(b)}`);
}

main()
  .catch((e) => {
    console.error(`bench failed: ${e.stack ?? e}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await stopAll();
    fs.rmSync(work, { recursive: true, force: true });
  });
