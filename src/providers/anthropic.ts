/**
 * Anthropic: API keys (x-api-key) and Claude Pro/Max OAuth (Bearer + the oauth beta flag).
 * Quirks (docs/ARCHITECTURE.md, "Provider facts"): refresh tokens are single use; the token endpoint takes JSON; subscription
 * limits come as "unified" headers with an epoch-seconds reset; a 429 about "extra usage" concerns a
 * feature of the request, not the account; limits may also arrive as the first SSE `error` event.
 */
import { z } from "zod";
import type { ErrorFormat } from "../errors";
import { num, parseJsonBody, str } from "../util";
import { timingSafeEqual } from "../vault/envelope";
import { type Classification, classifyStatus, resetToSeconds, retryAfterSeconds } from "./classify";
import { epochMs, token, why } from "./import-fields";
import { parsePastedCode, pkcePair, refused } from "./login";
import { type QuotaReading, type Usage, type UsageReader, budgetWindows, count, noUsage, windowOf } from "./telemetry";
import { callStatus, callTokenEndpoint, verdictOf, tokenOf } from "./token-endpoint";
import type { CredentialFileFormat, ImportEntry, Provider, Refusal, SessionReader } from "./types";

export const ANTHROPIC_CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e";
export const ANTHROPIC_OAUTH_BETA = "oauth-2025-04-20";

export const ANTHROPIC_SCOPES = "org:create_api_key user:profile user:inference";

const STANDARD_LIMITS = ["requests", "tokens", "input-tokens", "output-tokens"] as const;
/** The subscription windows of the unified headers, by their names in the header and in our telemetry. */
const UNIFIED_WINDOWS = ["5h", "7d"] as const;
const UNIFIED_STATUS = new Set(["allowed", "allowed_warning", "rejected"]);
const PER_MODEL_UTILIZATION = /^anthropic-ratelimit-unified-7d_([a-z0-9][a-z0-9_.-]{0,40})-utilization$/;

/** Subscription windows (unified headers, utilization 0..1, reset in epoch seconds) and API-key budgets. */
function quotaOf(headers: Headers, now: number): QuotaReading | null {
  // One look first: most answers of an API key without budgets, and every fake, carry none.
  const raw = headers.get("anthropic-ratelimit-unified-status");
  if (raw === null && !headers.has("anthropic-ratelimit-unified-5h-utilization") && !headers.has("anthropic-ratelimit-requests-limit") && !headers.has("anthropic-ratelimit-tokens-limit")) return null;
  const windows: QuotaReading["windows"] = {};
  for (const w of UNIFIED_WINDOWS) {
    const reset = count(headers.get(`anthropic-ratelimit-unified-${w}-reset`));
    const win = windowOf(count(headers.get(`anthropic-ratelimit-unified-${w}-utilization`)), reset !== undefined ? reset * 1000 : null);
    if (win) windows[w] = win;
  }
  // Per-model weekly windows (late 2026): anthropic-ratelimit-unified-7d_<suffix>-utilization, e.g.
  // 7d_opus. Only subscription answers carry unified headers, so only they pay for the walk.
  if (raw !== null) {
    for (const [name, value] of headers) {
      const m = PER_MODEL_UTILIZATION.exec(name);
      if (!m) continue;
      const reset = count(headers.get(`anthropic-ratelimit-unified-7d_${m[1]}-reset`));
      const win = windowOf(count(value), reset !== undefined ? reset * 1000 : null);
      if (win) windows[`7d_${m[1]}`] = win;
    }
  }
  Object.assign(
    windows,
    budgetWindows(headers, now, {
      requests: { limit: "anthropic-ratelimit-requests-limit", remaining: "anthropic-ratelimit-requests-remaining", reset: "anthropic-ratelimit-requests-reset" },
      tokens: { limit: "anthropic-ratelimit-tokens-limit", remaining: "anthropic-ratelimit-tokens-remaining", reset: "anthropic-ratelimit-tokens-reset" },
    }),
  );
  const status = raw !== null && UNIFIED_STATUS.has(raw) ? (raw as QuotaReading["status"]) : null;
  return status === null && Object.keys(windows).length === 0 ? null : { status, windows };
}

/** Messages API usage: input_tokens excludes cache reads and writes, which come separately. */
function usageFrom(u: unknown, base: Usage | null): Usage | null {
  if (!u || typeof u !== "object") return base;
  const o = u as Record<string, unknown>;
  const out = { ...(base ?? noUsage()) };
  // message_delta figures are cumulative for the message: set, never add.
  const input = count(o.input_tokens);
  const output = count(o.output_tokens);
  const read = count(o.cache_read_input_tokens);
  const write = count(o.cache_creation_input_tokens);
  if (input !== undefined) out.inputTokens = input;
  if (output !== undefined) out.outputTokens = output;
  if (read !== undefined) out.cacheReadTokens = read;
  if (write !== undefined) out.cacheWriteTokens = write;
  return out;
}

const usage: UsageReader = {
  key: "usage",
  fromJson: (body) => usageFrom((body as { usage?: unknown } | null)?.usage, null),
  fromSse(sofar, event, data) {
    const d = data as { message?: { usage?: unknown }; usage?: unknown } | null;
    if (event === "message_start") return usageFrom(d?.message?.usage, sofar);
    if (event === "message_delta") return usageFrom(d?.usage, sofar);
    return sofar;
  },
};

/**
 * Claude Code names its session in `x-claude-code-session-id` (since 2.1.86) and in
 * `metadata.user_id` (a JSON-encoded string holding session_id; older versions
 * "user_<hash>_account_<uuid>_session_<uuid>"). Its body puts `metadata` after messages, system and
 * tools, so the field is in the body's last few KB; SDK callers may put it first. Only a
 * `"metadata"` key is trusted: a tool's input may carry a user_id of its own, and inside a JSON
 * string the quotes around "metadata" would be escaped.
 */
const METADATA_USER_ID = /^"metadata"\s*:\s*\{[^{}]*?"user_id"\s*:\s*"((?:[^"\\]|\\.){1,1024})"/;

const session: SessionReader = {
  fromHeaders(headers) {
    const id = headers.get("x-claude-code-session-id");
    return id ? `c:${id}` : null;
  },
  fromBody(text) {
    for (let at = text.lastIndexOf('"metadata"'); at >= 0; at = at === 0 ? -1 : text.lastIndexOf('"metadata"', at - 1)) {
      const m = METADATA_USER_ID.exec(text.slice(at, at + 2048));
      if (m) return `u:${m[1]}`;
    }
    return null;
  },
  opening(body) {
    const j = body as { system?: unknown; messages?: unknown } | undefined;
    return j && typeof j === "object" && Array.isArray(j.messages) && j.messages.length > 0 ? [j.system ?? null, j.messages[0]] : null;
  },
};

function errorOf(body: string | null): { type?: string; message?: string } {
  const j = parseJsonBody(body) as { error?: { type?: unknown; message?: unknown } } | undefined;
  const e = j?.error;
  return { type: str(e?.type), message: str(e?.message) };
}

/** Anthropic's error envelope; Claude Code's recovery matches on the types and wording. */
export const anthropicErrors: ErrorFormat = {
  body: (type, message) => JSON.stringify({ type: "error", error: { type, message } }),
  sseEvent: (message) => `event: error\ndata: ${JSON.stringify({ type: "error", error: { type: "api_error", message } })}\n\n`,
};

/** Claude Code's ~/.claude/.credentials.json: {"claudeAiOauth": {accessToken, refreshToken, expiresAt, ...}}. */
const ClaudeCode = z.object({ accessToken: token.optional(), refreshToken: token, expiresAt: epochMs.optional(), subscriptionType: z.string().max(40).optional() });

const claudeCodeFile: CredentialFileFormat = {
  name: "claude-code",
  detect: (data) => "claudeAiOauth" in data,
  parse(data) {
    const entries: ImportEntry[] = [];
    const refused: Refusal[] = [];
    const r = ClaudeCode.safeParse(data.claudeAiOauth);
    if (!r.success) refused.push({ entry: "claudeAiOauth", reason: why(r.error) });
    else
      entries.push({
        entry: "claudeAiOauth",
        provider: anthropic.id,
        type: "oauth",
        refresh: r.data.refreshToken,
        access: r.data.accessToken,
        expires: r.data.expiresAt ?? null,
        label: `Claude Code${r.data.subscriptionType ? ` (${r.data.subscriptionType.replace(/[^\w -]/g, "")})` : ""}`,
      });
    return { entries, refused };
  },
};

export const anthropic: Provider = {
  id: "anthropic",
  prefix: "/anthropic",
  name: "Anthropic",
  errorFormat: anthropicErrors,
  types: ["api", "oauth"],
  refreshSkewMs: 60_000,

  route(cfg, _account, path, search) {
    return { url: cfg.ANTHROPIC_API_BASE + path + search };
  },

  // Messages (its usage is read from the answer), token counting (free) and the model list; not
  // Message Batches (results fetched later, their tokens never pass the gateway) nor Files.
  metered(method, path) {
    if (method === "POST") return path === "/v1/messages" || path === "/v1/messages/count_tokens";
    return method === "GET" && /^\/v1\/models(\/[^/]+)?$/.test(path);
  },

  authorize(headers, account, cred) {
    if (account.type === "api") {
      headers.set("x-api-key", cred.key ?? "");
      return;
    }
    headers.set("authorization", `Bearer ${cred.access ?? ""}`);
    // The OAuth beta flag is required for subscription tokens; keep every flag the client sent.
    const flags = (headers.get("anthropic-beta") ?? "").split(",").map((s) => s.trim()).filter(Boolean);
    if (!flags.includes(ANTHROPIC_OAUTH_BETA)) flags.push(ANTHROPIC_OAUTH_BETA);
    headers.set("anthropic-beta", flags.join(","));
  },

  async refresh(cfg, cred) {
    const r = await callTokenEndpoint(cfg.ANTHROPIC_TOKEN_URL, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ grant_type: "refresh_token", refresh_token: cred.refresh, client_id: ANTHROPIC_CLIENT_ID }),
    }, cfg.TOKEN_TIMEOUT_MS);
    if (!r.ok) return r.dead ? { kind: "reauth", reason: r.reason } : { kind: "transient", reason: r.reason };
    const access = tokenOf(r.json?.access_token);
    if (!access) return { kind: "transient", reason: "token endpoint answered without access_token" };
    const expiresIn = num(r.json?.expires_in);
    return {
      kind: "ok",
      access,
      refresh: tokenOf(r.json?.refresh_token),
      expires: expiresIn !== undefined ? Date.now() + expiresIn * 1000 : null,
    };
  },

  classify(status, headers, body, now): Classification {
    if (status === 429) {
      const unified = headers.get("anthropic-ratelimit-unified-status");
      const err = errorOf(body);
      const overageReason = headers.get("anthropic-ratelimit-unified-overage-disabled-reason");
      if (unified !== "rejected" && (/extra usage/i.test(err.message ?? "") || overageReason)) {
        return { class: "not-account", reason: "the request needs extra usage, which this account lacks" };
      }
      const ra = retryAfterSeconds(headers, now);
      if (unified === "rejected") {
        // The latest stated reset wins: the 5-hour and weekly windows apply together, so an
        // exhausted weekly window keeps the account benched past the 5-hour reset.
        const resets = [resetToSeconds(headers.get("anthropic-ratelimit-unified-reset"), now)];
        for (const w of UNIFIED_WINDOWS) {
          const exhausted = headers.get(`anthropic-ratelimit-unified-${w}-status`) === "rejected" || (count(headers.get(`anthropic-ratelimit-unified-${w}-utilization`)) ?? 0) >= 1;
          if (exhausted) resets.push(resetToSeconds(headers.get(`anthropic-ratelimit-unified-${w}-reset`), now));
        }
        const claim = headers.get("anthropic-ratelimit-unified-representative-claim");
        const cooldownS = Math.max(ra ?? 0, ...resets.map((r) => r ?? 0)) || undefined;
        return { class: "quota", cooldownS, reason: `subscription limit reached${claim ? ` (${claim.replace(/[^\w-]/g, "").slice(0, 64)})` : ""}` };
      }
      if (ra !== undefined) return { class: "short", cooldownS: ra, reason: "rate limited" };
      const resets = STANDARD_LIMITS.filter((k) => headers.get(`anthropic-ratelimit-${k}-remaining`) === "0")
        .map((k) => resetToSeconds(headers.get(`anthropic-ratelimit-${k}-reset`), now))
        .filter((s): s is number => s !== undefined);
      return { class: "short", cooldownS: resets.length ? Math.max(...resets) : undefined, reason: "rate limited" };
    }
    if (status === 529) return { class: "overload", reason: "Anthropic is overloaded (529)" };
    const cls = classifyStatus(status);
    const type = (errorOf(body).type ?? "auth").replace(/[^\w.-]/g, "").slice(0, 64);
    return cls === "auth" ? { class: cls, reason: `upstream answered ${status} (${type})` } : { class: cls };
  },

  login: {
    needsCode: true,
    // Claude Pro/Max: PKCE; the callback page shows "code#state" for the user to paste.
    async start(cfg) {
      const { verifier, challenge, state } = await pkcePair();
      const url = new URL(cfg.ANTHROPIC_AUTHORIZE_URL);
      url.search = new URLSearchParams({
        code: "true",
        client_id: ANTHROPIC_CLIENT_ID,
        response_type: "code",
        redirect_uri: cfg.ANTHROPIC_REDIRECT_URI,
        scope: ANTHROPIC_SCOPES,
        code_challenge: challenge,
        code_challenge_method: "S256",
        state,
      }).toString();
      return {
        kind: "started",
        public: { method: "code", url: url.toString(), instructions: "Open the address, sign in to Claude, authorize, then paste the code the page shows (it looks like code#state)." },
        state,
        secret: { verifier },
      };
    },

    async finish(cfg, pending, input) {
      const pasted = parsePastedCode(input);
      if (!pasted || !pasted.code) return refused(400, "paste the code the Claude page showed (it looks like code#state)", "code");
      if (!pasted.state) return refused(400, 'paste the whole value the Claude page showed, including the part after "#"', "code");
      if (!pending.state || !timingSafeEqual(pasted.state, pending.state)) {
        return refused(400, "this code belongs to another login (its state does not match): paste the code of this login, or start again", "code");
      }
      const r = await callTokenEndpoint(cfg.ANTHROPIC_TOKEN_URL, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({
          grant_type: "authorization_code",
          code: pasted.code,
          state: pasted.state,
          client_id: ANTHROPIC_CLIENT_ID,
          redirect_uri: cfg.ANTHROPIC_REDIRECT_URI,
          code_verifier: pending.secret.verifier,
        }),
      }, cfg.TOKEN_TIMEOUT_MS);
      if (!r.ok) {
        return r.dead
          ? refused(400, `Anthropic refused the code (${r.reason}): codes work once and expire quickly; open the address again for a new one`, "code")
          : refused(502, `Anthropic's token endpoint failed (${r.reason}); paste the code again in a moment`);
      }
      const access = tokenOf(r.json?.access_token);
      const refresh = tokenOf(r.json?.refresh_token);
      if (!access || !refresh) return refused(502, "Anthropic answered without tokens; start the login again", undefined, true);
      const expiresIn = num(r.json?.expires_in);
      const account = r.json?.account as { uuid?: unknown; email_address?: unknown } | undefined;
      const uuid = str(account?.uuid);
      return {
        kind: "done",
        grant: { refresh, access, expires: expiresIn !== undefined ? Date.now() + expiresIn * 1000 : null, identity: uuid ? `anthropic:${uuid}` : null, label: str(account?.email_address) ?? null },
      };
    },
  },

  openingEvents: new Set(["message_start"]),

  classifySseError(data) {
    const type = str((data as { error?: { type?: unknown } } | undefined)?.error?.type);
    if (type === "rate_limit_error") return { class: "short", reason: "rate limited (stream error event)" };
    if (type === "overloaded_error" || type === "api_error") return { class: "overload", reason: `${type} (stream error event)` };
    return null;
  },

  quotaOf,
  usage,
  session,

  /**
   * Claude OAuth accounts: the usage endpoint answers the 5-hour and weekly windows (utilization in
   * percent, ISO resets) without spending tokens. Unofficial: called sparingly, from an alarm.
   */
  async probeQuota(cfg, account, cred) {
    if (account.type !== "oauth" || !cred.access) return null;
    return (await oauthUsage(cfg.ANTHROPIC_API_BASE, cred.access, cfg.TOKEN_TIMEOUT_MS)).quota;
  },

  /** API keys: count_tokens (free); Claude OAuth: the usage endpoint (free, and it says the quota). */
  async check(cfg, account, cred) {
    if (account.type === "oauth") {
      if (!cred.access) return { verdict: "unknown", status: 0, message: "no access token to check" };
      const r = await oauthUsage(cfg.ANTHROPIC_API_BASE, cred.access, cfg.TOKEN_TIMEOUT_MS);
      return { verdict: verdictOf(r.status), status: r.status, message: r.status === 200 ? "the subscription answered its usage" : `the usage endpoint ${r.reason}`, quota: r.quota };
    }
    const r = await callStatus(
      `${cfg.ANTHROPIC_API_BASE}/v1/messages/count_tokens`,
      {
        method: "POST",
        headers: { "x-api-key": cred.key ?? "", "anthropic-version": "2023-06-01", "content-type": "application/json" },
        body: JSON.stringify({ model: CHECK_MODEL, messages: [{ role: "user", content: "ping" }] }),
      },
      cfg.TOKEN_TIMEOUT_MS,
    );
    const verdict = verdictOf(r.status);
    return { verdict, status: r.status, message: verdict === "ok" ? "the key counted tokens (free)" : verdict === "invalid" ? `Anthropic refused the key (${r.status})` : `count_tokens ${r.reason}` };
  },

  imports: { opencodeKey: "anthropic", files: [claudeCodeFile] },
};

/** A model id for count_tokens (any current model will do; the call costs nothing). */
const CHECK_MODEL = "claude-sonnet-4-5";

/** GET /api/oauth/usage: the 5-hour and weekly windows in percent, with ISO resets. */
async function oauthUsage(base: string, access: string, timeoutMs: number): Promise<{ status: number; reason: string; quota: QuotaReading | null }> {
  const r = await callTokenEndpoint(
    `${base}/api/oauth/usage`,
    { method: "GET", headers: { authorization: `Bearer ${access}`, "anthropic-beta": ANTHROPIC_OAUTH_BETA, accept: "application/json" } },
    timeoutMs,
  );
  if (!r.ok || !r.json) return { status: r.status, reason: r.reason, quota: null };
  return { status: r.status, reason: "", quota: usageWindows(r.json) };
}

const isoMs = (v: unknown) => (typeof v === "string" && Number.isFinite(Date.parse(v)) ? Date.parse(v) : null);
const modelSuffix = (model: string) => model.toLowerCase().replace(/^claude-/, "").replace(/[^a-z0-9_.-]/g, "").slice(0, 40);

/**
 * The usage endpoint's windows, in both shapes it has had: the flat `five_hour` / `seven_day`
 * objects, and (late 2026) `limits[]` of `{kind: session | weekly_all | weekly_scoped, percent,
 * resets_at, scope.model}`. Percent in both; per-model weekly windows are named `7d_<model>`.
 */
export function usageWindows(json: Record<string, unknown>): QuotaReading | null {
  const windows: QuotaReading["windows"] = {};
  const put = (name: string, pct: number | undefined, resetsAt: number | null) => {
    const win = windowOf(pct !== undefined ? pct / 100 : undefined, resetsAt);
    if (win) windows[name] = win;
  };
  for (const [name, key] of [["5h", "five_hour"], ["7d", "seven_day"]] as const) {
    const w = json[key] as { utilization?: unknown; resets_at?: unknown } | null | undefined;
    put(name, count(w?.utilization), isoMs(w?.resets_at));
  }
  const limits = Array.isArray(json.limits) ? json.limits.slice(0, 32) : [];
  for (const l of limits as { kind?: unknown; percent?: unknown; resets_at?: unknown; scope?: { model?: unknown } }[]) {
    if (!l || typeof l !== "object") continue;
    const model = str(l.scope?.model);
    const name = l.kind === "session" ? "5h" : l.kind === "weekly_all" ? "7d" : l.kind === "weekly_scoped" && model && modelSuffix(model) ? `7d_${modelSuffix(model)}` : null;
    if (name) put(name, count(l.percent), isoMs(l.resets_at));
  }
  return Object.keys(windows).length ? { status: null, windows } : null;
}

