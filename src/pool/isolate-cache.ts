/**
 * What one isolate remembers between requests, so that in steady state a proxied request makes no
 * KV or Durable Object round trip before the upstream fetch (DESIGN §1 "hot path"):
 *   - gateway keys it verified (key -> user, keyId), so the HMAC is computed once per key; the
 *     snapshot's keyId still decides on every request;
 *   - gateway-key index entries (key hash -> user), 60 s;
 *   - each user's pool snapshot, SNAPSHOT_TTL_MS (1 s): a cooldown recorded anywhere is honoured
 *     everywhere within about a second. Past 80 % of the TTL a request refreshes it in the
 *     background (waitUntil), so under steady traffic no request waits for the Durable Object;
 *   - opened credentials, keyed by account and valid while their version matches the snapshot's;
 *   - unwrapped data keys (non-extractable CryptoKeys).
 * Outcomes are applied to the local snapshot at once (so this isolate never retries a benched
 * account) and batched to the Durable Object off the response path: failures right away, successes
 * at most once a second, each batch answered with a fresh snapshot.
 */
import type { Config, Env } from "../config";
import { providerFor } from "../providers";
import { getKeyring, unwrapDataKey } from "../vault/envelope";
import { type Credential, type CredentialRecord, type KeyIndexEntry, kvKeys, openCredential } from "../vault/records";
import type { AccountState, OutcomeReport, Snapshot } from "./types";
import type { RefreshOutcome, UserPool } from "./user-pool";

const KEY_INDEX_TTL_MS = 60_000;
const KEY_MISS_TTL_MS = 5_000;
const SUCCESS_FLUSH_MS = 1_000;
/** Bound on every map: a team gateway has few users; anything beyond this is an attack or a leak. */
const MAX_ENTRIES = 10_000;

interface UserEntry {
  snap: Snapshot;
  fetchedAt: number;
  pending: Map<string, OutcomeReport>;
  flushScheduled: boolean;
}

const users = new Map<string, UserEntry>();
const inflightSnapshots = new Map<string, Promise<Snapshot>>();
const keyIndex = new Map<string, { entry: KeyIndexEntry | null; at: number }>();
const verifiedKeys = new Map<string, KeyIndexEntry>();
const credentials = new Map<string, Credential>();
const dataKeys = new Map<string, Promise<CryptoKey>>();
const refreshes = new Map<string, Promise<RefreshOutcome>>();

function bounded<K, V>(m: Map<K, V>, k: K, v: V) {
  if (m.size >= MAX_ENTRIES && !m.has(k)) m.delete(m.keys().next().value as K);
  m.set(k, v);
}

export function poolStub(env: Env, userId: string): DurableObjectStub<UserPool> {
  return env.USER_POOL.get(env.USER_POOL.idFromName(userId));
}

/** For tests and for user deletion: forget everything this isolate knows. */
export function resetIsolateCaches(): void {
  users.clear();
  verifiedKeys.clear();
  inflightSnapshots.clear();
  keyIndex.clear();
  credentials.clear();
  dataKeys.clear();
  refreshes.clear();
}

// ---- gateway-key index ------------------------------------------------------------------------

export async function lookupKey(env: Env, hash: string): Promise<KeyIndexEntry | null> {
  const now = Date.now();
  const hit = keyIndex.get(hash);
  if (hit && now - hit.at < (hit.entry ? KEY_INDEX_TTL_MS : KEY_MISS_TTL_MS)) return hit.entry;
  const entry = await env.VAULT.get<KeyIndexEntry>(kvKeys.gatewayKey(hash), "json");
  bounded(keyIndex, hash, { entry, at: now });
  return entry;
}

export function forgetKey(hash: string): void {
  keyIndex.delete(hash);
}

export const verifiedKey = (key: string): KeyIndexEntry | undefined => verifiedKeys.get(key);
export const rememberVerifiedKey = (key: string, entry: KeyIndexEntry): void => bounded(verifiedKeys, key, entry);
export const forgetVerifiedKey = (key: string): void => void verifiedKeys.delete(key);

// ---- snapshots and outcomes -------------------------------------------------------------------

export async function getSnapshot(env: Env, cfg: Config, userId: string, waitUntil?: (p: Promise<unknown>) => void): Promise<Snapshot> {
  const e = users.get(userId);
  if (e) {
    const age = Date.now() - e.fetchedAt;
    if (age < cfg.SNAPSHOT_TTL_MS) {
      if (waitUntil && age >= cfg.SNAPSHOT_TTL_MS * 0.8 && !inflightSnapshots.has(userId)) waitUntil(sync(env, userId).catch(() => undefined));
      return e.snap;
    }
  }
  return sync(env, userId);
}

/** One round trip: sends pending outcomes, receives the fresh snapshot. Single flight per user. */
function sync(env: Env, userId: string): Promise<Snapshot> {
  let p = inflightSnapshots.get(userId);
  if (p) return p;
  const e = users.get(userId);
  const reports = e ? [...e.pending.values()] : [];
  e?.pending.clear();
  p = poolStub(env, userId)
    .sync(reports)
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
    .finally(() => inflightSnapshots.delete(userId));
  inflightSnapshots.set(userId, p);
  return p;
}

/** After a management change in this isolate: the next request reads the DO again. */
export function invalidateSnapshot(userId: string): void {
  const e = users.get(userId);
  if (e) e.fetchedAt = 0;
}

export function forgetUser(userId: string): void {
  users.delete(userId);
  dataKeys.delete(userId);
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
  if (!e) return poolStub(env, userId).sync([r]);
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
  const running = inflightSnapshots.get(userId);
  if (running) await running.catch(() => undefined);
  const e = users.get(userId);
  if (!e || e.pending.size === 0) return;
  try {
    await sync(env, userId);
  } catch (err) {
    console.warn(`subpool: could not record outcomes for user ${userId}: ${(err as Error).name}`);
  }
}

// ---- credentials ------------------------------------------------------------------------------

async function dataKey(env: Env, cfg: Config, userId: string): Promise<CryptoKey> {
  let p = dataKeys.get(userId);
  if (!p) {
    p = (async () => {
      const wrapped = (await env.VAULT.get(kvKeys.dataKey(userId))) ?? (await poolStub(env, userId).wrappedDataKey());
      if (!wrapped) throw new Error("user has no data key");
      return (await unwrapDataKey(await getKeyring(cfg), userId, wrapped)).key;
    })();
    bounded(dataKeys, userId, p);
    p.catch(() => dataKeys.delete(userId));
  }
  return p;
}

async function open(env: Env, cfg: Config, userId: string, accountId: string, rec: CredentialRecord): Promise<Credential> {
  const cred = await openCredential(await dataKey(env, cfg, userId), userId, accountId, rec);
  const cached = credentials.get(accountId);
  if (!cached || cached.version <= cred.version) bounded(credentials, accountId, cred);
  return cred;
}

/**
 * The account's credential at (at least) the snapshot's version: isolate cache, else KV, else —
 * when KV is missing or behind (eventual consistency) — the Durable Object (DESIGN §2.3).
 */
export async function credentialFor(env: Env, cfg: Config, userId: string, acc: AccountState): Promise<Credential | null> {
  const cached = credentials.get(acc.id);
  if (cached && cached.version >= acc.credVersion) return cached;
  let rec = await env.VAULT.get<CredentialRecord>(kvKeys.credential(userId, acc.id), "json");
  if (!rec || rec.version < acc.credVersion) rec = await poolStub(env, userId).getCredential(acc.id);
  return rec ? open(env, cfg, userId, acc.id, rec) : null;
}

/** Asks the DO for a refreshed credential; concurrent callers in this isolate share one call. */
export async function refreshCredential(
  env: Env,
  cfg: Config,
  userId: string,
  acc: AccountState,
  seenVersion: number,
  force: boolean,
): Promise<{ ok: true; cred: Credential } | { ok: false; reason: string; message: string }> {
  const flightKey = `${acc.id}:${seenVersion}:${force ? 1 : 0}`;
  let p = refreshes.get(flightKey);
  if (!p) {
    p = poolStub(env, userId)
      .refresh(acc.id, seenVersion, force)
      .finally(() => refreshes.delete(flightKey));
    refreshes.set(flightKey, p);
  }
  const out = await p;
  const live = liveAccount(userId, acc.id);
  if (!out.ok) {
    if (out.reason === "needs_reauth" && live) {
      live.needsReauth = true;
      live.lastError = `refresh refused: ${out.message}`;
    }
    return out;
  }
  const cred = await open(env, cfg, userId, acc.id, out.record);
  for (const a of [acc, live]) {
    if (!a) continue;
    a.credVersion = Math.max(a.credVersion, cred.version);
    a.expires = cred.expires;
    a.chatgptAccountId = out.chatgptAccountId ?? a.chatgptAccountId;
  }
  return { ok: true, cred };
}

/** Whether an OAuth credential should be refreshed before use. */
export function needsRefresh(acc: AccountState, cred: Credential, now = Date.now()): boolean {
  if (acc.type !== "oauth") return false;
  if (!cred.access) return true;
  return cred.expires !== null && cred.expires - now < providerFor(acc.provider).refreshSkewMs;
}
