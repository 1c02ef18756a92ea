/**
 * Server-sent events, without buffering the stream (docs/ARCHITECTURE.md, invariant 8):
 *  - peekFirstEvent reads only until the first complete event, so a limit that a provider reports
 *    as the first `error` event of a 200 stream can still fail over while the client has nothing.
 *    It has a deadline (FIRST_EVENT_TIMEOUT_MS): a stream that sends headers and then nothing, or
 *    only comments and pings, must not hold the request forever. A read error is thrown;
 *  - passThrough hands the peeked bytes and then the rest of the upstream to the client chunk by
 *    chunk, and turns an upstream cut into a final `error` event: never a silent truncation.
 */

const PEEK_LIMIT = 64 * 1024;
const te = new TextEncoder();

export interface Peeked {
  /** The first event with a field other than comments, if it arrived whole. */
  first: { event: string; data: string } | null;
  chunks: Uint8Array[];
  reader: ReadableStreamDefaultReader<Uint8Array>;
  done: boolean;
}

/** Parses complete events (terminated by a blank line) from text; returns the first non-comment one. */
export function firstEvent(text: string): { event: string; data: string } | null | undefined {
  const normalized = text.replace(/\r\n?/g, "\n");
  let start = 0;
  for (;;) {
    const end = normalized.indexOf("\n\n", start);
    if (end < 0) return undefined; // no complete event yet
    const block = normalized.slice(start, end);
    start = end + 2;
    let event = "";
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line === "" || line.startsWith(":")) continue;
      const i = line.indexOf(":");
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (event !== "" || data.length > 0) return { event: event || "message", data: data.join("\n") };
  }
}

/** Reads until the first complete event, or "timeout" once `expired` (the exchange's Deadline) resolves. */
export async function peekFirstEvent(body: ReadableStream<Uint8Array>, expired: Promise<"timeout">): Promise<Peeked | "timeout"> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  const decoder = new TextDecoder();
  let text = "";
  let size = 0;
  try {
    for (;;) {
      const r = await Promise.race([reader.read(), expired]);
      if (r === "timeout") {
        void reader.cancel().catch(() => {});
        return "timeout";
      }
      if (r.done) return { first: firstEvent(text + "\n\n") ?? null, chunks, reader, done: true };
      chunks.push(r.value);
      size += r.value.byteLength;
      text += decoder.decode(r.value, { stream: true });
      const ev = firstEvent(text);
      if (ev !== undefined || size >= PEEK_LIMIT) return { first: ev ?? null, chunks, reader, done: false };
    }
  } catch (e) {
    void reader.cancel().catch(() => {});
    throw e;
  }
}

/** Sees every chunk that goes to the client, and the end of the stream (however it ends). */
export interface StreamObserver {
  observe(chunk: Uint8Array): void;
  end(): void;
}

/** The peeked bytes, then the rest; an upstream error becomes `cutEvent` and a clean end. */
export function passThrough(peeked: Peeked, cutEvent: (bytesSent: number) => string, watch?: StreamObserver): ReadableStream<Uint8Array> {
  const { chunks, reader } = peeked;
  let i = 0;
  let sent = 0;
  let finished = peeked.done;
  let ended = false;
  const end = () => {
    if (!ended) {
      ended = true;
      watch?.end();
    }
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (i < chunks.length) {
          const c = chunks[i]!;
          chunks[i++] = new Uint8Array(0);
          sent += c.byteLength;
          watch?.observe(c);
          controller.enqueue(c);
          return;
        }
        if (finished) {
          end();
          controller.close();
          return;
        }
        try {
          const { value, done } = await reader.read();
          if (done) {
            finished = true;
            end();
            controller.close();
            return;
          }
          sent += value.byteLength;
          watch?.observe(value);
          controller.enqueue(value);
        } catch {
          finished = true;
          end();
          controller.enqueue(te.encode(cutEvent(sent)));
          controller.close();
        }
      },
      cancel(reason) {
        end();
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

export function isEventStream(headers: Headers): boolean {
  return (headers.get("content-type") ?? "").toLowerCase().startsWith("text/event-stream");
}
