/**
 * Which request and response headers cross the gateway. The client's request passes through as it
 * was sent, minus its gateway key, the hop-by-hop headers (RFC 9110 §7.6.1) and what Cloudflare's
 * edge added; the provider module then sets the account's credential.
 *
 * Every Headers operation crosses into the runtime's C++ (tens of µs per request in the benchmark),
 * so fields are deleted by name, never by walking all of them, and responses are re-headed in place.
 */

const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"];
/** What Cloudflare's edge adds to an incoming request; it is not the client's to pass on. */
const EDGE_ADDED = ["cf-connecting-ip", "cf-connecting-ipv6", "cf-ipcountry", "cf-ray", "cf-visitor", "cf-worker", "cf-ew-via", "cdn-loop", "x-real-ip"];

function dropConnectionListed(h: Headers) {
  const conn = h.get("connection");
  if (conn === null) return;
  for (const name of conn.split(",")) {
    const n = name.trim().toLowerCase();
    if (n) h.delete(n);
  }
}

/** The client's headers minus credentials, hop-by-hop and edge-added ones (a fresh, mutable copy). */
export function upstreamRequestHeaders(incoming: Headers): Headers {
  const h = new Headers(incoming);
  dropConnectionListed(h);
  for (const n of HOP_BY_HOP) h.delete(n);
  // The gateway key: the upstream must never see it.
  h.delete("authorization");
  h.delete("x-api-key");
  h.delete("host");
  h.delete("content-length");
  for (const n of EDGE_ADDED) h.delete(n);
  return h;
}

/**
 * A response for the client, on the runtime's own copy of the upstream's headers. workerd already
 * drops keep-alive, connection, te, trailer, upgrade and transfer-encoding when it sends a response;
 * left to remove are the fields the upstream named in Connection and the proxy-* ones.
 */
export function clientResponse(body: BodyInit | null, init: { status: number; statusText: string; headers: Headers }, accountId: string, attempts: number): Response {
  const out = new Response(body, init);
  const h = out.headers;
  dropConnectionListed(h);
  h.delete("proxy-authenticate");
  h.delete("proxy-connection");
  h.set("x-subpool-account", accountId);
  h.set("x-subpool-attempts", String(attempts));
  return out;
}
