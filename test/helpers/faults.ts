/**
 * Misbehaving answers, as real providers send them: a connection reset before or after the headers,
 * a body cut halfway, a stall, a trickle, garbage. Each builds its Response inside the fake's
 * handler (workerd forbids sharing I/O objects across request contexts). Streams count what the
 * gateway pulled, so a test can tell how much of a body was read.
 */
const enc = new TextEncoder();

export interface Tap {
  /** Bytes the gateway pulled from the body. */
  pulled: number;
  /** Whether the gateway cancelled the body (let go of the connection). */
  cancelled: boolean;
}

export const tap = (): Tap => ({ pulled: 0, cancelled: false });

type Init = { status?: number; headers?: Record<string, string> };

function respond(body: ReadableStream<Uint8Array>, init: Init): Response {
  return new Response(body, { status: init.status ?? 200, headers: init.headers ?? {} });
}

/** A body made of `parts`, each sent after `delayMs`; then `end`: close, reset, or stall for good. */
export function scripted(parts: string[], end: "close" | "reset" | "stall", init: Init = {}, t: Tap = tap(), delayMs = 0): Response {
  let i = 0;
  let release: (() => void) | undefined;
  return respond(
    new ReadableStream<Uint8Array>(
      {
        async pull(c) {
          if (i < parts.length) {
            if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
            const chunk = enc.encode(parts[i++]!);
            t.pulled += chunk.byteLength;
            c.enqueue(chunk);
            return;
          }
          if (end === "close") c.close();
          else if (end === "reset") c.error(new Error("connection reset by peer"));
          // Nothing more (until cancelled). A timer, not a bare promise: a real stalled socket is
          // pending I/O, and workerd cancels a request that waits on nothing as "hung".
          else await new Promise<void>((r) => ((release = r), setTimeout(r, 60_000)));
        },
        cancel() {
          t.cancelled = true;
          release?.();
        },
      },
      { highWaterMark: 0 },
    ),
    init,
  );
}

/** The connection drops before any header arrives. */
export const resetBeforeHeaders = (): Promise<Response> => Promise.reject(new TypeError("Network connection lost."));

/** Nothing ever arrives. */
export const hang = (): Promise<Response> => new Promise<Response>(() => {});

/** A body of `total` bytes, made lazily in 16 KiB chunks (never held whole). */
export function huge(total: number, init: Init, t: Tap = tap()): Response {
  const chunk = new Uint8Array(16 * 1024).fill(0x61);
  let sent = 0;
  return respond(
    new ReadableStream<Uint8Array>(
      {
        pull(c) {
          if (sent >= total) return c.close();
          const n = Math.min(chunk.byteLength, total - sent);
          sent += n;
          t.pulled += n;
          c.enqueue(n === chunk.byteLength ? chunk.slice() : chunk.slice(0, n));
        },
        cancel() {
          t.cancelled = true;
        },
      },
      { highWaterMark: 0 },
    ),
    init,
  );
}

/** Bytes that are not what the content type says. */
export const garbage = (init: Init): Response =>
  new Response(new Uint8Array([0xff, 0xfe, 0x00, 0x7b, 0x22, 0x0a, 0x9c, 0x3c, 0x68, 0x74]), { status: init.status ?? 200, headers: { "content-type": "application/json", ...init.headers } });

export const SSE = { "content-type": "text/event-stream; charset=utf-8" };
export const JSON_HEADERS = { "content-type": "application/json" };
export const sseEvent = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
