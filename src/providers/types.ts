/**
 * What a provider module supplies to the proxy and the pool. Every quirk of a provider (addresses,
 * auth headers, token refresh, error format, rate-limit signals) lives in its own module.
 */
import type { Config } from "../config";
import type { ErrorFormat } from "../errors";
import type { Classification } from "../pool/cooldown";
import type { Credential } from "../vault/records";

export const PROVIDER_IDS = ["anthropic", "openai", "github-copilot"] as const;
export type ProviderId = (typeof PROVIDER_IDS)[number];
export type AccountType = "api" | "oauth";

/** The parts of an account a provider needs to address and authorize a request. */
export interface AccountRef {
  id: string;
  type: AccountType;
  /** ChatGPT workspace/account id (OpenAI OAuth), from the access token's claims. */
  chatgptAccountId: string | null;
}

export type RefreshResult =
  | { kind: "ok"; access: string; refresh?: string; expires: number | null; chatgptAccountId?: string }
  /** The grant is dead (invalid_grant, reused, revoked): a person must log in again. */
  | { kind: "reauth"; reason: string }
  /** The token endpoint failed for a reason that may pass (5xx, network, 429). */
  | { kind: "transient"; reason: string };

/** What a login start hands back: the part the user sees, and the part that stays in the DO. */
export interface LoginStart {
  /** Shown to the client: url + instructions, or userCode + verificationUri. Never a secret. */
  public: { method: "code" | "redirect" | "device"; [k: string]: string | number };
  /** The OAuth `state` to check on finish (code flows). */
  state: string | null;
  /** Stays server-side, sealed: the PKCE verifier, or the device code. */
  secret: { verifier?: string; deviceCode?: string };
  /** Device flow: seconds between polls. */
  intervalS?: number;
  /** The provider's own expiry for this login, if shorter than ours. */
  expiresInS?: number;
}

export interface LoginGrant {
  refresh: string;
  access?: string;
  expires: number | null;
  /** A stable id of the person's provider account, to refresh instead of duplicating on re-login. */
  identity: string | null;
  /** A friendly default label (an email or a login name). */
  label: string | null;
}

export type LoginStep =
  | { kind: "done"; grant: LoginGrant }
  | { kind: "pending"; intervalS: number }
  /** `terminal`: the pending login is dead (denied, expired); otherwise the user may try again. */
  | { kind: "refused"; status: number; message: string; field?: string; terminal: boolean };

export interface LoginFlow {
  start(cfg: Config): Promise<LoginStart>;
  finish(cfg: Config, pending: { state: string | null; secret: LoginStart["secret"]; intervalS: number | null }, code: string | undefined): Promise<LoginStep>;
}

export interface Provider {
  id: ProviderId;
  /** Proxy prefix, e.g. "/anthropic". */
  prefix: string;
  name: string;
  format: ErrorFormat;
  types: readonly AccountType[];
  /** Refresh this long before the access token expires. */
  refreshSkewMs: number;
  /** Upstream URL for `path` (after the prefix), or null when this account type cannot serve it. */
  upstreamUrl(cfg: Config, account: AccountRef, path: string, search: string): string | null;
  /** Sets the account's credential (and only the headers the credential type requires). */
  authorize(headers: Headers, account: AccountRef, cred: Credential): void;
  /** Exchanges the long-lived grant for a new access token. Called only inside the user's DO. */
  refresh(cfg: Config, cred: Credential): Promise<RefreshResult>;
  /** Classifies an upstream answer; `body` is the (small) error body when status >= 400. */
  classify(status: number, headers: Headers, body: string | null, now: number): Classification;
  /** Classifies the data of a first SSE `error` event; null when it is not a limit or overload. */
  classifySseError(data: unknown): Classification | null;
  /** The interactive login (DESIGN §4 /api/oauth/:provider/start|finish). */
  login: LoginFlow;
  /** Extra account metadata read from an access token (ChatGPT account id). */
  accountMeta?(access: string | undefined): { chatgptAccountId?: string };
}
