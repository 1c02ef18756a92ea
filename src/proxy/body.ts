/**
 * The client's request body, replayable for the failover loop. Bodies over MAX_BODY_BYTES are
 * refused with 413 before anything goes upstream (docs/ARCHITECTURE.md, invariant 7): by the
 * declared Content-Length when there is one, else while counting the streamed bytes.
 *
 * A body with a declared length is not read into the Worker: each attempt gets one branch of a tee of
 * the client's stream and the other branch is kept for the next attempt. The runtime moves the bytes
 * (and keeps the Content-Length on every branch); the kept branch buffers them until the request
 * ends, as an ArrayBuffer would. Reading a body into JavaScript costs a return to the isolate per
 * request, about 60 µs under load (BENCHMARKS.md, "Routing's cost"); a tee costs a few. The bytes
 * are read only when routing needs to name the conversation.
 */
import { GatewayError } from "../errors";
import { concat } from "../util";

const tooLarge = (limit: number) => new GatewayError(413, "request_too_large", `request body is larger than the gateway's limit of ${limit} bytes (MAX_BODY_BYTES)`);

/** The whole body in memory (management routes, and bodies of unknown length). */
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

export class RequestBody {
  private constructor(
    /** The bytes, once read. */
    private bytesRead: ArrayBuffer | null,
    /** The client's stream, or the branch kept from the last tee. */
    private stream: ReadableStream<Uint8Array> | null,
  ) {}

  /** The request's body, or null when it has none (GET, HEAD, no body). Throws 413 when too large. */
  static async of(req: Request, limit: number): Promise<RequestBody | null> {
    if (req.method === "GET" || req.method === "HEAD" || req.body === null) return null;
    const declared = req.headers.get("content-length");
    if (declared === null) {
      const bytes = await readBody(req, limit);
      return bytes ? new RequestBody(bytes, null) : null;
    }
    if (Number(declared) > limit) throw tooLarge(limit);
    // The runtime ends the stream at the declared length: the check above holds for the bytes.
    return new RequestBody(null, req.body);
  }

  /** The body for one upstream attempt. */
  forAttempt(): ArrayBuffer | ReadableStream<Uint8Array> {
    if (this.bytesRead) return this.bytesRead;
    const [now, later] = this.stream!.tee();
    this.stream = later;
    return now;
  }

  /** The whole body (read once; later attempts replay these bytes). */
  async bytes(): Promise<ArrayBuffer> {
    if (!this.bytesRead) {
      this.bytesRead = await new Response(this.stream).arrayBuffer();
      this.stream = null;
    }
    return this.bytesRead;
  }
}
