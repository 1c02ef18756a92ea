/**
 * The classification vocabulary shared by every provider module: what kind of answer an upstream
 * gave, and how long to bench the account, read from what the upstream said.
 *
 * Classes follow test/fixtures/rate-limits.json (real-shaped answers and how each is classified):
 *   ok          2xx/3xx: return it
 *   client      the request's own fault (400, 404, 413, 422 ...): return it untouched, no rotation
 *   quota       the account's plan or credit is exhausted: bench until the reset
 *   short       a short rate limit: bench per Retry-After
 *   not-account a limit about a feature or model, not this account: rotate without benching
 *   auth        401/403: refresh (OAuth) and retry, else bench AUTH_COOLDOWN_S
 *   overload    529, 5xx, network: rotate without benching (not the account's fault)
 *   blocked     a Cloudflare challenge from the provider's edge: the gateway is blocked, not the
 *               account; rotate without benching, refreshing or signing it out
 * Provider modules add their own signals on top of the generic Retry-After handling here; the rest
 * of the code only reads the resulting Classification.
 */

export type FailureClass = "quota" | "short" | "not-account" | "auth" | "overload" | "blocked";
export type ResultClass = "ok" | "client" | FailureClass;

export interface Classification {
  class: ResultClass;
  /** Seconds to bench the account (quota/short only). */
  cooldownS?: number;
  /** Short, secret-free reason shown in the account listing. */
  reason?: string;
}

/** Upper bound on any cooldown: a garbage header must not bench an account for years. */
export const MAX_COOLDOWN_S = 8 * 24 * 3600;

const clamp = (s: number) => Math.min(Math.max(s, 0), MAX_COOLDOWN_S);

/**
 * `retry-after-ms` (OpenAI SDK convention), then `retry-after` as seconds or an HTTP date (RFC 9110
 * §10.2.3). A wait of zero or less, or one that does not parse, says nothing: undefined, so the
 * caller falls back to other signals or DEFAULT_COOLDOWN_S instead of retrying at once.
 */
export function retryAfterSeconds(headers: Headers, now = Date.now()): number | undefined {
  const positive = (s: number) => (s > 0 ? clamp(s) : undefined);
  const ms = headers.get("retry-after-ms");
  if (ms !== null && /^\s*\d+(\.\d+)?\s*$/.test(ms)) {
    const s = positive(Number(ms) / 1000);
    if (s !== undefined) return s;
  }
  const ra = headers.get("retry-after");
  if (ra === null || ra.trim() === "") return undefined;
  if (/^\s*-?\d+(\.\d+)?\s*$/.test(ra)) return positive(Number(ra));
  const date = Date.parse(ra);
  if (Number.isFinite(date)) return positive((date - now) / 1000);
  return undefined;
}

/**
 * A Cloudflare challenge from the provider's edge (seen from chatgpt.com towards Workers): the
 * `cf-mitigated: challenge` header, or an HTML page where an API answers 403 or 503. It says the
 * gateway's outbound requests are blocked, nothing about the account.
 */
export function isEdgeChallenge(status: number, headers: Headers): boolean {
  if ((headers.get("cf-mitigated") ?? "").toLowerCase() === "challenge") return true;
  return (status === 403 || status === 503) && (headers.get("content-type") ?? "").toLowerCase().startsWith("text/html");
}

/** Epoch seconds ("1764000000"), or an RFC 3339 date, to seconds from now. */
export function resetToSeconds(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  const v = value.trim();
  if (/^\d{9,11}(\.\d+)?$/.test(v)) return clamp(Number(v) - now / 1000);
  const t = Date.parse(v);
  if (Number.isFinite(t)) return clamp((t - now) / 1000);
  return undefined;
}

/** Go-style durations as OpenAI sends them: "6m0s", "1s", "20ms", "1h2m3.5s". */
export function durationToSeconds(value: string | null): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (v === "") return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return clamp(Number(v));
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let total = 0;
  let consumed = 0;
  for (const m of v.matchAll(re)) {
    const n = Number(m[1]);
    total += m[2] === "h" ? n * 3600 : m[2] === "m" ? n * 60 : m[2] === "s" ? n : n / 1000;
    consumed += m[0].length;
  }
  return consumed === v.length ? clamp(total) : undefined;
}

/** The generic part of the failover table (docs/ARCHITECTURE.md, "Failover"), used by every provider after its own signals. */
export function classifyStatus(status: number): ResultClass {
  if (status < 400) return "ok";
  if (status === 401 || status === 403) return "auth";
  if (status === 429) return "short";
  if (status === 529 || status >= 500) return "overload";
  return "client";
}
