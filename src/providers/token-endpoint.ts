/**
 * Calling OAuth token endpoints (RFC 6749 §5) and reading their answers the same way for every
 * provider: which failures mean "log in again" and which may pass.
 */
import { parseJsonBody } from "../util";

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

const TOKEN_TIMEOUT_MS = 30_000;

export interface TokenCall {
  ok: boolean;
  status: number;
  json: Record<string, unknown> | undefined;
  /** A secret-free reason: the status and the endpoint's error code, never its full body. */
  reason: string;
  dead: boolean;
}

export async function callTokenEndpoint(url: string, init: RequestInit): Promise<TokenCall> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(TOKEN_TIMEOUT_MS) });
  } catch (e) {
    return { ok: false, status: 0, json: undefined, reason: `token endpoint unreachable (${(e as Error).name})`, dead: false };
  }
  const text = await res.text();
  const parsed = parseJsonBody(text);
  const json = parsed && typeof parsed === "object" ? (parsed as Record<string, unknown>) : undefined;
  if (res.ok) return { ok: true, status: res.status, json, reason: "", dead: false };
  const code = errorCode(json);
  const dead = (res.status === 400 || res.status === 401 || res.status === 403) && (code === undefined || DEAD_GRANT.has(code));
  return { ok: false, status: res.status, json, reason: `token endpoint answered ${res.status}${code ? ` ${code}` : ""}`, dead };
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
