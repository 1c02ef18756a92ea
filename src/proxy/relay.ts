/**
 * Relays an SSE answer to the client once its first event has been seen, at what the platform
 * charges (docs/ARCHITECTURE.md, "Streams and big requests"; DESIGN §11):
 *  - the client's bytes never pass through JS: the peeked head is written once, then the upstream
 *    is piped natively (`pipeTo` an `IdentityTransformStream`). In workerd JS being handed each chunk
 *    costs ~70 µs per event; the native pipe costs nothing measurable over a null forward;
 *  - usage and silence are read from a `tee()` copy at a coarse pace: after a read that waited for
 *    the network and got little, a pause of PACE_MS (what piles up meanwhile comes in one read);
 *    reads that find data waiting follow at once, so the tee holds at most one pause's worth;
 *  - a stream silent for `idleMs` ends for the client with `idleEvent` and the upstream is cancelled;
 *  - an upstream cut ends the client's stream with `cutEvent(bytes)`: never a silent truncation;
 *  - a client that goes away cancels both branches, so the upstream connection is let go (the
 *    provider stops generating, and billing, an answer nobody reads). The pipe learns of it at its
 *    next write: during a complete silence, only STREAM_IDLE_TIMEOUT_MS ends it.
 * `end` is called once, with how the stream ended, after both the pipe and the copy are done.
 */
import { stats } from "../stats";
import { Deadline } from "./deadline";

/**
 * While events trickle, the pause between two reads of the copy: it starts at PACE_FIRST_MS and
 * doubles after each read that got little, up to PACE_MS; it never shrinks again (a read that got a
 * lot is followed by another at once anyway, and restarting the pause then made a stream of events
 * 1 ms apart cost twice the isolate time: BENCHMARKS.md, "Isolate CPU").
 * Each read of the copy costs the process far more than its JS (the tee hands over what it queued):
 * pausing 100 ms (~75 reads for a 2,000-event answer) added ~7 µs per event over no copy at all,
 * 250 ms ~3 (BENCHMARKS.md, "Streams"); usage and silence need no finer grain. The short first
 * pauses bound what piles up in the tee when a stream turns out to be fast (the client may read it at
 * hundreds of MB/s): a fixed 500 ms let ~200 MB pile up on loopback before the first read.
 */
const PACE_FIRST_MS = 25;
const PACE_MS = 500;
/** A read that returned at least this much is followed by another at once (bounds the tee's buffer). */
const BURST_BYTES = 16 * 1024;
/**
 * This many full reads of the copy in a row (1 MiB that had piled up unread, 256 KiB at a time): no
 * model streams so (half a second of a model's stream is a few KB). The copy is behind a hostile
 * stream, and the tee holds whatever it has not read, growing by megabytes a read: it is let go at
 * once, so memory stays bounded (measured: 32 full reads allowed ~200 MB to pile up, 4 about 35 MB).
 */
const FULL_READS = 4;
/** A read of the copy takes at most this much (a default reader of a runtime stream hands over 4 KiB). */
const READ_BYTES = 256 * 1024;

export type StreamEnd = "done" | "cut" | "idle" | "client-gone";

export interface RelayOptions {
  /** The provider's error event for a stream the upstream cut, given the bytes that went through. */
  cutEvent(bytes: number): string;
  /** The provider's error event for a stream silent for `idleMs`. */
  idleEvent: string;
  idleMs: number;
  /**
   * Errors the upstream body (the fetch's AbortSignal). A pipe waiting on a silent source ignores
   * pipeTo's own signal in workerd, and a tee branch in a pipe cannot be cancelled: erroring the
   * source is the one way to end it.
   */
  abortUpstream(): void;
  /** Sees the stream's bytes (the head first), in coarse batches, off the client's path. */
  observe(chunk: Uint8Array): void;
  end(how: StreamEnd): void;
  waitUntil(p: Promise<unknown>): void;
}

const te = new TextEncoder();
const NOTHING_QUEUED = "nothing queued" as const;
const nothingQueued = Promise.resolve(NOTHING_QUEUED);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The client's stream: `head` (already read from `body`), then the rest of `body`. */
export function relay(head: Uint8Array, body: ReadableStream<Uint8Array>, o: RelayOptions): ReadableStream<Uint8Array> {
  const [toClient, copy] = body.tee();
  const { readable, writable } = new IdentityTransformStream();
  const reader = copyReader(copy);
  let stopped = false;
  let seen = head.byteLength;
  /** Resolves once the client's side is over: the copy then reads what is left without pausing. */
  let over!: () => void;
  const clientDone = new Promise<void>((r) => (over = r));
  stats.streams.relayed++;
  let how: StreamEnd | null = null;
  const ended = (h: StreamEnd) => (how ??= h);
  o.observe(head);

  /** Writes `text` and closes; false when the client is gone. */
  const closeWith = async (text: string): Promise<boolean> => {
    // A settled pipe lets go of the writable a turn later.
    for (let i = 0; writable.locked && i < 10; i++) await sleep(0);
    try {
      const w = writable.getWriter();
      await w.write(te.encode(text));
      await w.close();
      return true;
    } catch {
      return false;
    }
  };

  const pipe = (async () => {
    const w = writable.getWriter();
    try {
      await w.write(head);
    } catch {
      ended("client-gone");
      void reader.cancel().catch(() => {});
      void toClient.cancel().catch(() => {});
      return;
    }
    w.releaseLock();
    try {
      // preventAbort: an upstream error (or our abort of it) leaves the client's stream open for the error event.
      await toClient.pipeTo(writable, { preventAbort: true });
      ended("done");
    } catch {
      if (stopped) {
        // Silent for too long: the copy saw it and aborted the upstream.
        await closeWith(o.idleEvent);
        return;
      }
      // The upstream broke, or the client went away: a client that can still read gets the error event.
      if (await closeWith(o.cutEvent(seen))) ended("cut");
      else ended("client-gone");
      void reader.cancel().catch(() => {});
    }
  })();

  const watch = (async () => {
    const clock = new Deadline(o.idleMs, o.idleMs);
    let finished = false;
    let fullReads = 0;
    let pause = PACE_FIRST_MS;
    void clientDone.then(() => (finished = true));
    try {
      for (;;) {
        clock.within(o.idleMs);
        const pending = reader.next();
        // A read that is settled at once found data queued (a JS-backed copy queues chunk by chunk).
        const now = await Promise.race([pending, nothingQueued]);
        const waited = now === NOTHING_QUEUED;
        const r = waited ? await clock.race(pending) : now;
        if (r === "timeout") {
          ended("idle");
          stopped = true;
          o.abortUpstream();
          void reader.cancel().catch(() => {});
          return;
        }
        if (r.done) return;
        if (r.value.byteLength < READ_BYTES) fullReads = 0;
        else if (++fullReads >= FULL_READS) {
          // The copy keeps finding a full read waiting: it is behind a stream no model sends (one
          // event that never ends, or megabytes a second), and the tee holds all it has not read.
          // Let go of the copy; the client's branch flows on, unwatched.
          console.log(`subpool: a stream outran the gateway's reading of its copy (${FULL_READS} full reads of ${READ_BYTES} bytes); its usage and silence are no longer watched`);
          void reader.cancel().catch(() => {});
          return;
        }
        stats.streams.copyReads++;
        seen += r.value.byteLength;
        o.observe(r.value);
        // Waited for the network and got little: events trickle. Let them pile up for a pause, so the
        // next read takes many at once (workerd's copy hands over all that is queued in one read);
        // after a read that returned a lot, read again at once: the tee holds one pause's worth at most.
        if (r.value.byteLength < BURST_BYTES && waited && !finished) {
          await Promise.race([sleep(pause), clientDone]);
          pause = Math.min(pause * 2, PACE_MS);
        }
      }
    } catch {
      // The upstream broke: the pipe sees it too and ends the client's stream.
    } finally {
      clock.end();
    }
  })();

  void pipe.then(over);
  o.waitUntil(Promise.all([pipe, watch]).then(() => o.end(how ?? "done")));
  return readable;
}

/** The copy's next bytes, as much as is queued up to READ_BYTES. */
interface CopyReader {
  next(): Promise<ReadableStreamReadResult<Uint8Array>>;
  cancel(): Promise<void>;
}


/**
 * A network body's copy is read with a BYOB reader into one reused buffer: a default reader of a
 * workerd stream returns at most 4 KiB a read, so a fast stream would cost JS a read per 4 KiB (and
 * the tee would hold what the copy has not read). A JS-backed stream has no BYOB mode: read as is.
 */
function copyReader(copy: ReadableStream<Uint8Array>): CopyReader {
  let byob: ReadableStreamBYOBReader;
  try {
    byob = copy.getReader({ mode: "byob" });
  } catch {
    const plain = copy.getReader();
    return { next: () => plain.read(), cancel: (r?: unknown) => plain.cancel(r) };
  }
  let buffer = new ArrayBuffer(READ_BYTES);
  return {
    async next() {
      const r = await byob.read(new Uint8Array(buffer, 0, READ_BYTES));
      if (r.value) buffer = r.value.buffer as ArrayBuffer;
      return r.done ? { done: true, value: undefined } : { done: false, value: r.value! };
    },
    cancel: (r?: unknown) => byob.cancel(r),
  };
}
