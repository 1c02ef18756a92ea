// An in-memory KV namespace for `workerd serve` (workerd has no KV of its own; a kvNamespace binding
// talks HTTP to a service). Implements the protocol workerd speaks to that service, the same one
// Miniflare's KV simulator implements: GET /<key>, PUT /<key> (CF-KV-Metadata header, expiration /
// expiration_ttl), DELETE /<key>, GET / (list: prefix, key_count_limit, cursor), POST /bulk/get.
// Keys arrive percent-encoded with ?urlencoded=true. Values live in this isolate's memory only.
const store = new Map(); // key -> { value: ArrayBuffer, metadata: string | null, expiration: number | null }
const now = () => Math.floor(Date.now() / 1000);

function live(key) {
  const e = store.get(key);
  if (!e) return null;
  if (e.expiration !== null && e.expiration <= now()) {
    store.delete(key);
    return null;
  }
  return e;
}

function keyOf(url) {
  const raw = url.pathname.slice(1);
  return url.searchParams.get("urlencoded") === "true" ? decodeURIComponent(raw) : raw;
}

export default {
  async fetch(request) {
    const url = new URL(request.url);
    const m = request.method;
    if (m === "GET" && url.pathname === "/") {
      const prefix = url.searchParams.get("prefix") ?? "";
      const limit = Number(url.searchParams.get("key_count_limit") ?? 1000);
      const after = url.searchParams.get("cursor") ? atob(url.searchParams.get("cursor")) : null;
      const names = [...store.keys()].filter((k) => k.startsWith(prefix) && live(k) && (after === null || k > after)).sort();
      const page = names.slice(0, limit);
      const keys = page.map((name) => {
        const e = store.get(name);
        const k = { name };
        if (e.expiration !== null) k.expiration = e.expiration;
        if (e.metadata !== null) k.metadata = e.metadata;
        return k;
      });
      const complete = names.length <= limit;
      return Response.json(complete ? { keys, list_complete: true, cacheStatus: null } : { keys, list_complete: false, cursor: btoa(page.at(-1)), cacheStatus: null });
    }
    if (m === "POST" && url.pathname === "/bulk/get") {
      const { keys, type, withMetadata } = await request.json();
      const out = {};
      const td = new TextDecoder();
      for (const k of keys) {
        const e = live(k);
        let v = e ? td.decode(e.value) : null;
        if (v !== null && type === "json") v = JSON.parse(v);
        out[k] = v !== null && withMetadata ? { value: v, metadata: e.metadata === null ? null : JSON.parse(e.metadata) } : v;
      }
      return Response.json(out);
    }
    const key = keyOf(url);
    if (m === "GET") {
      const e = live(key);
      if (!e) return new Response("Not Found", { status: 404 });
      const headers = new Headers();
      if (e.expiration !== null) headers.set("CF-Expiration", String(e.expiration));
      if (e.metadata !== null) headers.set("CF-KV-Metadata", e.metadata);
      return new Response(e.value, { headers });
    }
    if (m === "PUT") {
      const ttl = url.searchParams.get("expiration_ttl");
      const exp = url.searchParams.get("expiration");
      const expiration = ttl !== null ? now() + Number(ttl) : exp !== null ? Number(exp) : null;
      store.set(key, { value: await request.arrayBuffer(), metadata: request.headers.get("CF-KV-Metadata"), expiration });
      return new Response(null);
    }
    if (m === "DELETE") {
      store.delete(key);
      return new Response(null);
    }
    return new Response("method not allowed", { status: 405 });
  },
};
