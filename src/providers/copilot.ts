/**
 * GitHub Copilot: OAuth only. The account's long-lived grant is the GitHub OAuth token (`refresh`,
 * opencode's convention); the short-lived Copilot token (`access`, about 30 minutes) is obtained by
 * GET GITHUB_API_BASE/copilot_internal/v2/token and used as a Bearer token on COPILOT_API_BASE.
 * GitHub does not rotate the grant, so an exchange never invalidates it; a 401/403/404 from the
 * exchange means the GitHub token was revoked or the seat is gone: log in again.
 * The client's own editor headers (Editor-Version, Copilot-Integration-Id ...) pass through as sent:
 * subpool does not pose as an editor.
 */
import { callTokenEndpoint, num, str } from "./token-endpoint";
import { classifyOpenAIStreamError, classifyOpenAIStyle } from "./openai";
import type { Provider } from "./types";

export const COPILOT_CLIENT_ID = "Iv1.b507a08c87ecfe98";
export const USER_AGENT = "subpool/0.1";

export const copilot: Provider = {
  id: "github-copilot",
  prefix: "/copilot",
  name: "GitHub Copilot",
  format: "openai",
  types: ["oauth"],
  refreshSkewMs: 60_000,

  upstreamUrl(cfg, _account, path, search) {
    return cfg.COPILOT_API_BASE + path + search;
  },

  authorize(headers, _account, cred) {
    headers.set("authorization", `Bearer ${cred.access ?? ""}`);
  },

  async refresh(cfg, cred) {
    const r = await callTokenEndpoint(`${cfg.GITHUB_API_BASE}/copilot_internal/v2/token`, {
      method: "GET",
      headers: { authorization: `token ${cred.refresh ?? ""}`, accept: "application/json", "user-agent": USER_AGENT },
    });
    if (!r.ok) {
      const dead = r.status === 401 || r.status === 403 || r.status === 404;
      return dead ? { kind: "reauth", reason: r.reason } : { kind: "transient", reason: r.reason };
    }
    const access = str(r.json?.token);
    if (!access) return { kind: "transient", reason: "Copilot token exchange answered without token" };
    const expiresAt = num(r.json?.expires_at);
    const refreshIn = num(r.json?.refresh_in);
    // GitHub says when to refresh (refresh_in); expiry is later. Use whichever comes first.
    const candidates = [expiresAt !== undefined ? expiresAt * 1000 : undefined, refreshIn !== undefined ? Date.now() + (refreshIn + 60) * 1000 : undefined]
      .filter((t): t is number => t !== undefined);
    return { kind: "ok", access, expires: candidates.length ? Math.min(...candidates) : null };
  },

  classify: classifyOpenAIStyle,
  classifySseError: classifyOpenAIStreamError,
};
