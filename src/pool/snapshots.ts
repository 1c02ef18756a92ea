/**
 * Each user's pool as this isolate knows it, and what it owes the Durable Object, so that in steady
 * state a proxied request makes no KV or DO round trip before the upstream fetch:
 *   - a snapshot per user, trusted for SNAPSHOT_TTL_MS (1 s): a cooldown recorded anywhere is
 *     honoured everywhere within about a second. Past 80 % of the TTL a request refreshes it in the
 *     background (waitUntil), so under steady traffic no request waits for the Durable Object;
 *   - outcomes (counters, cooldowns, quota telemetry, usage), applied to the local snapshot at once
 *     (this isolate never retries a benched account) and batched to the DO off the response path:
 *     failures right away, the rest at most once a second, each batch answered with a fresh
 *     snapshot (one round trip);
 *   - conversation bindings (session affinity): kept here, sent with the batches, and received as
 *     the changes other isolates made since this one's last round trip.
 *
 * No request ever awaits a round trip another request started (docs/ARCHITECTURE.md, "One request,
 * its own I/O"): the platform settles a promise only in the request that made it, so a request that
 * ends early (its client went away) would leave every request waiting on its promise stalled, or
 * failing with "Cannot perform I/O on behalf of a different request". What is shared between
 * requests is data (the snapshot, pending outcomes) and timestamps (a background refresh under way),
 * never a promise: a request that finds the snapshot expired makes its own round trip, and the
 * freshest answer (by the DO's clock) is the one kept.
 */
import type { Config, Env } from "../config";
import { bounded } from "../util";
import { callPool } from "./rpc";
import { AFFINITY_CAP, utcDay } from "./telemetry-store";
import type { AccountState, AffinityEntry, EdgeEvent, OutcomeReport, Snapshot, UsageDelta } from "./types";

const SUCCESS_FLUSH_MS = 1_000;
/** A binding's `at` is refreshed locally on every request, and sent at most this often. */
const AFFINITY_TOUCH_MS = 60_000;
/**
 * A background refresh (or a scheduled flush) that has not reported back within this long is taken
 * as lost (its request ended before it did): the next request may start another one.
 */
const MARK_EXPIRES_MS = 5_000;

interface UserEntry {
  snap: Snapshot;
  fetchedAt: number;
  pending: Map<string, OutcomeReport>;
  /** When a flush of successes was scheduled (0: none). A mark, not a promise (see above). */
  flushScheduledAt: number;
  /** conversation key -> binding, as this isolate knows it. */
  affinity: Map<string, AffinityEntry>;
  pendingAffinity: Map<string, AffinityEntry>;
  /** New conversations placed per provider (round-robin's turn). */
  turns: Map<string, number>;
  /** Live bindings per provider, counted on demand (see hasBindings). */
  bound: Map<string, { n: number; at: number }>;
  /** Requests admitted under the team's limits, per epoch minute, not yet sent. */
  admitted: Map<number, number>;
  /** Events for alerts, not yet sent; and when each was last sent (an isolate sends one a minute). */
  events: EdgeEvent[];
  eventSentAt: Map<string, number>;
}

const users = new Map<string, UserEntry>();
/** user -> when a background refresh of the snapshot started (a mark, never a promise). */
const refreshing = new Map<string, number>();
/** user -> how many times this isolate changed the user's pool: an answer that left before a change is not kept. */
const changes = new Map<string, number>();

export async function getSnapshot(env: Env, cfg: Config, userId: string, waitUntil?: (p: Promise<unknown>) => void): Promise<Snapshot> {
  const e = users.get(userId);
  if (e) {
    const now = Date.now();
    const age = now - e.fetchedAt;
    if (age < cfg.SNAPSHOT_TTL_MS) {
      if (waitUntil && age >= cfg.SNAPSHOT_TTL_MS * 0.8 && now - (refreshing.get(userId) ?? 0) >= MARK_EXPIRES_MS) {
        bounded(refreshing, userId, now);
        waitUntil(
          sync(env, userId)
            .catch(() => undefined)
            .finally(() => refreshing.delete(userId)),
        );
      }
      return e.snap;
    }
  }
  return sync(env, userId);
}

/**
 * One round trip, made by the calling request itself: sends the pending outcomes and bindings,
 * receives the fresh snapshot. Concurrent round trips of one user are allowed (each carries what
 * was pending when it left); the snapshot kept is the newest by the DO's clock.
 */
async function sync(env: Env, userId: string): Promise<Snapshot> {
  const seen = changes.get(userId) ?? 0;
  const e = users.get(userId);
  const reports = e ? [...e.pending.values()] : [];
  const bindings = e ? [...e.pendingAffinity.values()] : [];
  const admitted = e ? [...e.admitted].map(([minute, n]) => ({ minute, n })) : [];
  const events = e ? e.events.splice(0) : [];
  e?.pending.clear();
  e?.pendingAffinity.clear();
  e?.admitted.clear();
  // Bindings another isolate wrote while our last answer was on its way are caught by the overlap.
  const since = e ? e.snap.at - 5_000 : 0;
  let snap: Snapshot;
  try {
    snap = await callPool(env, userId, (s) => s.sync(reports, { affinity: bindings, since, admitted, events }));
  } catch (err) {
    // Put the reports back so they are not lost with a failed round trip.
    const cur = users.get(userId);
    if (cur) {
      for (const r of reports) mergeReport(cur.pending, r);
      for (const b of bindings) if (!cur.pendingAffinity.has(b.key)) cur.pendingAffinity.set(b.key, b);
      for (const a of admitted) cur.admitted.set(a.minute, (cur.admitted.get(a.minute) ?? 0) + a.n);
      cur.events.push(...events.slice(0, MAX_EVENTS - cur.events.length));
    }
    throw err;
  }
  const cur = users.get(userId);
  const pending = cur?.pending ?? new Map<string, OutcomeReport>();
  // Outcomes recorded while this round trip was under way are not in `snap` yet: re-apply.
  for (const r of pending.values()) applyToSnapshot(snap, r);
  for (const [minute, n] of cur?.admitted ?? []) if (snap.spent.minute === minute) snap.spent.minuteRequests += n;
  const affinity = cur?.affinity ?? new Map<string, AffinityEntry>();
  for (const b of snap.affinity) {
    const mine = affinity.get(b.key);
    if (!mine || mine.at <= b.at) bounded(affinity, b.key, b, AFFINITY_CAP);
  }
  snap.affinity = []; // held in the map from here on
  // A concurrent round trip brought a newer answer, or this isolate changed the pool after this one
  // left: the caller uses what it got, the isolate keeps what it has (an expired snapshot is read again).
  const changed = (changes.get(userId) ?? 0) !== seen;
  if (cur && (cur.snap.at > snap.at || changed)) return snap;
  bounded(users, userId, {
    snap,
    fetchedAt: changed ? 0 : Date.now(),
    pending,
    flushScheduledAt: cur?.flushScheduledAt ?? 0,
    affinity,
    pendingAffinity: cur?.pendingAffinity ?? new Map(),
    turns: cur?.turns ?? new Map(),
    bound: new Map(),
    admitted: cur?.admitted ?? new Map(),
    events: cur?.events ?? [],
    eventSentAt: cur?.eventSentAt ?? new Map(),
  });
  return snap;
}

/** After a change made through the pool client: the next request reads the DO again. */
export function invalidateSnapshot(userId: string): void {
  bounded(changes, userId, (changes.get(userId) ?? 0) + 1);
  const e = users.get(userId);
  if (e) e.fetchedAt = 0;
}

export function forgetSnapshot(userId: string): void {
  users.delete(userId);
  changes.delete(userId);
  refreshing.delete(userId);
}

/** The account as this isolate currently believes it (outcomes of concurrent requests included). */
export function liveAccount(userId: string, accountId: string): AccountState | undefined {
  return users.get(userId)?.snap.accounts.find((a) => a.id === accountId);
}

// ---- conversations ----------------------------------------------------------------------------

/** The account a conversation is bound to, while its binding is younger than the TTL. */
export function boundAccount(userId: string, key: string, ttlMs: number, now: number): string | null {
  const b = users.get(userId)?.affinity.get(key);
  return b && now - b.at < ttlMs ? b.accountId : null;
}

/**
 * Whether any live binding of this user's conversations with this provider exists (keys start with
 * "<provider>|"). Counted at most every 10 s, forgetting expired bindings on the way.
 */
export function hasBindings(userId: string, provider: string, ttlMs: number, now: number): boolean {
  const e = users.get(userId);
  if (!e || e.affinity.size === 0) return false;
  const counted = e.bound.get(provider);
  if (counted && now - counted.at < 10_000) return counted.n > 0;
  let n = 0;
  for (const [k, b] of e.affinity) {
    if (now - b.at >= ttlMs) e.affinity.delete(k);
    else if (k.startsWith(`${provider}|`)) n++;
  }
  e.bound.set(provider, { n, at: now });
  return n > 0;
}

/** The next turn of round-robin for this user and provider (counts new conversations). */
export function nextTurn(userId: string, provider: string): number {
  const e = users.get(userId);
  if (!e) return 0;
  const t = e.turns.get(provider) ?? 0;
  e.turns.set(provider, t + 1);
  return t;
}

/**
 * Binds (or keeps) a conversation on the account that just served it. A new or moved binding is
 * sent with the next batch; a binding that only got older is re-sent at most once a minute.
 */
export function bindConversation(env: Env, userId: string, key: string, accountId: string, now: number): Promise<unknown> | null {
  const e = users.get(userId);
  if (!e) return null;
  const prev = e.affinity.get(key);
  const entry = { key, accountId, at: now };
  if (!prev) e.bound.clear();
  bounded(e.affinity, key, entry, AFFINITY_CAP);
  if (prev && prev.accountId === accountId && now - prev.at < AFFINITY_TOUCH_MS && !e.pendingAffinity.has(key)) {
    entry.at = prev.at; // not worth a write yet
    return null;
  }
  e.pendingAffinity.set(key, entry);
  return scheduleFlush(env, userId, e);
}

// ---- outcomes ---------------------------------------------------------------------------------

function applyToSnapshot(snap: Snapshot, r: OutcomeReport) {
  // The member's spending (team limits) counts whatever account served, deleted ones included.
  for (const u of r.usage ?? []) {
    const tokens = u.inputTokens + u.outputTokens + u.cacheReadTokens + u.cacheWriteTokens;
    if (u.date === snap.spent.day) snap.spent.dayTokens += tokens;
    if (u.date.startsWith(snap.spent.month)) snap.spent.monthTokens += tokens;
  }
  const a = snap.accounts.find((x) => x.id === r.accountId);
  if (!a) return;
  a.successCount += r.successes;
  a.failureCount += r.failures;
  // A usage-only report (tokens counted after the answer) says nothing about the last status.
  if (r.successes + r.failures > 0) {
    a.lastUsedAt = Math.max(a.lastUsedAt ?? 0, r.lastUsedAt);
    a.lastStatus = r.lastStatus;
  }
  if (r.cooldownUntil !== undefined) a.cooldownUntil = Math.max(a.cooldownUntil ?? 0, r.cooldownUntil);
  if (r.lastError !== undefined) {
    a.lastError = r.lastError;
    if (r.lastError !== null) a.lastErrorAt = r.lastUsedAt || Date.now();
  }
  if (r.quota && (!a.quota || a.quota.updatedAt <= r.quota.updatedAt)) a.quota = r.quota;
}

function addUsage(into: UsageDelta[], more: UsageDelta[]) {
  for (const u of more) {
    const d = into.find((x) => x.date === u.date);
    if (!d) into.push({ ...u });
    else {
      d.requests += u.requests;
      d.inputTokens += u.inputTokens;
      d.outputTokens += u.outputTokens;
      d.cacheReadTokens += u.cacheReadTokens;
      d.cacheWriteTokens += u.cacheWriteTokens;
    }
  }
}

function mergeReport(pending: Map<string, OutcomeReport>, r: OutcomeReport) {
  const prev = pending.get(r.accountId);
  if (!prev) {
    pending.set(r.accountId, { ...r, usage: r.usage ? r.usage.map((u) => ({ ...u })) : undefined });
    return;
  }
  prev.successes += r.successes;
  prev.failures += r.failures;
  if (r.successes + r.failures > 0 && r.lastUsedAt >= prev.lastUsedAt) {
    prev.lastUsedAt = r.lastUsedAt;
    prev.lastStatus = r.lastStatus;
  }
  if (r.cooldownUntil !== undefined) prev.cooldownUntil = Math.max(prev.cooldownUntil ?? 0, r.cooldownUntil);
  if (r.lastError !== undefined) prev.lastError = r.lastError;
  if (r.quota && (!prev.quota || prev.quota.updatedAt <= r.quota.updatedAt)) prev.quota = r.quota;
  if (r.usage) addUsage((prev.usage ??= []), r.usage);
}

/**
 * Records an outcome locally at once and returns the promise of its delivery to the DO, for
 * ctx.waitUntil: immediate for failures (other isolates must learn of a cooldown), batched for
 * the rest.
 */
export function recordOutcome(env: Env, userId: string, r: OutcomeReport): Promise<unknown> | null {
  const e = users.get(userId);
  if (!e) return callPool(env, userId, (s) => s.sync([r]));
  applyToSnapshot(e.snap, r);
  mergeReport(e.pending, r);
  if (r.failures > 0 || r.cooldownUntil !== undefined) return flush(env, userId);
  return scheduleFlush(env, userId, e);
}

// ---- team limits and alerts ----------------------------------------------------------------------

/** Events an isolate keeps for one user between flushes at most (an alert is once an hour anyway). */
const MAX_EVENTS = 20;
/** The same event (and subject) is sent by one isolate at most this often. */
const EVENT_EVERY_MS = 60_000;

/**
 * Counts a request the team's limits admitted (src/limits/enforce.ts): in the snapshot at once, so
 * the next request of this isolate sees it, and to the object with the next batch.
 */
export function admit(userId: string, now: number): void {
  const e = users.get(userId);
  if (!e) return;
  const minute = Math.floor(now / 60_000);
  const s = e.snap.spent;
  if (s.minute !== minute) [s.minute, s.minuteRequests] = [minute, 0];
  s.minuteRequests++;
  e.admitted.set(minute, (e.admitted.get(minute) ?? 0) + 1);
  if (e.admitted.size > 2) for (const m of e.admitted.keys()) if (m < minute - 1) e.admitted.delete(m);
}

/**
 * Something the member's alerts may want to hear of (a limit reached, every account cooling), sent
 * with the next batch: at most once a minute per event and subject from this isolate, so a client
 * hammering a limit costs no round trip per refused request.
 */
export function noteEvent(env: Env, userId: string, ev: EdgeEvent): Promise<unknown> | null {
  const e = users.get(userId);
  if (!e) return null;
  const key = ev.event === "pool.exhausted" ? `${ev.event}|${ev.provider}` : `${ev.event}|${ev.field}`;
  if (ev.at - (e.eventSentAt.get(key) ?? 0) < EVENT_EVERY_MS || e.events.length >= MAX_EVENTS) return null;
  bounded(e.eventSentAt, key, ev.at, 100);
  e.events.push(ev);
  return scheduleFlush(env, userId, e);
}

/** Tokens an answer used, known once it has been read (a stream's usage comes at its end). */
export function recordUsage(env: Env, userId: string, accountId: string, usage: Omit<UsageDelta, "date" | "requests">, now: number): Promise<unknown> | null {
  return recordOutcome(env, userId, { accountId, successes: 0, failures: 0, lastUsedAt: 0, lastStatus: 0, usage: [{ date: utcDay(now), requests: 0, ...usage }] });
}

/**
 * The flush of successes, at most once a second, made by the request that scheduled it (its
 * waitUntil). If that request ended before the timer fired, the mark expires and another request
 * schedules the next flush.
 */
function scheduleFlush(env: Env, userId: string, e: UserEntry): Promise<unknown> | null {
  const now = Date.now();
  if (e.flushScheduledAt !== 0 && now - e.flushScheduledAt < SUCCESS_FLUSH_MS + MARK_EXPIRES_MS) return null;
  e.flushScheduledAt = now;
  return scheduler.wait(SUCCESS_FLUSH_MS).then(() => {
    const cur = users.get(userId);
    if (cur) cur.flushScheduledAt = 0;
    return cur && hasPending(cur) ? flush(env, userId) : null;
  });
}

function hasPending(e: UserEntry): boolean {
  return e.pending.size > 0 || e.pendingAffinity.size > 0 || e.admitted.size > 0 || e.events.length > 0;
}

/**
 * Sends pending outcomes now (the account listing calls this so it shows this isolate's counts), in
 * a round trip of the caller's own: a round trip of another request may be under way, but awaiting
 * it is what must never happen (see the top of this file), and what it carries is not pending any more.
 */
export async function flush(env: Env, userId: string): Promise<void> {
  const e = users.get(userId);
  if (!e || !hasPending(e)) return;
  try {
    await sync(env, userId);
  } catch (err) {
    console.warn(`subpool: could not record outcomes for user ${userId}: ${(err as Error).name}`);
  }
}

/** For tests: forget every snapshot and pending outcome. */
export function resetSnapshots(): void {
  users.clear();
  refreshing.clear();
  changes.clear();
}
