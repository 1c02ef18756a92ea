/** Shapes shared by the per-user Durable Object and the Worker's pool client. None holds a secret. */
import type { AccountExtras, AccountType, ProviderId } from "../providers/types";
import type { CredentialRecord } from "../vault/records";
import { cleanLabel } from "../util";
import type { AccountStatus, AccountView, LimitField, Limits, Quota, Settings, UsageDay, UserProfile } from "../wire";

export type { AccountStatus, AccountView, Role, UserProfile } from "../wire";

// ---- the RPC surface's arguments and answers (src/pool/user-pool.ts) ---------------------------

export interface NewAccount {
  provider: ProviderId;
  type: AccountType;
  label?: string;
  key?: string;
  refresh?: string;
  access?: string;
  expires?: number | null;
  /** Keyed hash of the secret (API key, or the refresh token): the same secret is one account. */
  fingerprint?: string;
  /** The provider account's stable id (login, or read from a token), to refresh instead of duplicating. */
  identity?: string | null;
}

export type FinishResult = { kind: "account"; account: AccountView; created: boolean } | { kind: "pending"; intervalS: number };

export interface AccountPatch {
  label?: string;
  position?: number;
  enabled?: boolean;
}

/** What the object found when a reader could not open a credential (see markUnreadable). */
export type UnreadableOutcome =
  | { kind: "readable"; record: CredentialRecord; wrappedDataKey: string }
  | { kind: "needs_reauth"; message: string }
  | { kind: "config"; message: string }
  | { kind: "changed" }
  | { kind: "gone" };

export type RefreshOutcome =
  | { ok: true; record: CredentialRecord; extras: AccountExtras }
  | { ok: false; reason: "needs_reauth" | "transient" | "gone"; message: string; retryAt?: number };

/**
 * An account's health changed for the worse, as the object found it (a refresh refused, a check
 * refused, a credential that does not open): what alerts are raised from. Called once per change.
 */
export type AccountEventHook = (event: "account.needs_reauth" | "account.refused", account: { id: string; provider: string; label: string }, message: string) => void;

/** The lastError of an account whose stored credential fails authentication. */
export const UNREADABLE_CREDENTIAL = "stored credential does not decrypt (altered or moved in storage): add the account again";

/** An account as the pool sees it: ordering, health, counters, credential version. */
export interface AccountState {
  id: string;
  provider: ProviderId;
  type: AccountType;
  label: string;
  position: number;
  enabled: boolean;
  needsReauth: boolean;
  cooldownUntil: number | null;
  lastStatus: number | null;
  lastError: string | null;
  lastErrorAt: number | null;
  lastUsedAt: number | null;
  successCount: number;
  failureCount: number;
  createdAt: number;
  credVersion: number;
  expires: number | null;
  /** Provider-owned, non-secret facts (see providers/types.ts AccountExtras). */
  extras: AccountExtras;
  /** The latest quota telemetry, or null before the first answer that carried some. */
  quota: Quota | null;
}

/** What a member spent, as of a snapshot: the current epoch minute, UTC day and UTC month. */
export interface Spent {
  day: string;
  dayTokens: number;
  /** "YYYY-MM". */
  month: string;
  monthTokens: number;
  minute: number;
  minuteRequests: number;
}

/** Requests an isolate admitted in one epoch minute (sent with its batches). */
export interface Admitted {
  minute: number;
  n: number;
}

/** What an isolate saw that the member's object turns into alerts (DESIGN §12). */
export type EdgeEvent = { event: "pool.exhausted"; provider: string; at: number } | { event: "limit.reached"; field: LimitField; at: number };

/** What an isolate caches about one user: enough to authenticate and choose, no secret. */
export interface Snapshot {
  user: UserProfile | null;
  keyId: string | null;
  /** The HMAC of the user's current gateway key (not a secret): checked against the presented key. */
  keyHash: string | null;
  accounts: AccountState[];
  settings: Settings;
  /** The team's limits for this member, and what they spent (src/limits/enforce.ts). */
  limits: Limits;
  spent: Spent;
  /** Conversation bindings changed since the isolate's last sync (all of them on its first). */
  affinity: AffinityEntry[];
  /** The DO's clock when it made this snapshot: the isolate's next `since`. */
  at: number;
}

/** Usage of one account on one day, as batched by an isolate (the same shape the API shows). */
export type UsageDelta = UsageDay;

/** A conversation bound to an account; `key` is "<provider>|<session>". */
export interface AffinityEntry {
  key: string;
  accountId: string;
  at: number;
}

/** Outcomes an isolate batches for the Durable Object (sent off the response path). */
export interface OutcomeReport {
  accountId: string;
  successes: number;
  failures: number;
  lastUsedAt: number;
  lastStatus: number;
  /** Absolute deadline; the DO keeps max(existing, new) (cooldowns only grow). */
  cooldownUntil?: number;
  lastError?: string | null;
  /** The latest quota telemetry heard for the account (the newest `updatedAt` wins). */
  quota?: Quota;
  /** Requests and tokens served, per UTC day. */
  usage?: UsageDelta[];
}

export function statusOf(a: AccountState, now = Date.now()): AccountStatus {
  if (!a.enabled) return "disabled";
  if (a.needsReauth) return "needs_reauth";
  if (a.cooldownUntil !== null && a.cooldownUntil > now) return "cooling";
  return "active";
}

export function viewOf(a: AccountState, now = Date.now()): AccountView {
  const status = statusOf(a, now);
  return {
    id: a.id,
    provider: a.provider,
    type: a.type,
    // Stored before the label rule, a label may hold controls: shown cleaned (util.ts, cleanLabel).
    label: cleanLabel(a.label),
    position: a.position,
    enabled: a.enabled,
    status,
    cooldownUntil: a.cooldownUntil !== null && a.cooldownUntil > now ? a.cooldownUntil : null,
    lastStatus: a.lastStatus,
    lastError: a.lastError,
    lastErrorAt: a.lastErrorAt,
    lastUsedAt: a.lastUsedAt,
    successCount: a.successCount,
    failureCount: a.failureCount,
    createdAt: a.createdAt,
    quota: a.quota,
  };
}

/**
 * How long before expiry an access token is renewed: the provider's margin (about a minute), but
 * never more than a quarter of the token's lifetime when we know it, so a token that lives 30 s is
 * used for most of its life instead of being refreshed on every request.
 */
export function refreshMarginMs(skewMs: number, cred: { expires: number | null; issued?: number | null }): number {
  if (cred.expires === null || !cred.issued || cred.expires <= cred.issued) return skewMs;
  return Math.min(skewMs, (cred.expires - cred.issued) / 4);
}
