/**
 * Which request and response headers cross the gateway. The client's request passes through as it
 * was sent, minus its gateway key, the hop-by-hop headers (RFC 9110 §7.6.1) and what Cloudflare's
 * edge added; the provider module then sets the account's credential.
 */

const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"];

function dropHopByHop(h: Headers) {
  for (const name of (h.get("connection") ?? "").split(",")) {
    const n = name.trim().toLowerCase();
    if (n) h.delete(n);
  }
  for (const n of HOP_BY_HOP) h.delete(n);
}

/** The client's headers minus credentials and hop-by-hop ones; built once per request, copied per attempt. */
export function upstreamRequestHeaders(incoming: Headers): Headers {
  const h = new Headers(incoming);
  dropHopByHop(h);
  // The gateway key: the upstream must never see it.
  h.delete("authorization");
  h.delete("x-api-key");
  h.delete("host");
  h.delete("content-length");
  for (const name of [...h.keys()]) if (name.startsWith("cf-") || name === "x-real-ip") h.delete(name);
  return h;
}

export function clientResponseHeaders(upstream: Headers, accountId: string, attempts: number): Headers {
  const h = new Headers(upstream);
  dropHopByHop(h);
  h.set("x-subpool-account", accountId);
  h.set("x-subpool-attempts", String(attempts));
  return h;
}
