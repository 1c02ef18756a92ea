/**
 * OpenAI: API keys against api.openai.com, and ChatGPT Plus/Pro OAuth against the Codex backend
 * (Responses API only: /v1/responses -> CODEX_API_BASE/responses, with ChatGPT-Account-Id).
 * Quirks (docs/ARCHITECTURE.md, "Provider facts"): the token endpoint is form-encoded; refresh tokens are single use (reuse
 * answers 401 refresh_token_reused); the account id is a claim inside the access token (a JWT);
 * plan limits come as x-codex-* headers or a body with resets_in_seconds, sometimes as a 404; an
 * API key out of credit answers 429 insufficient_quota, which no short wait cures.
 */
import { z } from "zod";
import type { ErrorFormat, ErrorType } from "../errors";
import { num, parseJsonBody, str } from "../util";
import { timingSafeEqual } from "../vault/envelope";
import { type Classification, classifyStatus, durationToSeconds, retryAfterSeconds } from "./classify";
import { token, why } from "./import-fields";
import { jwtClaims, parsePastedCode, pkcePair, refused } from "./login";
import type { Credits } from "../wire";
import { type QuotaReading, type Usage, type UsageReader, budgetWindows, count, windowOf } from "./telemetry";
import { callStatus, callTokenEndpoint, verdictOf, tokenOf } from "./token-endpoint";
import type { AccountExtras, CredentialFileFormat, ImportEntry, Provider, Refusal, SessionReader } from "./types";

export const OPENAI_CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann";
/** Registered for the Codex client id: the browser lands there after sign-in (nothing listens). */
export const OPENAI_REDIRECT_URI = "http://localhost:1455/auth/callback";
const OPENAI_SCOPES = "openid profile email offline_access";
/** An exhausted API-key balance: bench for an hour, then try again (someone may have paid). */
const INSUFFICIENT_QUOTA_COOLDOWN_S = 3600;

const OPENAI_CODE: Record<ErrorType, string> = {
  invalid_request_error: "invalid_request",
  authentication_error: "invalid_api_key",
  permission_error: "permission_denied",
  not_found_error: "not_found",
  request_too_large: "request_too_large",
  rate_limit_error: "rate_limit_exceeded",
  api_error: "server_error",
  overloaded_error: "overloaded",
};

/** OpenAI's error envelope (also spoken by Copilot's OpenAI-shaped API). */
export const openaiErrors: ErrorFormat = {
  body: (type, message, field) => JSON.stringify({ error: { message, type, code: OPENAI_CODE[type], param: field ?? null } }),
  // Chat Completions clients look for `error` in the data; Responses clients for `type: "error"`.
  sseEvent(message) {
    const error = { type: "api_error", code: "upstream_disconnected", message };
    return `event: error\ndata: ${JSON.stringify({ type: "error", code: error.code, message, error })}\n\n`;
  },
};

/** The extras key under which an account keeps its ChatGPT workspace id. */
const ACCOUNT_ID = "chatgptAccountId";

/** Reads the ChatGPT account id from a JWT's claims without verifying it (the backend does). */
export function chatgptAccountIdFromJwt(token: string | undefined): string | undefined {
  const claims = jwtClaims(token);
  if (!claims) return undefined;
  const auth = claims["https://api.openai.com/auth"] as Record<string, unknown> | undefined;
  return str(auth?.chatgpt_account_id) ?? str(claims.chatgpt_account_id);
}

interface OpenAIError {
  type?: string;
  code?: string;
  resetsInSeconds?: number;
}

function errorOf(body: string | null): OpenAIError {
  const j = parseJsonBody(body) as { error?: Record<string, unknown> } | undefined;
  const e = j?.error;
  if (!e || typeof e !== "object") return {};
  return { type: str(e.type), code: str(e.code), resetsInSeconds: num(e.resets_in_seconds) };
}

/** Codex windows: the reset of the window that is full, else the longest announced. */
function codexReset(headers: Headers): number | undefined {
  const windows = ["primary", "secondary"].map((w) => ({
    used: Number(headers.get(`x-codex-${w}-used-percent`) ?? NaN),
    reset: durationToSeconds(headers.get(`x-codex-${w}-reset-after-seconds`)),
  }));
  const full = windows.filter((w) => w.used >= 100 && w.reset !== undefined);
  const pick = (full.length ? full : windows).map((w) => w.reset).filter((s): s is number => s !== undefined);
  return pick.length ? Math.max(...pick) : undefined;
}

/** API-key limits: the reset of each exhausted (or unreported) budget, the longest of them. */
function apiKeyReset(headers: Headers): number | undefined {
  const resets = ["requests", "tokens"]
    .filter((k) => (headers.get(`x-ratelimit-remaining-${k}`) ?? "0") === "0")
    .map((k) => durationToSeconds(headers.get(`x-ratelimit-reset-${k}`)))
    .filter((s): s is number => s !== undefined);
  return resets.length ? Math.max(...resets) : undefined;
}

export function classifyOpenAIStyle(status: number, headers: Headers, body: string | null, now: number): Classification {
  const err = status >= 400 ? errorOf(body) : {};
  const is = (v: string) => err.type === v || err.code === v;
  if ((status === 429 || status === 404) && is("usage_limit_reached")) {
    const cooldownS = err.resetsInSeconds ?? codexReset(headers) ?? retryAfterSeconds(headers, now);
    return { class: "quota", cooldownS, reason: "ChatGPT plan usage limit reached" };
  }
  if (status === 429 && is("insufficient_quota")) {
    return { class: "quota", cooldownS: INSUFFICIENT_QUOTA_COOLDOWN_S, reason: "API key out of credit (insufficient_quota)" };
  }
  if (status === 429) {
    const cooldownS = retryAfterSeconds(headers, now) ?? err.resetsInSeconds ?? codexReset(headers) ?? apiKeyReset(headers);
    return { class: "short", cooldownS, reason: "rate limited" };
  }
  const cls = classifyStatus(status);
  if (cls === "overload") return { class: cls, reason: `upstream answered ${status}` };
  if (cls === "auth") return { class: cls, reason: `upstream answered ${status}${err.code ? ` (${err.code.replace(/[^\w.-]/g, "").slice(0, 64)})` : ""}` };
  return { class: cls };
}

export function classifyOpenAIStreamError(data: unknown): Classification | null {
  const d = data as { type?: unknown; code?: unknown; error?: { type?: unknown; code?: unknown }; response?: { error?: { code?: unknown } } } | undefined;
  const codes = [d?.code, d?.error?.type, d?.error?.code, d?.response?.error?.code].map(str);
  if (codes.some((c) => c === "rate_limit_exceeded" || c === "rate_limit_error" || c === "usage_limit_reached"))
    return { class: "short", reason: "rate limited (stream error event)" };
  if (codes.some((c) => c === "server_error" || c === "overloaded_error" || c === "server_is_overloaded"))
    return { class: "overload", reason: "overloaded (stream error event)" };
  return null;
}

const extrasOf = (access: string | undefined): AccountExtras => {
  const id = chatgptAccountIdFromJwt(access);
  return id ? { [ACCOUNT_ID]: id } : {};
};

/** Codex CLI's ~/.codex/auth.json: {"OPENAI_API_KEY": null|string, "tokens": {id_token, access_token, refresh_token, account_id}}. */
const CodexTokens = z.object({ id_token: z.string().optional(), access_token: token.optional(), refresh_token: token, account_id: z.string().optional() });

const codexFile: CredentialFileFormat = {
  name: "codex",
  detect: (data) => "tokens" in data || "OPENAI_API_KEY" in data,
  parse(data) {
    const entries: ImportEntry[] = [];
    const refused: Refusal[] = [];
    if (data.tokens !== undefined && data.tokens !== null) {
      const r = CodexTokens.safeParse(data.tokens);
      if (!r.success) refused.push({ entry: "tokens", reason: why(r.error) });
      else {
        const e = oauthEntry({ entry: "tokens", provider: openai.id, type: "oauth", refresh: r.data.refresh_token, access: r.data.access_token }, r.data.id_token);
        if (!chatgptAccountIdFromJwt(r.data.access_token) && r.data.account_id && !e.identity) e.identity = `openai:${r.data.account_id}:`;
        entries.push(e);
      }
    }
    if (typeof data.OPENAI_API_KEY === "string" && data.OPENAI_API_KEY.trim()) {
      entries.push({ entry: "OPENAI_API_KEY", provider: openai.id, type: "api", key: data.OPENAI_API_KEY.trim(), label: "Codex API key" });
    } else if (data.OPENAI_API_KEY !== undefined && data.OPENAI_API_KEY !== null) {
      refused.push({ entry: "OPENAI_API_KEY", reason: "expected a string or null" });
    }
    return { entries, refused };
  },
};

/** A bare ChatGPT grant: who it belongs to and when its access token expires, from the JWTs. */
function oauthEntry(e: ImportEntry, idToken?: string): ImportEntry {
  const who = openaiIdentity(e.access, idToken);
  return { ...e, expires: e.expires ?? (e.access ? jwtExpiry(e.access) : null), identity: who.identity, label: e.label ?? who.label ?? undefined };
}

/** The windows of ChatGPT's usage endpoint (`wham/usage`), named as the x-codex-* headers name them. */
export function whamWindows(json: Record<string, unknown>): QuotaReading | null {
  const limits = json.rate_limit as Record<string, { used_percent?: unknown; reset_at?: unknown } | null | undefined> | undefined;
  const windows: QuotaReading["windows"] = {};
  for (const w of ["primary", "secondary"] as const) {
    const raw = limits?.[`${w}_window`];
    const pct = count(raw?.used_percent);
    const at = count(raw?.reset_at);
    const win = windowOf(pct !== undefined ? pct / 100 : undefined, at !== undefined ? at * 1000 : null);
    if (win) windows[w] = win;
  }
  const c = json.credits as { has_credits?: unknown; unlimited?: unknown; balance?: unknown } | undefined;
  const credits = c && typeof c === "object" ? creditsOf(c.has_credits, c.unlimited, c.balance) : undefined;
  return Object.keys(windows).length || credits ? { status: null, windows, ...(credits ? { credits } : {}) } : null;
}

/** Codex windows (percent used, seconds to reset) and API-key budgets (x-ratelimit-*). */
export function openaiQuota(headers: Headers, now: number): QuotaReading | null {
  const credits = headers.get("x-codex-credits-has-credits");
  if (credits === null && !headers.has("x-codex-primary-used-percent") && !headers.has("x-codex-secondary-used-percent") && !headers.has("x-ratelimit-limit-requests") && !headers.has("x-ratelimit-limit-tokens")) return null;
  const windows: QuotaReading["windows"] = {};
  for (const w of ["primary", "secondary"] as const) {
    const pct = count(headers.get(`x-codex-${w}-used-percent`));
    // Newer answers say when (reset-at, epoch s), older ones how long (reset-after-seconds).
    const at = count(headers.get(`x-codex-${w}-reset-at`));
    const secs = durationToSeconds(headers.get(`x-codex-${w}-reset-after-seconds`));
    const win = windowOf(pct !== undefined ? pct / 100 : undefined, at !== undefined ? at * 1000 : secs !== undefined ? Math.round(now + secs * 1000) : null);
    if (win) windows[w] = win;
  }
  Object.assign(
    windows,
    budgetWindows(headers, now, {
      requests: { limit: "x-ratelimit-limit-requests", remaining: "x-ratelimit-remaining-requests", reset: "x-ratelimit-reset-requests" },
      tokens: { limit: "x-ratelimit-limit-tokens", remaining: "x-ratelimit-remaining-tokens", reset: "x-ratelimit-reset-tokens" },
    }),
  );
  const c = credits === null ? undefined : creditsOf(credits, headers.get("x-codex-credits-unlimited"), headers.get("x-codex-credits-balance"));
  return Object.keys(windows).length || c ? { status: null, windows, ...(c ? { credits: c } : {}) } : null;
}

/** Credits from strings or JSON values ("true"/true, "5.39"/5.39); undefined when has-credits says nothing. */
function creditsOf(has: unknown, unlimited: unknown, balance: unknown): Credits | undefined {
  const flag = (v: unknown) => (v === true || v === "true" ? true : v === false || v === "false" ? false : undefined);
  const h = flag(has);
  if (h === undefined) return undefined;
  const b = count(balance);
  return { hasCredits: h, unlimited: flag(unlimited) ?? false, balance: b ?? null };
}

/**
 * Chat Completions (prompt_tokens, completion_tokens, prompt_tokens_details.cached_tokens) and the
 * Responses API (input_tokens, output_tokens, input_tokens_details.cached_tokens). OpenAI counts
 * cached tokens inside the input; ours excludes them, as Anthropic's does.
 */
function usageFrom(u: unknown): Usage | null {
  if (!u || typeof u !== "object") return null;
  const o = u as Record<string, unknown>;
  const input = count(o.input_tokens) ?? count(o.prompt_tokens);
  const output = count(o.output_tokens) ?? count(o.completion_tokens);
  if (input === undefined && output === undefined) return null;
  const details = (o.input_tokens_details ?? o.prompt_tokens_details) as { cached_tokens?: unknown } | undefined;
  const cached = count(details?.cached_tokens) ?? 0;
  return { inputTokens: Math.max(0, (input ?? 0) - cached), outputTokens: output ?? 0, cacheReadTokens: cached, cacheWriteTokens: 0 };
}

export const openaiUsage: UsageReader = {
  key: "usage",
  fromJson: (body) => usageFrom((body as { usage?: unknown } | null)?.usage),
  // Responses streams end with response.completed carrying the whole usage; Chat Completions
  // streams (with stream_options.include_usage) end with a chunk whose `usage` is the total.
  fromSse(sofar, _event, data) {
    const d = data as { response?: { usage?: unknown }; usage?: unknown } | null;
    return usageFrom(d?.response?.usage) ?? usageFrom(d?.usage) ?? sofar;
  },
};

const PROMPT_CACHE_KEY = /"prompt_cache_key"\s*:\s*"((?:[^"\\]|\\.){1,512})"/g;

/**
 * Codex CLI names its conversation in headers (`session-id` and `thread-id` since 0.16x; older
 * versions `session_id` / `conversation_id`); other clients may set `prompt_cache_key`, which
 * Codex's body puts near its end. Shared with Copilot, which speaks the same API.
 */
export const openaiSession: SessionReader = {
  fromHeaders(headers) {
    const h = headers.get("session-id") ?? headers.get("session_id") ?? headers.get("conversation_id") ?? headers.get("thread-id");
    return h ? `s:${h}` : null;
  },
  fromBody(text) {
    if (!text.includes('"prompt_cache_key"')) return null;
    let last: string | undefined;
    for (const m of text.matchAll(PROMPT_CACHE_KEY)) last = m[1];
    return last ? `p:${last}` : null;
  },
  opening(body) {
    const j = body as { instructions?: unknown; messages?: unknown; input?: unknown } | undefined;
    if (!j || typeof j !== "object") return null;
    const turns = Array.isArray(j.messages) ? j.messages : Array.isArray(j.input) ? j.input : typeof j.input === "string" ? [j.input] : [];
    return turns.length > 0 ? [j.instructions ?? null, turns[0]] : null;
  },
};

export const openai: Provider = {
  id: "openai",
  prefix: "/openai",
  name: "OpenAI",
  errorFormat: openaiErrors,
  types: ["api", "oauth"],
  refreshSkewMs: 60_000,

  route(cfg, account, path, search) {
    if (account.type === "api") return { url: cfg.OPENAI_API_BASE + path + search };
    // ChatGPT subscriptions serve the Responses API only, through the Codex backend.
    const m = /^\/v1\/responses(\/.*)?$/.exec(path);
    return m
      ? { url: `${cfg.CODEX_API_BASE}/responses${m[1] ?? ""}${search}` }
      : { refused: "ChatGPT subscription accounts serve only /v1/responses; add an API key for other endpoints" };
  },

  // Chat Completions and Responses (usage read from the answer) and the model list; not Batches,
  // Files, stored responses or background runs fetched later, whose tokens the gateway never sees.
  metered(method, path) {
    if (method === "POST") return path === "/v1/chat/completions" || path === "/v1/responses";
    return method === "GET" && /^\/v1\/models(\/[^/]+)?$/.test(path);
  },

  authorize(headers, account, cred) {
    if (account.type === "api") {
      headers.set("authorization", `Bearer ${cred.key ?? ""}`);
      return;
    }
    headers.set("authorization", `Bearer ${cred.access ?? ""}`);
    const accountId = account.extras[ACCOUNT_ID] ?? chatgptAccountIdFromJwt(cred.access);
    if (accountId) headers.set("chatgpt-account-id", accountId);
  },

  async refresh(cfg, cred) {
    const r = await callTokenEndpoint(cfg.OPENAI_TOKEN_URL, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: cred.refresh ?? "",
        client_id: OPENAI_CLIENT_ID,
        scope: "openid profile email offline_access",
      }),
    }, cfg.TOKEN_TIMEOUT_MS);
    if (!r.ok) return r.dead ? { kind: "reauth", reason: r.reason } : { kind: "transient", reason: r.reason };
    const access = tokenOf(r.json?.access_token);
    if (!access) return { kind: "transient", reason: "token endpoint answered without access_token" };
    const expiresIn = num(r.json?.expires_in);
    return {
      kind: "ok",
      access,
      refresh: tokenOf(r.json?.refresh_token),
      expires: expiresIn !== undefined ? Date.now() + expiresIn * 1000 : jwtExpiry(access),
      extras: extrasOf(chatgptAccountIdFromJwt(access) ? access : str(r.json?.id_token)),
    };
  },

  classify: classifyOpenAIStyle,
  // A Responses stream opens with these before its first output, and reports a limit after them.
  openingEvents: new Set(["response.created", "response.in_progress"]),
  classifySseError: classifyOpenAIStreamError,

  login: {
    needsCode: true,
    // ChatGPT Plus/Pro: PKCE. The redirect goes to localhost:1455, where nothing listens on the
    // user's machine; they paste the address the browser shows (or just its code).
    async start(cfg) {
      const { verifier, challenge, state } = await pkcePair();
      const url = new URL(cfg.OPENAI_AUTHORIZE_URL);
      url.search = new URLSearchParams({
        response_type: "code",
        client_id: OPENAI_CLIENT_ID,
        redirect_uri: OPENAI_REDIRECT_URI,
        scope: OPENAI_SCOPES,
        code_challenge: challenge,
        code_challenge_method: "S256",
        id_token_add_organizations: "true",
        codex_cli_simplified_flow: "true",
        state,
      }).toString();
      return {
        kind: "started",
        public: {
          method: "redirect",
          url: url.toString(),
          instructions: `Open the address and sign in to ChatGPT. The browser then goes to ${OPENAI_REDIRECT_URI}?code=… (the page will not load: that is expected); paste that whole address.`,
        },
        state,
        secret: { verifier },
      };
    },

    async finish(cfg, pending, input) {
      const pasted = parsePastedCode(input);
      if (!pasted) return refused(400, "paste the address the browser went to after sign-in (it starts with http://localhost:1455/auth/callback)", "code");
      if (pasted.error) return refused(400, `the sign-in was not completed (${pasted.error}); start again`, "code", true);
      if (pasted.state !== null && !(pending.state && timingSafeEqual(pasted.state, pending.state))) {
        return refused(400, "this address belongs to another login (its state does not match): paste the address of this login, or start again", "code");
      }
      const r = await callTokenEndpoint(cfg.OPENAI_TOKEN_URL, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
        body: new URLSearchParams({
          grant_type: "authorization_code",
          code: pasted.code,
          redirect_uri: OPENAI_REDIRECT_URI,
          client_id: OPENAI_CLIENT_ID,
          code_verifier: pending.secret.verifier ?? "",
        }),
      }, cfg.TOKEN_TIMEOUT_MS);
      if (!r.ok) {
        return r.dead
          ? refused(400, `OpenAI refused the code (${r.reason}): codes work once; start the login again`, "code", true)
          : refused(502, `OpenAI's token endpoint failed (${r.reason}); paste the address again in a moment`);
      }
      const access = tokenOf(r.json?.access_token);
      const refresh = tokenOf(r.json?.refresh_token);
      if (!access || !refresh) return refused(502, "OpenAI answered without tokens; start the login again", undefined, true);
      const expiresIn = num(r.json?.expires_in);
      return {
        kind: "done",
        grant: { refresh, access, expires: expiresIn !== undefined ? Date.now() + expiresIn * 1000 : jwtExpiry(access), ...openaiIdentity(access, str(r.json?.id_token)) },
      };
    },
  },

  extrasOf,
  quotaOf: openaiQuota,
  usage: openaiUsage,
  session: openaiSession,

  /**
   * ChatGPT accounts that have not served lately: the usage endpoint Codex's own tools read
   * (`GET <backend-api>/wham/usage`: `rate_limit.{primary,secondary}_window` with `used_percent` and
   * `reset_at` in epoch s). Unofficial: called sparingly, from the alarm, never on a request.
   */
  async probeQuota(cfg, account, cred) {
    if (account.type !== "oauth" || !cred.access) return null;
    const headers: Record<string, string> = { authorization: `Bearer ${cred.access}`, accept: "application/json" };
    const accountId = account.extras[ACCOUNT_ID] ?? chatgptAccountIdFromJwt(cred.access);
    if (accountId) headers["chatgpt-account-id"] = accountId;
    const r = await callTokenEndpoint(new URL("../wham/usage", `${cfg.CODEX_API_BASE}/`).toString(), { method: "GET", headers }, cfg.TOKEN_TIMEOUT_MS);
    return r.ok && r.json ? whamWindows(r.json) : null;
  },

  /** API keys: GET /v1/models (free). ChatGPT accounts: the gateway renews the session when due. */
  async check(cfg, account, cred) {
    if (account.type === "oauth") return { verdict: "ok", status: 200, message: "the session is valid (it is renewed when due)" };
    const r = await callStatus(`${cfg.OPENAI_API_BASE}/v1/models`, { method: "GET", headers: { authorization: `Bearer ${cred.key ?? ""}` } }, cfg.TOKEN_TIMEOUT_MS);
    const verdict = verdictOf(r.status);
    return { verdict, status: r.status, message: verdict === "ok" ? "the key listed the models (free)" : verdict === "invalid" ? `OpenAI refused the key (${r.status})` : `/v1/models ${r.reason}` };
  },

  imports: { opencodeKey: "openai", oauthEntry: (e) => oauthEntry(e), files: [codexFile] },
};

/** Who a ChatGPT login belongs to: workspace id + user id (a team workspace has many users). */
export function openaiIdentity(access: string | undefined, idToken: string | undefined): { identity: string | null; label: string | null } {
  const idClaims = jwtClaims(idToken) ?? {};
  const accessClaims = jwtClaims(access) ?? {};
  const auth = { ...(accessClaims["https://api.openai.com/auth"] as object | undefined), ...(idClaims["https://api.openai.com/auth"] as object | undefined) } as Record<string, unknown>;
  const accountId = chatgptAccountIdFromJwt(access) ?? str(auth.chatgpt_account_id);
  const userId = str(auth.chatgpt_user_id) ?? str(auth.user_id) ?? str(idClaims.sub) ?? str(accessClaims.sub);
  const profile = accessClaims["https://api.openai.com/profile"] as Record<string, unknown> | undefined;
  return { identity: accountId ? `openai:${accountId}:${userId ?? ""}` : null, label: str(idClaims.email) ?? str(profile?.email) ?? null };
}

/** `exp` claim of a JWT, in epoch ms. */
export function jwtExpiry(token: string): number | null {
  const exp = jwtClaims(token)?.exp;
  return typeof exp === "number" ? exp * 1000 : null;
}
