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
    return Response.json({ access_token: next.access, refresh_token: next.refresh, expires_in: this.expiresIn, token_type: "Bearer" });
  }

  /** Whether a refresh token is still unused (i.e. the live one). */
  isLive(refresh: string): boolean {
    return this.refreshTokens.get(refresh) === false;
  }
}

export class Upstream {
  readonly seen: Seen[] = [];
  private handlers = new Map<string, Handler>();
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
  private spy: ReturnType<typeof vi.spyOn> | null = null;

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
      this.seen.push({ url: req.url, method: req.method, headers: Object.fromEntries(req.headers), body });
      return this.dispatch(req, body);
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
    if (hostPath === "anthropic.fake/v1/oauth/token") {
      const j = JSON.parse(body) as { grant_type?: string; refresh_token?: string; client_id?: string };
      if (j.grant_type !== "refresh_token" || j.client_id !== "9d1c250a-e61b-44d9-88ed-5944d1962f5e") return Response.json({ error: "invalid_request" }, { status: 400 });
      return this.anthropicAuth.exchange(j.refresh_token ?? null);
    }
    if (hostPath === "auth.openai.fake/oauth/token") {
      if (!(req.headers.get("content-type") ?? "").includes("application/x-www-form-urlencoded")) return Response.json({ error: "invalid_request" }, { status: 400 });
      const f = new URLSearchParams(body);
      if (f.get("grant_type") !== "refresh_token" || f.get("client_id") !== "app_EMoamEEZ73f0CkXaXp7hrann") return Response.json({ error: "invalid_request" }, { status: 400 });
      return this.openaiAuth.exchange(f.get("refresh_token"));
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
