/**
 * Calling OAuth token endpoints (RFC 6749 §5) and reading their answers the same way for every
 * provider: which failures mean "log in again" and which may pass.
 */
import { concat, isPrintableAscii, parseJsonBody, readHead } from "../util";
import { isEdgeChallenge } from "./classify";

/** Error codes that mean the grant itself is dead. OpenAI adds its own for single-use refresh tokens. */
const DEAD_GRANT = new Set([
  "invalid_grant",
  "refresh_token_reused",
  "refresh_token_expired",
  "refresh_token_invalidated",
  "invalid_refresh_token",
  "unauthorized_client",
  "access_denied",
  "bad_refresh_token",
  "incorrect_client_credentials",
]);

/** Token answers are a few hundred bytes; anything much larger is garbage, not read further. */
const TOKEN_BODY_LIMIT = 64 * 1024;

export interface TokenCall {
  ok: boolean;
  status: number;
  json: Record<string, unknown> | undefined;
  /** A secret-free reason: the status and the endpoint's error code, never its full body. */
  reason: string;
  dead: boolean;
  /** The provider's edge answered with a Cloudflare challenge: about the gateway, never the grant. */
  challenge: boolean;
}

/** Tokens are at most this long, like every credential the gateway keeps. */
const MAX_TOKEN_BYTES = 8192;

/**
 * A token from a provider's answer, only when it can be kept and sent like any credential
 * (printable ASCII without spaces, at most 8 KiB): a provider's answer passes the same rule as a
 * person's input, so a token with a newline or non-ASCII never reaches a header (or the runtime's
 * warning about it, which would print it).
 */
export const tokenOf = (v: unknown): string | undefined => (typeof v === "string" && v.length <= MAX_TOKEN_BYTES && isPrintableAscii(v) ? v : undefined);

/**
 * One call, bounded in time (`timeoutMs` covers the headers and the body) and in size. Every way it
 * can fail — no answer, a reset, a body cut or stalled halfway, garbage — comes back as a failed
 * TokenCall that is not `dead`: only the endpoint's own words can end a grant.
 */
export async function callTokenEndpoint(url: string, init: RequestInit, timeoutMs: number): Promise<TokenCall> {
  const failed = (status: number, reason: string): TokenCall => ({ ok: false, status, json: undefined, reason, dead: false, challenge: false });
  const started = Date.now();
  let res: Response;
  try {
    // redirect "manual": a redirect must not carry a refresh token, key or code to another host.
    res = await fetch(url, { ...init, redirect: "manual", signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    const name = (e as Error).name;
    return failed(0, name === "TimeoutError" || name === "AbortError" ? `token endpoint did not answer within ${timeoutMs} ms` : `token endpoint unreachable (${name})`);
  }
  if (isEdgeChallenge(res.status, res.headers)) {
    void res.body?.cancel().catch(() => {});
    return { ...failed(res.status, `the provider's edge answered ${res.status} with a Cloudflare challenge (it blocks the gateway, not the account)`), challenge: true };
  }
  if (res.status >= 300 && res.status < 400) {
    void res.body?.cancel().catch(() => {});
    return failed(res.status, `token endpoint answered a redirect (${res.status}), which the gateway does not follow`);
  }
  let text = "";
  if (res.body) {
    let head: Awaited<ReturnType<typeof readHead>>;
    try {
      head = await readHead(res.body, TOKEN_BODY_LIMIT, Math.max(1, timeoutMs - (Date.now() - started)));
    } catch (e) {
      return failed(res.status, `token endpoint's answer (${res.status}) was cut off (${(e as Error).name})`);
    }
    if (head === "timeout") return failed(res.status, `token endpoint's answer (${res.status}) stalled: not complete within ${timeoutMs} ms`);
    if (head.more) {
      void head.reader.cancel().catch(() => {});
      return failed(res.status, `token endpoint answered ${res.status} with an oversized body`);
    }
    text = new TextDecoder().decode(concat(head.chunks));
  }
  const parsed = parseJsonBody(text);
  const json = parsed && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  if (res.ok && !json) return failed(res.status, `token endpoint answered ${res.status} with something that is not JSON`);
  if (res.ok) return { ok: true, status: res.status, json, reason: "", dead: false, challenge: false };
  const code = errorCode(json);
  // Only the endpoint's own words end a grant: a dead-grant code in a JSON answer. An HTML page, an
  // empty 4xx or a proxy's error says nothing about the grant (the refresh token is kept).
  const dead = (res.status === 400 || res.status === 401 || res.status === 403) && code !== undefined && DEAD_GRANT.has(code);
  return { ok: false, status: res.status, json, reason: `token endpoint answered ${res.status}${code ? ` ${code}` : ""}`, dead, challenge: false };
}

function errorCode(json: Record<string, unknown> | undefined): string | undefined {
  if (!json) return undefined;
  const e = json.error;
  if (typeof e === "string") return safeCode(e);
  if (e && typeof e === "object") {
    const o = e as Record<string, unknown>;
    if (typeof o.code === "string") return safeCode(o.code);
    if (typeof o.type === "string") return safeCode(o.type);
  }
  if (typeof json.code === "string") return safeCode(json.code);
  return undefined;
}

/** Error codes are identifiers; anything else is not echoed (it could be a token). */
const safeCode = (s: string) => (/^[a-z0-9_.-]{1,64}$/i.test(s) ? s : "error");

/**
 * Only the status of a call (the body is let go unread): for checking a credential at no token
 * cost. Network failures and timeouts come back as status 0 with a reason.
 */
export async function callStatus(url: string, init: RequestInit, timeoutMs: number): Promise<{ status: number; reason: string }> {
  try {
    const res = await fetch(url, { ...init, redirect: "manual", signal: AbortSignal.timeout(timeoutMs) });
    void res.body?.cancel().catch(() => {});
    if (isEdgeChallenge(res.status, res.headers)) return { status: 0, reason: `was blocked by a Cloudflare challenge (${res.status})` };
    if (res.status >= 300 && res.status < 400) return { status: 0, reason: `answered a redirect (${res.status}), not followed` };
    return { status: res.status, reason: `answered ${res.status}` };
  } catch (e) {
    const name = (e as Error).name;
    return { status: 0, reason: name === "TimeoutError" || name === "AbortError" ? `no answer within ${timeoutMs} ms` : `unreachable (${name})` };
  }
}

/** What a status says about a credential: 2xx fine, 401/403 refused, anything else unknown. */
export function verdictOf(status: number): "ok" | "invalid" | "unknown" {
  if (status >= 200 && status < 300) return "ok";
  if (status === 401 || status === 403) return "invalid";
  return "unknown";
}
