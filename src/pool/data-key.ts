/**
 * The user's data key inside their Durable Object: unwrapped once per instance (and re-wrapped under
 * the current MASTER_KEY version when it was wrapped under an old one), and the opening of this
 * object's own copy of a credential, telling a bad record (this account's problem) from a data key
 * that does not unwrap (a MASTER_KEY / OLD_MASTER_KEYS problem, every account's).
 */
import { type Env, getConfig } from "../config";
import { parseJsonBody } from "../util";
import { VaultError, getKeyring, rewrapDataKey, unwrapDataKey } from "../vault/envelope";
import { type Credential, type CredentialRecord, kvKeys, openCredential, sealCredential } from "../vault/records";
import type { AccountRow } from "./accounts-store";
import type { ProfileStore } from "./profile-store";
import { refuse } from "./result";

export type Opened = { kind: "ok"; cred: Credential } | { kind: "unreadable" } | { kind: "no-data-key"; message: string };

export class DataKey {
  private dek: Promise<CryptoKey> | null = null;
  /** The wrapped key `dek` was unwrapped from. */
  private wrapped: string | null = null;

  constructor(
    private readonly env: Env,
    private readonly profile: ProfileStore,
    /** Runs after a stale data key was re-wrapped (import fingerprints are re-taken then). */
    private readonly afterRewrap: (key: CryptoKey) => Promise<unknown>,
  ) {}

  /**
   * The unwrapped key, for the wrapped key now in storage: a wrapped key changed under the object
   * (restored from a backup, repaired by hand) is unwrapped again, never served from memory.
   */
  get(): Promise<CryptoKey> {
    const wrapped = this.profile.get("dek");
    if (this.dek && wrapped !== this.wrapped) this.dek = null;
    if (!this.dek) {
      this.wrapped = wrapped;
      this.dek = (async () => {
        if (!wrapped) throw refuse(404, "this user has no data key (deleted?)");
        const ring = await getKeyring(getConfig(this.env));
        const { key, stale } = await unwrapDataKey(ring, this.profile.userId(), wrapped);
        if (stale) {
          await this.rewrap();
          this.wrapped = this.profile.get("dek");
          await this.afterRewrap(key);
        }
        return key;
      })();
      this.dek.catch(() => (this.dek = null));
    }
    return this.dek;
  }

  /** The user was deleted: the key is forgotten with them. */
  forget(): void {
    this.dek = null;
  }

  /** Re-wraps the data key under the current KEK (and updates KV's copy); whether it changed. */
  async rewrap(): Promise<boolean> {
    const profile = this.profile.profile();
    const wrapped = this.profile.get("dek");
    if (!profile || !wrapped) return false;
    const ring = await getKeyring(getConfig(this.env));
    const next = await rewrapDataKey(ring, profile.id, wrapped);
    if (next === wrapped) return false;
    this.profile.set("dek", next);
    await this.env.VAULT.put(kvKeys.dataKey(profile.id), next);
    return true;
  }

  /**
   * Puts KV's copies of an account's sealed record and of the wrapped data key back from this
   * object's (a reader found KV's did not open). Best effort: the object's copy serves meanwhile.
   * Returns the wrapped data key.
   */
  async restoreEdgeCopies(accountId: string, record: string): Promise<string> {
    const userId = this.profile.userId();
    const wrapped = this.profile.get("dek")!;
    try {
      const [kvRecord, kvDek] = await Promise.all([this.env.VAULT.get(kvKeys.credential(userId, accountId)), this.env.VAULT.get(kvKeys.dataKey(userId))]);
      await Promise.all([
        kvRecord !== record ? this.env.VAULT.put(kvKeys.credential(userId, accountId), record) : null,
        kvDek !== wrapped ? this.env.VAULT.put(kvKeys.dataKey(userId), wrapped) : null,
      ]);
    } catch (e) {
      console.warn(`subpool: restoring the KV copies of account ${accountId} failed: ${(e as Error).name}`);
    }
    return wrapped;
  }

  seal(accountId: string, cred: Credential): Promise<CredentialRecord> {
    return this.get().then((dek) => sealCredential(dek, this.profile.userId(), accountId, cred));
  }

  /** Opens this object's own copy of a credential. */
  async open(row: AccountRow): Promise<Opened> {
    let dek: CryptoKey;
    try {
      dek = await this.get();
    } catch (e) {
      if (e instanceof VaultError) return { kind: "no-data-key", message: e.message };
      throw e;
    }
    const record = parseJsonBody(row.cred) as CredentialRecord | undefined;
    if (!record || typeof record !== "object" || typeof record.fields !== "object" || record.fields === null) return { kind: "unreadable" };
    try {
      return { kind: "ok", cred: await openCredential(dek, this.profile.userId(), row.id, record) };
    } catch (e) {
      if (e instanceof VaultError) return { kind: "unreadable" };
      throw e;
    }
  }
}
