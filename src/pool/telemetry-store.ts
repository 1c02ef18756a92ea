/**
 * What the UserPool keeps about routing, besides the accounts themselves (docs/ARCHITECTURE.md,
 * "Routing"): each account's latest quota telemetry, its usage per UTC day (a year at most), the
 * conversation bindings (session affinity: bounded by TTL and by a cap per user) and the user's
 * settings. Plain functions over the object's SQLite storage, called from UserPool's thin methods.
 */
import type { Quota, Settings, Strategy, UsageDay } from "../wire";
import { parseJsonBody } from "../util";
import { DEFAULT_SETTINGS, STRATEGIES } from "./strategies";
import type { AffinityEntry, OutcomeReport } from "./types";

/** Conversations remembered per user at most (the oldest go first). */
export const AFFINITY_CAP = 5000;
/** Days of usage kept. */
export const USAGE_DAYS_KEPT = 366;

let dayStart = 0;
let dayEnd = 0;
let dayName = "";

/** The UTC day of an instant, "YYYY-MM-DD" (remembered for the current day: it is asked per request). */
export function utcDay(ms: number): string {
  if (ms >= dayStart && ms < dayEnd) return dayName;
  const name = new Date(ms).toISOString().slice(0, 10);
  const start = Date.parse(`${name}T00:00:00Z`);
  if (ms >= Date.now() - 86_400_000) [dayStart, dayEnd, dayName] = [start, start + 86_400_000, name];
  return name;
}

export function readQuota(json: string | null): Quota | null {
  const q = parseJsonBody(json) as Quota | undefined;
  return q && typeof q === "object" && q.windows && typeof q.updatedAt === "number" ? q : null;
}

/**
 * The five usage counters and how a row adds more (usage_daily per account, member_usage_daily per
 * member: the same columns, one statement shape).
 */
export const USAGE_COLUMNS = "requests, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens";
export const ADD_USAGE = `requests = requests + excluded.requests, input_tokens = input_tokens + excluded.input_tokens,
  output_tokens = output_tokens + excluded.output_tokens, cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
  cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens`;

/** Quota and usage of a batch of reports (the counters and cooldowns are the caller's). */
export function applyTelemetry(sql: SqlStorage, reports: OutcomeReport[]): void {
  for (const r of reports) {
    if (r.quota) {
      sql.exec(
        "UPDATE accounts SET quota = ? WHERE id = ? AND (quota IS NULL OR COALESCE(json_extract(quota, '$.updatedAt'), 0) <= ?)",
        JSON.stringify(r.quota),
        r.accountId,
        r.quota.updatedAt,
      );
    }
    for (const u of r.usage ?? []) {
      sql.exec(
        `INSERT INTO usage_daily (account_id, date, ${USAGE_COLUMNS})
         SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM accounts WHERE id = ?)
         ON CONFLICT (account_id, date) DO UPDATE SET ${ADD_USAGE}`,
        r.accountId,
        u.date,
        u.requests,
        u.inputTokens,
        u.outputTokens,
        u.cacheReadTokens,
        u.cacheWriteTokens,
        r.accountId,
      );
    }
  }
}

/** Stores bindings (newer wins) and forgets expired ones and those over the cap. */
export function applyAffinity(sql: SqlStorage, entries: AffinityEntry[], ttlS: number, now: number): void {
  for (const e of entries) {
    sql.exec(
      `INSERT INTO affinity (key, account_id, at) VALUES (?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET account_id = excluded.account_id, at = excluded.at WHERE excluded.at >= affinity.at`,
      e.key,
      e.accountId,
      e.at,
    );
  }
  sql.exec("DELETE FROM affinity WHERE at < ?", now - ttlS * 1000);
  if (entries.length > 0) {
    sql.exec("DELETE FROM affinity WHERE key IN (SELECT key FROM affinity ORDER BY at DESC LIMIT -1 OFFSET ?)", AFFINITY_CAP);
  }
}

/** Bindings changed since `since` (epoch ms of the DO's clock), newest first, at most the cap. */
export function affinitySince(sql: SqlStorage, since: number): AffinityEntry[] {
  return sql
    .exec<{ key: string; account_id: string; at: number }>("SELECT key, account_id, at FROM affinity WHERE at >= ? ORDER BY at DESC LIMIT ?", since, AFFINITY_CAP)
    .toArray()
    .map((r) => ({ key: r.key, accountId: r.account_id, at: r.at }));
}

export function forgetAccount(sql: SqlStorage, accountId: string): void {
  sql.exec("DELETE FROM affinity WHERE account_id = ?", accountId);
  sql.exec("DELETE FROM usage_daily WHERE account_id = ?", accountId);
}

/** A row of usage_daily or member_usage_daily. */
export type UsageRow = { date: string; requests: number; input_tokens: number; output_tokens: number; cache_read_tokens: number; cache_write_tokens: number };

export const usageDayOf = (r: UsageRow): UsageDay => ({
  date: r.date,
  requests: r.requests,
  inputTokens: r.input_tokens,
  outputTokens: r.output_tokens,
  cacheReadTokens: r.cache_read_tokens,
  cacheWriteTokens: r.cache_write_tokens,
});

export function usageDays(sql: SqlStorage, accountId: string, days: number, now: number): UsageDay[] {
  const from = utcDay(now - (days - 1) * 86_400_000);
  return sql.exec<UsageRow>("SELECT * FROM usage_daily WHERE account_id = ? AND date >= ? ORDER BY date", accountId, from).toArray().map(usageDayOf);
}

export function purgeUsage(sql: SqlStorage, now: number): void {
  sql.exec("DELETE FROM usage_daily WHERE date < ?", utcDay(now - USAGE_DAYS_KEPT * 86_400_000));
}

/** The stored settings, each field checked: a strategy this code does not know (a rollback) falls back to the default. */
export function readSettings(json: string | null): Settings {
  const s = (parseJsonBody(json) ?? {}) as Partial<Record<keyof Settings, unknown>>;
  const out = { ...DEFAULT_SETTINGS };
  if (typeof s.strategy === "string" && Object.hasOwn(STRATEGIES, s.strategy)) out.strategy = s.strategy as Strategy;
  if (typeof s.quotaThreshold === "number" && s.quotaThreshold > 0 && s.quotaThreshold <= 1) out.quotaThreshold = s.quotaThreshold;
  if (typeof s.affinityTtlS === "number" && s.affinityTtlS >= 0) out.affinityTtlS = s.affinityTtlS;
  return out;
}
