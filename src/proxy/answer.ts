/**
 * An upstream answer below 400, handed to the client — or, when it turns out not to be one, a
 * failed attempt while the client still has nothing:
 *  - SSE: the first event is peeked (bounded in time and size). An `error` event that is a limit or
 *    an overload, a stream that ends or fills PEEK_LIMIT with no event, a stall, a cut: the next
 *    account. Otherwise ./relay.ts passes the rest on natively; usage is read from a copy;
 *  - JSON up to SMALL_JSON_BYTES (declared): read whole by the runtime in one go (the client needs
 *    all of it anyway), its usage rides with the outcome, a cut body still fails over;
 *  - larger JSON: passed on as it comes, usage read from a `tee()` copy off the path;
 *  - anything else: passed on untouched.
 */
import type { Config } from "../config";
import type { Provider } from "../providers/types";
import { concat, parseJsonBody } from "../util";
import type { Deadline } from "./deadline";
import type { Failure } from "./failure";
import { clientResponse } from "./headers";
import type { Outcome } from "./outcome";
import { relay } from "./relay";
import { isEventStream, peekFirstEvent } from "./sse";
import { SseUsage, usageOf, usageOfJson } from "./usage";

const ERROR_OBJECT = /"error"\s*:\s*\{/;

/** JSON answers up to this size (declared) are read whole before they are returned. */
const SMALL_JSON_BYTES = 256 * 1024;

export type Attempt = { done: Response } | { failure: Failure | null };

export interface AnswerContext {
  cfg: Config;
  provider: Provider;
  accountId: string;
  /** This attempt's number within the request (x-subpool-attempts). */
  n: number;
  clock: Deadline;
  out: Outcome;
  waitUntil(p: Promise<unknown>): void;
  /** A wait the provider stated, else DEFAULT_COOLDOWN_S. */
  benchFor(cooldownS: number | undefined): number;
  /** Aborts the upstream exchange. */
  upstream: AbortController;
}

export async function answer(x: AnswerContext, res: Response): Promise<Attempt> {
  const { cfg, out } = x;
  const done = (body: BodyInit | null): Attempt => ({ done: clientResponse(body, res, x.accountId, x.n) });
  if (res.body && isEventStream(res.headers)) return stream(x, res, res.body);
  if (res.body && (res.headers.get("content-type") ?? "").includes("json")) {
    const declared = res.headers.get("content-length");
    if (declared !== null && Number(declared) <= SMALL_JSON_BYTES) {
      let whole: ArrayBuffer | "timeout";
      try {
        x.clock.within(cfg.FIRST_EVENT_TIMEOUT_MS);
        whole = await x.clock.race(res.arrayBuffer());
      } catch (e) {
        out.report(res.status, false, undefined, `the answer was cut off (${(e as Error).name})`);
        return { failure: null };
      }
      if (whole === "timeout") {
        void res.body.cancel().catch(() => {});
        out.report(res.status, false, cfg.DEFAULT_COOLDOWN_S, `the answer stalled: its body did not arrive within ${cfg.FIRST_EVENT_TIMEOUT_MS} ms`);
        return { failure: null };
      }
      out.usage = usageOf(x.provider, whole);
      out.report(res.status, true);
      return done(whole);
    }
    out.report(res.status, true);
    const [toClient, copy] = res.body.tee();
    x.waitUntil(usageOfJson(x.provider, copy, declared).then((u) => out.lateUsage(u)).catch(() => undefined));
    return done(toClient);
  }
  out.report(res.status, true);
  return done(res.body);
}

async function stream(x: AnswerContext, res: Response, body: ReadableStream<Uint8Array>): Promise<Attempt> {
  const { cfg, provider, out } = x;
  let peeked: Awaited<ReturnType<typeof peekFirstEvent>>;
  try {
    peeked = await peekFirstEvent(body, x.clock.within(cfg.FIRST_EVENT_TIMEOUT_MS), provider.openingEvents);
  } catch (e) {
    out.report(res.status, false, undefined, `the stream broke before its first event (${(e as Error).name})`);
    return { failure: null };
  }
  if (peeked === "timeout") {
    out.report(res.status, false, cfg.DEFAULT_COOLDOWN_S, `the stream sent no event within ${cfg.FIRST_EVENT_TIMEOUT_MS} ms`);
    return { failure: null };
  }
  const ev = peeked.first;
  if (ev === null) {
    // Empty, pings only, or bytes that are no event: nothing a client could use (DESIGN §11).
    void peeked.reader.cancel().catch(() => {});
    const size = peeked.chunks.reduce((n, c) => n + c.byteLength, 0);
    out.report(res.status, false, undefined, peeked.done ? `the stream ended without an event (${size} bytes)` : `the stream sent ${size} bytes without an event`);
    return { failure: null };
  }
  const head = concat(peeked.chunks);
  // An error event, or data holding an error object (a Chat Completions stream has no event names);
  // `"error": null` (every Responses event) is none.
  const cls = ev.event === "error" || ERROR_OBJECT.test(ev.data) ? provider.classifySseError(parseJsonBody(ev.data)) : null;
  if (cls) {
    void peeked.reader.cancel().catch(() => {});
    const limited = cls.class === "short" || cls.class === "quota";
    out.report(limited ? 429 : res.status, false, limited ? x.benchFor(cls.cooldownS) : undefined, cls.reason);
    return {
      failure: { accountId: x.accountId, cls: cls.class, reason: cls.reason ?? "stream error", status: res.status, statusText: res.statusText, headers: res.headers, head, rest: null },
    };
  }
  out.report(res.status, true);
  const counted = new SseUsage(provider);
  if (peeked.done) {
    counted.observe(head);
    out.lateUsage(counted.end());
    return { done: clientResponse(head, res, x.accountId, x.n) };
  }
  peeked.reader.releaseLock();
  const idleS = Math.round(cfg.STREAM_IDLE_TIMEOUT_MS / 1000);
  const toClient = relay(head, body, {
    cutEvent: (bytes) => provider.errorFormat.sseEvent(`the upstream connection was lost after ${bytes} bytes; the response is incomplete`),
    idleEvent: provider.errorFormat.sseEvent(`${provider.name} sent nothing for ${idleS} s, so the gateway ended the stream (STREAM_IDLE_TIMEOUT_MS); the response is incomplete`),
    idleMs: cfg.STREAM_IDLE_TIMEOUT_MS,
    abortUpstream: () => x.upstream.abort(),
    observe: (chunk) => counted.observe(chunk),
    end(how) {
      out.lateUsage(counted.end());
      if (counted.errored) out.lateFailure("the provider ended the stream with an error event after it began");
      else if (how === "cut") out.lateFailure("the stream was cut after it began; the client got an error event");
      else if (how === "idle") out.lateFailure(`the stream went silent for ${idleS} s after it began; the client got an error event`);
    },
    waitUntil: x.waitUntil,
  });
  return { done: clientResponse(toClient, res, x.accountId, x.n) };
}
