/**
 * workerd's inspector (`workerd serve -i ADDR`, one WebSocket target per service: ws://ADDR/<service>)
 * and what a V8 CPU profile of a Worker isolate says.
 *
 * What workerd's inspector offers (checked against workerd 2026-11-02): Profiler.enable / start / stop /
 * setSamplingInterval, HeapProfiler.takeHeapSnapshot, Network.enable (events for the Worker's own
 * subrequests) and what V8's inspector answers by itself (Runtime.getHeapUsage, ...). No per-request CPU
 * figure: no Performance domain, no Profiler.getRuntimeCallStats, and the tail-event `cpuTime`/`wallTime`
 * workerd reports are always 0 (server.c++ passes `0 * kj::MILLISECONDS`). The per-request figure comes
 * from `workerd serve --async-trace FILE` instead (lib/async-trace.mjs).
 *
 * How V8 samples a workerd isolate: the sampler interrupts the isolate's thread every `interval` µs, and a
 * sample is kept only while that thread holds the isolate's lock (V8 drops it otherwise: "isolate not
 * locked"). So a profile has samples only when the isolate runs, and the time delta of the first sample
 * after the lock was taken again spans the whole time the isolate was not running. Summing timeDeltas (what
 * DevTools does) counts that idle time; sampleWeights() below does not.
 *
 * Nodes V8 names itself: "(root)"; "(program)" (lock held, no JavaScript on the stack: workerd's own C++
 * under the lock, e.g. between turns); "(idle)" (the embedder marked the isolate idle); "(garbage
 * collector)". A node without a url and without parentheses is a native function called from JavaScript
 * (fetch, read, exec, ...), its time that of the native call.
 */
import fs from "node:fs";
import path from "node:path";

export class Cdp {
  constructor(url) {
    this.url = url;
    this.ws = new WebSocket(url);
    this.id = 0;
    this.pending = new Map();
    this.ws.addEventListener("message", (ev) => {
      const m = JSON.parse(ev.data);
      if (m.id && this.pending.has(m.id)) {
        const { resolve, reject } = this.pending.get(m.id);
        this.pending.delete(m.id);
        m.error ? reject(new Error(JSON.stringify(m.error))) : resolve(m.result);
      }
    });
  }
  open() {
    return new Promise((resolve, reject) => {
      this.ws.addEventListener("open", resolve, { once: true });
      this.ws.addEventListener("error", () => reject(new Error(`inspector: cannot connect to ${this.url}`)), { once: true });
    });
  }
  send(method, params = {}) {
    const id = ++this.id;
    this.ws.send(JSON.stringify({ id, method, params }));
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }
  close() {
    this.ws.close();
  }
}

/** Connects to one service's isolate and enables the profiler with the given sampling interval (µs). */
export async function profilerSession(inspectorPort, service, interval) {
  const c = new Cdp(`ws://127.0.0.1:${inspectorPort}/${service}`);
  await c.open();
  await c.send("Profiler.enable");
  await c.send("Profiler.setSamplingInterval", { interval });
  return c;
}

export const SPECIAL = new Set(["(root)", "(program)", "(idle)", "(garbage collector)"]);

/**
 * The sampler's real period, in µs: the median of the deltas between samples that follow each other
 * while the isolate keeps running (deltas under 6 × the asked-for interval), over one or more profiles.
 * On a loaded machine it is well above the interval asked for (here ~150 µs for 50).
 */
export function samplingPeriodUs(profiles, intervalUs) {
  const short = profiles.flatMap((p) => p.timeDeltas.slice(1).filter((x) => x > 0 && x < 6 * intervalUs)).sort((a, b) => a - b);
  return short.length >= 5 ? short[Math.floor(short.length / 2)] : intervalUs;
}

/**
 * The time each sample stands for, in ms: its delta (the time since the previous kept sample), except
 * that a delta above twice the period (the first sample after a stretch without the lock spans that
 * whole stretch) counts as one period. periodUs: samplingPeriodUs (default: this profile's own).
 */
export function sampleWeights(profile, periodUs = samplingPeriodUs([profile], 50)) {
  const cap = 2 * periodUs;
  return { weights: profile.timeDeltas.map((x) => (x >= 0 && x <= cap ? x : periodUs) / 1000), periodUs };
}

/**
 * Line -> source module of an esbuild bundle (it writes `// path/to/module.ts` before each module's code),
 * so a profile's function can be named with the file it came from. Returns (line1) => module | "".
 */
export function bundleModules(bundleFile) {
  if (!bundleFile || !fs.existsSync(bundleFile)) return () => "";
  const starts = [];
  fs.readFileSync(bundleFile, "utf8")
    .split("\n")
    .forEach((l, i) => {
      const m = /^\/\/ ((?:src|node_modules)\/\S+)$/.exec(l);
      if (m) starts.push([i + 1, m[1].replace(/^node_modules\/(@[^/]+\/[^/]+|[^/]+)\/.*$/, "$1")]);
    });
  return (line) => {
    let lo = 0;
    let hi = starts.length - 1;
    let found = "";
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid][0] <= line) {
        found = starts[mid][1];
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  };
}

/**
 * A profile's samples by kind and by function. Kinds: js (a function with a url), native (a native
 * function called from JS), gc, program, idle. `busyMs` = js + native + gc (the isolate executing);
 * `lockedMs` = busyMs + program (everything sampled except idle). Self and inclusive time per function
 * ("name module", or "name file:line" without moduleOf). moduleOf: from bundleModules (optional).
 */
export function analyseProfile(profile, moduleOf = () => "", periodUs = undefined) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const { weights, periodUs: period } = sampleWeights(profile, periodUs);
  const kinds = { js: 0, native: 0, gc: 0, program: 0, idle: 0 };
  const counts = { js: 0, native: 0, gc: 0, program: 0, idle: 0 };
  const self = new Map();
  const incl = new Map();
  const keyOf = (n) => {
    const cf = n.callFrame;
    if (!cf.url) return cf.functionName || "(anonymous native)";
    const mod = moduleOf(cf.lineNumber + 1);
    return `${cf.functionName || "(anonymous)"} ${mod || `${path.basename(cf.url)}:${cf.lineNumber + 1}`}`;
  };
  const kindOf = (n) => {
    const name = n.callFrame.functionName;
    if (name === "(garbage collector)") return "gc";
    if (name === "(program)" || name === "(root)") return "program";
    if (name === "(idle)") return "idle";
    return n.callFrame.url ? "js" : "native";
  };
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    const ms = weights[i] ?? 0;
    const n = nodes.get(id);
    const kind = kindOf(n);
    kinds[kind] += ms;
    counts[kind]++;
    if (kind === "idle") continue;
    const k = keyOf(n);
    self.set(k, (self.get(k) ?? 0) + ms);
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const nn = nodes.get(cur);
      if (SPECIAL.has(nn.callFrame.functionName) && !nn.callFrame.url) continue;
      const kk = keyOf(nn);
      if (seen.has(kk)) continue;
      seen.add(kk);
      incl.set(kk, (incl.get(kk) ?? 0) + ms);
    }
  }
  const busyMs = kinds.js + kinds.native + kinds.gc;
  return { samples: profile.samples.length, periodUs: period, kinds, counts, busyMs, lockedMs: busyMs + kinds.program, self, incl };
}
