/**
 * Which request and response headers cross the gateway. The client's request passes through as it
 * was sent except: the gateway key wherever it came (authorization, x-api-key, api-key), hop-by-hop
 * fields and every field named in Connection (RFC 9110 §7.6.1), cookies, what Cloudflare's edge or
 * a proxy on the way added (cf-*, x-forwarded-*, forwarded, true-client-ip, x-real-ip, cdn-loop),
 * and our own x-subpool-* fields. anthropic-beta, anthropic-version and everything else go
 * unchanged; the provider module then sets the account's credential.
 *
 * Every Headers operation crosses into the runtime's C++, so names are listed once and prefixes
 * checked in a single pass over the names; responses are re-headed in place.
 */

const DROP = new Set([
  // hop-by-hop (RFC 9110 §7.6.1) and proxy fields
  "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
  // the gateway key, wherever a client put it
  "authorization", "x-api-key", "api-key",
  // recomputed by fetch
  "host", "content-length",
  // the client's or the edge's, not the provider's business
  "cookie", "forwarded", "true-client-ip", "x-real-ip", "cdn-loop",
]);
const DROP_PREFIXES = ["cf-", "x-forwarded-", "x-subpool-"];

function dropConnectionListed(h: Headers) {
  const conn = h.get("connection");
  if (conn === null) return;
  for (const name of conn.split(",")) {
    const n = name.trim().toLowerCase();
    if (n) h.delete(n);
  }
}

/** The client's headers minus what must not reach the provider (a fresh, mutable copy). */
export function upstreamRequestHeaders(incoming: Headers): Headers {
  const h = new Headers(incoming);
  dropConnectionListed(h);
  const names: string[] = [];
  for (const name of h.keys()) {
    if (DROP.has(name) || DROP_PREFIXES.some((p) => name.startsWith(p))) names.push(name);
  }
  for (const name of names) h.delete(name);
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
