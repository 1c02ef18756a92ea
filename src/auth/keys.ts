/**
 * Gateway keys: issued at random, stored only as keyed hashes (HMAC-SHA-256 under a key derived
 * from MASTER_KEY), compared in constant time (docs/ARCHITECTURE.md, invariant 6). The KV index maps hash -> {userId,
 * keyId}; the user's Durable Object holds the current keyId, so a rotated or deleted key is dead
 * as soon as the snapshot is re-read (at once in the isolate that rotated it, within
 * SNAPSHOT_TTL_MS elsewhere) even while KV still serves the old index entry.
 */
import type { Config, Env } from "../config";
import { poolClient } from "../pool/client";
import { lookupKey } from "./key-cache";
import { getKeyring, hashGatewayKey, newGatewayKey, newId, timingSafeEqual } from "../vault/envelope";
import { type KeyIndexEntry, kvKeys } from "../vault/records";

export interface IssuedKey {
  key: string;
  keyId: string;
  hash: string;
}

/** The keyed hash of a presented key under the current master-key version. */
export async function hashKey(cfg: Config, key: string): Promise<string> {
  return hashGatewayKey(await getKeyring(cfg), key);
}

export async function issueKey(cfg: Config): Promise<IssuedKey> {
  const key = newGatewayKey();
  return { key, keyId: newId("key"), hash: await hashGatewayKey(await getKeyring(cfg), key) };
}

const adminHashes = new WeakMap<Config, Promise<string>>();

/** Whether the presented key is the bootstrap ADMIN_TOKEN (compared as keyed hashes, constant time). */
export async function isAdminToken(cfg: Config, presentedHash: string): Promise<boolean> {
  if (!cfg.ADMIN_TOKEN) return false;
  let p = adminHashes.get(cfg);
  if (!p) {
    p = getKeyring(cfg).then((ring) => hashGatewayKey(ring, cfg.ADMIN_TOKEN));
    adminHashes.set(cfg, p);
  }
  return timingSafeEqual(await p, presentedHash);
}

/**
 * Finds the key's index entry. During a MASTER_KEY rotation, a key hashed under an older version is
 * found by that version's hash and re-indexed under the current one.
 */
export async function resolveKey(env: Env, cfg: Config, key: string, hash: string): Promise<KeyIndexEntry | null> {
  const ring = await getKeyring(cfg);
  const entry = await lookupKey(env, hash);
  if (entry || ring.byVersion.size === 1) return entry;
  for (const version of ring.byVersion.keys()) {
    if (version === ring.current.version) continue;
    const oldHash = await hashGatewayKey(ring, key, version);
    const old = await lookupKey(env, oldHash);
    if (old) {
      await env.VAULT.put(kvKeys.gatewayKey(hash), JSON.stringify(old));
      // The user's object learns the new hash; the old entry can then go.
      if (await poolClient(env, old.userId).rehashKey(oldHash, hash).catch(() => false)) await env.VAULT.delete(kvKeys.gatewayKey(oldHash));
      return old;
    }
  }
  return null;
}

/** The key a client presented: `Authorization: Bearer <key>` or `x-api-key: <key>`. */
export function presentedKey(headers: Headers): string | null {
  const auth = headers.get("authorization");
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1]!;
  }
  const x = headers.get("x-api-key");
  return x && x.trim() ? x.trim() : null;
}
