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
 * req/s with the benchmark's. Samples exist only while the isolate runs (lib/cdp.mjs); each counts for
 * the sampler's period. For CPU per request by kind of traffic (streams, big bodies), see isolate-cpu.mjs.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, installCleanup, stopAll } from "./lib/procs.mjs";
import { load } from "./lib/measure.mjs";
import { JSON_BODY, startStack } from "./lib/stack.mjs";
import { Cdp, analyseProfile, bundleModules, samplingPeriodUs } from "./lib/cdp.mjs";
import { argv, opt } from "./lib/options.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..");
const conc = Number(opt("conc", 16));
const seconds = Number(opt("seconds", 8));
const interval = Number(opt("interval", 100));
const top = Number(opt("top", 30));
const work = fs.mkdtempSync(path.join(os.tmpdir(), "subpool-profile-"));
installCleanup(() => fs.rmSync(work, { recursive: true, force: true }));

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

  const a = analyseProfile(profile, worker === "null" ? () => "" : bundleModules(path.join(work, "dist-subpool", "index.js")), samplingPeriodUs([profile], interval));
  const total = a.lockedMs;
  const us = (ms) => ((ms * 1000) / proxied).toFixed(1).padStart(7);
  const pct = (ms) => ((100 * ms) / total).toFixed(1).padStart(5);
  console.log(`\nc=${conc}, ${seconds} s, ${r.rps.toFixed(0)} req/s with the inspector attached; ${proxied} proxied requests; ${a.samples} samples, sampling period ${a.periodUs} us`);
  console.log(`isolate time per proxied request: ${us(total)} us (samples while the isolate ran: JS ${us(a.kinds.js).trim()}, native calls ${us(a.kinds.native).trim()}, GC ${us(a.kinds.gc).trim()}, "(program)" ${us(a.kinds.program).trim()}; "(idle)" left out)`);
  console.log("(bench/isolate-cpu.mjs gives the per-request figure for each kind of traffic, from workerd's --async-trace)\n");
  console.log("self time           us/req   %     function");
  for (const [k, ms] of [...a.self].sort((x, y) => y[1] - x[1]).slice(0, top)) console.log(`                   ${us(ms)} ${pct(ms)}  ${k}`);
  console.log("\ninclusive time      us/req   %     function (subpool's own code and its libraries)");
  for (const [k, ms] of [...a.incl].sort((x, y) => y[1] - x[1]).filter(([k]) => / (src|hono|zod)\b|index\.js/.test(k)).slice(0, top)) console.log(`                   ${us(ms)} ${pct(ms)}  ${k}`);
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
