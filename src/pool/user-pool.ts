/**
 * UserPool: one Durable Object (SQLite storage) per user. It is the authority for that user's
 * accounts — order, enabled, cooldown deadline, counters, the encrypted credential and its version —
 * and the only place a rotating refresh token is ever exchanged (docs/ARCHITECTURE.md, invariants).
 * A DO is single-threaded and strongly consistent, so "one refresh per account at a time,
 * everywhere" is a per-account promise map (renewals.ts).
 *
 * This file is the RPC surface only: thin methods that return PoolResult (result.ts), never throw a
 * refusal across RPC, and hand the work to the object's rooms, one file each:
 *   profile-store.ts    meta: profile, gateway key, settings; the key-reset log
 *   accounts-store.ts   the accounts table (every statement on an account row)
 *   data-key.ts         the user's data key; opening this object's own credential copies
 *   enrolment.ts        a credential becoming an account (one credential, one account)
 *   renewals.ts         OAuth session renewals, single-flight
 *   checks.ts           checking an account with the provider, bounded
 *   login-store.ts      interactive logins in progress
 *   probes.ts           quota probes from the alarm
 *   telemetry-store.ts  quota, usage per account and day, conversation bindings
 *   limits-store.ts     the team's limits for the member, their usage per day, last seen
 * The schema is migrated forward on start-up (schema.ts). Secrets cross the RPC boundary only as
 * ciphertext records, except the plaintext a caller hands to addAccount/importAccount to seal.
 */
import { DurableObject } from "cloudflare:workers";
import { type Env, getConfig } from "../config";
import { providerFor } from "../providers";
import type { LoginStart, ProviderId } from "../providers/types";
import { cleanLabel } from "../util";
import { getKeyring, newDataKey } from "../vault/envelope";
import { type CredentialRecord, kvKeys } from "../vault/records";
import type { AlertEvent } from "../alerts/rules";
import type { AlertDelivery, AlertTargetCreated, AlertTargetView } from "../wire";
import type { CheckAnswer, ImportAction, KeyReset, Limits, Settings, TeamMemberUsage, UsageDay } from "../wire";
import { AccountsStore, recordOf, stateOf } from "./accounts-store";
import { Alerting } from "./alerting";
import { AlertsStore } from "./alerts-store";
import { Checks, noAccount } from "./checks";
import { DataKey } from "./data-key";
import { Enrolment } from "./enrolment";
import { LimitsStore } from "./limits-store";
import { LoginStore } from "./login-store";
import { ACTIVE_WINDOW_MS, PROBE_EVERY_MS, Probes } from "./probes";
import { ProfileStore } from "./profile-store";
import { Renewals } from "./renewals";
import { type PoolResult, guard, refuse } from "./result";
import { migrate } from "./schema";
import { affinitySince, applyAffinity, applyTelemetry, forgetAccount, purgeUsage, readSettings, usageDays, utcDay } from "./telemetry-store";
import type {
  AccountPatch,
  AccountView,
  Admitted,
  AffinityEntry,
  EdgeEvent,
  FinishResult,
  NewAccount,
  OutcomeReport,
  RefreshOutcome,
  Snapshot,
  UnreadableOutcome,
  UserProfile,
} from "./types";
import { UNREADABLE_CREDENTIAL, viewOf } from "./types";

export class UserPool extends DurableObject<Env> {
  // ES private (#): RPC exposes a class's methods, and TypeScript's `private` is not private at
  // run time. The stores and helpers stay off the RPC surface.
  readonly #profile: ProfileStore;
  readonly #accounts: AccountsStore;
  readonly #dataKey: DataKey;
  readonly #enrolment: Enrolment;
  readonly #renewals: Renewals;
  readonly #checks: Checks;
  readonly #logins: LoginStore;
  readonly #probes: Probes;
  readonly #alerting: Alerting;
  readonly #limits: LimitsStore;
  /** The scheduled alarm: undefined until read from storage, null when none. */
  #alarmAt: number | null | undefined = undefined;
  #activeAt = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    this.#profile = new ProfileStore(sql, ctx.storage);
    this.#accounts = new AccountsStore(sql);
    this.#dataKey = new DataKey(env, this.#profile, (key) => this.#enrolment.refingerprint(key));
    this.#enrolment = new Enrolment(env, this.#accounts, this.#profile, this.#dataKey);
    const onEvent = this.#accountEvent.bind(this);
    this.#renewals = new Renewals(env, this.#accounts, this.#profile, this.#dataKey, onEvent);
    this.#checks = new Checks(env, sql, this.#accounts, this.#dataKey, this.#renewals, onEvent);
    this.#logins = new LoginStore(env, sql, this.#profile, this.#accounts, this.#dataKey, this.#enrolment);
    this.#probes = new Probes(env, sql, this.#accounts, this.#dataKey, this.#renewals);
    this.#alerting = new Alerting(env, new AlertsStore(sql), this.#profile, this.#accounts, this.#dataKey, (at) => void this.#wake(at));
    this.#limits = new LimitsStore(sql, this.#profile);
    void ctx.blockConcurrencyWhile(async () => {
      migrate(ctx.storage);
    });
  }

  // ---- user lifecycle -----------------------------------------------------------------------

  /** Creates the user's record and data key. Returns the wrapped key for the KV copy. */
  init(profile: UserProfile, keyId: string, keyHash: string): Promise<PoolResult<string>> {
    return guard(async () => {
      let wrapped = this.#profile.get("dek");
      if (!wrapped) {
        wrapped = (await newDataKey(await getKeyring(getConfig(this.env)), profile.id)).wrapped;
        this.#profile.set("dek", wrapped);
      }
      this.#profile.set("profile", JSON.stringify(profile));
      this.#profile.set("keyId", keyId);
      this.#profile.set("keyHash", keyHash);
      return wrapped;
    });
  }

  /**
   * Replaces the gateway key; returns the previous key's hash so its index entry can go. The reset
   * is recorded with who did it (the user sees it in GET /api/me), in the same transaction.
   */
  setKey(keyId: string, keyHash: string, by: KeyReset["by"]): Promise<PoolResult<string | null>> {
    return guard(() => {
      if (!this.#profile.profile()) throw refuse(404, "no such user");
      return this.#profile.setKey(keyId, keyHash, by);
    });
  }

  /** The recorded resets of this user's gateway key, newest first. */
  keyResets(): Promise<PoolResult<KeyReset[]>> {
    return guard(() => this.#profile.keyResets());
  }

  /**
   * After a MASTER_KEY rotation a key is re-indexed under the new version's hash: the object then
   * remembers that hash, so a later reset or deletion removes the live index entry, not a stale one.
   */
  rehashKey(oldHash: string, newHash: string): Promise<PoolResult<boolean>> {
    return guard(() => {
      if (this.#profile.get("keyHash") !== oldHash) return false;
      this.#profile.set("keyHash", newHash);
      return true;
    });
  }

  profile(): Promise<PoolResult<{ profile: UserProfile; keyHash: string | null } | null>> {
    return guard(() => {
      const p = this.#profile.profile();
      return p ? { profile: p, keyHash: this.#profile.get("keyHash") } : null;
    });
  }

  /** Crypto-shreds the user: the data key goes first, then everything else. */
  destroy(): Promise<PoolResult<{ keyHash: string | null; accountIds: string[] }>> {
    return guard(async () => {
      const keyHash = this.#profile.get("keyHash");
      const accountIds = this.#accounts.ids();
      this.#profile.delete("dek");
      this.#dataKey.forget();
      await this.ctx.storage.deleteAll();
      migrate(this.ctx.storage);
      return { keyHash, accountIds };
    });
  }

  wrappedDataKey(): Promise<PoolResult<string | null>> {
    return guard(() => this.#profile.get("dek"));
  }

  /**
   * MASTER_KEY rotation: re-wraps the data key under the current KEK, and re-takes import
   * fingerprints made under an old version. Returns whether the data key changed.
   */
  rewrap(): Promise<PoolResult<boolean>> {
    return guard(async () => {
      const changed = await this.#dataKey.rewrap();
      if (this.#profile.get("dek")) await this.#enrolment.refingerprint(await this.#dataKey.get());
      return changed;
    });
  }

  // ---- snapshot and outcomes --------------------------------------------------------------------

  /**
   * Records a batch of outcomes (counters, cooldowns, quota, usage) and conversation bindings, then
   * answers with the fresh snapshot and the bindings changed since `since` (one round trip).
   */
  sync(reports: OutcomeReport[], extra: { affinity?: AffinityEntry[]; since?: number; admitted?: Admitted[]; events?: EdgeEvent[] } = {}): Promise<PoolResult<Snapshot>> {
    return guard(async () => {
      const now = Date.now();
      const withQuota = reports.filter((r) => r.quota).map((r) => r.accountId);
      const quotaBefore = withQuota.length ? this.#alerting.quotaMark(withQuota) : null;
      this.#accounts.applyOutcomes(reports);
      applyTelemetry(this.ctx.storage.sql, reports);
      // Alerts are queued here and sent by the alarm: this call is on a request's path.
      if (quotaBefore) this.#alerting.quotaCrossed(quotaBefore);
      this.#alerting.outcomes(reports);
      this.#alerting.edge(extra.events ?? []);
      // The team target, read in the background when it lapsed: the next raise knows whether the
      // team wants an event (an event before any team target existed must not use up its hour).
      void this.#alerting.warmTeam().catch(() => undefined);
      this.#limits.record(reports);
      this.#limits.admitted(extra.admitted ?? []);
      if (utcDay(now) !== this.#profile.get("purged_on")) {
        // Usage older than a year goes, once a day, for every user (not only those with an alarm).
        purgeUsage(this.ctx.storage.sql, now);
        this.#limits.purge(now);
        this.#profile.set("purged_on", utcDay(now));
      }
      const settings = readSettings(this.#profile.get("settings"));
      applyAffinity(this.ctx.storage.sql, extra.affinity ?? [], settings.affinityTtlS, now);
      const user = this.#profile.profile();
      const rows = this.#accounts.all();
      if (user) await this.#markActive(now, Probes.wanted(rows));
      return {
        user,
        keyId: this.#profile.get("keyId"),
        keyHash: this.#profile.get("keyHash"),
        accounts: rows.map(stateOf),
        settings,
        limits: this.#limits.get(),
        spent: this.#limits.spent(now),
        affinity: affinitySince(this.ctx.storage.sql, extra.since ?? 0),
        at: now,
      };
    });
  }

  // ---- routing: settings, usage -------------------------------------------------------------------

  settings(): Promise<PoolResult<Settings>> {
    return guard(() => readSettings(this.#profile.get("settings")));
  }

  updateSettings(patch: Partial<Settings>): Promise<PoolResult<Settings>> {
    return guard(() => {
      if (!this.#profile.profile()) throw refuse(404, "this user does not exist (deleted?)");
      const next = { ...readSettings(this.#profile.get("settings")), ...patch };
      this.#profile.set("settings", JSON.stringify(next));
      return next;
    });
  }

  // ---- the team: limits and usage (limits-store.ts) ------------------------------------------------

  limits(): Promise<PoolResult<Limits>> {
    return guard(() => this.#limits.get());
  }

  /** Sets the team's limits for this member (an admin's PATCH); the isolates learn them with their next snapshot. */
  setLimits(patch: Partial<Limits>): Promise<PoolResult<Limits>> {
    return guard(() => {
      if (!this.#profile.profile()) throw refuse(404, "this user does not exist (deleted?)");
      return this.#limits.set(patch);
    });
  }

  /** The member as GET /admin/usage shows them: counts and days, no credential, label or account id. */
  teamView(days: number): Promise<PoolResult<TeamMemberUsage | null>> {
    return guard(() => {
      const p = this.#profile.profile();
      if (!p) return null;
      const now = Date.now();
      return { id: p.id, name: p.name, role: p.role, createdAt: p.createdAt, ...this.#limits.teamView(days, now, this.#accounts.all().map(stateOf)) };
    });
  }

  usage(accountId: string, days: number): Promise<PoolResult<UsageDay[]>> {
    return guard(() => {
      if (!this.#accounts.get(accountId)) throw noAccount(accountId);
      return usageDays(this.ctx.storage.sql, accountId, days, Date.now());
    });
  }

  /** Checks an account with its provider and records the verdict (checks.ts). */
  checkAccount(id: string, opts: { asked?: boolean } = {}): Promise<PoolResult<CheckAnswer>> {
    return guard(async () => {
      const quotaBefore = this.#alerting.quotaMark([id]);
      const answer = await this.#checks.check(id, opts);
      this.#alerting.quotaCrossed(quotaBefore);
      return answer;
    });
  }

  // ---- the alarm: alert deliveries, quota probes ---------------------------------------------------

  /**
   * Delivers the alerts that are due first, whether or not the user is active (alerting.ts), then
   * runs the quota probes while the user is active, then sets the alarm for whichever comes next.
   */
  override async alarm(): Promise<void> {
    const now = Date.now();
    this.#alarmAt = null;
    await this.#alerting.deliverDue(now);
    purgeUsage(this.ctx.storage.sql, now);
    let probeAt: number | null = null;
    // An inactive user's probes wait: the next request wakes them.
    if (now - Number(this.#profile.get("active_at") ?? 0) <= ACTIVE_WINDOW_MS) {
      const quotaBefore = this.#alerting.quotaMark();
      await this.#probes.run(now);
      this.#alerting.quotaCrossed(quotaBefore);
      probeAt = now + PROBE_EVERY_MS;
    }
    const next = [probeAt, this.#alerting.nextDue()].filter((t): t is number => t !== null);
    if (next.length) await this.#schedule(Math.max(Math.min(...next), Date.now()));
  }

  /** Remembers that the user is active (a write a minute at most) and makes sure a probe is scheduled. */
  async #markActive(now: number, probes: boolean): Promise<void> {
    if (now - this.#activeAt >= 60_000) {
      this.#activeAt = now;
      this.#profile.set("active_at", String(now));
    }
    if (this.#alarmAt !== null && this.#alarmAt !== undefined) return;
    if (!probes) return;
    if (this.#alarmAt === undefined) this.#alarmAt = await this.ctx.storage.getAlarm();
    if (this.#alarmAt === null) await this.#schedule(now + PROBE_EVERY_MS);
  }

  async #schedule(at: number): Promise<void> {
    this.#alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }

  /** An alert is due at `at`: the alarm runs then, or earlier when it is set earlier already. */
  async #wake(at: number): Promise<void> {
    try {
      if (this.#alarmAt === undefined) this.#alarmAt = await this.ctx.storage.getAlarm();
      if (this.#alarmAt !== null && this.#alarmAt <= at) return;
      await this.#schedule(at);
    } catch (e) {
      console.warn(`subpool: the alarm for an alert could not be set: ${(e as Error).name}`);
    }
  }

  /** An account's health changed for the worse (renewals.ts, checks.ts). */
  #accountEvent(event: "account.needs_reauth" | "account.refused", account: { id: string; provider: string; label: string }, message: string): void {
    console.log(`subpool: ${account.provider} account ${account.id}: ${event}: ${message}`);
    this.#alerting.account(event, account, message);
  }

  // ---- alerts: the member's own target (alerting.ts) -------------------------------------------------

  /** The member's alert target without its secret, or null when none is set. */
  alertTarget(): Promise<PoolResult<AlertTargetView | null>> {
    return guard(() => this.#alerting.view());
  }

  /** Sets the member's target with a new signing secret, answered this once. */
  setAlertTarget(url: string, events: AlertEvent[] | null): Promise<PoolResult<AlertTargetCreated>> {
    return guard(() => this.#alerting.setTarget(url, events));
  }

  deleteAlertTarget(): Promise<PoolResult<boolean>> {
    return guard(() => this.#alerting.deleteTarget());
  }

  /** Sends event `test` to the member's target at once and answers the delivery. */
  testAlert(): Promise<PoolResult<AlertDelivery>> {
    return guard(() => this.#alerting.test());
  }

  // ---- accounts ---------------------------------------------------------------------------------

  listAccounts(): Promise<PoolResult<AccountView[]>> {
    return guard(() => {
      const now = Date.now();
      return this.#accounts.all().map((r) => viewOf(stateOf(r), now));
    });
  }

  /**
   * Adds one account. The same secret for the same provider is one account, however it came (added,
   * imported, signed in): adding it again is a 409 naming the account that holds it.
   */
  addAccount(input: NewAccount): Promise<PoolResult<AccountView>> {
    return guard(async () => {
      const fingerprint = await this.#enrolment.fingerprintOf(input);
      const same = await this.#enrolment.sameSecret(input, fingerprint);
      if (same) {
        const what = input.type === "api" ? "API key" : "refresh token";
        throw refuse(409, `this ${providerFor(same.provider).name} ${what} is already your account "${cleanLabel(same.label)}" (${same.id}): one credential, one account`, input.type === "api" ? "key" : "refresh");
      }
      return this.#enrolment.insert({ ...input, fingerprint });
    });
  }

  /**
   * Import without duplicates: the same provider identity is refreshed in place ("updated"), the
   * same grant as last imported is left alone ("unchanged"), anything else is a new account.
   */
  importAccount(input: NewAccount & { fingerprint: string }): Promise<PoolResult<{ action: ImportAction; account: AccountView }>> {
    return guard(async () => {
      const same = await this.#enrolment.sameSecret(input, input.fingerprint);
      if (same) return { action: "unchanged" as const, account: viewOf(stateOf(same)) };
      const known = input.identity ? this.#accounts.byIdentity(input.provider, input.identity) : undefined;
      if (known) return { action: "updated" as const, account: await this.#enrolment.replace(known, input) };
      return { action: "created" as const, account: await this.#enrolment.insert(input) };
    });
  }

  updateAccount(id: string, patch: AccountPatch): Promise<PoolResult<AccountView>> {
    return guard(() => {
      const row = this.#accounts.get(id);
      if (!row) throw noAccount(id);
      if (patch.label !== undefined) {
        const label = cleanLabel(patch.label);
        if (label === "") throw refuse(400, "label: must not be empty", "label");
        if (this.#accounts.labelTaken(label, id)) throw refuse(409, `another of your accounts is already labelled "${label}": labels name one account each`, "label");
        this.#accounts.setLabel(id, label);
      }
      if (patch.enabled !== undefined) {
        // Enabling is also how a person says "try it again": it clears the bench, even on an account
        // that was enabled already, and the wait after a failed renewal.
        if (patch.enabled) this.#renewals.dropWait(id);
        this.#accounts.setEnabled(id, patch.enabled);
      }
      if (patch.position !== undefined) this.#accounts.move(row, patch.position);
      return viewOf(stateOf(this.#accounts.get(id)!));
    });
  }

  deleteAccount(id: string): Promise<PoolResult<true>> {
    return guard(async () => {
      const row = this.#accounts.get(id);
      if (!row) throw noAccount(id);
      this.#accounts.remove(id);
      forgetAccount(this.ctx.storage.sql, id);
      this.#accounts.renumber(row.provider);
      this.#renewals.forget(id);
      this.#checks.forget(id);
      this.#probes.forget(id);
      await this.env.VAULT.delete(kvKeys.credential(this.#profile.userId(), id));
      return true as const;
    });
  }

  /** The authoritative record, for a reader whose KV copy is older than the snapshot's version. */
  getCredential(id: string): Promise<PoolResult<CredentialRecord | null>> {
    return guard(() => {
      const row = this.#accounts.get(id);
      return row ? recordOf(row) : null;
    });
  }

  // ---- interactive logins -----------------------------------------------------------------------

  /** Starts a login; the PKCE verifier or device code stays here, sealed. */
  startLogin(provider: ProviderId, label: string | null): Promise<PoolResult<{ loginId: string; expiresAt: number; public: LoginStart["public"] }>> {
    return guard(() => this.#logins.start(provider, label));
  }

  /** Finishes (or, for the device flow, polls) a login. Concurrent calls share one attempt. */
  finishLogin(provider: ProviderId, loginId: string, code: string | undefined): Promise<PoolResult<FinishResult>> {
    return guard(() => this.#logins.finish(provider, loginId, code));
  }

  // ---- refresh and credentials that do not decrypt ------------------------------------------------

  /** A usable access token record for an OAuth account (renewals.ts). */
  refresh(id: string, seenVersion: number, force: boolean): Promise<PoolResult<RefreshOutcome>> {
    return guard(() => this.#renewals.refresh(id, seenVersion, force));
  }

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
      const row = this.#accounts.get(id);
      if (!row) return { kind: "gone" };
      const opened = await this.#dataKey.open(row);
      if (opened.kind === "no-data-key") return { kind: "config", message: opened.message };
      const now = this.#accounts.get(id);
      if (!now) return { kind: "gone" };
      // A fresh credential was put in place while we checked (a re-login): let the reader retry it.
      if (now.cred_version !== row.cred_version) return { kind: "changed" };
      if (opened.kind === "unreadable") {
        console.warn(`subpool: ${row.provider} account ${id}: its stored credential does not decrypt; marked needs_reauth`);
        if (this.#accounts.markUnreadable(id, reason)) this.#accountEvent("account.needs_reauth", row, reason);
        return { kind: "needs_reauth", message: reason };
      }
      console.warn(`subpool: ${row.provider} account ${id}: the KV copy of its credential did not decrypt; restored from the Durable Object`);
      const wrapped = await this.#dataKey.restoreEdgeCopies(id, now.cred);
      return { kind: "readable", record: recordOf(now), wrappedDataKey: wrapped };
    });
  }
}

