/**
 * Each user's pool as this isolate knows it, and the outcomes it owes the Durable Object, so that in
 * steady state a proxied request makes no KV or DO round trip before the upstream fetch:
 *   - a snapshot per user, trusted for SNAPSHOT_TTL_MS (1 s): a cooldown recorded anywhere is
 *     honoured everywhere within about a second. Past 80 % of the TTL a request refreshes it in the
 *     background (waitUntil), so under steady traffic no request waits for the Durable Object;
 *   - outcomes, applied to the local snapshot at once (this isolate never retries a benched account)
 *     and batched to the DO off the response path: failures right away, successes at most once a
 *     second, each batch answered with a fresh snapshot (one round trip, single flight per user).
 */
import type { Config, Env } from "../config";
import { bounded } from "../util";
import { callPool } from "./rpc";
import type { AccountState, OutcomeReport, Snapshot } from "./types";

const SUCCESS_FLUSH_MS = 1_000;

interface UserEntry {
  snap: Snapshot;
  fetchedAt: number;
  pending: Map<string, OutcomeReport>;
  flushScheduled: boolean;
}

const users = new Map<string, UserEntry>();
const inflight = new Map<string, Promise<Snapshot>>();

export async function getSnapshot(env: Env, cfg: Config, userId: string, waitUntil?: (p: Promise<unknown>) => void): Promise<Snapshot> {
  const e = users.get(userId);
  if (e) {
    const age = Date.now() - e.fetchedAt;
    if (age < cfg.SNAPSHOT_TTL_MS) {
      if (waitUntil && age >= cfg.SNAPSHOT_TTL_MS * 0.8 && !inflight.has(userId)) waitUntil(sync(env, userId).catch(() => undefined));
      return e.snap;
    }
  }
  return sync(env, userId);
}

/** One round trip: sends pending outcomes, receives the fresh snapshot. Single flight per user. */
function sync(env: Env, userId: string): Promise<Snapshot> {
  let p = inflight.get(userId);
  if (p) return p;
  const e = users.get(userId);
  const reports = e ? [...e.pending.values()] : [];
  e?.pending.clear();
  p = callPool(env, userId, (s) => s.sync(reports))
    .then((snap) => {
      const cur = users.get(userId);
      const pending = cur?.pending ?? new Map<string, OutcomeReport>();
      // Outcomes recorded while this round trip was under way are not in `snap` yet: re-apply.
      for (const r of pending.values()) applyToSnapshot(snap, r);
      bounded(users, userId, { snap, fetchedAt: Date.now(), pending, flushScheduled: cur?.flushScheduled ?? false });
      return snap;
    })
    .catch((err: unknown) => {
      // Put the reports back so they are not lost with a failed round trip.
      const cur = users.get(userId);
      for (const r of reports) if (cur) mergeReport(cur.pending, r);
      throw err;
    })
    .finally(() => inflight.delete(userId));
  inflight.set(userId, p);
  return p;
}

/** After a change made through the pool client: the next request reads the DO again. */
export function invalidateSnapshot(userId: string): void {
  const e = users.get(userId);
  if (e) e.fetchedAt = 0;
}

export function forgetSnapshot(userId: string): void {
  users.delete(userId);
}

/** The account as this isolate currently believes it (outcomes of concurrent requests included). */
export function liveAccount(userId: string, accountId: string): AccountState | undefined {
  return users.get(userId)?.snap.accounts.find((a) => a.id === accountId);
}

function applyToSnapshot(snap: Snapshot, r: OutcomeReport) {
  const a = snap.accounts.find((x) => x.id === r.accountId);
  if (!a) return;
  a.successCount += r.successes;
  a.failureCount += r.failures;
  a.lastUsedAt = Math.max(a.lastUsedAt ?? 0, r.lastUsedAt);
  a.lastStatus = r.lastStatus;
  if (r.cooldownUntil !== undefined) a.cooldownUntil = Math.max(a.cooldownUntil ?? 0, r.cooldownUntil);
  if (r.lastError !== undefined) a.lastError = r.lastError;
}

function mergeReport(pending: Map<string, OutcomeReport>, r: OutcomeReport) {
  const prev = pending.get(r.accountId);
  if (!prev) {
    pending.set(r.accountId, { ...r });
    return;
  }
  prev.successes += r.successes;
  prev.failures += r.failures;
  if (r.lastUsedAt >= prev.lastUsedAt) {
    prev.lastUsedAt = r.lastUsedAt;
    prev.lastStatus = r.lastStatus;
  }
  if (r.cooldownUntil !== undefined) prev.cooldownUntil = Math.max(prev.cooldownUntil ?? 0, r.cooldownUntil);
  if (r.lastError !== undefined) prev.lastError = r.lastError;
}

/**
 * Records an outcome locally at once and returns the promise of its delivery to the DO, for
 * ctx.waitUntil: immediate for failures (other isolates must learn of a cooldown), batched for
 * successes.
 */
export function recordOutcome(env: Env, userId: string, r: OutcomeReport): Promise<unknown> | null {
  const e = users.get(userId);
  if (!e) return callPool(env, userId, (s) => s.sync([r]));
  applyToSnapshot(e.snap, r);
  mergeReport(e.pending, r);
  if (r.failures > 0 || r.cooldownUntil !== undefined) return flush(env, userId);
  if (e.flushScheduled) return null;
  e.flushScheduled = true;
  return scheduler.wait(SUCCESS_FLUSH_MS).then(() => {
    const cur = users.get(userId);
    if (cur) cur.flushScheduled = false;
    return cur && cur.pending.size > 0 ? flush(env, userId) : null;
  });
}

/** Sends pending outcomes now (the account listing calls this so it shows this isolate's counts). */
export async function flush(env: Env, userId: string): Promise<void> {
  // A round trip already under way left before these outcomes were recorded: wait for it, then send.
  const running = inflight.get(userId);
  if (running) await running.catch(() => undefined);
  const e = users.get(userId);
  if (!e || e.pending.size === 0) return;
  try {
    await sync(env, userId);
  } catch (err) {
    console.warn(`subpool: could not record outcomes for user ${userId}: ${(err as Error).name}`);
  }
}

/** For tests: forget every snapshot and pending outcome. */
export function resetSnapshots(): void {
  users.clear();
  inflight.clear();
}
