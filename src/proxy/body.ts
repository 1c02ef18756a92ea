/**
 * Request bodies: read once for the management API (readBody), kept for replay on the proxy
 * (replayable). Bodies over MAX_BODY_BYTES are refused with 413 (docs/ARCHITECTURE.md, invariant 7):
 * by the declared Content-Length before anything goes upstream, else while counting the bytes.
 *
 * On the proxy a coding tool's body is 50 KB–1 MB, and reading it into the isolate costs more than
 * the rest of the request (DESIGN §11: `arrayBuffer()` +275–550 µs for 271 KB, `tee()` +75–175).
 * So a body with a declared length over SMALL_BODY_BYTES is never read by the gateway: each attempt
 * sends one branch of a `tee()` and keeps the other for the next (the runtime holds the bytes; a
 * branch keeps the client's Content-Length). Small bodies (every JSON side call) are read whole: for
 * them that is cheapest, and routing can look at them for free. A body of no declared length
 * (chunked) is read up to SMALL_BODY_BYTES; past that it is replayed the same way, its bytes counted
 * as they pass, so MAX_BODY_BYTES holds without the isolate ever holding a whole 32 MiB body.
 */
import { GatewayError } from "../errors";
import { concat } from "../util";

/** Bodies up to this size (declared) are read whole. */
const SMALL_BODY_BYTES = 64 * 1024;

const tooLarge = (limit: number) =>
  new GatewayError(413, "request_too_large", `request body is larger than the gateway's limit of ${limit} bytes (MAX_BODY_BYTES)`);

export async function readBody(req: Request, limit: number): Promise<ArrayBuffer | null> {
  if (req.method === "GET" || req.method === "HEAD" || req.body === null) return null;
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) throw tooLarge(limit);
  if (declared !== null) {
    const buf = await req.arrayBuffer();
    if (buf.byteLength > limit) throw tooLarge(limit);
    return buf;
  }
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  return concat(chunks).buffer;
}

/** A request body that every attempt can send again. */
export interface ReplayableBody {
  /** The body for the next upstream attempt. */
  next(): BodyInit | null;
  /** The bytes if they are in memory already, else null (never reads). */
  held(): ArrayBuffer | null;
  /** The bytes, read now if they were not (routing's body fallback; a later `next()` sends them). */
  bytes(): Promise<ArrayBuffer | null>;
  /** The answer is final: let go of the kept copy. */
  release(): void;
  /** An undeclared length turned out over MAX_BODY_BYTES while an attempt sent it (the answer is 413). */
  overLimit(): boolean;
}

function buffered(bytes: ArrayBuffer | null): ReplayableBody {
  return { next: () => bytes, held: () => bytes, bytes: async () => bytes, release() {}, overLimit: () => false };
}

export async function replayable(req: Request, limit: number): Promise<ReplayableBody> {
  if (req.method === "GET" || req.method === "HEAD" || req.body === null) return buffered(null);
  const declared = req.headers.get("content-length");
  if (declared !== null) {
    const length = Number(declared);
    if (length > limit) throw tooLarge(limit);
    return length > SMALL_BODY_BYTES ? teed(req.body) : buffered(await readBody(req, limit));
  }
  // No declared length (a chunked upload): the first SMALL_BODY_BYTES are read; a body that goes on
  // is replayed like a large one, counted as it passes (it is never held whole in the isolate).
  const reader = req.body.getReader();
  const head: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return buffered(concat(head).buffer);
    head.push(value);
    size += value.byteLength;
    if (size > SMALL_BODY_BYTES) break;
  }
  let over = false;
  const counted = new ReadableStream<Uint8Array>(
    {
      pull: async (c) => {
        const next = head.shift();
        if (next) return c.enqueue(next);
        const { value, done } = await reader.read();
        if (done) return c.close();
        size += value.byteLength;
        if (size > limit) {
          over = true;
          void reader.cancel().catch(() => {});
          return c.error(tooLarge(limit));
        }
        c.enqueue(value);
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  );
  return { ...teed(counted), overLimit: () => over };
}

/** A body replayed from tee branches: each attempt sends one, the other is kept for the next. */
function teed(body: ReadableStream<Uint8Array>): ReplayableBody {
  let kept = body;
  let whole: ArrayBuffer | null = null;
  return {
    next() {
      if (whole) return whole;
      // A tee branch of the client's body keeps its length: the upstream gets the same Content-Length.
      const [send, keep] = kept.tee();
      kept = keep;
      return send;
    },
    held: () => whole,
    async bytes() {
      whole ??= await new Response(kept).arrayBuffer();
      return whole;
    },
    release() {
      if (!whole) void kept.cancel().catch(() => {});
    },
    overLimit: () => false,
  };
}
