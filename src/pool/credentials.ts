/**
 * Opened credentials in isolate memory, so a steady request neither reads KV nor decrypts:
 *   - opened credentials, keyed by account and valid while their version is at least the
 *     snapshot's (the DO's version is the authority; KV may lag it by up to 60 s);
 *   - unwrapped data keys (non-extractable CryptoKeys), per user.
 * A reader whose KV copy is missing or older than the snapshot's version asks the Durable Object.
 */
import type { Config, Env } from "../config";
import { bounded } from "../util";
import { providerFor } from "../providers";
import { getKeyring, unwrapDataKey } from "../vault/envelope";
import { type Credential, type CredentialRecord, kvKeys, openCredential } from "../vault/records";
import { callPool } from "./rpc";
import { type AccountState, refreshMarginMs } from "./types";

const credentials = new Map<string, Credential>();
/** Unwrapped data keys, kept once a request has one (the key, never the promise of one: see pool/snapshots.ts). */
const dataKeys = new Map<string, CryptoKey>();

async function dataKey(env: Env, cfg: Config, userId: string): Promise<CryptoKey> {
  const known = dataKeys.get(userId);
  if (known) return known;
  const wrapped = (await env.VAULT.get(kvKeys.dataKey(userId))) ?? (await callPool(env, userId, (s) => s.wrappedDataKey()));
  if (!wrapped) throw new Error("user has no data key");
  const { key } = await unwrapDataKey(await getKeyring(cfg), userId, wrapped);
  bounded(dataKeys, userId, key);
  return key;
}

/** Opens a record and keeps it, unless a newer version is already kept. */
export async function openRecord(env: Env, cfg: Config, userId: string, accountId: string, rec: CredentialRecord): Promise<Credential> {
  const cred = await openCredential(await dataKey(env, cfg, userId), userId, accountId, rec);
  const cached = credentials.get(accountId);
  if (!cached || cached.version <= cred.version) bounded(credentials, accountId, cred);
  return cred;
}

/** The account's credential at (at least) the snapshot's version: memory, else KV, else the DO. */
export async function credentialFor(env: Env, cfg: Config, userId: string, acc: AccountState): Promise<Credential | null> {
  const cached = credentials.get(acc.id);
  if (cached && cached.version >= acc.credVersion) return cached;
  let rec = await env.VAULT.get<CredentialRecord>(kvKeys.credential(userId, acc.id), "json");
  if (!rec || rec.version < acc.credVersion) rec = await callPool(env, userId, (s) => s.getCredential(acc.id));
  return rec ? openRecord(env, cfg, userId, acc.id, rec) : null;
}

/** Whether an OAuth credential should be refreshed before use. */
export function needsRefresh(acc: AccountState, cred: Credential, now = Date.now()): boolean {
  if (acc.type !== "oauth") return false;
  if (!cred.access) return true;
  return cred.expires !== null && cred.expires - now < refreshMarginMs(providerFor(acc.provider).refreshSkewMs, cred);
}

export function forgetDataKey(userId: string): void {
  dataKeys.delete(userId);
}

/** For tests: forget every opened credential and data key. */
export function resetCredentials(): void {
  credentials.clear();
  dataKeys.clear();
}
