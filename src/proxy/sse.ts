/**
 * Server-sent events before the client has anything (docs/ARCHITECTURE.md, invariant 8):
 * peekFirstEvent reads only until the stream's first event that says something — past comments,
 * pings and the provider's opening events (Anthropic's `message_start`, OpenAI's
 * `response.created`: `provider.openingEvents`) — so a limit or an overload that a provider reports
 * as an `error` event right after its opening can still fail over while the client has nothing.
 *
 * Bounded in time (FIRST_EVENT_TIMEOUT_MS, the exchange's Deadline), in size (PEEK_LIMIT) and in
 * work: each chunk is normalised and searched once, whatever arrived before it (a provider sending
 * thousands of tiny chunks must not cost seconds of CPU). A read error is thrown. The outcome:
 *  - `first`: the first event that says something;
 *  - a stream that opened but says nothing yet when the deadline or PEEK_LIMIT comes (a model
 *    thinking quietly): its last opening event as `first`, and the stream is passed on;
 *  - `first: null`: it ended, or sent PEEK_LIMIT, without any event (empty, pings only, bytes that
 *    are no event): a failed attempt (DESIGN §11);
 *  - "timeout": nothing at all within the deadline.
 * After the peek, ./relay.ts passes the rest on.
 */

const PEEK_LIMIT = 64 * 1024;
/** A field line that starts an event: a first event larger than PEEK_LIMIT is on its way. */
const EVENT_FIELD = /^(?:event|data|id):/m;

export interface SseEvent {
  event: string;
  data: string;
}

export interface Peeked {
  first: SseEvent | null;
  chunks: Uint8Array[];
  reader: ReadableStreamDefaultReader<Uint8Array>;
  done: boolean;
}

/** One event block's fields (lines already split on LF); null for a block of comments only. */
export function parseEvent(block: string): SseEvent | null {
  let event = "";
  const data: string[] = [];
  for (const line of block.split("\n")) {
    if (line === "" || line.charCodeAt(0) === 0x3a) continue; // ":" starts a comment
    const i = line.indexOf(":");
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? "" : line.charCodeAt(i + 1) === 0x20 ? line.slice(i + 2) : line.slice(i + 1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  return event !== "" || data.length > 0 ? { event: event || "message", data: data.join("\n") } : null;
}

/** Reads until the first event that says something, or "timeout" once `expired` resolves with nothing seen. */
export async function peekFirstEvent(body: ReadableStream<Uint8Array>, expired: Promise<"timeout">, opening: ReadonlySet<string>): Promise<Peeked | "timeout"> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  const decoder = new TextDecoder();
  /** Normalised text of the event still incomplete; `from`: where a blank line may begin in it. */
  let text = "";
  let from = 0;
  let cr = false;
  let size = 0;
  let opened: SseEvent | null = null;
  const peeked = (first: SseEvent | null, done: boolean): Peeked => ({ first, chunks, reader, done });
  /** The first event that says something among the complete blocks of `text`, keeping the rest. */
  const scan = (): SseEvent | undefined => {
    let start = 0;
    for (;;) {
      const end = text.indexOf("\n\n", from);
      if (end < 0) break;
      const ev = parseEvent(text.slice(start, end));
      start = from = end + 2;
      if (ev === null || ev.event === "ping") continue;
      if (opening.has(ev.event)) {
        opened = ev;
        continue;
      }
      return ev;
    }
    text = text.slice(start);
    from = Math.max(0, text.length - 1);
    return undefined;
  };
  try {
    for (;;) {
      const r = await Promise.race([reader.read(), expired]);
      if (r === "timeout") {
        if (opened) return peeked(opened, false);
        void reader.cancel().catch(() => {});
        return "timeout";
      }
      if (r.done) {
        text += cr ? "\n\n\n" : "\n\n";
        return peeked(scan() ?? opened, true);
      }
      chunks.push(r.value);
      size += r.value.byteLength;
      let t = decoder.decode(r.value, { stream: true });
      // CR LF and CR end lines too; a CR at a chunk's end may be half of a CR LF.
      if (cr) t = "\r" + t;
      cr = t.endsWith("\r");
      if (cr) t = t.slice(0, -1);
      if (t.includes("\r")) t = t.replace(/\r\n?/g, "\n");
      text += t;
      const ev = scan();
      if (ev) return peeked(ev, false);
      if (size >= PEEK_LIMIT) return peeked(opened ?? (EVENT_FIELD.test(text) ? { event: "message", data: "" } : null), false);
    }
  } catch (e) {
    void reader.cancel().catch(() => {});
    throw e;
  }
}

export function isEventStream(headers: Headers): boolean {
  return (headers.get("content-type") ?? "").toLowerCase().startsWith("text/event-stream");
}
