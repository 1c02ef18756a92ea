// The "floor Worker": the least a gateway built like subpool can do per proxied request, written
// without any of subpool's code (so it needs no patch to src/ and outlives its restructuring).
// Replaces the `ablation-floor-fast-auth` patch of the A/B experiments (see bench/README.md).
//
// A Hono app (bundled by the bench with esbuild); `/anthropic/*` behind a key-checking middleware:
// the presented key (`x-api-key` or `Authorization: Bearer`) is hashed and compared once per isolate
// (SHA-256 against FLOOR_KEY_SHA256, constant time), then found in a Map, as subpool's verified-key
// cache does; the handler swaps the gateway key for PROVIDER_KEY, streams the request to
// UPSTREAM_BASE + path and returns the upstream answer as it is. No pool, no failover, no timeout,
// no header clean-up, no counters.
//
// So "floor" vs "null" is what Hono, a key check and one header copy cost, and "subpool" vs "floor"
// is what subpool's own contract costs on top (BENCHMARKS.md, "Missed: c=16 throughput").
import { Hono } from "hono";
import { createMiddleware } from "hono/factory";

const PREFIX = "/anthropic";
const verified = new Set();

function presentedKey(headers) {
  const x = headers.get("x-api-key");
  if (x) return x;
  const a = headers.get("authorization");
  return a && a.startsWith("Bearer ") ? a.slice(7) : null;
}

async function sha256Hex(s) {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

function sameString(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

const requireKey = createMiddleware(async (c, next) => {
  const key = presentedKey(c.req.raw.headers);
  if (!key) return c.json({ type: "error", error: { type: "authentication_error", message: "no key" } }, 401);
  if (!verified.has(key)) {
    if (!sameString(await sha256Hex(key), c.env.FLOOR_KEY_SHA256)) {
      return c.json({ type: "error", error: { type: "authentication_error", message: "invalid key" } }, 401);
    }
    verified.add(key);
  }
  await next();
});

const app = new Hono();

app.get("/healthz", (c) => c.json({ ok: true }));

app.all(`${PREFIX}/*`, requireKey, (c) => {
  const url = new URL(c.req.url);
  const headers = new Headers(c.req.raw.headers);
  headers.delete("authorization");
  headers.set("x-api-key", c.env.PROVIDER_KEY);
  return fetch(c.env.UPSTREAM_BASE + url.pathname.slice(PREFIX.length) + url.search, { method: c.req.method, headers, body: c.req.raw.body });
});

export default app;
