/**
 * Fake providers for tests in workerd. Every outbound fetch of the Worker and of its Durable Object
 * goes through a spy on globalThis.fetch and lands here, routed by host:
 *   anthropic.fake       Messages API + OAuth token endpoint (JSON, single-use refresh tokens)
 *   openai.fake          OpenAI API (API keys)
 *   auth.openai.fake     OpenAI OAuth token endpoint (form-encoded, single-use, refresh_token_reused)
 *   chatgpt.fake         Codex backend (needs ChatGPT-Account-Id)
 *   api.github.fake      Copilot token exchange
 *   copilot.fake         Copilot API
 * API handlers are per test (`on`), keyed by the credential the gateway presented, so each fake
 * account can behave differently. Token endpoints behave like the real ones by default.
 */
import { vi } from "vitest";
import { secrets } from "./secrets";

export interface Seen {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string;
  /** The gateway's redirect mode for this call: it must never follow one with a credential. */
  redirect: string;
}

/**
 * A fake's stream as the network would hand it over. A real fetch's body is a system stream, which
 * the gateway tees and pipes natively into the client's IdentityTransformStream (src/proxy/relay.ts).
 * A body made in this isolate from a string or bytes is not: workerd's tee of such a stream refuses
 * to pump into another IdentityTransformStream ("Inter-TransformStream ReadableStream.pipeTo() is
 * not implemented") and the pipe hangs. A JS-backed stream behaves like the network one, cut and
 * cancel included, so SSE bodies are handed over as one. Like a real fetch, aborting the request's
 * signal after the headers errors the body (and lets go of the fake's stream).
 */
function networkLike(res: Response, signal: AbortSignal | null): Response {
  if (!res.body || !(res.headers.get("content-type") ?? "").startsWith("text/event-stream")) return res;
  const body = res.body;
  const reader = body.getReader();
  const out = new ReadableStream<Uint8Array>(
    {
      start(c) {
        signal?.addEventListener("abort", () => {
          c.error(new DOMException("The operation was aborted", "AbortError"));
          void reader.cancel().catch(() => {});
        });
      },
      async pull(c) {
        try {
          const r = await reader.read();
          if (r.done) c.close();
          else c.enqueue(r.value);
        } catch (e) {
          c.error(e);
        }
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  );
  return new Response(out, res);
}

type Handler = (req: Request, credential: string) => Response | Promise<Response>;

const b64url = (s: string) => btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

/** A JWT-shaped ChatGPT access token carrying the account-id claim (unsigned: the fake trusts it). */
export function chatgptJwt(accountId: string, tag: string, expSeconds = Math.floor(Date.now() / 1000) + 3600): string {
  const t = `${b64url(JSON.stringify({ alg: "none" }))}.${b64url(
    JSON.stringify({ exp: expSeconds, "https://api.openai.com/auth": { chatgpt_account_id: accountId }, tag }),
  )}.sig`;
  return secrets.add(t);
}

/** An OAuth server with single-use refresh tokens. */
export class OAuthServer {
  calls = 0;
  /** refresh token -> whether it was used */
  private refreshTokens = new Map<string, boolean>();
  readonly validAccess = new Set<string>();
  /** Lifetime of the access tokens it issues from now on, when set (else `expiresIn`). */
  expiresInOverride: number | null = null;
  /** Delay before answering, to widen race windows. */
  delayMs = 0;
  /** Next answers forced (status + JSON), e.g. a 500. */
  forced: { status: number; body: unknown }[] = [];
  private n = 0;

  constructor(
    readonly name: string,
    private readonly reuseError: { status: number; body: unknown },
    private readonly makeAccess: (n: number) => string = (n) => secrets.add(`${name}-access-${n}-${crypto.randomUUID()}`),
    readonly expiresIn = 3600,
  ) {}

  /** A fresh grant: an unused refresh token and a valid access token. */
  grant(): { refresh: string; access: string } {
    const refresh = secrets.add(`${this.name}-refresh-${++this.n}-${crypto.randomUUID()}`);
    const access = this.makeAccess(this.n);
    this.refreshTokens.set(refresh, false);
    this.validAccess.add(access);
    return { refresh, access };
  }

  revokeAccess(access: string) {
    this.validAccess.delete(access);
  }

  async exchange(refresh: string | null): Promise<Response> {
    this.calls++;
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    const forced = this.forced.shift();
    if (forced) return Response.json(forced.body, { status: forced.status });
    if (!refresh || !this.refreshTokens.has(refresh)) return Response.json({ error: "invalid_grant", error_description: "unknown refresh token" }, { status: 400 });
    if (this.refreshTokens.get(refresh)) return Response.json(this.reuseError.body, { status: this.reuseError.status });
    this.refreshTokens.set(refresh, true);
    const next = this.grant();
    return Response.json({ access_token: next.access, refresh_token: next.refresh, expires_in: this.expiresInOverride ?? this.expiresIn, token_type: "Bearer" });
  }

  /** Authorization codes: code -> the PKCE challenge it was issued for, whether used, who signed in. */
  private codes = new Map<string, { challenge: string; used: boolean; who: { uuid: string; email: string } }>();

  /** What the provider's consent page does: a code bound to the request's PKCE challenge. */
  authorize(authorizeUrl: string, who = { uuid: crypto.randomUUID(), email: "someone@example.com" }): { code: string; state: string } {
    const u = new URL(authorizeUrl);
    const challenge = u.searchParams.get("code_challenge");
    if (!challenge || u.searchParams.get("code_challenge_method") !== "S256") throw new Error("authorize URL without an S256 PKCE challenge");
    const code = secrets.add(`${this.name}-code-${crypto.randomUUID()}`);
    this.codes.set(code, { challenge, used: false, who });
    return { code, state: u.searchParams.get("state")! };
  }

  /** The authorization_code grant with PKCE (RFC 7636 §4.6): codes are single use. */
  async redeem(code: string | null, verifier: string | null): Promise<{ status: number; body: Record<string, unknown> }> {
    this.calls++;
    const c = code ? this.codes.get(code) : undefined;
    if (!c || c.used || !verifier) return { status: 400, body: { error: "invalid_grant", error_description: "Invalid authorization code" } };
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
    const expected = btoa(String.fromCharCode(...digest)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    if (expected !== c.challenge) return { status: 400, body: { error: "invalid_grant", error_description: "PKCE verification failed" } };
    c.used = true;
    const g = this.grant();
    return { status: 200, body: { access_token: g.access, refresh_token: g.refresh, expires_in: this.expiresIn, who: c.who } };
  }

  /** Whether a refresh token is still unused (i.e. the live one). */
  isLive(refresh: string): boolean {
    return this.refreshTokens.get(refresh) === false;
  }
}

export class Upstream {
  readonly seen: Seen[] = [];
  private handlers = new Map<string, Handler>();
  private overrides = new Map<string, Handler>();
  readonly anthropicAuth = new OAuthServer("ant", { status: 400, body: { error: "invalid_grant", error_description: "Refresh token already used" } });
  readonly openaiAuth = new OAuthServer(
    "oai",
    { status: 401, body: { error: { message: "Your refresh token has already been used", type: "invalid_request_error", code: "refresh_token_reused" } } },
    (n) => chatgptJwt(`chatgpt-acct-${n}`, `oai-${n}-${crypto.randomUUID()}`),
  );
  /** GitHub OAuth token -> number of exchanges. */
  readonly githubTokens = new Map<string, number>();
  readonly copilotTokens = new Set<string>();
  copilotExchangeCalls = 0;
  readonly device = new DeviceFlow(this);
  private spy: ReturnType<typeof vi.spyOn> | null = null;

  /** Replaces a built-in fake endpoint (token endpoints, device flow) for one exact host+path. */
  override(hostPath: string, handler: Handler): this {
    this.overrides.set(hostPath, handler);
    return this;
  }

  /** `pattern` is "host/path" (path prefix), e.g. "anthropic.fake/v1/messages". */
  on(pattern: string, handler: Handler): this {
    this.handlers.set(pattern, handler);
    return this;
  }

  githubToken(): string {
    const t = secrets.add(`gho_${crypto.randomUUID().replace(/-/g, "")}`);
    this.githubTokens.set(t, 0);
    return t;
  }

  install(): this {
    this.spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      const req = new Request(input, init);
      const body = req.method === "GET" || req.method === "HEAD" ? "" : await req.clone().text();
      this.seen.push({ url: req.url, method: req.method, headers: Object.fromEntries(req.headers), body, redirect: req.redirect });
      // Like a real connection, an aborted request (the gateway's header timeout) fails at once.
      const signal = init?.signal ?? null;
      if (!signal) return networkLike(await this.dispatch(req, body), null);
      return new Promise<Response>((resolve, reject) => {
        const onAbort = () => reject(new DOMException("The operation was aborted", "AbortError"));
        if (signal.aborted) return onAbort();
        signal.addEventListener("abort", onAbort, { once: true });
        this.dispatch(req, body).then((r) => networkLike(r, signal)).then(resolve, reject);
      });
    });
    return this;
  }

  uninstall() {
    this.spy?.mockRestore();
    this.spy = null;
  }

  calls(pattern: string): Seen[] {
    return this.seen.filter((s) => {
      const u = new URL(s.url);
      return `${u.host}${u.pathname}`.startsWith(pattern);
    });
  }

  private async dispatch(req: Request, body: string): Promise<Response> {
    const u = new URL(req.url);
    const hostPath = `${u.host}${u.pathname}`;
    const overridden = this.overrides.get(hostPath);
    if (overridden) return overridden(req, "");
    if (hostPath === "anthropic.fake/v1/oauth/token") {
      const j = JSON.parse(body) as { grant_type?: string; refresh_token?: string; client_id?: string; code?: string; code_verifier?: string; state?: string; redirect_uri?: string };
      if (j.client_id !== "9d1c250a-e61b-44d9-88ed-5944d1962f5e") return Response.json({ error: "invalid_client" }, { status: 400 });
      if (j.grant_type === "authorization_code") {
        if (!j.state || j.redirect_uri !== "https://platform.claude.com/oauth/code/callback") return Response.json({ error: "invalid_request" }, { status: 400 });
        const r = await this.anthropicAuth.redeem(j.code ?? null, j.code_verifier ?? null);
        if (r.status !== 200) return Response.json(r.body, { status: r.status });
        const who = r.body.who as { uuid: string; email: string };
        return Response.json({ ...r.body, who: undefined, token_type: "Bearer", account: { uuid: who.uuid, email_address: who.email }, organization: { uuid: "org-1" } });
      }
      if (j.grant_type !== "refresh_token") return Response.json({ error: "unsupported_grant_type" }, { status: 400 });
      return this.anthropicAuth.exchange(j.refresh_token ?? null);
    }
    if (hostPath === "auth.openai.fake/oauth/token") {
      if (!(req.headers.get("content-type") ?? "").includes("application/x-www-form-urlencoded")) return Response.json({ error: "invalid_request" }, { status: 400 });
      const f = new URLSearchParams(body);
      if (f.get("client_id") !== "app_EMoamEEZ73f0CkXaXp7hrann") return Response.json({ error: "invalid_client" }, { status: 400 });
      if (f.get("grant_type") === "authorization_code") {
        if (f.get("redirect_uri") !== "http://localhost:1455/auth/callback") return Response.json({ error: "invalid_request" }, { status: 400 });
        const r = await this.openaiAuth.redeem(f.get("code"), f.get("code_verifier"));
        if (r.status !== 200) return Response.json(r.body, { status: r.status });
        const who = r.body.who as { uuid: string; email: string };
        const idToken = `${b64url(JSON.stringify({ alg: "none" }))}.${b64url(JSON.stringify({ sub: who.uuid, email: who.email, "https://api.openai.com/auth": { chatgpt_user_id: who.uuid } }))}.sig`;
        return Response.json({ ...r.body, who: undefined, id_token: secrets.add(idToken) });
      }
      if (f.get("grant_type") !== "refresh_token") return Response.json({ error: "unsupported_grant_type" }, { status: 400 });
      return this.openaiAuth.exchange(f.get("refresh_token"));
    }
    if (hostPath === "github.fake/login/device/code") return this.device.start(body);
    if (hostPath === "github.fake/login/oauth/access_token") return this.device.poll(body);
    if (hostPath === "api.github.fake/user") {
      const gh = /^token (.+)$/.exec(req.headers.get("authorization") ?? "")?.[1];
      const user = gh ? this.device.users.get(gh) : undefined;
      return user ? Response.json(user) : Response.json({ message: "Bad credentials" }, { status: 401 });
    }
    if (hostPath === "api.github.fake/copilot_internal/v2/token") {
      this.copilotExchangeCalls++;
      const gh = /^token (.+)$/.exec(req.headers.get("authorization") ?? "")?.[1];
      if (!gh || !this.githubTokens.has(gh)) return Response.json({ message: "Bad credentials" }, { status: 401 });
      this.githubTokens.set(gh, this.githubTokens.get(gh)! + 1);
      const token = secrets.add(`tid=${crypto.randomUUID()};exp=${Date.now()}`);
      this.copilotTokens.add(token);
      return Response.json({ token, expires_at: Math.floor(Date.now() / 1000) + 1800, refresh_in: 1500 });
    }
    const credential =
      req.headers.get("x-api-key") ?? /^Bearer (.+)$/.exec(req.headers.get("authorization") ?? "")?.[1] ?? "";
    let best: [string, Handler] | undefined;
    for (const [p, h] of this.handlers) if (hostPath.startsWith(p) && (!best || p.length > best[0].length)) best = [p, h];
    if (best) return best[1](req, credential);
    return Response.json({ error: `fake upstream has no handler for ${req.method} ${hostPath}` }, { status: 599 });
  }
}

/**
 * GitHub's device flow (RFC 8628): pending until the test approves; polls faster than the interval
 * earn slow_down (+5 s), as GitHub does.
 */
export class DeviceFlow {
  private pending = new Map<string, { userCode: string; approvedAs: { id: number; login: string } | null; denied: boolean; lastPoll: number; interval: number; expired: boolean }>();
  readonly users = new Map<string, { id: number; login: string }>();
  polls = 0;
  /** Next poll answers forced, e.g. ["slow_down"]. */
  script: string[] = [];
  /** Enforce the interval (slow_down) — tests that fake time turn this off. */
  enforceInterval = true;
  interval = 5;

  constructor(private readonly up: Upstream) {}

  start(body: string): Response {
    const j = JSON.parse(body) as { client_id?: string; scope?: string };
    if (j.client_id !== "Iv1.b507a08c87ecfe98") return Response.json({ error: "unauthorized_client" }, { status: 400 });
    const deviceCode = secrets.add(`dc_${crypto.randomUUID()}`);
    const userCode = `${crypto.randomUUID().slice(0, 4)}-${crypto.randomUUID().slice(0, 4)}`.toUpperCase();
    this.pending.set(deviceCode, { userCode, approvedAs: null, denied: false, lastPoll: 0, interval: this.interval, expired: false });
    return Response.json({ device_code: deviceCode, user_code: userCode, verification_uri: "https://github.fake/login/device", expires_in: 899, interval: this.interval });
  }

  /** The person enters the code and approves. */
  approve(userCode: string, as = { id: Math.floor(Math.random() * 1e9), login: "octocat" }) {
    for (const p of this.pending.values()) if (p.userCode === userCode) p.approvedAs = as;
  }

  deny(userCode: string) {
    for (const p of this.pending.values()) if (p.userCode === userCode) p.denied = true;
  }

  expire(userCode: string) {
    for (const p of this.pending.values()) if (p.userCode === userCode) p.expired = true;
  }

  poll(body: string): Response {
    this.polls++;
    const j = JSON.parse(body) as { client_id?: string; device_code?: string; grant_type?: string };
    if (j.grant_type !== "urn:ietf:params:oauth:grant-type:device_code") return Response.json({ error: "unsupported_grant_type" });
    const p = j.device_code ? this.pending.get(j.device_code) : undefined;
    if (!p) return Response.json({ error: "incorrect_device_code" });
    const now = Date.now();
    if (this.enforceInterval && p.lastPoll && now - p.lastPoll < p.interval * 1000) {
      p.interval += 5;
      p.lastPoll = now;
      return Response.json({ error: "slow_down", interval: p.interval });
    }
    p.lastPoll = now;
    const forced = this.script.shift();
    if (forced === "slow_down") {
      p.interval += 5;
      return Response.json({ error: "slow_down", interval: p.interval });
    }
    if (forced) return Response.json({ error: forced });
    if (p.expired) return Response.json({ error: "expired_token" });
    if (p.denied) return Response.json({ error: "access_denied" });
    if (!p.approvedAs) return Response.json({ error: "authorization_pending" });
    this.pending.delete(j.device_code!);
    const gh = this.up.githubToken();
    this.users.set(gh, p.approvedAs);
    return Response.json({ access_token: gh, token_type: "bearer", scope: "read:user" });
  }
}

/** Real-shaped bodies. */
export const anthropicMessage = (text = "hello") => ({
  id: "msg_01",
  type: "message",
  role: "assistant",
  model: "claude-sonnet-4-5",
  content: [{ type: "text", text }],
  stop_reason: "end_turn",
  usage: { input_tokens: 5, output_tokens: 2 },
});

export const anthropicError = (type: string, message: string) => ({ type: "error", error: { type, message } });

export const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
