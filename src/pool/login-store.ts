/**
 * Interactive logins in progress (PKCE code flow, device flow): the verifier or device code stays in
 * the user's object, sealed with their data key, for LOGIN_TTL_MS at most, and a login finishes once
 * (concurrent finishes share one attempt; the device flow's poll interval is enforced here, so an
 * eager client cannot earn the provider's slow_down). A finished login is enrolled like any other
 * credential (enrolment.ts): the same provider account, or the same grant, is refreshed in place.
 */
import { type Env, getConfig } from "../config";
import { providerFor } from "../providers";
import type { LoginStart, ProviderId } from "../providers/types";
import { decryptField, encryptField, newId } from "../vault/envelope";
import type { AccountsStore } from "./accounts-store";
import type { DataKey } from "./data-key";
import type { Enrolment } from "./enrolment";
import type { ProfileStore } from "./profile-store";
import { refuse } from "./result";
import type { FinishResult } from "./types";

/** Pending logins live this long (or less, if the provider's device code expires sooner). */
export const LOGIN_TTL_MS = 10 * 60 * 1000;

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

export class LoginStore {
  private readonly finishing = new Map<string, Promise<FinishResult>>();

  constructor(
    private readonly env: Env,
    private readonly sql: SqlStorage,
    private readonly profile: ProfileStore,
    private readonly accounts: AccountsStore,
    private readonly dataKey: DataKey,
    private readonly enrolment: Enrolment,
  ) {}

  async start(provider: ProviderId, label: string | null): Promise<{ loginId: string; expiresAt: number; public: LoginStart["public"] }> {
    const userId = this.profile.userId();
    this.purge();
    const started = await providerFor(provider).login.start(getConfig(this.env));
    if (started.kind === "refused") throw refuse(started.status, started.message, started.field);
    const id = newId("login");
    const now = Date.now();
    const expiresAt = now + Math.min(LOGIN_TTL_MS, started.expiresInS !== undefined ? started.expiresInS * 1000 : LOGIN_TTL_MS);
    const secret = await encryptField(await this.dataKey.get(), { userId, accountId: id, field: "login" }, JSON.stringify(started.secret));
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
  }

  finish(provider: ProviderId, loginId: string, code: string | undefined): Promise<FinishResult> {
    let flight = this.finishing.get(loginId);
    if (!flight) {
      flight = this.finishOnce(provider, loginId, code).finally(() => this.finishing.delete(loginId));
      this.finishing.set(loginId, flight);
    }
    return flight;
  }

  private purge(): void {
    this.sql.exec("DELETE FROM logins WHERE expires_at <= ?", Date.now());
  }

  private async finishOnce(provider: ProviderId, loginId: string, code: string | undefined): Promise<FinishResult> {
    this.purge();
    const row = this.sql.exec<LoginRow>("SELECT * FROM logins WHERE id = ? AND provider = ?", loginId, provider).toArray()[0];
    if (!row) throw refuse(410, "no pending login with this id: logins last 10 minutes and finish once; start again", "loginId");
    const now = Date.now();
    if (row.next_poll_at !== null && now < row.next_poll_at) {
      return { kind: "pending", intervalS: Math.max(1, Math.ceil((row.next_poll_at - now) / 1000)) };
    }
    const userId = this.profile.userId();
    const secret = JSON.parse(await decryptField(await this.dataKey.get(), { userId, accountId: row.id, field: "login" }, row.secret)) as LoginStart["secret"];
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
        const fingerprint = await this.enrolment.fingerprintOf(grant);
        // The same provider account, or the same grant already stored (for no other known person):
        // that account is refreshed.
        const same = await this.enrolment.sameSecret(grant, fingerprint);
        const known = (g.identity ? this.accounts.byIdentity(provider, g.identity) : undefined) ?? (same && (!same.identity || !g.identity || same.identity === g.identity) ? same : undefined);
        if (known) {
          const account = await this.enrolment.replace(known, { refresh: g.refresh, access: g.access, expires: g.expires, fingerprint });
          return { kind: "account", account, created: false };
        }
        const account = await this.enrolment.insert({
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
}
