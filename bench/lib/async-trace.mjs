/**
 * `workerd serve --async-trace FILE`: one JSON object a line. What this reads of it:
 *   {"e":"header","epochUnixMs":…}                      the wall clock at `at` = 0
 *   {"e":"ctx","ctx":N,"worker":"subpool-b","actor":null|"<id>","at":ns}
 *                                                        an invocation context: an incoming request with
 *                                                        everything it runs (waitUntil included), or a
 *                                                        Durable Object's (`actor`: its id; several calls)
 *   {"e":"turn","ctx":N,"start":ns,"locked":ns,"end":ns} one turn of that context: it asked for the isolate
 *                                                        at `start`, held the isolate's lock from `locked`
 *                                                        to `end` (JavaScript, GC, the native calls it
 *                                                        made, workerd's own work under the lock)
 *   {"e":"init","ctx":N,"kind":"request"|"operation"|…,"name":…}
 * So per request, the sum of its turns' (end − locked) is the time it held the isolate: what Cloudflare's
 * CPU-time limit counts (time executing for the request; waiting for I/O, and the runtime moving a stream's
 * bytes without the isolate, are not in any turn). Wall-clock time: on a busy machine a turn can include
 * time the thread was preempted, so take medians of several runs.
 */
import fs from "node:fs";
import readline from "node:readline";

/**
 * Reads a trace file: { epochMs, ctxs: Map<ctx, {worker, actor, atMs, turns, lockMs, maxTurnMs, ops}>,
 * turns: [{ctx, atMs (wall clock, ms), ms}] } (atMs = when the lock was taken).
 */
export async function readAsyncTrace(file) {
  const rl = readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Infinity });
  let epochMs = 0;
  const ctxs = new Map();
  const turns = [];
  for await (const line of rl) {
    if (!line) continue;
    let e;
    try {
      e = JSON.parse(line);
    } catch {
      continue; // a line cut by a kill
    }
    if (e.e === "header") epochMs = e.epochUnixMs;
    else if (e.e === "ctx") ctxs.set(e.ctx, { worker: e.worker, actor: e.actor ?? null, atMs: epochMs + e.at / 1e6, turns: 0, lockMs: 0, maxTurnMs: 0, ops: {} });
    else if (e.e === "turn") {
      const ms = (e.end - e.locked) / 1e6;
      const c = ctxs.get(e.ctx);
      if (c) {
        c.turns++;
        c.lockMs += ms;
        c.maxTurnMs = Math.max(c.maxTurnMs, ms);
      }
      turns.push({ ctx: e.ctx, atMs: epochMs + e.locked / 1e6, ms });
    } else if (e.e === "init") {
      const c = ctxs.get(e.ctx);
      if (c && e.kind === "operation") c.ops[e.name] = (c.ops[e.name] ?? 0) + 1;
    }
  }
  return { epochMs, ctxs, turns };
}
