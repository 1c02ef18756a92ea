/**
 * What an isolate remembers about gateway keys, so a steady request computes no HMAC and reads no KV:
 *   - keys it verified (SHA-256 of the key -> {userId, keyId}: digests, never the keys themselves,
 *     sit in memory); the user's snapshot still decides on every request (a rotated key's keyId no
 *     longer matches), so a hit never outlives a rotation;
 *   - KV index entries (key hash -> {userId, keyId}), 60 s; misses 5 s.
 */
import type { Env } from "../config";
import { bounded } from "../util";
import { type KeyIndexEntry, kvKeys } from "../vault/records";

const KEY_INDEX_TTL_MS = 60_000;
const KEY_MISS_TTL_MS = 5_000;

const keyIndex = new Map<string, { entry: KeyIndexEntry | null; at: number }>();
const verifiedKeys = new Map<string, KeyIndexEntry>();

export async function lookupKey(env: Env, hash: string): Promise<KeyIndexEntry | null> {
  const now = Date.now();
  const hit = keyIndex.get(hash);
  if (hit && now - hit.at < (hit.entry ? KEY_INDEX_TTL_MS : KEY_MISS_TTL_MS)) return hit.entry;
  const entry = await env.VAULT.get<KeyIndexEntry>(kvKeys.gatewayKey(hash), "json");
  bounded(keyIndex, hash, { entry, at: now });
  return entry;
}

export function forgetKey(hash: string): void {
  keyIndex.delete(hash);
}

/** `digest` is keyDigest(key) (vault/envelope.ts). */
export const verifiedKey = (digest: string): KeyIndexEntry | undefined => verifiedKeys.get(digest);
export const rememberVerifiedKey = (digest: string, entry: KeyIndexEntry): void => bounded(verifiedKeys, digest, entry);
export const forgetVerifiedKey = (digest: string): void => void verifiedKeys.delete(digest);

/** For tests: what the verified-key map is keyed by. */
export const verifiedKeyIds = (): string[] => [...verifiedKeys.keys()];

/** For tests: forget every key. */
export function resetKeyCache(): void {
  keyIndex.clear();
  verifiedKeys.clear();
}
