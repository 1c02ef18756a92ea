/**
 * The Worker's way into a user's pool: every management call and every refresh goes through here,
 * typed and retried (rpc.ts), and every write invalidates this isolate's snapshot of that user
 * itself, so no route has to remember to.
 */
import type { AlertEvent } from "../alerts/rules";
import type { Config, Env } from "../config";
import { VaultError, getKeyring, unwrapDataKey } from "../vault/envelope";
import { type Credential, openCredential } from "../vault/records";
import type { KeyReset } from "../wire";
import { type AccountPatch, type NewAccount, type RefreshOutcome, UNREADABLE_CREDENTIAL } from "./types";
import { forgetDataKey, openRecord } from "./credentials";
import { type PoolCall, callPool } from "./rpc";
import { flush, forgetSnapshot, invalidateSnapshot, liveAccount } from "./snapshots";
import type { AccountState, UserProfile } from "./types";
import type { Limits, Settings } from "../wire";

export type { AccountPatch, NewAccount } from "./types";

export function poolClient(env: Env, userId: string) {
  const read = <T>(fn: PoolCall<T>) => callPool<T>(env, userId, fn);
  const write = async <T>(fn: PoolCall<T>, retry = true): Promise<T> => {
    try {
      return await callPool<T>(env, userId, fn, { retry });
    } finally {
      invalidateSnapshot(userId);
    }
  };

  return {
    init: (profile: UserProfile, keyId: string, keyHash: string) => write((s) => s.init(profile, keyId, keyHash)),
    // Not retried: a repeat would record the reset twice.
    setKey: (keyId: string, keyHash: string, by: KeyReset["by"]) => write((s) => s.setKey(keyId, keyHash, by), false),
    keyResets: () => read((s) => s.keyResets()),
    profile: () => read((s) => s.profile()),
    rehashKey: (oldHash: string, newHash: string) => write((s) => s.rehashKey(oldHash, newHash)),
    rewrap: () => read((s) => s.rewrap()),
    async destroy() {
      const r = await write((s) => s.destroy());
      forgetSnapshot(userId);
      forgetDataKey(userId);
      return r;
    },

    /** The accounts, after sending this isolate's pending outcomes so the counts include them. */
    async listAccounts() {
      await flush(env, userId);
      return read((s) => s.listAccounts());
    },
    // Not retried: a lost answer to an add that happened must not add a second account.
    addAccount: (input: NewAccount) => write((s) => s.addAccount(input), false),
    // Retry-safe: a repeat finds the same fingerprint and answers "unchanged".
    importAccount: (input: NewAccount & { fingerprint: string }) => write((s) => s.importAccount(input)),
    updateAccount: (id: string, patch: AccountPatch) => write((s) => s.updateAccount(id, patch)),
    deleteAccount: (id: string) => write((s) => s.deleteAccount(id)),

    // A check may renew a session and records its result: a write, but safe to repeat. `asked`: a
    // person (or a script) asked for it, and such checks are bounded per account.
    checkAccount: (id: string, opts: { asked?: boolean } = {}) => write((s) => s.checkAccount(id, opts)),
    settings: () => read((s) => s.settings()),
    updateSettings: (patch: Partial<Settings>) => write((s) => s.updateSettings(patch)),
    usage: (accountId: string, days: number) => read((s) => s.usage(accountId, days)),
    limits: () => read((s) => s.limits()),
    setLimits: (patch: Partial<Limits>) => write((s) => s.setLimits(patch)),
    teamView: (days: number) => read((s) => s.teamView(days)),

    startLogin: (provider: string, label: string | null) => write((s) => s.startLogin(provider, label), false),
    finishLogin: (provider: string, loginId: string, code: string | undefined) => write((s) => s.finishLogin(provider, loginId, code), false),

    // Alerts: no snapshot holds them, so no write here invalidates one.
    alertTarget: () => read((s) => s.alertTarget()),
    // Not retried: a repeat would rotate the secret again, and the answer would show one that no longer signs.
    setAlertTarget: (url: string, events: AlertEvent[] | null) => callPool(env, userId, (s) => s.setAlertTarget(url, events), { retry: false }),
    deleteAlertTarget: () => read((s) => s.deleteAlertTarget()),
    // Not retried: a repeat would send a second test.
    testAlert: () => callPool(env, userId, (s) => s.testAlert(), { retry: false }),
  };
}

export type RefreshedCredential = { ok: true; cred: Credential } | { ok: false; reason: Exclude<RefreshOutcome, { ok: true }>["reason"]; message: string };

/**
 * Asks the DO for a refreshed credential. The DO makes one token call per account however many ask
 * (invariant 2); each request asks with a call of its own, never awaiting another request's (see
 * pool/snapshots.ts: a request that ended would leave the others waiting for good).
 */
export async function refreshCredential(env: Env, cfg: Config, userId: string, acc: AccountState, seenVersion: number, force: boolean): Promise<RefreshedCredential> {
  const out = await callPool(env, userId, (s) => s.refresh(acc.id, seenVersion, force));
  const live = liveAccount(userId, acc.id);
  if (!out.ok) {
    if (out.reason === "needs_reauth" && live) {
      live.needsReauth = true;
      live.lastError = `refresh refused: ${out.message}`;
    }
    // The DO benched the account until its next renewal: this isolate skips it from now on too.
    if (out.retryAt !== undefined) for (const a of [acc, live]) if (a) a.cooldownUntil = Math.max(a.cooldownUntil ?? 0, out.retryAt);
    return out;
  }
  const cred = await openRecord(env, cfg, userId, acc.id, out.record);
  for (const a of [acc, live]) {
    if (!a) continue;
    a.credVersion = Math.max(a.credVersion, cred.version);
    a.expires = cred.expires;
    a.extras = out.extras;
  }
  return { ok: true, cred };
}

/** The lastError of an account whose stored credential fails authentication (the DO confirmed it). */
export { UNREADABLE_CREDENTIAL } from "./types";

export type CheckedCredential = { ok: true; cred: Credential } | { ok: false; reason: string };

/**
 * A credential did not decrypt here (VaultError from credentialFor): asks the Durable Object, the
 * authority, to check its own copy. When the DO's copy opens (the bad one was KV's, now restored),
 * the credential is returned and the account serves. Otherwise `reason` says why not, for the
 * attempt's lastError: the account is needs_reauth (in the DO, and at once in this isolate's
 * snapshot), or, when the user's data key itself does not unwrap (a MASTER_KEY misconfiguration),
 * it is left as it is. Never throws a VaultError; a failed DO call is thrown like any other.
 */
export async function checkUnreadable(env: Env, cfg: Config, userId: string, acc: AccountState, reason = UNREADABLE_CREDENTIAL): Promise<CheckedCredential> {
  const out = await callPool(env, userId, (s) => s.markUnreadable(acc.id, reason));
  invalidateSnapshot(userId);
  switch (out.kind) {
    case "needs_reauth":
      for (const a of [acc, liveAccount(userId, acc.id)]) {
        if (!a) continue;
        a.needsReauth = true;
        a.lastError = out.message;
      }
      return { ok: false, reason: out.message };
    case "config":
      return { ok: false, reason: "stored credential does not decrypt: the user's data key does not unwrap (check MASTER_KEY, and OLD_MASTER_KEYS during a rotation)" };
    case "changed":
      return { ok: false, reason: "stored credential was replaced while it was checked" };
    case "gone":
      return { ok: false, reason: "account was deleted" };
    case "readable":
      break;
  }
  try {
    // The data key may have been the bad part: forget it so KV's restored copy is read.
    forgetDataKey(userId);
    return { ok: true, cred: await openRecord(env, cfg, userId, acc.id, out.record) };
  } catch (e) {
    if (!(e instanceof VaultError)) throw e;
  }
  try {
    // KV still answers with the bad data key here (eventual consistency): use the DO's.
    const { key } = await unwrapDataKey(await getKeyring(cfg), userId, out.wrappedDataKey);
    return { ok: true, cred: await openCredential(key, userId, acc.id, out.record) };
  } catch (e) {
    if (!(e instanceof VaultError)) throw e;
    return { ok: false, reason: "stored credential does not decrypt here, although the Durable Object's copy does" };
  }
}

