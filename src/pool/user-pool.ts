/**
 * UserPool: one Durable Object (SQLite storage) per user. It is the authority for that user's
 * accounts — order, enabled, cooldown deadline, counters, the encrypted credential and its version —
 * and the only place a rotating refresh token is ever exchanged (docs/ARCHITECTURE.md, invariants).
 *
 * Why here: a DO is single-threaded and strongly consistent, so "one refresh per account at a time,
 * everywhere" is a per-account promise map. A fetch() inside a DO lets other calls interleave, so
 * every refresh is single-flight and re-reads the row's version after the await before writing.
 * Order of persistence for a refresh: SQLite (durable on return), then KV, then the caller may use
 * the new access token.
 *
 * RPC methods are thin and return PoolResult (result.ts), never throw a refusal across RPC. The
 * schema is migrated forward on start-up (schema.ts). Secrets cross the RPC boundary only as
 * ciphertext records, except the plaintext a caller hands to addAccount/replaceCredential to seal.
 */
import { DurableObject } from "cloudflare:workers";
import { type Env, getConfig } from "../config";
import { providerFor } from "../providers";
import type { AccountExtras, AccountType, CheckVerdict, LoginStart, ProviderId } from "../providers/types";
import { cleanLabel, parseJsonBody } from "../util";
import { VaultError, decryptField, encryptField, fingerprintSecret, getKeyring, newDataKey, newId, rewrapDataKey, unwrapDataKey } from "../vault/envelope";
import { type Credential, type CredentialRecord, kvKeys, openCredential, sealCredential } from "../vault/records";
import type { CheckAnswer, ImportAction, KeyReset, Settings, UsageDay } from "../wire";
import { type PoolResult, guard, refuse } from "./result";
import { migrate } from "./schema";
import { affinitySince, applyAffinity, applyTelemetry, forgetAccount, purgeUsage, readQuota, readSettings, usageDays, utcDay } from "./telemetry-store";
import type { AccountState, AccountView, AffinityEntry, OutcomeReport, Snapshot, UserProfile } from "./types";
import { refreshMarginMs, viewOf } from "./types";

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

/** The lastError of an account whose stored credential fails authentication. */
export const UNREADABLE_CREDENTIAL = "stored credential does not decrypt (altered or moved in storage): add the account again";

export type RefreshOutcome =
  | { ok: true; record: CredentialRecord; extras: AccountExtras }
  | { ok: false; reason: "needs_reauth" | "transient" | "gone"; message: string; retryAt?: number };

type Row = {
  id: string;
  provider: string;
  type: string;
  label: string;
  position: number;
  enabled: number;
  needs_reauth: number;
  cooldown_until: number | null;
  last_status: number | null;
  last_error: string | null;
  last_error_at: number | null;
  last_used_at: number | null;
  success_count: number;
  failure_count: number;
  created_at: number;
  cred_version: number;
  cred: string;
  expires_at: number | null;
  extras: string;
  quota: string | null;
  fingerprint: string | null;
  identity: string | null;
};

type LoginRow = {
  id: string;
  provider: string;
  label: string | null;
  state: string | null;
  secret: string;
  interval_s: number | null;
  next_poll_at: number | null;
  expires_at: number;
};

/** How many gateway-key resets a user's object remembers. */
export const KEY_RESETS_KEPT = 50;

/** Quota probes run this often, while the user has been active within ACTIVE_WINDOW_MS. */
const PROBE_EVERY_MS = 5 * 60_000;
const ACTIVE_WINDOW_MS = 60 * 60_000;
/**
 * Upstream calls (renewals and probes) one alarm run may make for its user: a member with many
 * accounts gets them probed in turns, stalest first, instead of hundreds of calls every 5 minutes.
 */
export const PROBE_CALLS_PER_RUN = 8;

/** Checks of one account a person may ask for within CHECK_WINDOW_MS; more get a 429 with Retry-After. */
export const CHECKS_PER_WINDOW = 3;
const CHECK_WINDOW_MS = 60_000;
/** Checks made by adding accounts, per member and minute (a key in checkedAt no account id can be). */
export const ADD_CHECKS_PER_WINDOW = 20;
const ADD_CHECKS = " adds";

/** Pending logins live this long (or less, if the provider's device code expires sooner). */
export const LOGIN_TTL_MS = 10 * 60 * 1000;

function extrasOf(json: string): AccountExtras {
  const v = parseJsonBody(json);
  return v && typeof v === "object" && !Array.isArray(v) ? (v as AccountExtras) : {};
}

function stateOf(r: Row): AccountState {
  return {
    id: r.id,
    provider: r.provider,
    type: r.type as AccountType,
    label: r.label,
    position: r.position,
    enabled: r.enabled === 1,
    needsReauth: r.needs_reauth === 1,
    cooldownUntil: r.cooldown_until,
    lastStatus: r.last_status,
    lastError: r.last_error,
    lastErrorAt: r.last_error_at,
    lastUsedAt: r.last_used_at,
    successCount: r.success_count,
    failureCount: r.failure_count,
    createdAt: r.created_at,
    credVersion: r.cred_version,
    expires: r.expires_at,
    extras: extrasOf(r.extras),
    quota: readQuota(r.quota),
  };
}

const noAccount = (id: string) => refuse(404, `you have no account with id "${id}"`);

export class UserPool extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private dek: Promise<CryptoKey> | null = null;
  /** Single flight per account: every caller during a refresh awaits the same promise. */
  private readonly refreshing = new Map<string, Promise<RefreshOutcome>>();
  private readonly finishing = new Map<string, Promise<FinishResult>>();
  /** After a failed renewal: when to try the token endpoint again (per account, this instance only). */
  private readonly retryAfter = new Map<string, { at: number; step: number; version: number; reason: string }>();
  /** The scheduled probe alarm: undefined until read from storage, null when none. */
  private alarmAt: number | null | undefined = undefined;
  private activeAt = 0;
  private purgedOn = "";
  /** Per account, when it was last checked on request (the last CHECKS_PER_WINDOW times, this instance). */
  private readonly checkedAt = new Map<string, number[]>();
  /** Per account, when the alarm last tried to probe it (a probe that fails waits its turn again). */
  private readonly probedAt = new Map<string, number>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => {
      migrate(ctx.storage);
    });
  }

  // ---- user lifecycle -----------------------------------------------------------------------

  /** Creates the user's record and data key. Returns the wrapped key for the KV copy. */
  init(profile: UserProfile, keyId: string, keyHash: string): Promise<PoolResult<string>> {
    return guard(async () => {
      let wrapped = this.meta("dek");
      if (!wrapped) {
        wrapped = (await newDataKey(await getKeyring(getConfig(this.env)), profile.id)).wrapped;
        this.setMeta("dek", wrapped);
      }
      this.setMeta("profile", JSON.stringify(profile));
      this.setMeta("keyId", keyId);
      this.setMeta("keyHash", keyHash);
      return wrapped;
    });
  }

  /**
   * Replaces the gateway key; returns the previous key's hash so its index entry can go. The reset
   * is recorded with who did it (the user sees it in GET /api/me), in the same transaction.
   */
  setKey(keyId: string, keyHash: string, by: KeyReset["by"]): Promise<PoolResult<string | null>> {
    return guard(() => {
      if (!this.meta("profile")) throw refuse(404, "no such user");
      return this.ctx.storage.transactionSync(() => {
        const old = this.meta("keyHash");
        this.setMeta("keyId", keyId);
        this.setMeta("keyHash", keyHash);
        this.sql.exec("INSERT INTO key_resets (at, by_id, by_name) VALUES (?, ?, ?)", Date.now(), by.id, by.name);
        this.sql.exec("DELETE FROM key_resets WHERE seq NOT IN (SELECT seq FROM key_resets ORDER BY seq DESC LIMIT ?)", KEY_RESETS_KEPT);
        return old;
      });
    });
  }

  /** The recorded resets of this user's gateway key, newest first. */
  keyResets(): Promise<PoolResult<KeyReset[]>> {
    return guard(() =>
      this.sql
        .exec<{ at: number; by_id: string | null; by_name: string }>("SELECT at, by_id, by_name FROM key_resets ORDER BY seq DESC LIMIT ?", KEY_RESETS_KEPT)
        .toArray()
        .map((r) => ({ at: r.at, by: { id: r.by_id, name: r.by_name } })),
    );
  }

  /**
   * After a MASTER_KEY rotation a key is re-indexed under the new version's hash: the object then
   * remembers that hash, so a later reset or deletion removes the live index entry, not a stale one.
   */
  rehashKey(oldHash: string, newHash: string): Promise<PoolResult<boolean>> {
    return guard(() => {
      if (this.meta("keyHash") !== oldHash) return false;
      this.setMeta("keyHash", newHash);
      return true;
    });
  }

  profile(): Promise<PoolResult<{ profile: UserProfile; keyHash: string | null } | null>> {
    return guard(() => {
      const p = this.meta("profile");
      return p ? { profile: JSON.parse(p) as UserProfile, keyHash: this.meta("keyHash") } : null;
    });
  }

  /** Crypto-shreds the user: the data key goes first, then everything else. */
  destroy(): Promise<PoolResult<{ keyHash: string | null; accountIds: string[] }>> {
    return guard(async () => {
      const keyHash = this.meta("keyHash");
      const accountIds = this.sql.exec<{ id: string }>("SELECT id FROM accounts").toArray().map((r) => r.id);
      this.sql.exec("DELETE FROM meta WHERE k = 'dek'");
      this.dek = null;
      await this.ctx.storage.deleteAll();
      migrate(this.ctx.storage);
      return { keyHash, accountIds };
    });
  }

  wrappedDataKey(): Promise<PoolResult<string | null>> {
    return guard(() => this.meta("dek"));
  }

  /**
   * MASTER_KEY rotation: re-wraps the data key under the current KEK, and re-takes import
   * fingerprints made under an old version. Returns whether the data key changed.
   */
  rewrap(): Promise<PoolResult<boolean>> {
    return guard(async () => {
      const changed = await this.rewrapNow();
      if (this.meta("dek")) await this.refingerprint(await this.dataKey());
      return changed;
    });
  }

  // ---- snapshot and outcomes --------------------------------------------------------------------

  /**
   * Records a batch of outcomes (counters, cooldowns, quota, usage) and conversation bindings, then
   * answers with the fresh snapshot and the bindings changed since `since` (one round trip).
   */
  sync(reports: OutcomeReport[], extra: { affinity?: AffinityEntry[]; since?: number } = {}): Promise<PoolResult<Snapshot>> {
    return guard(async () => {
      const now = Date.now();
      for (const r of reports) {
        this.sql.exec(
          `UPDATE accounts SET
             success_count = success_count + ?, failure_count = failure_count + ?,
             last_used_at = CASE WHEN ? > 0 THEN MAX(COALESCE(last_used_at, 0), ?) ELSE last_used_at END,
             last_status = CASE WHEN ? > 0 THEN ? ELSE last_status END,
             cooldown_until = CASE WHEN ? IS NULL THEN cooldown_until ELSE MAX(COALESCE(cooldown_until, 0), ?) END,
             last_error = CASE WHEN ? = 1 THEN ? ELSE last_error END,
             last_error_at = CASE WHEN ? = 1 AND ? IS NOT NULL THEN ? ELSE last_error_at END
           WHERE id = ?`,
          r.successes,
          r.failures,
          r.successes + r.failures,
          r.lastUsedAt,
          r.successes + r.failures,
          r.lastStatus,
          r.cooldownUntil ?? null,
          r.cooldownUntil ?? null,
          r.lastError === undefined ? 0 : 1,
          r.lastError ?? null,
          r.lastError === undefined ? 0 : 1,
          r.lastError ?? null,
          r.lastUsedAt || Date.now(),
          r.accountId,
        );
      }
      applyTelemetry(this.sql, reports);
      if (utcDay(now) !== this.purgedOn) {
        // Usage older than a year goes, once a day, for every user (not only those with an alarm).
        purgeUsage(this.sql, now);
        this.purgedOn = utcDay(now);
      }
      const settings = readSettings(this.meta("settings"));
      applyAffinity(this.sql, extra.affinity ?? [], settings.affinityTtlS, now);
      const p = this.meta("profile");
      const rows = this.rows();
      if (p) await this.markActive(now, rows);
      return {
        user: p ? (JSON.parse(p) as UserProfile) : null,
        keyId: this.meta("keyId"),
        keyHash: this.meta("keyHash"),
        accounts: rows.map(stateOf),
        settings,
        affinity: affinitySince(this.sql, extra.since ?? 0),
        at: now,
      };
    });
  }

  // ---- routing: settings, usage, quota probes -----------------------------------------------------

  settings(): Promise<PoolResult<Settings>> {
    return guard(() => readSettings(this.meta("settings")));
  }

  updateSettings(patch: Partial<Settings>): Promise<PoolResult<Settings>> {
    return guard(() => {
      if (!this.meta("profile")) throw refuse(404, "this user does not exist (deleted?)");
      const next = { ...readSettings(this.meta("settings")), ...patch };
      this.setMeta("settings", JSON.stringify(next));
      return next;
    });
  }

  usage(accountId: string, days: number): Promise<PoolResult<UsageDay[]>> {
    return guard(() => {
      if (!this.row(accountId)) throw noAccount(accountId);
      return usageDays(this.sql, accountId, days, Date.now());
    });
  }

  /**
   * Checks an account at no token cost where the provider allows it (provider.check), renewing an
   * OAuth session first when it is due (or when the provider's check is the exchange itself), and
   * records the result on the account: a pass clears its lastError, anything else sets it.
   */
  checkAccount(id: string, opts: { asked?: boolean } = {}): Promise<PoolResult<CheckAnswer>> {
    return guard(async () => {
      const row = this.row(id);
      if (!row) throw noAccount(id);
      // A check someone asks for (not the one adding makes) is bounded per account, so that a
      // loop of checks cannot make the gateway call the provider as fast as it is asked.
      if (opts.asked) this.countCheck(row);
      else if (!this.countAddCheck()) {
        // The check adding makes is bounded per member: a loop adding new keys must not make the
        // gateway call the provider once per add. The account stays, unchecked (as ?check=false).
        return { verdict: "unknown" as const, status: 0, message: `not checked: ${ADD_CHECKS_PER_WINDOW} new accounts were checked in the last minute; check this one later`, account: viewOf(stateOf(row)) };
      }
      const { found, recordIt } = await this.runCheck(row);
      if (!this.row(id)) throw noAccount(id);
      const message = found.message.replace(/^check: /, "");
      if (found.verdict === "ok") {
        // A check speaks only for itself: a pass puts back an account a check (or a credential that
        // did not open) had taken out, and clears a check's error, a failed renewal's wait and a
        // bench for a refused credential (401/403); not a rate limit the account's requests met.
        // The last status stays the last request's.
        this.endRenewalWait(id);
        this.sql.exec(
          "UPDATE accounts SET needs_reauth = 0, last_error = CASE WHEN last_error LIKE 'check: %' OR last_error LIKE 'refresh failed: %' OR last_error = ? THEN NULL ELSE last_error END WHERE id = ?",
          UNREADABLE_CREDENTIAL,
          id,
        );
        this.sql.exec("UPDATE accounts SET cooldown_until = NULL WHERE id = ? AND last_status IN (401, 403)", id);
      } else if (found.verdict === "invalid") {
        // Refused: out of rotation (every request would try it first and fail) until a new
        // credential (a re-login, an import) or a check that passes. A reason recorded already (a
        // dead grant, a credential that does not open) stays: the next check does not ask again.
        this.sql.exec("UPDATE accounts SET needs_reauth = 1, cooldown_until = NULL WHERE id = ?", id);
        if (recordIt) this.sql.exec("UPDATE accounts SET last_error = ?, last_error_at = ? WHERE id = ?", `check: ${message}`, Date.now(), id);
      } else if (recordIt) this.sql.exec("UPDATE accounts SET last_error = ?, last_error_at = ? WHERE id = ?", `check: ${message}`, Date.now(), id);
      if (found.quota) applyTelemetry(this.sql, [{ accountId: id, successes: 0, failures: 0, lastUsedAt: 0, lastStatus: 0, quota: { ...found.quota, updatedAt: Date.now() } }]);
      return { verdict: found.verdict, status: found.status, message: found.message, account: viewOf(stateOf(this.row(id)!)) };
    });
  }

  /** Counts a check that adding makes; false when this member's share of the last minute is used. */
  private countAddCheck(): boolean {
    const now = Date.now();
    const recent = (this.checkedAt.get(ADD_CHECKS) ?? []).filter((t) => now - t < CHECK_WINDOW_MS);
    if (recent.length >= ADD_CHECKS_PER_WINDOW) return false;
    recent.push(now);
    this.checkedAt.set(ADD_CHECKS, recent);
    return true;
  }

  /** Counts a check asked for, or refuses it with a 429 when the account had its share lately. */
  private countCheck(row: Row) {
    const now = Date.now();
    const recent = (this.checkedAt.get(row.id) ?? []).filter((t) => now - t < CHECK_WINDOW_MS);
    if (recent.length >= CHECKS_PER_WINDOW) {
      const retryAfterS = Math.max(1, Math.ceil((recent[0]! + CHECK_WINDOW_MS - now) / 1000));
      throw refuse(
        429,
        `"${cleanLabel(row.label)}" was checked ${recent.length} times in the last minute, as often as the gateway asks ${providerFor(row.provider).name} about one account; check it again in ${retryAfterS} s`,
        undefined,
        { retryAfterS },
      );
    }
    recent.push(now);
    this.checkedAt.set(row.id, recent);
  }

  /**
   * What a check finds. An OAuth session is renewed first when it is due (or when the provider's
   * check is the exchange), unless a renewal failed lately: a check waits that out like every
   * request does (a hundred checks must not make a hundred token calls; enabling the account is how
   * a person tries at once). An access token the provider refuses is renewed once, as a request
   * would, before the account is called refused. `recordIt` false: nothing new was learnt.
   */
  private async runCheck(row: Row): Promise<{ found: CheckVerdict; recordIt: boolean }> {
    const provider = providerFor(row.provider);
    const now = Date.now();
    const waiting = (wait: { at: number; reason: string }) => `renewing the session failed (${wait.reason}); the next try is in ${Math.ceil((wait.at - now) / 1000)} s, or at once when you enable the account`;
    let current = row;
    let renewed = false;
    if (row.type === "oauth") {
      // A dead grant stays refused without asking; an account a check took out is asked again.
      if (row.needs_reauth === 1 && !row.last_error?.startsWith("check: ")) return { found: { verdict: "invalid", status: 0, message: row.last_error ?? "needs a new login" }, recordIt: false };
      const record = JSON.parse(row.cred) as CredentialRecord;
      const due = !record.fields.access || (row.expires_at !== null && row.expires_at - now < refreshMarginMs(provider.refreshSkewMs, record));
      if (due || provider.checkByRefresh) {
        const wait = this.renewalWait(row);
        if (wait) return { found: { verdict: "unknown", status: 0, message: waiting(wait) }, recordIt: false };
        const r = await this.refreshOnce(row);
        if (!r.ok) return { found: { verdict: r.reason === "needs_reauth" ? "invalid" : "unknown", status: 0, message: `renewing the session: ${r.message}` }, recordIt: r.reason !== "needs_reauth" };
        renewed = true;
        current = this.row(row.id) ?? row;
      }
    }
    let found = await this.askProvider(current);
    if (found.verdict === "invalid" && found.status !== 0 && row.type === "oauth" && !renewed) {
      const wait = this.renewalWait(current);
      if (wait) return { found: { verdict: "unknown", status: found.status, message: `${found.message}; ${waiting(wait)}` }, recordIt: true };
      const r = await this.refreshOnce(current);
      if (!r.ok) return { found: { verdict: r.reason === "needs_reauth" ? "invalid" : "unknown", status: found.status, message: `${found.message}; renewing the session: ${r.message}` }, recordIt: r.reason !== "needs_reauth" };
      found = await this.askProvider(this.row(row.id) ?? current);
    }
    // A credential that does not open was marked with its own reason (askProvider).
    return { found, recordIt: found.message !== UNREADABLE_CREDENTIAL };
  }

  /** The provider's verdict on the account's stored credential, at no token cost (Provider.check). */
  private async askProvider(row: Row): Promise<CheckVerdict> {
    const provider = providerFor(row.provider);
    const opened = await this.openOwn(row);
    if (opened.kind === "unreadable") {
      this.markUnreadableNow(row.id, UNREADABLE_CREDENTIAL);
      return { verdict: "invalid", status: 0, message: UNREADABLE_CREDENTIAL };
    }
    if (opened.kind === "no-data-key") return { verdict: "unknown", status: 0, message: opened.message };
    if (provider.check) return provider.check(getConfig(this.env), { id: row.id, type: row.type as AccountType, extras: extrasOf(row.extras) }, opened.cred);
    return { verdict: "ok", status: 200, message: provider.checkByRefresh ? "the token exchange succeeded" : "the session is valid" };
  }

  /**
   * Quota probes, off every request path: while the user has been active in the last hour, every
   * PROBE_EVERY_MS the accounts whose telemetry is stale (they have not served lately) are asked at
   * no token cost where the provider allows it (Claude OAuth: the usage endpoint).
   */
  override async alarm(): Promise<void> {
    const now = Date.now();
    this.alarmAt = null;
    purgeUsage(this.sql, now);
    if (now - Number(this.meta("active_at") ?? 0) > ACTIVE_WINDOW_MS) return; // the next request wakes it
    await this.probeQuotas(now);
    await this.scheduleProbe(now + PROBE_EVERY_MS);
  }

  private async probeQuotas(now: number): Promise<void> {
    const cfg = getConfig(this.env);
    // Stalest first (never heard of, then the oldest telemetry or try), within a budget of calls.
    const heard = (r: Row) => Math.max(readQuota(r.quota)?.updatedAt ?? 0, this.probedAt.get(r.id) ?? 0);
    const due = this.rows()
      .filter((r) => providerFor(r.provider).probeQuota && r.type === "oauth" && r.enabled === 1 && r.needs_reauth === 0)
      .filter((r) => now - heard(r) >= PROBE_EVERY_MS) // it served (or was probed) lately: its answers said
      .filter((r) => !this.renewalWait(r)) // a failed renewal is waited out here too
      .sort((a, b) => heard(a) - heard(b));
    let budget = PROBE_CALLS_PER_RUN;
    for (const row of due) {
      const provider = providerFor(row.provider);
      if (!provider.probeQuota) continue;
      const record = JSON.parse(row.cred) as CredentialRecord;
      const renew = row.expires_at !== null && row.expires_at - now < refreshMarginMs(provider.refreshSkewMs, record);
      if (budget < (renew ? 2 : 1)) break;
      budget -= renew ? 2 : 1;
      this.probedAt.set(row.id, now);
      try {
        let current = row;
        if (renew) {
          const renewed = await this.refreshOnce(row);
          if (!renewed.ok) continue;
          current = this.row(row.id) ?? row;
        }
        const opened = await this.openOwn(current);
        if (opened.kind !== "ok") continue;
        const reading = await provider.probeQuota(cfg, { id: row.id, type: "oauth", extras: extrasOf(current.extras) }, opened.cred);
        if (reading) applyTelemetry(this.sql, [{ accountId: row.id, successes: 0, failures: 0, lastUsedAt: 0, lastStatus: 0, quota: { ...reading, updatedAt: Date.now() } }]);
      } catch (e) {
        console.warn(`subpool: quota probe of account ${row.id} failed: ${(e as Error).name}`);
      }
    }
  }

  /** Remembers that the user is active (a write a minute at most) and makes sure a probe is scheduled. */
  private async markActive(now: number, rows: Row[]): Promise<void> {
    if (now - this.activeAt >= 60_000) {
      this.activeAt = now;
      this.setMeta("active_at", String(now));
    }
    if (this.alarmAt !== null && this.alarmAt !== undefined) return;
    if (!rows.some((r) => r.type === "oauth" && providerFor(r.provider).probeQuota)) return;
    if (this.alarmAt === undefined) this.alarmAt = await this.ctx.storage.getAlarm();
    if (this.alarmAt === null) await this.scheduleProbe(now + PROBE_EVERY_MS);
  }

  private async scheduleProbe(at: number): Promise<void> {
    this.alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }

  // ---- accounts ---------------------------------------------------------------------------------

  listAccounts(): Promise<PoolResult<AccountView[]>> {
    return guard(() => {
      const now = Date.now();
      return this.rows().map((r) => viewOf(stateOf(r), now));
    });
  }

  /**
   * Adds one account. The same secret for the same provider is one account, however it came (added,
   * imported, signed in): adding it again is a 409 naming the account that holds it.
   */
  addAccount(input: NewAccount): Promise<PoolResult<AccountView>> {
    return guard(async () => {
      const fingerprint = await this.fingerprintOf(input);
      const same = await this.sameSecret(input, fingerprint);
      if (same) {
        const what = input.type === "api" ? "API key" : "refresh token";
        throw refuse(409, `this ${providerFor(same.provider).name} ${what} is already your account "${cleanLabel(same.label)}" (${same.id}): one credential, one account`, input.type === "api" ? "key" : "refresh");
      }
      return this.insertAccount({ ...input, fingerprint });
    });
  }

  /**
   * Import without duplicates: the same provider identity is refreshed in place ("updated"), the
   * same grant as last imported is left alone ("unchanged"), anything else is a new account.
   */
  importAccount(input: NewAccount & { fingerprint: string }): Promise<PoolResult<{ action: ImportAction; account: AccountView }>> {
    return guard(async () => {
      const same = await this.sameSecret(input, input.fingerprint);
      if (same) return { action: "unchanged" as const, account: viewOf(stateOf(same)) };
      const known = input.identity ? this.byIdentity(input.provider, input.identity) : undefined;
      if (known) {
        const account = await this.putCredential(known, input);
        return { action: "updated" as const, account };
      }
      return { action: "created" as const, account: await this.insertAccount(input) };
    });
  }

  /** Puts a fresh credential in place (a re-login): new version, needs_reauth and cooldown cleared. */
  replaceCredential(id: string, input: Pick<NewAccount, "key" | "refresh" | "access" | "expires">): Promise<PoolResult<AccountView>> {
    return guard(async () => {
      const row = this.row(id);
      if (!row) throw noAccount(id);
      return this.putCredential(row, input);
    });
  }

  updateAccount(id: string, patch: AccountPatch): Promise<PoolResult<AccountView>> {
    return guard(() => {
      const row = this.row(id);
      if (!row) throw noAccount(id);
      if (patch.label !== undefined) {
        const label = cleanLabel(patch.label);
        if (label === "") throw refuse(400, "label: must not be empty", "label");
        if (this.labelTaken(label, id)) throw refuse(409, `another of your accounts is already labelled "${label}": labels name one account each`, "label");
        this.sql.exec("UPDATE accounts SET label = ? WHERE id = ?", label, id);
      }
      if (patch.enabled !== undefined) {
        // Enabling is also how a person says "try it again": it clears the bench, even on an account
        // that was enabled already, and the wait after a failed renewal.
        if (patch.enabled) this.retryAfter.delete(id);
        this.sql.exec(
          "UPDATE accounts SET enabled = ?, cooldown_until = CASE WHEN ? = 1 THEN NULL ELSE cooldown_until END WHERE id = ?",
          patch.enabled ? 1 : 0,
          patch.enabled ? 1 : 0,
          id,
        );
      }
      if (patch.position !== undefined) this.move(row, patch.position);
      return viewOf(stateOf(this.row(id)!));
    });
  }

  deleteAccount(id: string): Promise<PoolResult<true>> {
    return guard(async () => {
      const row = this.row(id);
      if (!row) throw noAccount(id);
      this.sql.exec("DELETE FROM accounts WHERE id = ?", id);
      forgetAccount(this.sql, id);
      this.renumber(row.provider);
      this.refreshing.delete(id);
      this.retryAfter.delete(id);
      this.checkedAt.delete(id);
      this.probedAt.delete(id);
      await this.env.VAULT.delete(kvKeys.credential(this.userId(), id));
      return true as const;
    });
  }

  /** The authoritative record, for a reader whose KV copy is older than the snapshot's version. */
  getCredential(id: string): Promise<PoolResult<CredentialRecord | null>> {
    return guard(() => {
      const row = this.row(id);
      return row ? (JSON.parse(row.cred) as CredentialRecord) : null;
    });
  }

  // ---- interactive logins -----------------------------------------------------------------------

  /** Starts a login; the PKCE verifier or device code stays here, sealed. */
  startLogin(provider: ProviderId, label: string | null): Promise<PoolResult<{ loginId: string; expiresAt: number; public: LoginStart["public"] }>> {
    return guard(async () => {
      const userId = this.userId();
      this.purgeLogins();
      const started = await providerFor(provider).login.start(getConfig(this.env));
      if (started.kind === "refused") throw refuse(started.status, started.message, started.field);
      const id = newId("login");
      const now = Date.now();
      const expiresAt = now + Math.min(LOGIN_TTL_MS, started.expiresInS !== undefined ? started.expiresInS * 1000 : LOGIN_TTL_MS);
      const secret = await encryptField(await this.dataKey(), { userId, accountId: id, field: "login" }, JSON.stringify(started.secret));
      this.sql.exec(
        "INSERT INTO logins (id, provider, label, state, secret, interval_s, next_poll_at, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        id,
        provider,
        label,
        started.state,
        secret,
        started.intervalS ?? null,
        started.intervalS !== undefined ? now + started.intervalS * 1000 : null,
        expiresAt,
        now,
      );
      return { loginId: id, expiresAt, public: started.public };
    });
  }

  /** Finishes (or, for the device flow, polls) a login. Concurrent calls share one attempt. */
  finishLogin(provider: ProviderId, loginId: string, code: string | undefined): Promise<PoolResult<FinishResult>> {
    return guard(() => {
      let flight = this.finishing.get(loginId);
      if (!flight) {
        flight = this.finishOnce(provider, loginId, code).finally(() => this.finishing.delete(loginId));
        this.finishing.set(loginId, flight);
      }
      return flight;
    });
  }

  private async finishOnce(provider: ProviderId, loginId: string, code: string | undefined): Promise<FinishResult> {
    this.purgeLogins();
    const row = this.sql.exec<LoginRow>("SELECT * FROM logins WHERE id = ? AND provider = ?", loginId, provider).toArray()[0];
    if (!row) throw refuse(410, "no pending login with this id: logins last 10 minutes and finish once; start again", "loginId");
    const now = Date.now();
    // The device flow's poll interval is enforced here, so an eager client cannot earn a slow_down.
    if (row.next_poll_at !== null && now < row.next_poll_at) {
      return { kind: "pending", intervalS: Math.max(1, Math.ceil((row.next_poll_at - now) / 1000)) };
    }
    const userId = this.userId();
    const secret = JSON.parse(await decryptField(await this.dataKey(), { userId, accountId: row.id, field: "login" }, row.secret)) as LoginStart["secret"];
    const step = await providerFor(provider).login.finish(getConfig(this.env), { state: row.state, secret, intervalS: row.interval_s }, code);

    switch (step.kind) {
      case "pending":
        this.sql.exec("UPDATE logins SET interval_s = ?, next_poll_at = ? WHERE id = ?", step.intervalS, Date.now() + step.intervalS * 1000, row.id);
        return { kind: "pending", intervalS: step.intervalS };
      case "refused":
        if (step.terminal) this.sql.exec("DELETE FROM logins WHERE id = ?", row.id);
        throw refuse(step.status, step.message, step.field);
      case "done": {
        this.sql.exec("DELETE FROM logins WHERE id = ?", row.id);
        const g = step.grant;
        const grant = { provider, type: "oauth" as const, refresh: g.refresh };
        const fingerprint = await this.fingerprintOf(grant);
        // The same provider account, or the same grant already stored (for no other known person):
        // that account is refreshed.
        const same = await this.sameSecret(grant, fingerprint);
        const known = (g.identity ? this.byIdentity(provider, g.identity) : undefined) ?? (same && (!same.identity || !g.identity || same.identity === g.identity) ? same : undefined);
        if (known) {
          const account = await this.putCredential(known, { refresh: g.refresh, access: g.access, expires: g.expires, fingerprint });
          return { kind: "account", account, created: false };
        }
        const account = await this.insertAccount({
          provider,
          type: "oauth",
          label: row.label ?? g.label ?? undefined,
          refresh: g.refresh,
          access: g.access,
          expires: g.expires,
          identity: g.identity,
          fingerprint,
        });
        return { kind: "account", account, created: true };
      }
    }
  }

  // ---- refresh ------------------------------------------------------------------------------------

  /**
   * Returns a usable access token record for an OAuth account. `seenVersion` is the version the
   * caller holds; `force` says the upstream rejected it (401/403) although it looked valid.
   * A newer version than the caller's that is not about to expire is returned as is: a sibling
   * already refreshed (KV staleness cannot break an account).
   */
  refresh(id: string, seenVersion: number, force: boolean): Promise<PoolResult<RefreshOutcome>> {
    return guard((): RefreshOutcome | Promise<RefreshOutcome> => {
      const row = this.row(id);
      if (!row) return { ok: false, reason: "gone", message: "account was deleted" };
      if (row.needs_reauth === 1) return { ok: false, reason: "needs_reauth", message: row.last_error ?? "needs a new login" };
      const record = JSON.parse(row.cred) as CredentialRecord;
      const margin = refreshMarginMs(providerFor(row.provider).refreshSkewMs, record);
      const fresh = row.expires_at !== null && row.expires_at > Date.now() + margin;
      if (fresh && record.fields.access && (row.cred_version > seenVersion || !force)) {
        return { ok: true, record, extras: extrasOf(row.extras) };
      }
      // The token endpoint failed lately: do not make every request wait for it again.
      const wait = this.renewalWait(row);
      if (wait) return { ok: false, reason: "transient", message: `${wait.reason} (next try in ${Math.ceil((wait.at - Date.now()) / 1000)} s)`, retryAt: wait.at };
      return this.refreshOnce(row);
    });
  }

  /** The wait after a failed renewal of this credential, while it runs (see exchange). */
  private renewalWait(row: Row): { at: number; reason: string } | null {
    const wait = this.retryAfter.get(row.id);
    return wait && wait.at > Date.now() && wait.version === row.cred_version ? wait : null;
  }

  /**
   * Ends the wait after a failed renewal (a person enabled the account, a check passed, a renewal
   * succeeded), with the bench it put on the account; a longer bench set since (a rate limit) stays.
   */
  private endRenewalWait(id: string) {
    const wait = this.retryAfter.get(id);
    if (!wait) return;
    this.retryAfter.delete(id);
    this.sql.exec("UPDATE accounts SET cooldown_until = NULL WHERE id = ? AND cooldown_until <= ?", id, wait.at);
  }

  /** The account's refresh in flight, or a new one: one token call per account at a time. */
  private refreshOnce(row: Row): Promise<RefreshOutcome> {
    let flight = this.refreshing.get(row.id);
    if (!flight) {
      flight = this.exchange(row).finally(() => this.refreshing.delete(row.id));
      this.refreshing.set(row.id, flight);
    }
    return flight;
  }

  private async exchange(row: Row): Promise<RefreshOutcome> {
    const userId = this.userId();
    const provider = providerFor(row.provider);
    const startVersion = row.cred_version;
    const opened = await this.openOwn(row);
    if (opened.kind === "no-data-key") return { ok: false, reason: "transient", message: opened.message };
    if (opened.kind === "unreadable") {
      // The authoritative copy itself is altered or misplaced: no refresh can ever succeed.
      if (this.row(row.id)?.cred_version === startVersion) this.markUnreadableNow(row.id, UNREADABLE_CREDENTIAL);
      return { ok: false, reason: "needs_reauth", message: UNREADABLE_CREDENTIAL };
    }
    const cred = opened.cred;
    if (!cred.refresh) {
      this.markReauth(row.id, "no refresh token stored");
      return { ok: false, reason: "needs_reauth", message: "no refresh token stored" };
    }

    const result = await provider.refresh(getConfig(this.env), cred);

    // Other calls ran while we awaited: re-read before writing anything.
    const now = this.row(row.id);
    if (!now) return { ok: false, reason: "gone", message: "account was deleted during refresh" };
    if (now.cred_version !== startVersion) {
      // Someone put a newer credential in place (a re-login) meanwhile: that one wins.
      return { ok: true, record: JSON.parse(now.cred) as CredentialRecord, extras: extrasOf(now.extras) };
    }
    if (result.kind === "reauth") {
      console.warn(`subpool: ${row.provider} account ${row.id} needs a new login: ${result.reason}`);
      this.markReauth(row.id, `refresh refused: ${result.reason}`);
      return { ok: false, reason: "needs_reauth", message: result.reason };
    }
    if (result.kind === "transient") {
      // Back off (doubling up to 5 minutes) so a hanging endpoint costs one wait, not one per request.
      // The wait is a bench too (cooldowns only grow): the account shows "cooling" until the next
      // try, and every isolate skips it instead of asking here on each request.
      const prev = this.retryAfter.get(row.id);
      const step = Math.min(prev && prev.version === startVersion ? prev.step * 2 : getConfig(this.env).REFRESH_RETRY_MS, 5 * 60_000);
      const at = Date.now() + step;
      this.retryAfter.set(row.id, { at, step, version: startVersion, reason: result.reason });
      console.warn(`subpool: ${row.provider} account ${row.id}: renewing its session failed, will retry in ${Math.ceil(step / 1000)} s: ${result.reason}`);
      this.sql.exec(
        "UPDATE accounts SET last_error = ?, last_error_at = ?, cooldown_until = MAX(COALESCE(cooldown_until, 0), ?) WHERE id = ?",
        `refresh failed: ${result.reason}`,
        Date.now(),
        at,
        row.id,
      );
      return { ok: false, reason: "transient", message: result.reason, retryAt: at };
    }
    this.endRenewalWait(row.id);

    const next: Credential = {
      version: startVersion + 1,
      refresh: result.refresh ?? cred.refresh,
      access: result.access,
      expires: result.expires,
      issued: Date.now(),
    };
    const record = await sealCredential(await this.dataKey(), userId, row.id, next);
    const extras = { ...extrasOf(now.extras), ...result.extras };
    // 1. SQLite: durable once this synchronous write returns (output gate holds replies until then).
    this.sql.exec(
      "UPDATE accounts SET cred = ?, cred_version = ?, expires_at = ?, needs_reauth = 0, last_error = NULL, extras = ? WHERE id = ?",
      JSON.stringify(record),
      record.version,
      record.expires,
      JSON.stringify(extras),
      row.id,
    );
    console.log(`subpool: ${row.provider} account ${row.id}: session renewed (credential v${record.version})`);
    // 2. KV: the edge copy. If it fails, readers still find the new version here (version check).
    try {
      await this.env.VAULT.put(kvKeys.credential(userId, row.id), JSON.stringify(record));
    } catch (e) {
      console.warn(`subpool: KV copy of account ${row.id} credential v${record.version} failed: ${(e as Error).name}`);
    }
    return { ok: true, record, extras };
  }

  // ---- credentials that do not decrypt ----------------------------------------------------------

  /**
   * A reader could not open this account's credential (AES-GCM refused it: altered ciphertext or
   * IV, or a record moved from another account). This object's copy is the authority, so it is
   * checked here before anything is marked:
   *   - it opens: the reader's copy was bad (KV). KV's copies of the record and of the wrapped data
   *     key are put back from here, and the sound record is returned;
   *   - it does not open: the account can never work. It becomes needs_reauth with `reason` as its
   *     lastError (kept, never deleted: adding the account again, or a new login, replaces it);
   *   - the data key itself does not unwrap here: a MASTER_KEY / OLD_MASTER_KEYS problem, not this
   *     account's. Nothing is marked (the next deploy with the right keys heals every account).
   */
  markUnreadable(id: string, reason: string): Promise<PoolResult<UnreadableOutcome>> {
    return guard(async (): Promise<UnreadableOutcome> => {
      const row = this.row(id);
      if (!row) return { kind: "gone" };
      const opened = await this.openOwn(row);
      if (opened.kind === "no-data-key") return { kind: "config", message: opened.message };
      const now = this.row(id);
      if (!now) return { kind: "gone" };
      // A fresh credential was put in place while we checked (a re-login): let the reader retry it.
      if (now.cred_version !== row.cred_version) return { kind: "changed" };
      if (opened.kind === "unreadable") {
        console.warn(`subpool: ${row.provider} account ${id}: its stored credential does not decrypt; marked needs_reauth`);
        this.markUnreadableNow(id, reason);
        return { kind: "needs_reauth", message: reason };
      }
      const userId = this.userId();
      const wrapped = this.meta("dek")!;
      console.warn(`subpool: ${row.provider} account ${id}: the KV copy of its credential did not decrypt; restored from the Durable Object`);
      try {
        const [kvRecord, kvDek] = await Promise.all([this.env.VAULT.get(kvKeys.credential(userId, id)), this.env.VAULT.get(kvKeys.dataKey(userId))]);
        await Promise.all([
          kvRecord !== now.cred ? this.env.VAULT.put(kvKeys.credential(userId, id), now.cred) : null,
          kvDek !== wrapped ? this.env.VAULT.put(kvKeys.dataKey(userId), wrapped) : null,
        ]);
      } catch (e) {
        console.warn(`subpool: restoring the KV copies of account ${id} failed: ${(e as Error).name}`);
      }
      return { kind: "readable", record: JSON.parse(now.cred) as CredentialRecord, wrappedDataKey: wrapped };
    });
  }

  /** Opens this object's own copy of a credential, telling a bad record from a bad data key. */
  private async openOwn(row: Row): Promise<{ kind: "ok"; cred: Credential } | { kind: "unreadable" } | { kind: "no-data-key"; message: string }> {
    let dek: CryptoKey;
    try {
      dek = await this.dataKey();
    } catch (e) {
      if (e instanceof VaultError) return { kind: "no-data-key", message: e.message };
      throw e;
    }
    const record = parseJsonBody(row.cred) as CredentialRecord | undefined;
    if (!record || typeof record !== "object" || typeof record.fields !== "object" || record.fields === null) return { kind: "unreadable" };
    try {
      return { kind: "ok", cred: await openCredential(dek, this.userId(), row.id, record) };
    } catch (e) {
      if (e instanceof VaultError) return { kind: "unreadable" };
      throw e;
    }
  }

  private markUnreadableNow(id: string, reason: string) {
    // No cooldown either: the account is out until a person replaces its credential.
    this.sql.exec("UPDATE accounts SET needs_reauth = 1, last_error = ?, last_error_at = ?, cooldown_until = NULL WHERE id = ?", reason, Date.now(), id);
  }

  // ---- internals ----------------------------------------------------------------------------------

  private async insertAccount(input: NewAccount): Promise<AccountView> {
    const userId = this.userId();
    const cap = getConfig(this.env).MAX_ACCOUNTS_PER_USER;
    const count = this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM accounts").one().n;
    if (count >= cap) {
      throw refuse(403, `you have ${count} accounts, the most this gateway keeps for one member (MAX_ACCOUNTS_PER_USER = ${cap}): delete one you no longer use first`);
    }
    const id = newId("acc");
    const now = Date.now();
    const position =
      (this.sql.exec<{ p: number | null }>("SELECT MAX(position) AS p FROM accounts WHERE provider = ?", input.provider).one().p ?? 0) + 1;
    const extras = providerFor(input.provider).extrasOf?.(input.access) ?? {};
    // A label may come from a provider's answer (a login's email or GitHub name) or a file: the
    // label rule (util.ts) cleans it, as the API refuses what a person types against the rule.
    const given = input.label === undefined ? undefined : cleanLabel(input.label);
    const label = this.uniqueLabel(given || `${input.provider} ${input.type === "api" ? "key" : "account"} ${position}`);
    // An access token handed in from elsewhere has an unknown age: no `issued`, the full margin applies.
    const cred: Credential = { version: 1, key: input.key, refresh: input.refresh, access: input.access, expires: input.expires ?? null };
    const record = await sealCredential(await this.dataKey(), userId, id, cred);
    this.sql.exec(
      `INSERT INTO accounts (id, provider, type, label, position, created_at, cred_version, cred, expires_at, extras, fingerprint, identity)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      id,
      input.provider,
      input.type,
      label,
      position,
      now,
      record.version,
      JSON.stringify(record),
      record.expires,
      JSON.stringify(extras),
      input.fingerprint ?? null,
      input.identity ?? null,
    );
    await this.env.VAULT.put(kvKeys.credential(userId, id), JSON.stringify(record));
    return viewOf(stateOf(this.row(id)!), now);
  }

  private async putCredential(row: Row, input: Pick<NewAccount, "key" | "refresh" | "access" | "expires" | "fingerprint">): Promise<AccountView> {
    const userId = this.userId();
    const cred: Credential = { version: row.cred_version + 1, key: input.key, refresh: input.refresh, access: input.access, expires: input.expires ?? null };
    const record = await sealCredential(await this.dataKey(), userId, row.id, cred);
    const extras = { ...extrasOf(row.extras), ...providerFor(row.provider).extrasOf?.(input.access) };
    this.sql.exec(
      "UPDATE accounts SET cred = ?, cred_version = ?, expires_at = ?, needs_reauth = 0, cooldown_until = NULL, last_error = NULL, extras = ? WHERE id = ?",
      JSON.stringify(record),
      record.version,
      record.expires,
      JSON.stringify(extras),
      row.id,
    );
    if (input.fingerprint) this.sql.exec("UPDATE accounts SET fingerprint = ? WHERE id = ?", input.fingerprint, row.id);
    await this.env.VAULT.put(kvKeys.credential(userId, row.id), JSON.stringify(record));
    return viewOf(stateOf(this.row(row.id)!));
  }

  /** The keyed hash of an account's secret (the API key, or the OAuth grant's refresh token). */
  private async fingerprintOf(input: Pick<NewAccount, "provider" | "type" | "key" | "refresh">): Promise<string> {
    const secret = (input.type === "api" ? input.key : input.refresh) ?? "";
    return fingerprintSecret(await getKeyring(getConfig(this.env)), input.provider, input.type, secret);
  }

  /**
   * The account that already holds this secret for this provider, if any: by its fingerprint (taken
   * when it was added, imported or signed in; during a MASTER_KEY rotation also under the old
   * version). Accounts stored before adding took fingerprints get theirs here, from their current
   * secret, the first time one is looked for.
   */
  private async sameSecret(input: NewAccount, fingerprint: string): Promise<Row | undefined> {
    const found = this.byFingerprint(input.provider, input.type, fingerprint) ?? (await this.byOldFingerprint({ ...input, fingerprint }));
    if (found) return found;
    const unmarked = this.sql.exec<Row>("SELECT * FROM accounts WHERE provider = ? AND type = ? AND fingerprint IS NULL", input.provider, input.type).toArray();
    let match: Row | undefined;
    for (const row of unmarked) {
      const opened = await this.openOwn(row);
      if (opened.kind !== "ok") continue; // unreadable: markUnreadable deals with it
      const own = await this.fingerprintOf({ provider: row.provider as ProviderId, type: row.type as AccountType, key: opened.cred.key, refresh: opened.cred.refresh });
      this.sql.exec("UPDATE accounts SET fingerprint = ? WHERE id = ? AND fingerprint IS NULL", own, row.id);
      if (own === fingerprint && !match) match = this.row(row.id);
    }
    return match;
  }

  private byFingerprint(provider: string, type: string, fingerprint: string): Row | undefined {
    return this.sql.exec<Row>("SELECT * FROM accounts WHERE provider = ? AND type = ? AND fingerprint = ?", provider, type, fingerprint).toArray()[0];
  }

  /**
   * During a MASTER_KEY rotation: an account imported before it carries a fingerprint taken under
   * the old version. Found that way, it is re-fingerprinted under the current one.
   */
  private async byOldFingerprint(input: NewAccount & { fingerprint: string }): Promise<Row | undefined> {
    const ring = await getKeyring(getConfig(this.env));
    const secret = (input.type === "api" ? input.key : input.refresh) ?? "";
    for (const v of ring.byVersion.keys()) {
      if (v === ring.current.version) continue;
      const row = this.byFingerprint(input.provider, input.type, await fingerprintSecret(ring, input.provider, input.type, secret, v));
      if (row) {
        this.sql.exec("UPDATE accounts SET fingerprint = ? WHERE id = ?", input.fingerprint, row.id);
        return this.row(row.id);
      }
    }
    return undefined;
  }

  /**
   * After a MASTER_KEY rotation, while the old key is still configured: import fingerprints taken
   * under an old version are re-taken under the current one, for every account that still holds the
   * grant they were taken of (API keys always; OAuth grants until their first refresh). Without
   * this, re-importing the same file once OLD_MASTER_KEYS is gone would add a duplicate.
   */
  private async refingerprint(dek: CryptoKey): Promise<number> {
    const ring = await getKeyring(getConfig(this.env));
    if (ring.byVersion.size < 2) return 0;
    const userId = this.userId();
    let changed = 0;
    for (const row of this.sql.exec<Row>("SELECT * FROM accounts WHERE fingerprint IS NOT NULL").toArray()) {
      let cred: Credential;
      try {
        cred = await openCredential(dek, userId, row.id, JSON.parse(row.cred) as CredentialRecord);
      } catch {
        continue; // unreadable: nothing to fingerprint (markUnreadable deals with it)
      }
      const secret = (row.type === "api" ? cred.key : cred.refresh) ?? "";
      const current = await fingerprintSecret(ring, row.provider, row.type, secret);
      if (current === row.fingerprint) continue;
      for (const v of ring.byVersion.keys()) {
        if (v === ring.current.version || (await fingerprintSecret(ring, row.provider, row.type, secret, v)) !== row.fingerprint) continue;
        this.sql.exec("UPDATE accounts SET fingerprint = ? WHERE id = ? AND fingerprint = ?", current, row.id, row.fingerprint);
        changed++;
        break;
      }
    }
    return changed;
  }

  /** Labels name one account each (the CLI and the dashboard find accounts by label). */
  private labelTaken(label: string, exceptId: string | null): boolean {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM accounts WHERE lower(label) = lower(?) AND id IS NOT ?", label, exceptId).one().n > 0;
  }

  /** The label, or "label 2", "label 3" ... when it is taken (three imported "opencode" entries). */
  private uniqueLabel(label: string): string {
    if (!this.labelTaken(label, null)) return label;
    for (let i = 2; ; i++) if (!this.labelTaken(`${label} ${i}`, null)) return `${label} ${i}`;
  }

  private byIdentity(provider: string, identity: string): Row | undefined {
    return this.sql.exec<Row>("SELECT * FROM accounts WHERE provider = ? AND identity = ? ORDER BY position LIMIT 1", provider, identity).toArray()[0];
  }

  private purgeLogins() {
    this.sql.exec("DELETE FROM logins WHERE expires_at <= ?", Date.now());
  }

  private markReauth(id: string, reason: string) {
    this.sql.exec("UPDATE accounts SET needs_reauth = 1, last_error = ?, last_error_at = ? WHERE id = ?", reason, Date.now(), id);
  }

  private move(row: Row, position: number) {
    const ids = this.sql
      .exec<{ id: string }>("SELECT id FROM accounts WHERE provider = ? AND id != ? ORDER BY position, created_at", row.provider, row.id)
      .toArray()
      .map((r) => r.id);
    const at = Math.min(Math.max(position, 1), ids.length + 1) - 1;
    ids.splice(at, 0, row.id);
    ids.forEach((id, i) => this.sql.exec("UPDATE accounts SET position = ? WHERE id = ?", i + 1, id));
  }

  private renumber(provider: string) {
    const ids = this.sql.exec<{ id: string }>("SELECT id FROM accounts WHERE provider = ? ORDER BY position, created_at", provider).toArray();
    ids.forEach((r, i) => this.sql.exec("UPDATE accounts SET position = ? WHERE id = ?", i + 1, r.id));
  }

  private rows(): Row[] {
    return this.sql.exec<Row>("SELECT * FROM accounts ORDER BY provider, position, created_at").toArray();
  }

  private row(id: string): Row | undefined {
    return this.sql.exec<Row>("SELECT * FROM accounts WHERE id = ?", id).toArray()[0];
  }

  private meta(k: string): string | null {
    return this.sql.exec<{ v: string }>("SELECT v FROM meta WHERE k = ?", k).toArray()[0]?.v ?? null;
  }

  private setMeta(k: string, v: string) {
    this.sql.exec("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", k, v);
  }

  private userId(): string {
    const p = this.meta("profile");
    if (!p) throw refuse(404, "this user does not exist (deleted?)");
    return (JSON.parse(p) as UserProfile).id;
  }

  private async rewrapNow(): Promise<boolean> {
    const profile = this.meta("profile");
    const wrapped = this.meta("dek");
    if (!profile || !wrapped) return false;
    const ring = await getKeyring(getConfig(this.env));
    const userId = (JSON.parse(profile) as UserProfile).id;
    const next = await rewrapDataKey(ring, userId, wrapped);
    if (next === wrapped) return false;
    this.setMeta("dek", next);
    await this.env.VAULT.put(kvKeys.dataKey(userId), next);
    return true;
  }

  private dataKey(): Promise<CryptoKey> {
    if (!this.dek) {
      this.dek = (async () => {
        const wrapped = this.meta("dek");
        if (!wrapped) throw refuse(404, "this user has no data key (deleted?)");
        const ring = await getKeyring(getConfig(this.env));
        const { key, stale } = await unwrapDataKey(ring, this.userId(), wrapped);
        if (stale) {
          await this.rewrapNow();
          await this.refingerprint(key);
        }
        return key;
      })();
      this.dek.catch(() => (this.dek = null));
    }
    return this.dek;
  }
}
