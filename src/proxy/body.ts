/**
 * Reads a request body once, so the failover loop can replay it to the next account. Bodies over
 * MAX_BODY_BYTES are refused with 413 before anything goes upstream (docs/ARCHITECTURE.md, invariant 7): by the declared
 * Content-Length when there is one, else while counting the streamed bytes.
 */
import { GatewayError } from "../errors";
import { concat } from "../util";

export async function readBody(req: Request, limit: number): Promise<ArrayBuffer | null> {
  if (req.method === "GET" || req.method === "HEAD" || req.body === null) return null;
  const tooLarge = () =>
    new GatewayError(413, "request_too_large", `request body is larger than the gateway's limit of ${limit} bytes (MAX_BODY_BYTES)`);
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) throw tooLarge();
  if (declared !== null) {
    const buf = await req.arrayBuffer();
    if (buf.byteLength > limit) throw tooLarge();
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
      throw tooLarge();
    }
    chunks.push(value);
  }
  return concat(chunks).buffer;
}
