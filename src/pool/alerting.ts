/**
 * Raising and delivering alerts inside a member's Durable Object (DESIGN §12, "Alerts"). Raising is
 * SQL only (the dedup record and the outbox) plus asking for the alarm, so the transitions that
 * raise (a renewal, a check, a sync on a request's path) never wait for a receiver. The alarm
 * delivers what is due, each delivery tried ALERT_TRIES times with backoff and then given up, its
 * result kept as the target's last delivery. The member's own target gets only this member's
 * events; the team's target (KV, read through TeamTargetCache) gets every member's, each member's
 * object sending its own.
 */
import { ALERT_TRIES, DELIVERIES_PER_RUN, type DeliveryResult, TESTS_PER_WINDOW, TEST_WINDOW_MS, deliver, nextTryAt } from "../alerts/deliver";
import type { AlertAccount } from "../alerts/payload";
import { type AlertEvent, alertUrlProblem, wants } from "../alerts/rules";
import { type AlertTarget, TeamTargetCache, writeTeamStatus } from "../alerts/team-target";
import { type Env, getConfig } from "../config";
import { findProvider } from "../providers";
import { cleanLabel } from "../util";
import { decryptField, encryptField, getKeyring, newSigningSecret } from "../vault/envelope";
import type { AlertDelivery, AlertPayload, AlertTargetCreated, AlertTargetView, Quota } from "../wire";
import type { AccountsStore } from "./accounts-store";
import type { AlertScope, AlertsStore } from "./alerts-store";
import type { DataKey } from "./data-key";
import type { ProfileStore } from "./profile-store";
import { refuse } from "./result";
import { readQuota, readSettings } from "./telemetry-store";

/** Where the member's signing secret is sealed under their data key (no account id has this shape). */
const SECRET_PLACE = { accountId: "alerts", field: "signing-secret" } as const;
/**
 * The webhook URL is sealed too: a Slack or Discord webhook URL is itself a bearer secret (anyone
 * holding it can post to the channel), so a dump of the object must not show it.
 */
const URL_PLACE = { accountId: "alerts", field: "webhook-url" } as const;

/** What an isolate saw that becomes an alert here (the isolates send these with sync). */
export type EdgeAlert = { event: "pool.exhausted"; provider: string; at: number } | { event: "limit.reached"; field: string; at: number };

/** Quota as it stood before telemetry was applied, per account (quotaMark, then quotaCrossed). */
export type QuotaMark = Map<string, Quota | null>;

const MESSAGE_MAX = 600;
const providerName = (id: string) => findProvider(id)?.name ?? id;
const pct = (x: number) => `${Math.round(x * 1000) / 10} %`;
const WINDOW_WORDS: Record<string, string> = { "5h": "5-hour window", "7d": "weekly window", primary: "primary window", secondary: "secondary window", requests: "requests-per-minute window", tokens: "tokens-per-minute window" };
const windowWords = (w: string) => WINDOW_WORDS[w] ?? (w.startsWith("7d_") ? `weekly window for ${w.slice(3)}` : `${w} window`);
const LIMIT_WORDS: Record<string, string> = { requestsPerMinute: "requests per minute", tokensPerDay: "tokens per UTC day", tokensPerMonth: "tokens per UTC month", models: "allowed models" };
const sentence = (s: string) => s.trim().replace(/[.\s]+$/, "");

export class Alerting {
  private readonly team = new TeamTargetCache();
  /** When tests were sent to the member's target lately (this instance). */
  private testsAt: number[] = [];
  /** Outbox rows a delivery is under way for (an alarm run and a manual run never send one twice). */
  private readonly sending = new Set<number>();

  constructor(
    private readonly env: Env,
    private readonly store: AlertsStore,
    private readonly profile: ProfileStore,
    private readonly accounts: AccountsStore,
    private readonly dataKey: DataKey,
    /** Asks for the alarm at `at` (or earlier, if one is set already). */
    private readonly wake: (at: number) => void,
  ) {}

  // ---- the member's target --------------------------------------------------------------------

  /** Sets the target with a new signing secret, answered once (PUT again rotates it). */
  async setTarget(url: string, events: AlertEvent[] | null): Promise<AlertTargetCreated> {
    // Checked at the edge (zod) already; checked again where it is kept, so no caller can skip it.
    const problem = alertUrlProblem(url);
    if (problem) throw refuse(400, `url: ${problem}`, "url");
    const userId = this.profile.userId();
    const secret = newSigningSecret();
    const dek = await this.dataKey.get();
    const sealed = await encryptField(dek, { userId, ...SECRET_PLACE }, secret);
    this.store.setTarget(await encryptField(dek, { userId, ...URL_PLACE }, url), events, sealed, Date.now());
    return { url, events, secret };
  }

  async view(): Promise<AlertTargetView | null> {
    const t = this.store.target();
    if (!t) return null;
    const url = await decryptField(await this.dataKey.get(), { userId: this.profile.userId(), ...URL_PLACE }, t.url);
    return { url, events: t.events, lastDelivery: t.lastDelivery };
  }

  deleteTarget(): boolean {
    return this.store.deleteTarget();
  }

  /** Sends event `test` to the member's target at once, bounded to TESTS_PER_WINDOW a minute. */
  async test(): Promise<AlertDelivery> {
    const target = await this.memberTarget();
    if (!target) throw refuse(404, 'you have no alert target: PUT /api/alerts {"url": "https://…"} first');
    const now = Date.now();
    this.testsAt = this.testsAt.filter((t) => now - t < TEST_WINDOW_MS);
    if (this.testsAt.length >= TESTS_PER_WINDOW) {
      const retryAfterS = Math.max(1, Math.ceil((this.testsAt[0]! + TEST_WINDOW_MS - now) / 1000));
      throw refuse(429, `${TESTS_PER_WINDOW} tests were sent to your alert target in the last minute; send another in ${retryAfterS} s`, undefined, { retryAfterS });
    }
    this.testsAt.push(now);
    const user = this.user();
    const result = await deliver(target.url, target.secret, { event: "test", at: now, user, account: null, message: `A test of ${user.name}'s alert target.` });
    this.store.recordDelivery(result);
    return result;
  }

  // ---- what raises --------------------------------------------------------------------------------

  /** An account's health changed for the worse (renewals.ts, checks.ts, an upstream's refusal). */
  account(event: "account.needs_reauth" | "account.refused", account: AlertAccount, reason: string): void {
    const name = `${providerName(account.provider)} account "${cleanLabel(account.label)}"`;
    const message =
      event === "account.needs_reauth"
        ? `${name} needs a new login: ${sentence(reason)}.`
        : `${name} was refused by the provider (${sentence(reason)}); it is out of rotation until its credential is replaced or a check passes.`;
    this.raise(event, account, account.id, message);
  }

  /** Outcome reports the object just applied: an upstream's 401/403 that benched an account is a refusal. */
  outcomes(reports: readonly { accountId: string; failures: number; lastStatus: number; cooldownUntil?: number; lastError?: string | null }[]): void {
    for (const r of reports) {
      if (r.failures === 0 || (r.lastStatus !== 401 && r.lastStatus !== 403) || r.cooldownUntil === undefined) continue;
      const row = this.accounts.get(r.accountId);
      // needs_reauth already: its own alert said so (a dead grant, a credential that does not open).
      if (!row || row.needs_reauth === 1) continue;
      this.account("account.refused", row, r.lastError ?? `the provider answered ${r.lastStatus}`);
    }
  }

  /** What the isolates saw: every account of a provider cooling, a team limit reached. */
  edge(events: readonly EdgeAlert[]): void {
    for (const e of events) {
      if (e.event === "pool.exhausted") {
        this.raise(e.event, null, e.provider, `Every ${providerName(e.provider)} account of ${this.user().name} was cooling down: a request was answered 429.`, e.at);
      } else {
        this.raise(e.event, null, e.field, `${this.user().name} reached the team's limit on ${LIMIT_WORDS[e.field] ?? e.field}.`, e.at);
      }
    }
  }

  /** Quota of these accounts (all when not told) as it stands, to compare after telemetry is applied. */
  quotaMark(ids?: readonly string[]): QuotaMark {
    const mark: QuotaMark = new Map();
    if (ids) for (const id of ids) mark.set(id, readQuota(this.accounts.get(id)?.quota ?? null));
    else for (const r of this.accounts.all()) mark.set(r.id, readQuota(r.quota));
    return mark;
  }

  /** quota.high for each window that went from below the member's threshold (or unknown) to at or above it. */
  quotaCrossed(mark: QuotaMark): void {
    if (mark.size === 0) return;
    const threshold = readSettings(this.profile.get("settings")).quotaThreshold;
    for (const [id, before] of mark) {
      const row = this.accounts.get(id);
      const after = row ? readQuota(row.quota) : null;
      if (!row || !after) continue;
      const crossed = Object.entries(after.windows)
        .filter(([w, win]) => win.utilization >= threshold && !((before?.windows[w]?.utilization ?? 0) >= threshold))
        .sort((a, b) => b[1].utilization - a[1].utilization)[0];
      if (!crossed) continue;
      const [w, win] = crossed;
      const resets = win.resetsAt ? `; it resets at ${new Date(win.resetsAt).toISOString().replace(/\.\d+Z$/, "Z")}` : "";
      this.raise(
        "quota.high",
        row,
        row.id,
        `${providerName(row.provider)} account "${cleanLabel(row.label)}" has used ${pct(win.utilization)} of its ${windowWords(w)} (the threshold is ${pct(threshold)})${resets}.`,
      );
    }
  }

  /**
   * Queues `event` about `subject` (an account id, a provider, a limit's field) for the member's
   * target and the team's, once an hour at most, and asks for the alarm. No I/O: when the team
   * target is not known here yet, the alarm decides on it.
   */
  /**
   * Reads the team target when what this object holds has lapsed, so that `raise` (synchronous: it
   * runs inside a sync) knows whether the team wants an event instead of guessing. Called off the
   * path of any answer.
   */
  async warmTeam(): Promise<void> {
    if (this.team.peek() !== undefined) return;
    await this.team.get(this.env, () => getKeyring(getConfig(this.env)));
  }

  raise(event: AlertEvent, account: AlertAccount | null, subject: string, message: string, at = Date.now()): void {
    if (!this.profile.profile()) return;
    const now = Date.now();
    const own = this.store.target();
    const forMember = own !== null && wants(own.events, event);
    const team = this.team.peek(now);
    const forTeam = team === undefined || (team !== null && wants(team.events, event));
    if (!forMember && !forTeam) return;
    if (!this.store.claim(event, subject, now)) return;
    const body: AlertPayload = {
      event,
      at,
      user: this.user(),
      account: account && { id: account.id, provider: account.provider, label: cleanLabel(account.label) },
      message: message.length > MESSAGE_MAX ? `${message.slice(0, MESSAGE_MAX - 1)}…` : message,
    };
    const queued = [forMember && this.store.enqueue("member", body, now), forTeam && this.store.enqueue("team", body, now)];
    if (queued.some(Boolean)) this.wake(now);
    else console.warn(`subpool: alert ${event} dropped: the outbox is full (a receiver has been failing)`);
  }

  // ---- delivering (from the alarm) ------------------------------------------------------------------

  nextDue(): number | null {
    return this.store.nextDue();
  }

  /** Delivers what is due (DELIVERIES_PER_RUN at most, in parallel; the rest stays due). Never throws. */
  async deliverDue(now: number): Promise<void> {
    const rows = this.store.due(now, DELIVERIES_PER_RUN + this.sending.size).filter((r) => !this.sending.has(r.id)).slice(0, DELIVERIES_PER_RUN);
    await Promise.all(
      rows.map(async (row) => {
        this.sending.add(row.id);
        try {
          const target = await this.targetFor(row.scope, row.body.event);
          if (!target) return this.store.done(row.id); // removed since, or no longer subscribed
          const tries = row.tries + 1;
          const result = await deliver(target.url, target.secret, row.body);
          const retry = result.ok ? null : nextTryAt(tries, Date.now());
          if (retry === null) this.store.done(row.id);
          else this.store.retryAt(row.id, tries, retry);
          const given = !result.ok && retry === null ? { ...result, error: `${result.error ?? "failed"}; given up after ${ALERT_TRIES} tries` } : result;
          await this.record(row.scope, given);
        } catch (e) {
          // A secret that does not open (the data key gone, MASTER_KEY trouble): nothing can be signed.
          console.warn(`subpool: alert delivery ${row.id} could not be made: ${(e as Error).name}: ${(e as Error).message}`);
          this.store.done(row.id);
        } finally {
          this.sending.delete(row.id);
        }
      }),
    );
  }

  private async targetFor(scope: AlertScope, event: AlertEvent): Promise<AlertTarget | null> {
    const t = scope === "member" ? await this.memberTarget() : await this.team.get(this.env, () => getKeyring(getConfig(this.env)));
    return t && wants(t.events, event) ? t : null;
  }

  private async memberTarget(): Promise<AlertTarget | null> {
    const t = this.store.target();
    if (!t) return null;
    const dek = await this.dataKey.get();
    const userId = this.profile.userId();
    const [url, secret] = await Promise.all([decryptField(dek, { userId, ...URL_PLACE }, t.url), decryptField(dek, { userId, ...SECRET_PLACE }, t.secret)]);
    return { url, events: t.events, secret };
  }

  private async record(scope: AlertScope, result: DeliveryResult): Promise<void> {
    if (scope === "member") this.store.recordDelivery(result);
    else await writeTeamStatus(this.env, result);
  }

  private user(): { id: string; name: string } {
    const p = this.profile.profile();
    return p ? { id: p.id, name: p.name } : { id: "", name: "" };
  }
}
