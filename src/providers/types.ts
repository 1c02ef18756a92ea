/**
 * What a provider module supplies. A provider module owns everything about its provider: addresses,
 * headers, which paths each account type serves (and why not), token refresh, the login flow, error
 * rendering, rate-limit classification, the credential files of its tools and any per-account
 * extras. The rest of the code reaches providers only through the registry (./index.ts) and these
 * types, and never spells a provider id.
 */
import type { Config } from "../config";
import type { ErrorFormat } from "../errors";
import type { Credential } from "../vault/records";
import type { Classification } from "./classify";
import type { QuotaReading, UsageReader } from "./telemetry";

/** A registered provider's id ("anthropic", ...). Checked against the registry at the edge. */
export type ProviderId = string;
export type AccountType = "api" | "oauth";

/**
 * Provider-owned facts about one account that are not secrets (e.g. the ChatGPT workspace id read
 * from the access token's claims). Stored as one JSON column; only the provider reads it.
 */
export type AccountExtras = Readonly<Record<string, string>>;

/** The parts of an account a provider needs to address and authorize a request. */
export interface AccountRef {
  id: string;
  type: AccountType;
  extras: AccountExtras;
}

/** Where a request goes with this account, or why this account cannot serve it. */
export type Route = { url: string } | { refused: string };

export type RefreshResult =
  | { kind: "ok"; access: string; refresh?: string; expires: number | null; extras?: AccountExtras }
  /** The grant is dead (invalid_grant, reused, revoked): a person must log in again. */
  | { kind: "reauth"; reason: string }
  /** The token endpoint failed for a reason that may pass (5xx, network, 429, garbage). */
  | { kind: "transient"; reason: string };

/** What a login start hands back: the part the user sees, and the part that stays in the DO. */
export interface LoginStart {
  kind: "started";
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

/** `terminal`: the pending login is dead (denied, expired); otherwise the user may try again. */
export type LoginRefusal = { kind: "refused"; status: number; message: string; field?: string; terminal: boolean };

export type LoginStep = { kind: "done"; grant: LoginGrant } | { kind: "pending"; intervalS: number } | LoginRefusal;

export interface LoginFlow {
  /** Whether finish needs something the user pastes (code flows) or only polls (device flow). */
  needsCode: boolean;
  start(cfg: Config): Promise<LoginStart | LoginRefusal>;
  finish(cfg: Config, pending: { state: string | null; secret: LoginStart["secret"]; intervalS: number | null }, code: string | undefined): Promise<LoginStep>;
}

/** One credential of an imported file, ready to become (or refresh) an account. */
export interface ImportEntry {
  /** Where in the file it came from (a key name), for the per-entry answer. */
  entry: string;
  provider: ProviderId;
  type: AccountType;
  key?: string;
  refresh?: string;
  access?: string;
  expires?: number | null;
  identity?: string | null;
  label?: string;
}

export interface Refusal {
  entry: string;
  reason: string;
}

/** A credential file written by one of the provider's own tools (Claude Code, Codex CLI, ...). */
export interface CredentialFileFormat {
  /** The format's name in the import answer ("claude-code"). */
  name: string;
  detect(data: Record<string, unknown>): boolean;
  parse(data: Record<string, unknown>): { entries: ImportEntry[]; refused: Refusal[] };
}

/** How the provider appears in multi-provider files (opencode's auth.json) and its own tools' files. */
export interface ImportSupport {
  /** The provider's key in opencode's auth.json. */
  opencodeKey?: string;
  /** Fills in what a bare OAuth grant implies (identity, label, expiry read from the token). */
  oauthEntry?(e: ImportEntry): ImportEntry;
  files?: readonly CredentialFileFormat[];
}

/** What a check found: the provider accepted the credential, refused it, or could not tell. */
export interface CheckVerdict {
  verdict: "ok" | "invalid" | "unknown";
  /** The provider's status (0 when unreachable). */
  status: number;
  /** For people, never a secret. */
  message: string;
  quota?: QuotaReading | null;
}

/**
 * How a provider's clients name their conversation. The gateway asks in this order and stops at
 * the first answer; each reader is cheap by contract (the body can be a megabyte).
 */
export interface SessionReader {
  /** From what the client sends in headers (Claude Code's session id, Codex's session-id); no body read. */
  fromHeaders(headers: Headers): string | null;
  /** From a window of the body's text (its last or first few KB, or all of a small body). */
  fromBody(text: string): string | null;
  /** The parts of a parsed (small) body that open the conversation: its system prompt and first turn. */
  opening(body: unknown): unknown;
}

export interface Provider {
  id: ProviderId;
  /** Proxy prefix, e.g. "/anthropic". */
  prefix: string;
  /** For people: "Anthropic". */
  name: string;
  /** How this provider's clients expect an error (JSON body and final SSE event). */
  errorFormat: ErrorFormat;
  types: readonly AccountType[];
  /** Said when an account of another type is offered ("OAuth only: send ..."). */
  typeHint?: string;
  /** Refresh this long before the access token expires. */
  refreshSkewMs: number;
  /** Upstream URL for `path` (after the prefix), or why this account cannot serve it. */
  route(cfg: Config, account: AccountRef, path: string, search: string): Route;
  /**
   * Whether a request to this path names its model at the body's top level and has its answer's
   * token usage counted by the gateway (the generation endpoints; token counting; model listings).
   * A member with a model list or a token limit may use only these: a batch or a file upload names
   * its models elsewhere and is billed later, out of the gateway's sight (src/limits/enforce.ts).
   */
  metered(method: string, path: string): boolean;
  /** Sets the account's credential (and only the headers the credential type requires). */
  authorize(headers: Headers, account: AccountRef, cred: Credential): void;
  /** Exchanges the long-lived grant for a new access token. Called only inside the user's DO. */
  refresh(cfg: Config, cred: Credential): Promise<RefreshResult>;
  /** Classifies an upstream answer; `body` is the (bounded) error body when status >= 400. */
  classify(status: number, headers: Headers, body: string | null, now: number): Classification;
  /**
   * Events that open a stream before it says anything (Anthropic's `message_start`, OpenAI's
   * `response.created`): the gateway looks past them for an error it can still fail over from.
   * `ping` is never an event that says something.
   */
  openingEvents: ReadonlySet<string>;
  /** Classifies the data of a first SSE `error` event; null when it is not a limit or overload. */
  classifySseError(data: unknown): Classification | null;
  /** The interactive login (/api/oauth/:provider/start|finish). */
  login: LoginFlow;
  /** Quota telemetry in an answer's headers (any status); null when it carries none. */
  quotaOf(headers: Headers, now: number): QuotaReading | null;
  /** Token usage from JSON answers and SSE events. */
  usage: UsageReader;
  /** How this provider's clients name a conversation (session affinity; proxy/conversation.ts). */
  session: SessionReader;
  /**
   * Verifies a credential at no token cost where the provider allows it (an API key against a free
   * endpoint, a subscription against its usage endpoint). Absent: the check is a token refresh
   * (when `checkByRefresh`) or only says whether the session is still valid.
   */
  check?(cfg: Config, account: AccountRef, cred: Credential): Promise<CheckVerdict>;
  /** The check of an OAuth account is a token exchange even when not due (Copilot's is free). */
  checkByRefresh?: boolean;
  /** Reads quota at no token cost for an account that has not served lately (from a DO alarm). */
  probeQuota?(cfg: Config, account: AccountRef, cred: Credential): Promise<QuotaReading | null>;
  /** Non-secret per-account facts read from a fresh access token; merged over the stored ones. */
  extrasOf?(access: string | undefined): AccountExtras;
  imports: ImportSupport;
}
