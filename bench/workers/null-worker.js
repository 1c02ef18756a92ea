// The "null Worker": the least a forwarding Worker can do. It sends the request, method, headers and
// body unchanged to UPSTREAM_BASE + path and returns the upstream's response as it comes (streamed).
// The benchmark's baseline for what workerd itself costs per proxied request.
// GET /__local answers without any upstream fetch: the cost of workerd's inbound side alone, so that
// (forwarded - local) is what one upstream round trip costs from inside a Worker.
const LOCAL = JSON.stringify({ ok: true, note: "answered by the null Worker itself, no upstream fetch" });
export default {
  fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/__local") return new Response(LOCAL, { headers: { "content-type": "application/json" } });
    return fetch(env.UPSTREAM_BASE + url.pathname + url.search, request);
  },
};
