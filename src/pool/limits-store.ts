/**
 * The team's side of a member's object (DESIGN §12): the limits an admin set, the member's own usage
 * per UTC day (member_usage_daily: whatever account served, kept when an account is deleted, so a
 * member cannot reset a day by deleting one), when they were last seen, and what they spent in the
 * current minute, day and month. The isolates enforce the limits from the snapshot (`limits`,
 * `spent`) with counters of their own and send what they admitted and used with the outcome batches
 * they send anyway: no request waits for this object (src/limits/enforce.ts).
 */
import type { AccountCounts, Limits, TeamMemberUsage, UsageDay } from "../wire";
import { parseJsonBody } from "../util";
import type { ProfileStore } from "./profile-store";
import { ADD_USAGE, USAGE_COLUMNS, USAGE_DAYS_KEPT, type UsageRow, usageDayOf, utcDay } from "./telemetry-store";
import type { AccountState, Admitted, OutcomeReport, Spent } from "./types";
import { statusOf } from "./types";

export const NO_LIMITS: Readonly<Limits> = Object.freeze({ requestsPerMinute: null, tokensPerDay: null, tokensPerMonth: null, models: null });

/** Minutes of admitted-request counts kept in memory (the current one is all that is asked). */
const MINUTES_KEPT = 3;

/** The stored limits, each field checked (a hand-edited or older record falls back to "no limit"). */
export function readLimits(json: string | null): Limits {
  const v = (parseJsonBody(json) ?? {}) as Partial<Record<keyof Limits, unknown>>;
  const count = (x: unknown) => (typeof x === "number" && Number.isSafeInteger(x) && x >= 0 ? x : null);
  const models = Array.isArray(v.models) && v.models.every((m) => typeof m === "string") ? (v.models as string[]) : null;
  return { requestsPerMinute: count(v.requestsPerMinute), tokensPerDay: count(v.tokensPerDay), tokensPerMonth: count(v.tokensPerMonth), models };
}

export const minuteOf = (ms: number): number => Math.floor(ms / 60_000);

export class LimitsStore {
  /** Requests admitted per epoch minute, as the isolates reported them (this instance). */
  readonly #minutes = new Map<number, number>();

  constructor(
    private readonly sql: SqlStorage,
    private readonly profile: ProfileStore,
  ) {}

  get(): Limits {
    return readLimits(this.profile.get("limits"));
  }

  /** Applies a patch (a field left out stays, null removes the limit); the new limits. */
  set(patch: Partial<Limits>): Limits {
    const next = { ...this.get(), ...patch };
    this.profile.set("limits", JSON.stringify(next));
    return next;
  }

  /** Requests the isolates admitted, per minute. */
  admitted(entries: Admitted[]): void {
    for (const a of entries) this.#minutes.set(a.minute, (this.#minutes.get(a.minute) ?? 0) + a.n);
    if (this.#minutes.size > MINUTES_KEPT) {
      const keep = Math.max(...this.#minutes.keys()) - MINUTES_KEPT;
      for (const m of this.#minutes.keys()) if (m <= keep) this.#minutes.delete(m);
    }
  }

  /** The member's usage from a batch of reports, and when they were last seen. */
  record(reports: OutcomeReport[]): void {
    let seen = 0;
    for (const r of reports) {
      if (r.successes + r.failures > 0) seen = Math.max(seen, r.lastUsedAt);
      for (const u of r.usage ?? []) {
        this.sql.exec(
          `INSERT INTO member_usage_daily (date, ${USAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (date) DO UPDATE SET ${ADD_USAGE}`,
          u.date,
          u.requests,
          u.inputTokens,
          u.outputTokens,
          u.cacheReadTokens,
          u.cacheWriteTokens,
        );
      }
    }
    if (seen > Number(this.profile.get("last_seen") ?? 0)) this.profile.set("last_seen", String(seen));
  }

  /** What the member spent in the current minute, UTC day and UTC month. */
  spent(now: number): Spent {
    const day = utcDay(now);
    const month = day.slice(0, 7);
    const tokens = "COALESCE(SUM(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens), 0)";
    const dayTokens = this.sql.exec<{ t: number }>(`SELECT ${tokens} AS t FROM member_usage_daily WHERE date = ?`, day).one().t;
    const monthTokens = this.sql.exec<{ t: number }>(`SELECT ${tokens} AS t FROM member_usage_daily WHERE date >= ? AND date <= ?`, `${month}-01`, day).one().t;
    const minute = minuteOf(now);
    return { day, dayTokens, month, monthTokens, minute, minuteRequests: this.#minutes.get(minute) ?? 0 };
  }

  purge(now: number): void {
    this.sql.exec("DELETE FROM member_usage_daily WHERE date < ?", utcDay(now - USAGE_DAYS_KEPT * 86_400_000));
  }

  /** The member as the team lead sees them: no credential, label or account id. */
  teamView(days: number, now: number, accounts: AccountState[]): Omit<TeamMemberUsage, "id" | "name" | "role" | "createdAt"> {
    const counts: AccountCounts = { total: accounts.length, active: 0, cooling: 0, needsReauth: 0, disabled: 0 };
    for (const a of accounts) {
      const s = statusOf(a, now);
      if (s === "active") counts.active++;
      else if (s === "cooling") counts.cooling++;
      else if (s === "needs_reauth") counts.needsReauth++;
      else counts.disabled++;
    }
    const from = utcDay(now - (days - 1) * 86_400_000);
    const rows = new Map(
      this.sql
        .exec<UsageRow>("SELECT * FROM member_usage_daily WHERE date >= ?", from)
        .toArray()
        .map((r) => [r.date, r]),
    );
    const out: UsageDay[] = [];
    for (let i = days - 1; i >= 0; i--) {
      const date = utcDay(now - i * 86_400_000);
      const r = rows.get(date);
      out.push(r ? usageDayOf(r) : { date, requests: 0, inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 });
    }
    const seen = this.profile.get("last_seen");
    return { lastSeenAt: seen ? Number(seen) : null, accounts: counts, limits: this.get(), days: out };
  }
}
