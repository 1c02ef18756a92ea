/**
 * Renewing OAuth sessions: the only place a rotating refresh token is exchanged (docs/ARCHITECTURE.md,
 * invariants). A fetch() inside a Durable Object lets other calls interleave, so every exchange is
 * single-flight per account and re-reads the row's version after the await before writing. Order of
 * persistence: SQLite (durable on return), then KV, then the caller may use the new access token.
 * A failed exchange is waited out (doubling up to 5 minutes, per credential version) instead of
 * being retried by every request.
 */
import { type Env, getConfig } from "../config";
import { providerFor } from "../providers";
import type { Credential, CredentialRecord } from "../vault/records";
import { kvKeys } from "../vault/records";
import { type AccountRow, type AccountsStore, extrasOf, recordOf } from "./accounts-store";
import type { DataKey } from "./data-key";
import type { ProfileStore } from "./profile-store";
import { type AccountEventHook, type RefreshOutcome, UNREADABLE_CREDENTIAL, refreshMarginMs } from "./types";

export class Renewals {
  /** Single flight per account: every caller during a refresh awaits the same promise. */
  private readonly flights = new Map<string, Promise<RefreshOutcome>>();
  /** After a failed renewal: when to try the token endpoint again (per account, this instance only). */
  private readonly retryAfter = new Map<string, { at: number; step: number; version: number; reason: string }>();

  constructor(
    private readonly env: Env,
    private readonly accounts: AccountsStore,
    private readonly profile: ProfileStore,
    private readonly dataKey: DataKey,
    /** An account just became needs_reauth (its grant is dead, or its credential does not open). */
    private readonly onEvent: AccountEventHook,
  ) {}

  /**
   * A usable access token record for an OAuth account. `seenVersion` is the version the caller
   * holds; `force` says the upstream rejected it (401/403) although it looked valid. A newer version
   * than the caller's that is not about to expire is returned as is: a sibling already refreshed
   * (KV staleness cannot break an account).
   */
  refresh(id: string, seenVersion: number, force: boolean): RefreshOutcome | Promise<RefreshOutcome> {
    const row = this.accounts.get(id);
    if (!row) return { ok: false, reason: "gone", message: "account was deleted" };
    if (row.needs_reauth === 1) return { ok: false, reason: "needs_reauth", message: row.last_error ?? "needs a new login" };
    const record = recordOf(row);
    const fresh = row.expires_at !== null && row.expires_at > Date.now() + refreshMarginMs(providerFor(row.provider).refreshSkewMs, record);
    if (fresh && record.fields.access && (row.cred_version > seenVersion || !force)) return { ok: true, record, extras: extrasOf(row.extras) };
    // The token endpoint failed lately: do not make every request wait for it again.
    const wait = this.wait(row);
    if (wait) return { ok: false, reason: "transient", message: `${wait.reason} (next try in ${Math.ceil((wait.at - Date.now()) / 1000)} s)`, retryAt: wait.at };
    return this.once(row);
  }

  /** Whether the session is due for renewal now. */
  due(row: AccountRow, now: number): boolean {
    const record = recordOf(row);
    return !record.fields.access || (row.expires_at !== null && row.expires_at - now < refreshMarginMs(providerFor(row.provider).refreshSkewMs, record));
  }

  /** The wait after a failed renewal of this credential, while it runs. */
  wait(row: AccountRow): { at: number; reason: string } | null {
    const wait = this.retryAfter.get(row.id);
    return wait && wait.at > Date.now() && wait.version === row.cred_version ? wait : null;
  }

  /**
   * Ends the wait after a failed renewal (a person enabled the account, a check passed, a renewal
   * succeeded), with the bench it put on the account; a longer bench set since (a rate limit) stays.
   */
  endWait(id: string): void {
    const wait = this.retryAfter.get(id);
    if (!wait) return;
    this.retryAfter.delete(id);
    this.accounts.unbench(id, wait.at);
  }

  /** A person asked to try again (enabled the account): the wait is dropped, the bench with it. */
  dropWait(id: string): void {
    this.retryAfter.delete(id);
  }

  forget(id: string): void {
    this.flights.delete(id);
    this.retryAfter.delete(id);
  }

  /** The account's refresh in flight, or a new one: one token call per account at a time. */
  once(row: AccountRow): Promise<RefreshOutcome> {
    let flight = this.flights.get(row.id);
    if (!flight) {
      flight = this.exchange(row).finally(() => this.flights.delete(row.id));
      this.flights.set(row.id, flight);
    }
    return flight;
  }

  private reauth(row: AccountRow, reason: string, unreadable = false): void {
    const entered = unreadable ? this.accounts.markUnreadable(row.id, reason) : this.accounts.markReauth(row.id, reason);
    if (entered) this.onEvent("account.needs_reauth", row, reason);
  }

  private async exchange(row: AccountRow): Promise<RefreshOutcome> {
    const userId = this.profile.userId();
    const provider = providerFor(row.provider);
    const startVersion = row.cred_version;
    const opened = await this.dataKey.open(row);
    if (opened.kind === "no-data-key") return { ok: false, reason: "transient", message: opened.message };
    if (opened.kind === "unreadable") {
      // The authoritative copy itself is altered or misplaced: no refresh can ever succeed.
      if (this.accounts.get(row.id)?.cred_version === startVersion) this.reauth(row, UNREADABLE_CREDENTIAL, true);
      return { ok: false, reason: "needs_reauth", message: UNREADABLE_CREDENTIAL };
    }
    const cred = opened.cred;
    if (!cred.refresh) {
      this.reauth(row, "no refresh token stored");
      return { ok: false, reason: "needs_reauth", message: "no refresh token stored" };
    }

    const result = await provider.refresh(getConfig(this.env), cred);

    // Other calls ran while we awaited: re-read before writing anything.
    const now = this.accounts.get(row.id);
    if (!now) return { ok: false, reason: "gone", message: "account was deleted during refresh" };
    if (now.cred_version !== startVersion) {
      // Someone put a newer credential in place (a re-login) meanwhile: that one wins.
      return { ok: true, record: recordOf(now), extras: extrasOf(now.extras) };
    }
    if (result.kind === "reauth") {
      console.warn(`subpool: ${row.provider} account ${row.id} needs a new login: ${result.reason}`);
      this.reauth(row, `refresh refused: ${result.reason}`);
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
      this.accounts.renewalFailed(row.id, `refresh failed: ${result.reason}`, at);
      return { ok: false, reason: "transient", message: result.reason, retryAt: at };
    }
    this.endWait(row.id);

    const next: Credential = {
      version: startVersion + 1,
      refresh: result.refresh ?? cred.refresh,
      access: result.access,
      expires: result.expires,
      issued: Date.now(),
    };
    const record: CredentialRecord = await this.dataKey.seal(row.id, next);
    const extras = { ...extrasOf(now.extras), ...result.extras };
    // 1. SQLite: durable once this synchronous write returns (output gate holds replies until then).
    this.accounts.renewed(row.id, record, extras);
    console.log(`subpool: ${row.provider} account ${row.id}: session renewed (credential v${record.version})`);
    // 2. KV: the edge copy. If it fails, readers still find the new version here (version check).
    try {
      await this.env.VAULT.put(kvKeys.credential(userId, row.id), JSON.stringify(record));
    } catch (e) {
      console.warn(`subpool: KV copy of account ${row.id} credential v${record.version} failed: ${(e as Error).name}`);
    }
    return { ok: true, record, extras };
  }

}
