/**
 * How a credential becomes an account, or refreshes one: added, imported or signed in, the same
 * secret for the same provider is one account (by a keyed fingerprint of the API key or the refresh
 * token, under every MASTER_KEY version while a rotation runs), the same provider identity is
 * updated in place, and a member keeps at most MAX_ACCOUNTS_PER_USER accounts. Sealing happens
 * here, with the user's data key; the KV copy is written after SQLite.
 */
import { type Env, getConfig } from "../config";
import { providerFor } from "../providers";
import type { AccountType, ProviderId } from "../providers/types";
import { cleanLabel } from "../util";
import { fingerprintSecret, getKeyring, newId } from "../vault/envelope";
import { type Credential, type CredentialRecord, kvKeys, openCredential } from "../vault/records";
import { type AccountRow, type AccountsStore, extrasOf, stateOf } from "./accounts-store";
import type { DataKey } from "./data-key";
import type { ProfileStore } from "./profile-store";
import { refuse } from "./result";
import { type AccountView, type NewAccount, viewOf } from "./types";

type Secret = Pick<NewAccount, "provider" | "type" | "key" | "refresh">;
type Fresh = Pick<NewAccount, "key" | "refresh" | "access" | "expires" | "fingerprint">;

export class Enrolment {
  constructor(
    private readonly env: Env,
    private readonly accounts: AccountsStore,
    private readonly profile: ProfileStore,
    private readonly dataKey: DataKey,
  ) {}

  async insert(input: NewAccount): Promise<AccountView> {
    const userId = this.profile.userId();
    const cap = getConfig(this.env).MAX_ACCOUNTS_PER_USER;
    const count = this.accounts.count();
    if (count >= cap) {
      throw refuse(403, `you have ${count} accounts, the most this gateway keeps for one member (MAX_ACCOUNTS_PER_USER = ${cap}): delete one you no longer use first`);
    }
    const id = newId("acc");
    const now = Date.now();
    const position = this.accounts.nextPosition(input.provider);
    // A label may come from a provider's answer (a login's email or GitHub name) or a file: the
    // label rule (util.ts) cleans it, as the API refuses what a person types against the rule.
    const given = input.label === undefined ? undefined : cleanLabel(input.label);
    const label = this.accounts.uniqueLabel(given || `${input.provider} ${input.type === "api" ? "key" : "account"} ${position}`);
    // An access token handed in from elsewhere has an unknown age: no `issued`, the full margin applies.
    const cred: Credential = { version: 1, key: input.key, refresh: input.refresh, access: input.access, expires: input.expires ?? null };
    const record = await this.dataKey.seal(id, cred);
    this.accounts.insert({
      id,
      provider: input.provider,
      type: input.type,
      label,
      position,
      createdAt: now,
      record,
      extras: providerFor(input.provider).extrasOf?.(input.access) ?? {},
      fingerprint: input.fingerprint ?? null,
      identity: input.identity ?? null,
    });
    await this.env.VAULT.put(kvKeys.credential(userId, id), JSON.stringify(record));
    return viewOf(stateOf(this.accounts.get(id)!), now);
  }

  /** Puts a fresh credential in place (a re-login, an import): new version, needs_reauth and cooldown cleared. */
  async replace(row: AccountRow, input: Fresh): Promise<AccountView> {
    const userId = this.profile.userId();
    const cred: Credential = { version: row.cred_version + 1, key: input.key, refresh: input.refresh, access: input.access, expires: input.expires ?? null };
    const record = await this.dataKey.seal(row.id, cred);
    const extras = { ...extrasOf(row.extras), ...providerFor(row.provider).extrasOf?.(input.access) };
    this.accounts.replaceCredential(row.id, record, extras, input.fingerprint);
    await this.env.VAULT.put(kvKeys.credential(userId, row.id), JSON.stringify(record));
    return viewOf(stateOf(this.accounts.get(row.id)!));
  }

  /** The keyed hash of an account's secret (the API key, or the OAuth grant's refresh token). */
  async fingerprintOf(input: Secret): Promise<string> {
    const secret = (input.type === "api" ? input.key : input.refresh) ?? "";
    return fingerprintSecret(await getKeyring(getConfig(this.env)), input.provider, input.type, secret);
  }

  /**
   * The account that already holds this secret for this provider, if any: by its fingerprint (taken
   * when it was added, imported or signed in; during a MASTER_KEY rotation also under the old
   * version). Accounts stored before adding took fingerprints get theirs here, from their current
   * secret, the first time one is looked for.
   */
  async sameSecret(input: Secret, fingerprint: string): Promise<AccountRow | undefined> {
    const found = this.accounts.byFingerprint(input.provider, input.type, fingerprint) ?? (await this.byOldFingerprint(input, fingerprint));
    if (found) return found;
    let match: AccountRow | undefined;
    for (const row of this.accounts.unfingerprinted(input.provider, input.type)) {
      const opened = await this.dataKey.open(row);
      if (opened.kind !== "ok") continue; // unreadable: markUnreadable deals with it
      const own = await this.fingerprintOf({ provider: row.provider as ProviderId, type: row.type as AccountType, key: opened.cred.key, refresh: opened.cred.refresh });
      this.accounts.setFingerprint(row.id, own, null);
      if (own === fingerprint && !match) match = this.accounts.get(row.id);
    }
    return match;
  }

  /**
   * During a MASTER_KEY rotation: an account imported before it carries a fingerprint taken under
   * the old version. Found that way, it is re-fingerprinted under the current one.
   */
  private async byOldFingerprint(input: Secret, fingerprint: string): Promise<AccountRow | undefined> {
    const ring = await getKeyring(getConfig(this.env));
    const secret = (input.type === "api" ? input.key : input.refresh) ?? "";
    for (const v of ring.byVersion.keys()) {
      if (v === ring.current.version) continue;
      const row = this.accounts.byFingerprint(input.provider, input.type, await fingerprintSecret(ring, input.provider, input.type, secret, v));
      if (row) {
        this.accounts.setFingerprint(row.id, fingerprint, row.fingerprint);
        return this.accounts.get(row.id);
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
  async refingerprint(dek: CryptoKey): Promise<number> {
    const ring = await getKeyring(getConfig(this.env));
    if (ring.byVersion.size < 2) return 0;
    const userId = this.profile.userId();
    let changed = 0;
    for (const row of this.accounts.fingerprinted()) {
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
        this.accounts.setFingerprint(row.id, current, row.fingerprint);
        changed++;
        break;
      }
    }
    return changed;
  }
}
