/**
 * Server-sent events before the client has anything (docs/ARCHITECTURE.md, invariant 8):
 * peekFirstEvent reads only until the first complete event, so a limit that a provider reports as
 * the first `error` event of a 200 stream can still fail over. It has a deadline
 * (FIRST_EVENT_TIMEOUT_MS): a stream that sends headers and then nothing, or only comments and
 * pings, must not hold the request forever. A read error is thrown. A stream that ends, or sends
 * PEEK_LIMIT bytes, without any event (empty, pings only, garbage) has `first: null`: a failed
 * attempt (DESIGN §11). After the peek, ./relay.ts passes the rest on.
 */

const PEEK_LIMIT = 64 * 1024;
/** A field line that starts an event: a first event larger than PEEK_LIMIT is on its way. */
const EVENT_FIELD = /^(?:event|data|id):/m;

export interface Peeked {
  /**
   * The first event with a field other than comments; `{event: "message", data: ""}` when one has
   * begun but is larger than PEEK_LIMIT; null when the stream ended or sent PEEK_LIMIT without one.
   */
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
      if (ev !== undefined) return { first: ev, chunks, reader, done: false };
      if (size >= PEEK_LIMIT) return { first: EVENT_FIELD.test(text) ? { event: "message", data: "" } : null, chunks, reader, done: false };
    }
  } catch (e) {
    void reader.cancel().catch(() => {});
    throw e;
  }
}

export function isEventStream(headers: Headers): boolean {
  return (headers.get("content-type") ?? "").toLowerCase().startsWith("text/event-stream");
}
