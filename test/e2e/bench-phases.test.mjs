// The benchmark's real-traffic phases (bench/lib/traffic-phases.mjs, DESIGN.md section 11) run once at
// a small size, the way `npm run bench` runs them: the bundle under workerd, the null Worker, the fake
// provider writing one event per chunk 1 ms apart. Checks the machinery, not the figures (this box is
// shared): every phase produced finite figures, every event arrived on both paths, subpool answered
// 200 each time. With --limits (DESIGN §12), the members with the team's limits too, and a short load
// run for the storage table (no KV operation for them either). Then `npm run bench:team` (team usage
// and the limits' overshoot, bench/team.mjs) for a team of 10. Offline only: everything listens on
// 127.0.0.1. About 40 s.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { ROOT } from "./gateway.mjs";

const EVENTS = 100;
const TURN_EVENTS = 50;
const BIG = 300000;
const SHAPES = ["anthropic", "chat", "responses"];
const PATHS = ["null", "subpool"];
const LIMITED = ["subpool:limits", "subpool:limits-no-models"];

// As `npm run bench` runs it: node_modules/.bin (Node 22, which wrangler needs) first on PATH, also
// when this file is run with another node (`node --test` on the machine's Node 20).
const BIN = join(ROOT, "node_modules", ".bin");
const NODE = existsSync(join(BIN, "node")) ? join(BIN, "node") : process.execPath;
const ENV = { ...process.env, PATH: `${BIN}${delimiter}${process.env.PATH ?? ""}`, NO_COLOR: "1" };

const finite = (v, what) => assert.ok(Number.isFinite(v), `${what}: ${v} is not a finite number`);
const positive = (v, what) => {
  finite(v, what);
  assert.ok(v > 0, `${what}: ${v} is not above 0`);
};

/** The checks a stream phase's per-path summary must pass (long and turn). */
function checkStreams(x, events, what) {
  for (const p of PATHS) {
    const r = x.paths[p];
    assert.ok(r, `${what}: no figures for path ${p}`);
    assert.deepEqual(r.statuses, [200], `${what} via ${p}: statuses ${JSON.stringify(r.statuses)} ${JSON.stringify(r.errors)}`);
    assert.deepEqual(r.events, [events], `${what} via ${p}: events that arrived`);
    assert.equal(r.complete, true, `${what} via ${p}: not complete`);
    positive(r.cpuMsPerAnswer, `${what} via ${p}: CPU ms per answer`);
    positive(r.cpuUsPerEvent, `${what} via ${p}: CPU us per event`);
    for (const k of ["p50", "p99", "max"]) finite(r.delayMs?.[k], `${what} via ${p}: event delay ${k}`);
    // Every event but Chat Completions' `data: [DONE]` carries the fake's write time.
    assert.ok(r.delayMs.n >= events - 1, `${what} via ${p}: ${r.delayMs.n} delays for ${events} events`);
  }
  finite(x.added.subpool?.perEventUs?.mean, `${what}: added CPU per event`);
  finite(x.added.subpool?.perAnswerMs?.mean, `${what}: added CPU per answer`);
}

describe("npm run bench: the long, bigreq and turn phases (and --limits); npm run bench:team", { timeout: 330_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "subpool-bench-phases-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("run once at a small size: finite figures, every event on both paths, subpool's answers 200", { timeout: 140_000 }, async (t) => {
    const json = join(dir, "bench.json");
    const args = ["bench/run.mjs", "--no-write", "--skip", "sse,failover,cooldown,memory", "--paths", "null,subpool", "--limits", "--conc", "1", "--duration", "1", "--warmup", "1", "--rounds", "1", "--events", String(EVENTS), "--turn-events", String(TURN_EVENTS), "--big-sizes", String(BIG), "--big-n", "5", "--json", json];
    const out = await new Promise((resolve, reject) => {
      execFile(NODE, args, { cwd: ROOT, timeout: 130_000, maxBuffer: 16 << 20, env: ENV }, (err, stdout, stderr) => {
        if (err) reject(new Error(`bench failed (${err.code ?? err.signal}):\n${stdout}\n${stderr}`));
        else resolve(stdout);
      });
    });
    assert.match(out, /Long streams: 100 events/);
    assert.match(out, /Big requests/);
    assert.match(out, /Coding turn/);
    const r = JSON.parse(readFileSync(json, "utf8"));

    // long: each shape, through the null Worker and subpool
    assert.equal(r.long.events, EVENTS);
    assert.deepEqual(Object.keys(r.long.shapes).sort(), [...SHAPES].sort());
    for (const shape of SHAPES) checkStreams(r.long.shapes[shape], EVENTS, `long ${shape}`);

    // bigreq: the tiny body and one of ~300 KB
    assert.equal(r.bigreq.sizes.length, 2);
    const [tiny, big] = r.bigreq.sizes;
    assert.ok(tiny.tiny && tiny.bytes < 1000, `tiny body: ${tiny.bytes} bytes`);
    assert.ok(Math.abs(big.bytes - BIG) < BIG * 0.01, `big body: ${big.bytes} bytes, asked for ${BIG}`);
    for (const s of r.bigreq.sizes) {
      for (const p of [...PATHS, ...LIMITED]) {
        assert.equal(s.paths[p].ok, true, `bigreq ${s.bytes} B via ${p}: statuses ${JSON.stringify(s.paths[p].statuses)}`);
        positive(s.paths[p].cpuUsPerReq, `bigreq ${s.bytes} B via ${p}: CPU us per request`);
      }
      finite(s.addedUs.subpool?.mean, `bigreq ${s.bytes} B: added CPU`);
      for (const p of LIMITED) finite(s.addedUs[p]?.mean, `bigreq ${s.bytes} B: added CPU for ${p}`);
    }

    // --limits: the members with limits were loaded like the member without, and made no KV operation.
    for (const p of ["subpool", ...LIMITED]) {
      const m = r.matrix.find((x) => x.path === p);
      assert.ok(m && m.ok > 0 && m.non2xx === 0, `matrix ${p}: ${JSON.stringify(m && { ok: m.ok, non2xx: m.non2xx })}`);
    }
    assert.deepEqual(Object.keys(r.storageLimited ?? {}).sort(), [...LIMITED].sort());
    for (const [p, st] of Object.entries(r.storageLimited)) {
      assert.ok(st.proxied > 0, `storage ${p}: nothing proxied`);
      assert.equal(st.kv.get + st.kv.put + st.kv.delete + st.kv.list, 0, `storage ${p}: KV operations during the load`);
    }
    finite(big.addedBeyondTinyUs.subpool?.mean, "bigreq: added beyond the tiny request's");
    finite(big.nullOverTinyUs?.mean, "bigreq: what the body costs the null Worker");

    // turn: the 300 KB request streamed back in 50 events
    assert.equal(r.turn.events, TURN_EVENTS);
    assert.ok(Math.abs(r.turn.bytes - 300000) < 3000, `turn body: ${r.turn.bytes} bytes`);
    checkStreams(r.turn, TURN_EVENTS, "turn");

    // The targets of these phases are evaluated (met or not: the figures are this shared box's).
    const names = r.targets.map((x) => x.name).join("\n");
    for (const re of [/long stream \(Anthropic Messages\)/, /long stream \(OpenAI Chat Completions\)/, /long stream \(OpenAI Responses\)/, /2,000-event answer/, /big request/]) assert.match(names, re);
    // The usage check ran for each phase; whether subpool's records matched is reported, not asserted here.
    for (const phase of ["long", "bigreq", "turn"]) {
      const u = r[phase].usage?.subpool;
      assert.ok(u && Object.keys(u).length > 0, `${phase}: no usage check`);
      for (const [acc, x] of Object.entries(u)) if (!x.ok) t.diagnostic(`${phase}/${acc}: usage recorded ${JSON.stringify(x.recorded)}, stated ${JSON.stringify(x.expected)}`);
    }
  });

  it("npm run bench:team for a team of 10: usage answers every user, limits hold in one isolate, the object records what was served", { timeout: 170_000 }, async () => {
    const json = join(dir, "team.json");
    const T = 1000;
    const RPM = 20;
    const args = ["bench/team.mjs", "--members", "10", "--admins", "1", "--requests", "1", "--past-days", "3", "--rounds", "1", "--isolates", "2", "--os-isolates", "1,2", "--os-conc", "1,4", "--os-answers", "json", "--os-tokens", String(T), "--os-rpm", String(RPM), "--json", json];
    await new Promise((resolve, reject) => {
      execFile(NODE, args, { cwd: ROOT, timeout: 160_000, maxBuffer: 16 << 20, env: ENV }, (err, stdout, stderr) => {
        if (err) reject(new Error(`bench:team failed (${err.code ?? err.signal}):\n${stdout}\n${stderr}`));
        else resolve(stdout);
      });
    });
    const r = JSON.parse(readFileSync(json, "utf8"));
    const u = r.usage;
    assert.equal(u.users, 11);
    assert.equal(u.seeded.objects, 11, "past days written into every user's object");
    // days=90: every user, 90 days each; today's request and the 3 past days each counted.
    assert.equal(u.check.users, 11);
    assert.equal(u.check.daysWithUsage, 11 * 4);
    for (const [k, x] of Object.entries(u.cold)) {
      positive(x.ms, `cold ${k}: ms`);
      positive(x.bytes, `cold ${k}: bytes`);
    }
    for (const [k, x] of Object.entries(u.warm)) positive(x.median, `warm ${k}: median ms`);
    assert.ok(u.warm.usage90.bytes > u.warm.usage30.bytes, "90 days answer more than 30");

    const trials = r.overshoot.trials;
    assert.equal(trials.length, 2 * 2 * 2, "tokensPerDay and requestsPerMinute x 1 and 2 isolates x c=1 and 4");
    for (const t of trials) {
      assert.deepEqual(t.errors, [], `${t.kind} ${t.isolates}x${t.conc}: errors`);
      assert.ok(t.refusedEverywhere, `${t.kind} ${t.isolates}x${t.conc}: not refused by every isolate afterwards`);
      assert.ok(t.recordedEqual, `${t.kind} ${t.isolates}x${t.conc}: the object recorded ${JSON.stringify(t.recorded)}, served ${JSON.stringify(t.served)}`);
      if (t.kind === "tokensPerDay") assert.ok(t.served.tokens >= T, `${t.kind} ${t.isolates}x${t.conc}: stopped at ${t.served.tokens} tokens, before the limit ${T}`);
    }
    // One isolate: the line is crossed by at most the requests in flight (c - 1 besides the one that crossed it);
    // requests per minute are counted when admitted, so exactly the limit is served.
    for (const t of trials.filter((x) => x.isolates === 1)) {
      if (t.kind === "tokensPerDay") assert.ok(t.served.tokens - T < t.conc * t.tokensPerRequest, `1 isolate, c=${t.conc}: ${t.served.tokens} tokens for a limit of ${T}`);
      else if (t.sameMinute) assert.equal(t.served.requests, RPM, `1 isolate, c=${t.conc}: ${t.served.requests} requests in the minute for a limit of ${RPM}`);
    }
  });
});
