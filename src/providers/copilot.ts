/**
 * GitHub Copilot: OAuth only. The account's long-lived grant is the GitHub OAuth token (`refresh`,
 * opencode's convention); the short-lived Copilot token (`access`, about 30 minutes) is obtained by
 * GET GITHUB_API_BASE/copilot_internal/v2/token and used as a Bearer token on COPILOT_API_BASE.
 * GitHub does not rotate the grant, so an exchange never invalidates it; a 401/403/404 from the
 * exchange means the GitHub token was revoked or the seat is gone: log in again.
 * The client's own editor headers (Editor-Version, Copilot-Integration-Id ...) pass through as sent:
 * subpool does not pose as an editor.
 */
import { num, str } from "../util";
import { refused } from "./login";
import { callTokenEndpoint, tokenOf } from "./token-endpoint";
import { classifyOpenAIStreamError, classifyOpenAIStyle, openaiErrors, openaiSession, openaiUsage } from "./openai";
import type { Provider } from "./types";

export const COPILOT_CLIENT_ID = "Iv1.b507a08c87ecfe98";
export const USER_AGENT = "subpool/0.1";
const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";
const githubHeaders = { accept: "application/json", "content-type": "application/json", "user-agent": USER_AGENT };

export const copilot: Provider = {
  id: "github-copilot",
  prefix: "/copilot",
  name: "GitHub Copilot",
  errorFormat: openaiErrors,
  types: ["oauth"],
  typeHint: 'GitHub Copilot accounts are OAuth only: send {"type":"oauth","refresh":"<GitHub OAuth token>"}, or log in with the device flow',
  refreshSkewMs: 60_000,

  route(cfg, _account, path, search) {
    return { url: cfg.COPILOT_API_BASE + path + search };
  },

  // Chat Completions (usage read from the answer) and the model list.
  metered(method, path) {
    if (method === "POST") return path === "/chat/completions" || path === "/v1/chat/completions";
    return method === "GET" && (path === "/models" || path === "/v1/models");
  },

  authorize(headers, _account, cred) {
    headers.set("authorization", `Bearer ${cred.access ?? ""}`);
  },

  async refresh(cfg, cred) {
    const r = await callTokenEndpoint(`${cfg.GITHUB_API_BASE}/copilot_internal/v2/token`, {
      method: "GET",
      headers: { authorization: `token ${cred.refresh ?? ""}`, accept: "application/json", "user-agent": USER_AGENT },
    }, cfg.TOKEN_TIMEOUT_MS);
    if (!r.ok) {
      // GitHub's own JSON refusal (revoked token, no seat); a challenge or an HTML page is not one.
      const dead = !r.challenge && r.json !== undefined && (r.status === 401 || r.status === 403 || r.status === 404);
      return dead ? { kind: "reauth", reason: r.reason } : { kind: "transient", reason: r.reason };
    }
    const access = tokenOf(r.json?.token);
    if (!access) return { kind: "transient", reason: "Copilot token exchange answered without token" };
    const expiresAt = num(r.json?.expires_at);
    const refreshIn = num(r.json?.refresh_in);
    // GitHub says when to refresh (refresh_in); expiry is later. Use whichever comes first.
    const candidates = [expiresAt !== undefined ? expiresAt * 1000 : undefined, refreshIn !== undefined ? Date.now() + (refreshIn + 60) * 1000 : undefined]
      .filter((t): t is number => t !== undefined);
    return { kind: "ok", access, expires: candidates.length ? Math.min(...candidates) : null };
  },

  classify: classifyOpenAIStyle,
  openingEvents: new Set(["response.created", "response.in_progress"]),
  classifySseError: classifyOpenAIStreamError,

  login: {
    needsCode: false,
    // GitHub device flow (RFC 8628): the user enters a code at github.com/login/device while the
    // client polls finish, no faster than `interval`; `slow_down` adds 5 s.
    async start(cfg) {
      const r = await callTokenEndpoint(`${cfg.GITHUB_BASE}/login/device/code`, {
        method: "POST",
        headers: githubHeaders,
        body: JSON.stringify({ client_id: COPILOT_CLIENT_ID, scope: "read:user" }),
      }, cfg.TOKEN_TIMEOUT_MS);
      const deviceCode = str(r.json?.device_code);
      const userCode = str(r.json?.user_code);
      const verificationUri = str(r.json?.verification_uri);
      if (!r.ok || !deviceCode || !userCode || !verificationUri) {
        return refused(502, `GitHub's device flow did not start (${r.reason || "incomplete answer"}); try again`, undefined, true);
      }
      const intervalS = num(r.json?.interval) ?? 5;
      return {
        kind: "started",
        public: { method: "device", userCode, verificationUri, interval: intervalS, instructions: `Open ${verificationUri} and enter the code ${userCode}.` },
        state: null,
        secret: { deviceCode },
        intervalS,
        expiresInS: num(r.json?.expires_in),
      };
    },

    async finish(cfg, pending) {
      const r = await callTokenEndpoint(`${cfg.GITHUB_BASE}/login/oauth/access_token`, {
        method: "POST",
        headers: githubHeaders,
        body: JSON.stringify({ client_id: COPILOT_CLIENT_ID, device_code: pending.secret.deviceCode, grant_type: DEVICE_GRANT }),
      }, cfg.TOKEN_TIMEOUT_MS);
      // GitHub answers 200 with an `error` field while the user has not finished.
      const error = str(r.json?.error);
      const intervalS = pending.intervalS ?? 5;
      if (error === "authorization_pending") return { kind: "pending", intervalS };
      if (error === "slow_down") return { kind: "pending", intervalS: num(r.json?.interval) ?? intervalS + 5 };
      if (error === "expired_token") return refused(410, "the device code expired before it was entered; start again", undefined, true);
      if (error === "access_denied") return refused(403, "the authorization was declined on GitHub", undefined, true);
      const ghToken = tokenOf(r.json?.access_token);
      if (!r.ok || !ghToken) return refused(502, `GitHub's device flow failed (${error ?? r.reason}); try again`, undefined, error !== undefined);

      const user = await callTokenEndpoint(`${cfg.GITHUB_API_BASE}/user`, {
        method: "GET",
        headers: { authorization: `token ${ghToken}`, accept: "application/json", "user-agent": USER_AGENT },
      }, cfg.TOKEN_TIMEOUT_MS);
      const id = num(user.json?.id);
      // Check the seat now, so a GitHub account without Copilot is refused with a clear reason.
      const exchanged = await copilot.refresh(cfg, { version: 0, refresh: ghToken, expires: null });
      if (exchanged.kind === "reauth") return refused(403, "this GitHub account has no Copilot access", undefined, true);
      return {
        kind: "done",
        grant: {
          refresh: ghToken,
          access: exchanged.kind === "ok" ? exchanged.access : undefined,
          expires: exchanged.kind === "ok" ? exchanged.expires : null,
          identity: id !== undefined ? `github:${id}` : null,
          label: str(user.json?.login) ?? null,
        },
      };
    },
  },

  // The token exchange is free and says whether the GitHub token still has a Copilot seat.
  checkByRefresh: true,
  // Copilot's API states no quota in its headers that we know of.
  quotaOf: () => null,
  usage: openaiUsage,
  session: openaiSession,

  imports: { opencodeKey: "github-copilot" },
};
