/**
 * Encrypted credential records and the KV layout (see STORAGE.md next to this file).
 *
 * A record holds each secret field as its own AES-GCM envelope (envelope.ts) plus non-secret
 * metadata: the credential version (the Durable Object's counter, authority for staleness checks,
 * invariant 3 in docs/ARCHITECTURE.md) and the access token's expiry. KV copies of records may lag the Durable Object by up
 * to 60 s; readers compare versions and ask the Durable Object when KV is behind.
 */
import { decryptField, encryptField } from "./envelope";

export const CRED_FIELDS = ["key", "refresh", "access"] as const;
export type CredField = (typeof CRED_FIELDS)[number];

/** What is stored: ciphertext fields, plaintext metadata. */
export interface CredentialRecord {
  format: 1;
  version: number;
  fields: Partial<Record<CredField, string>>;
  /** Access-token expiry, epoch ms; null when unknown or for API keys. */
  expires: number | null;
  /** When the access token was obtained, epoch ms, if we got it ourselves (gives its lifetime). */
  issued?: number | null;
}

/** What the proxy uses: the same record, opened. Lives only in memory. */
export interface Credential {
  version: number;
  key?: string;
  refresh?: string;
  access?: string;
  expires: number | null;
  issued?: number | null;
}

export async function sealCredential(
  dek: CryptoKey,
  userId: string,
  accountId: string,
  cred: Credential,
): Promise<CredentialRecord> {
  const fields: CredentialRecord["fields"] = {};
  for (const field of CRED_FIELDS) {
    const value = cred[field];
    if (value) fields[field] = await encryptField(dek, { userId, accountId, field }, value);
  }
  return { format: 1, version: cred.version, fields, expires: cred.expires, issued: cred.issued ?? null };
}

export async function openCredential(
  dek: CryptoKey,
  userId: string,
  accountId: string,
  rec: CredentialRecord,
): Promise<Credential> {
  const cred: Credential = { version: rec.version, expires: rec.expires, issued: rec.issued ?? null };
  for (const field of CRED_FIELDS) {
    const env = rec.fields[field];
    if (env) cred[field] = await decryptField(dek, { userId, accountId, field }, env);
  }
  return cred;
}

// ---- KV keys ---------------------------------------------------------------------------------

export const kvKeys = {
  /** JSON UserProfile; list metadata carries the same (no secret). */
  user: (userId: string) => `user:${userId}`,
  userPrefix: "user:",
  /** user id, for name uniqueness. */
  userName: (name: string) => `uname:${name.toLowerCase()}`,
  /** JSON {userId, keyId}: the gateway-key index, keyed by the key's HMAC. */
  gatewayKey: (hash: string) => `key:${hash}`,
  /** the user's wrapped data key (k1.<kekVersion>.<iv>.<ct>). */
  dataKey: (userId: string) => `dek:${userId}`,
  /** JSON CredentialRecord. */
  credential: (userId: string, accountId: string) => `cred:${userId}:${accountId}`,
  credentialPrefix: (userId: string) => `cred:${userId}:`,
  /** JSON TeamAlertTarget (src/alerts/team-target.ts): url, events, signing secret sealed under the master key. */
  teamAlerts: "alerts:team",
  /** JSON AlertDelivery: the team target's last delivery, written by whichever member's object sent it. */
  teamAlertsStatus: "alerts:team:status",
};

export interface KeyIndexEntry {
  userId: string;
  keyId: string;
}
