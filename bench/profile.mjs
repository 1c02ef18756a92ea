#!/usr/bin/env node
/**
 * `npm run bench:profile`: where subpool's isolate spends its time under load. Starts the same stack
 * as the benchmark (no Portkey), with workerd's inspector on, takes a V8 CPU profile of the subpool
 * isolate over a steady autocannon run, and prints self and inclusive time per function, per proxied
 * request. Writes the .cpuprofile (open it in Chrome DevTools > Performance, or speedscope).
 *
 * Options: --conc N (16)  --seconds S (8)  --interval US (sampling interval, 100)  --src DIR
 *          --worker subpool|null (which isolate to profile; the null Worker for the baseline)
 *          --out FILE (default: a temp file)  --top N (30)
 * The inspector itself slows the isolate a little: compare functions with each other, not these
 * req/s with the benchmark's.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, installCleanup, stopAll } from "./lib/procs.mjs";
import { load } from "./lib/measure.mjs";
import { JSON_BODY, startStack } from "./lib/stack.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..");
const argv = process.argv.slice(2);
const opt = (name, def) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : def;
};
const conc = Number(opt("conc", 16));
const seconds = Number(opt("seconds", 8));
const interval = Number(opt("interval", 100));
const top = Number(opt("top", 30));
const work = fs.mkdtempSync(path.join(os.tmpdir(), "subpool-profile-"));
installCleanup(() => fs.rmSync(work, { recursive: true, force: true }));

class Cdp {
  constructor(url) {
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
      this.ws.addEventListener("error", reject, { once: true });
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

/** Self and inclusive time per function (name + location), in ms, from a V8 CPU profile. */
export function analyse(profile) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map();
  const dt = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    dt.set(id, (dt.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0) / 1000);
  }
  const keyOf = (n) => {
    const cf = n.callFrame;
    const file = cf.url ? path.basename(cf.url) : "";
    return `${cf.functionName || "(anonymous)"}${file ? ` ${file}:${cf.lineNumber + 1}` : ""}`;
  };
  const incl = new Map();
  let total = 0;
  for (const [id, ms] of dt) {
    total += ms;
    const n = nodes.get(id);
    const k = keyOf(n);
    self.set(k, (self.get(k) ?? 0) + ms);
    // inclusive: each distinct function on the stack once
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const kk = keyOf(nodes.get(cur));
      if (seen.has(kk)) continue;
      seen.add(kk);
      incl.set(kk, (incl.get(kk) ?? 0) + ms);
    }
  }
  return { total, self, incl };
}

async function main() {
  const inspectorPort = await freePort();
  const worker = opt("worker", "subpool");
  const S = await startStack({
    repo,
    src: opt("src", null),
    work,
    withPortkey: false,
    withNull: worker === "null",
    strict: false,
    ...(worker === "null" ? { nullInspectorPort: inspectorPort } : { inspectorPort }),
    log: (m) => console.log(m),
  });
  const cdp = new Cdp(`ws://127.0.0.1:${inspectorPort}/${worker}`);
  await cdp.open();
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval });
  const P = S.PATHS[worker];
  await load({ url: P.url, headers: P.headers, body: JSON_BODY, connections: conc, seconds: 3 });
  const before = await S.stats();
  await cdp.send("Profiler.start");
  const r = await load({ url: P.url, headers: P.headers, body: JSON_BODY, connections: conc, seconds });
  const { profile } = await cdp.send("Profiler.stop");
  const after = await S.stats();
  cdp.close();
  const proxied = worker === "null" ? r.ok : after.proxied - before.proxied;
  const out = opt("out", path.join(os.tmpdir(), `subpool-${Date.now()}.cpuprofile`));
  fs.writeFileSync(out, JSON.stringify(profile));

  const { total, self, incl } = analyse(profile);
  const us = (ms) => ((ms * 1000) / proxied).toFixed(1).padStart(7);
  const pct = (ms) => ((100 * ms) / total).toFixed(1).padStart(5);
  console.log(`\nc=${conc}, ${seconds} s, ${r.rps.toFixed(0)} req/s with the inspector attached; ${proxied} proxied requests; profile ${total.toFixed(0)} ms sampled`);
  console.log(`isolate thread time per proxied request: ${us(total)} us (all samples, including "(program)": workerd's own C++ and "(idle)")\n`);
  console.log("self time           us/req   %     function");
  for (const [k, ms] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`                   ${us(ms)} ${pct(ms)}  ${k}`);
  console.log("\ninclusive time      us/req   %     function (subpool's own code and its libraries)");
  for (const [k, ms] of [...incl].sort((a, b) => b[1] - a[1]).filter(([k]) => /index\.js/.test(k)).slice(0, top)) console.log(`                   ${us(ms)} ${pct(ms)}  ${k}`);
  console.log(`\nprofile: ${out}`);
}

main()
  .catch((e) => {
    console.error(`profile failed: ${e.stack ?? e}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await stopAll();
    fs.rmSync(work, { recursive: true, force: true });
  });
