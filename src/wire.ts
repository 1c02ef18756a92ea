/**
 * The JSON shapes of subpool's HTTP API: the one definition shared by the Worker and the CLI (the
 * CLI's build includes this file). Dependency-free and types only, so both builds can take it.
 * Field names follow the contract in docs/ARCHITECTURE.md ("HTTP API"); none of these carries a
 * secret except `key` in UserWithKey, shown once when a key is made.
 */

export type Role = "member" | "admin";

export interface UserProfile {
  id: string;
  name: string;
  role: Role;
  createdAt: number;
}

export interface UserWithKey extends UserProfile {
  key: string;
}

export interface Me {
  id: string | null;
  name: string;
  role: Role;
  /** Resets of this user's gateway key by an admin, newest first (the last 50); [] for ADMIN_TOKEN. */
  keyResets: KeyReset[];
  /** The team's limits for this member (DESIGN §12); every field null for ADMIN_TOKEN. */
  limits: Limits;
  /** What is left of each limit now; null where there is no limit. */
  left: LimitsLeft;
}

// ---- the team (DESIGN §12) ---------------------------------------------------------------------

/** Per-member limits an admin sets; null = no limit. */
export interface Limits {
  requestsPerMinute: number | null;
  /** Input + output + cache tokens per UTC day. */
  tokensPerDay: number | null;
  /** The same, per UTC month. */
  tokensPerMonth: number | null;
  /** Model globs the member may use (`claude-sonnet-*`); null = every model. */
  models: string[] | null;
}

export type LimitField = "requestsPerMinute" | "tokensPerDay" | "tokensPerMonth" | "models";

export interface LimitsLeft {
  requestsPerMinute: number | null;
  tokensPerDay: number | null;
  tokensPerMonth: number | null;
  /** Epoch ms when each window frees (the next UTC minute, day, month). */
  resets: { minute: number; day: number; month: number };
}

export interface UserListed extends UserProfile {
  limits: Limits;
}

export interface AccountCounts {
  total: number;
  active: number;
  cooling: number;
  needsReauth: number;
  disabled: number;
}

/** GET /admin/usage: one member, without any credential, label or account id. */
export interface TeamMemberUsage {
  id: string;
  name: string;
  role: Role;
  /** When the member was added (epoch ms); beyond the contract's fields, for "added" columns. */
  createdAt: number;
  lastSeenAt: number | null;
  accounts: AccountCounts;
  limits: Limits;
  /** One entry per UTC day of the asked window, oldest first, zeros included. */
  days: UsageDay[];
}

export interface TeamUsageAnswer {
  users: TeamMemberUsage[];
}

/** Who reset a user's gateway key, and when (epoch ms). `by.id` is null for the bootstrap ADMIN_TOKEN. */
export interface KeyReset {
  at: number;
  by: { id: string | null; name: string };
}

export type AccountType = "api" | "oauth";
export type AccountStatus = "active" | "cooling" | "needs_reauth" | "disabled";

/** An account as GET /api/accounts shows it. `provider` is a registered provider id. */
export interface AccountView {
  id: string;
  provider: string;
  type: AccountType;
  label: string;
  position: number;
  enabled: boolean;
  status: AccountStatus;
  cooldownUntil: number | null;
  lastStatus: number | null;
  lastError: string | null;
  /** When lastError happened (epoch ms): an error older than lastUsedAt's success is history. */
  lastErrorAt: number | null;
  lastUsedAt: number | null;
  successCount: number;
  failureCount: number;
  createdAt: number;
  /** Quota telemetry from the provider's answers, or null before any answer carried some. */
  quota: Quota | null;
}

export type LoginStartAnswer =
  | { loginId: string; provider: string; method: "code" | "redirect"; url: string; instructions?: string; expiresAt: number }
  | { loginId: string; provider: string; method: "device"; userCode: string; verificationUri: string; interval: number; instructions?: string; expiresAt: number };

export interface LoginDoneAnswer {
  account: AccountView;
  created: boolean;
}

export interface LoginPendingAnswer {
  status: "pending";
  interval: number;
}

export type ImportAction = "created" | "updated" | "unchanged";

export interface ImportAnswer {
  /** "opencode", or the name of a provider tool's file format ("claude-code", "codex"). */
  format: string;
  imported: { entry: string; provider: string; type: AccountType; action: ImportAction; account: AccountView }[];
  refused: { entry: string; reason: string }[];
}

/** Every error of the management API. */
export interface ApiErrorAnswer {
  error: { type: string; message: string; field?: string };
}

/** Credits beyond a plan's windows: `balance` in the provider's unit, null when unlimited or unsaid. */
export interface Credits {
  hasCredits: boolean;
  unlimited: boolean;
  balance: number | null;
}

/** A provider's quota window as the gateway last heard of it. `utilization` 0.42 = 42 % used. */
export interface QuotaWindow {
  utilization: number;
  /** Epoch ms, or null when the provider did not say. */
  resetsAt: number | null;
}

/**
 * Quota telemetry of one account, read from the provider's answers. Window names: "5h", "7d"
 * (Claude subscriptions), "7d_<model>" (a Claude weekly window of one model), "primary",
 * "secondary" (ChatGPT/Codex), "requests", "tokens" (API keys).
 */
export interface Quota {
  status: "allowed" | "allowed_warning" | "rejected" | null;
  windows: Record<string, QuotaWindow>;
  /** ChatGPT credits bought beyond the plan (x-codex-credits-*, wham/usage), when the provider says. */
  credits?: Credits;
  /** Epoch ms of the answer it was read from. */
  updatedAt: number;
}

export type Strategy = "failover" | "round-robin" | "quota-aware";

export interface Settings {
  strategy: Strategy;
  /** Accounts at or above this utilization are left alone while another is below it (quota-aware). */
  quotaThreshold: number;
  /** How long a conversation stays on its account after its last request, seconds. */
  affinityTtlS: number;
}

export interface UsageDay {
  /** UTC, YYYY-MM-DD. */
  date: string;
  requests: number;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
}

export interface UsageAnswer {
  days: UsageDay[];
}

/** POST /api/accounts/:id/check: whether the provider accepts the account's credential. */
export interface CheckAnswer {
  /** ok: accepted; invalid: refused (a new key or login is needed); unknown: could not tell now. */
  verdict: "ok" | "invalid" | "unknown";
  /** The provider's status (0 when unreachable). */
  status: number;
  message: string;
  account: AccountView;
}

/** POST /api/accounts answers the account and, unless ?check=false, what the check found. */
export type AddAccountAnswer = AccountView & { check?: Omit<CheckAnswer, "account"> };

/** Alert events (DESIGN §12, "Alerts"). */
export type AlertEventName = "account.needs_reauth" | "account.refused" | "pool.exhausted" | "quota.high" | "limit.reached" | "test";

/** What a receiver gets (subpool's own shape; Slack gets {text}, Discord {content}). Never a secret. */
export interface AlertPayload {
  event: AlertEventName;
  /** Epoch ms. */
  at: number;
  user: { id: string; name: string };
  account: { id: string; provider: string; label: string } | null;
  message: string;
}

/** One delivery's result: the receiver's status (0 when none came), and why it failed (no URL path, no secret). */
export interface AlertDelivery {
  at: number;
  status: number;
  ok: boolean;
  error: string | null;
}

/** PUT /admin/alerts and PUT /api/alerts: the signing secret is shown this once (PUT again rotates it). */
export interface AlertTargetCreated {
  url: string;
  /** null: every event. */
  events: AlertEventName[] | null;
  secret: string;
}

/** GET /admin/alerts and GET /api/alerts (404 when none is set). */
export interface AlertTargetView {
  url: string;
  events: AlertEventName[] | null;
  lastDelivery: AlertDelivery | null;
}
