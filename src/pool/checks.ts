/**
 * Checking an account at no token cost where the provider allows it (Provider.check), renewing an
 * OAuth session first when it is due (or when the provider's check is the exchange itself), and
 * recording the verdict on the account: a pass clears a check's error, a refusal takes the account
 * out of rotation. Checks call the provider, so they are bounded: CHECKS_PER_WINDOW asked checks per
 * account and minute (more get a 429 with Retry-After), ADD_CHECKS_PER_WINDOW checks made by adding
 * accounts per member and minute (past that the account is kept, unchecked).
 */
import { type Env, getConfig } from "../config";
import { providerFor } from "../providers";
import type { AccountType, CheckVerdict } from "../providers/types";
import { cleanLabel } from "../util";
import type { CheckAnswer } from "../wire";
import { type AccountRow, type AccountsStore, extrasOf, stateOf } from "./accounts-store";
import type { DataKey } from "./data-key";
import type { Renewals } from "./renewals";
import { refuse } from "./result";
import { applyTelemetry } from "./telemetry-store";
import { type AccountEventHook, UNREADABLE_CREDENTIAL, viewOf } from "./types";

/** Checks of one account a person may ask for within CHECK_WINDOW_MS; more get a 429 with Retry-After. */
export const CHECKS_PER_WINDOW = 3;
const CHECK_WINDOW_MS = 60_000;
/** Checks made by adding accounts, per member and minute (a key in checkedAt no account id can be). */
export const ADD_CHECKS_PER_WINDOW = 20;
const ADD_CHECKS = " adds";

export class Checks {
  /** Per account, when it was last checked on request (the last CHECKS_PER_WINDOW times, this instance). */
  private readonly checkedAt = new Map<string, number[]>();

  constructor(
    private readonly env: Env,
    private readonly sql: SqlStorage,
    private readonly accounts: AccountsStore,
    private readonly dataKey: DataKey,
    private readonly renewals: Renewals,
    /** An account's health changed for the worse (a new finding, not a reason recorded before). */
    private readonly onEvent: AccountEventHook,
  ) {}

  forget(id: string): void {
    this.checkedAt.delete(id);
  }

  async check(id: string, opts: { asked?: boolean }): Promise<CheckAnswer> {
    const row = this.accounts.get(id);
    if (!row) throw noAccount(id);
    // A check someone asks for (not the one adding makes) is bounded per account, so that a
    // loop of checks cannot make the gateway call the provider as fast as it is asked.
    if (opts.asked) this.countAsked(row);
    else if (!this.countAdded()) {
      // The check adding makes is bounded per member: a loop adding new keys must not make the
      // gateway call the provider once per add. The account stays, unchecked (as ?check=false).
      return { verdict: "unknown" as const, status: 0, message: `not checked: ${ADD_CHECKS_PER_WINDOW} new accounts were checked in the last minute; check this one later`, account: viewOf(stateOf(row)) };
    }
    const { found, recordIt } = await this.run(row);
    if (!this.accounts.get(id)) throw noAccount(id);
    const message = found.message.replace(/^check: /, "");
    if (found.verdict === "ok") {
      // The last status stays the last request's.
      this.renewals.endWait(id);
      this.accounts.passed(id, UNREADABLE_CREDENTIAL);
    } else if (found.verdict === "invalid") {
      // Refused: out of rotation until a new credential (a re-login, an import) or a check that
      // passes. A reason recorded already (a dead grant, a credential that does not open) stays:
      // the next check does not ask again.
      this.accounts.markRefused(id, recordIt ? `check: ${message}` : null);
      if (recordIt) this.onEvent("account.refused", row, message);
    } else if (recordIt) this.accounts.setError(id, `check: ${message}`);
    if (found.quota) applyTelemetry(this.sql, [{ accountId: id, successes: 0, failures: 0, lastUsedAt: 0, lastStatus: 0, quota: { ...found.quota, updatedAt: Date.now() } }]);
    return { verdict: found.verdict, status: found.status, message: found.message, account: viewOf(stateOf(this.accounts.get(id)!)) };
  }

  /** Counts a check that adding makes; false when this member's share of the last minute is used. */
  private countAdded(): boolean {
    const now = Date.now();
    const recent = (this.checkedAt.get(ADD_CHECKS) ?? []).filter((t) => now - t < CHECK_WINDOW_MS);
    if (recent.length >= ADD_CHECKS_PER_WINDOW) return false;
    recent.push(now);
    this.checkedAt.set(ADD_CHECKS, recent);
    return true;
  }

  /** Counts a check asked for, or refuses it with a 429 when the account had its share lately. */
  private countAsked(row: AccountRow): void {
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
  private async run(row: AccountRow): Promise<{ found: CheckVerdict; recordIt: boolean }> {
    const provider = providerFor(row.provider);
    const now = Date.now();
    const waiting = (wait: { at: number; reason: string }) => `renewing the session failed (${wait.reason}); the next try is in ${Math.ceil((wait.at - now) / 1000)} s, or at once when you enable the account`;
    let current = row;
    let renewed = false;
    if (row.type === "oauth") {
      // A dead grant stays refused without asking; an account a check took out is asked again.
      if (row.needs_reauth === 1 && !row.last_error?.startsWith("check: ")) return { found: { verdict: "invalid", status: 0, message: row.last_error ?? "needs a new login" }, recordIt: false };
      if (this.renewals.due(row, now) || provider.checkByRefresh) {
        const wait = this.renewals.wait(row);
        if (wait) return { found: { verdict: "unknown", status: 0, message: waiting(wait) }, recordIt: false };
        const r = await this.renewals.once(row);
        if (!r.ok) return { found: { verdict: r.reason === "needs_reauth" ? "invalid" : "unknown", status: 0, message: `renewing the session: ${r.message}` }, recordIt: r.reason !== "needs_reauth" };
        renewed = true;
        current = this.accounts.get(row.id) ?? row;
      }
    }
    let found = await this.ask(current);
    if (found.verdict === "invalid" && found.status !== 0 && row.type === "oauth" && !renewed) {
      const wait = this.renewals.wait(current);
      if (wait) return { found: { verdict: "unknown", status: found.status, message: `${found.message}; ${waiting(wait)}` }, recordIt: true };
      const r = await this.renewals.once(current);
      if (!r.ok) return { found: { verdict: r.reason === "needs_reauth" ? "invalid" : "unknown", status: found.status, message: `${found.message}; renewing the session: ${r.message}` }, recordIt: r.reason !== "needs_reauth" };
      found = await this.ask(this.accounts.get(row.id) ?? current);
    }
    // A credential that does not open was marked with its own reason (ask).
    return { found, recordIt: found.message !== UNREADABLE_CREDENTIAL };
  }

  /** The provider's verdict on the account's stored credential, at no token cost (Provider.check). */
  private async ask(row: AccountRow): Promise<CheckVerdict> {
    const provider = providerFor(row.provider);
    const opened = await this.dataKey.open(row);
    if (opened.kind === "unreadable") {
      if (this.accounts.markUnreadable(row.id, UNREADABLE_CREDENTIAL)) this.onEvent("account.needs_reauth", row, UNREADABLE_CREDENTIAL);
      return { verdict: "invalid", status: 0, message: UNREADABLE_CREDENTIAL };
    }
    if (opened.kind === "no-data-key") return { verdict: "unknown", status: 0, message: opened.message };
    if (provider.check) return provider.check(getConfig(this.env), { id: row.id, type: row.type as AccountType, extras: extrasOf(row.extras) }, opened.cred);
    return { verdict: "ok", status: 200, message: provider.checkByRefresh ? "the token exchange succeeded" : "the session is valid" };
  }
}

export const noAccount = (id: string) => refuse(404, `you have no account with id "${id}"`);
