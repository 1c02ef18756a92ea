/**
 * All of subpool's cryptography, in one auditable place; WebCrypto only (docs/ARCHITECTURE.md, "Encryption").
 *
 *   MASTER_KEY ──HKDF-SHA-256(info "subpool kek v<N>")──> KEK (AES-256-GCM, wraps data keys)
 *              ├─HKDF-SHA-256(info "subpool gateway-key v<N>")──> HMAC key for gateway-key hashes
 *              └─HKDF-SHA-256(info "subpool kv-seal v<N>")──> AES-256-GCM for the few secrets KV holds
 *                 outside any user (the team alert's signing secret):  s1.<version>.<iv>.<ct>
 *   per user: random 256-bit data key (DEK), stored only wrapped:  k1.<kekVersion>.<iv>.<ciphertext>
 *   per field: AES-256-GCM under the DEK, fresh 96-bit IV, AAD = user|account|field:  e1.<iv>.<ct>
 *
 * The AAD binds a ciphertext to its place: a record copied to another user or account, or a field
 * swapped for another, fails authentication. Every key object is non-extractable. Envelopes carry
 * a format version (k1/e1) and wrapped data keys their KEK version, so MASTER_KEY can be rotated:
 * old keys stay readable through OLD_MASTER_KEYS and are re-wrapped lazily or by /admin/rewrap.
 */

const te = new TextEncoder();
const td = new TextDecoder();

export class VaultError extends Error {
  override readonly name = "VaultError";
}

// ---- encodings --------------------------------------------------------------------------------

export function b64urlEncode(bytes: Uint8Array | ArrayBuffer): string {
  const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let s = "";
  for (let i = 0; i < u8.length; i++) s += String.fromCharCode(u8[i]!);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function b64urlDecode(s: string): Uint8Array {
  const b = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (s.length % 4)) % 4));
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
  return out;
}

function decodeMasterKey(b64: string, what: string): Uint8Array {
  let raw: Uint8Array;
  try {
    raw = b64urlDecode(b64.trim());
  } catch {
    throw new VaultError(`${what} is not valid base64`);
  }
  if (raw.length < 32) throw new VaultError(`${what} must hold at least 32 random bytes (base64); it holds ${raw.length}`);
  return raw;
}

// ---- randomness -------------------------------------------------------------------------------

export function randomToken(bytes = 32): string {
  return b64urlEncode(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** Gateway keys: recognisable prefix (secret scanners, logs review), 256 bits of entropy. */
export const newGatewayKey = (): string => `sp_${randomToken(32)}`;

/** Non-secret identifiers. */
export const newId = (prefix: string): string => `${prefix}_${randomToken(12)}`;

// ---- keyring: keys derived from MASTER_KEY ------------------------------------------------------

interface KeyVersion {
  version: number;
  kek: CryptoKey;
  hashKey: CryptoKey;
  sealKey: CryptoKey;
}

export interface Keyring {
  current: KeyVersion;
  byVersion: Map<number, KeyVersion>;
}

const SALT = te.encode("subpool/v1");

async function deriveVersion(raw: Uint8Array, version: number): Promise<KeyVersion> {
  const base = await crypto.subtle.importKey("raw", raw, "HKDF", false, ["deriveKey"]);
  const hkdf = (info: string) => ({ name: "HKDF", hash: "SHA-256", salt: SALT, info: te.encode(info) });
  const kek = await crypto.subtle.deriveKey(hkdf(`subpool kek v${version}`), base, { name: "AES-GCM", length: 256 }, false, [
    "wrapKey",
    "unwrapKey",
  ]);
  const hashKey = await crypto.subtle.deriveKey(
    hkdf(`subpool gateway-key v${version}`),
    base,
    { name: "HMAC", hash: "SHA-256", length: 256 },
    false,
    ["sign"],
  );
  const sealKey = await crypto.subtle.deriveKey(hkdf(`subpool kv-seal v${version}`), base, { name: "AES-GCM", length: 256 }, false, [
    "encrypt",
    "decrypt",
  ]);
  return { version, kek, hashKey, sealKey };
}

export interface MasterKeyConfig {
  MASTER_KEY: string;
  MASTER_KEY_VERSION: number;
  OLD_MASTER_KEYS: string;
}

const keyrings = new WeakMap<object, Promise<Keyring>>();

/** One keyring per config object (that is, per isolate); derivation happens once. */
export function getKeyring(cfg: MasterKeyConfig): Promise<Keyring> {
  let p = keyrings.get(cfg);
  if (!p) {
    p = buildKeyring(cfg);
    keyrings.set(cfg, p);
    p.catch(() => keyrings.delete(cfg));
  }
  return p;
}

async function buildKeyring(cfg: MasterKeyConfig): Promise<Keyring> {
  const current = await deriveVersion(decodeMasterKey(cfg.MASTER_KEY, "MASTER_KEY"), cfg.MASTER_KEY_VERSION);
  const byVersion = new Map([[current.version, current]]);
  for (const part of cfg.OLD_MASTER_KEYS.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+):(.+)$/.exec(part);
    if (!m) throw new VaultError('OLD_MASTER_KEYS entries look like "<version>:<base64>"');
    const v = Number(m[1]);
    if (v === current.version) throw new VaultError(`OLD_MASTER_KEYS repeats the current version ${v}`);
    byVersion.set(v, await deriveVersion(decodeMasterKey(m[2]!, `OLD_MASTER_KEYS version ${v}`), v));
  }
  return { current, byVersion };
}

// ---- gateway keys: keyed hashes, constant-time comparison ---------------------------------------

/** HMAC-SHA-256 of a gateway key under the given (default: current) master-key version. */
export async function hashGatewayKey(ring: Keyring, key: string, version = ring.current.version): Promise<string> {
  const kv = ring.byVersion.get(version);
  if (!kv) throw new VaultError(`no master key of version ${version}`);
  return b64urlEncode(await crypto.subtle.sign("HMAC", kv.hashKey, te.encode(key)));
}

/**
 * A keyed hash of a credential, to recognise the same grant on re-import without storing it. Under
 * the current master-key version unless told otherwise (a fingerprint taken before a rotation is
 * matched under its old version, then re-taken: see UserPool).
 */
export async function fingerprintSecret(ring: Keyring, provider: string, type: string, secret: string, version = ring.current.version): Promise<string> {
  return hashGatewayKey(ring, `fingerprint|${provider}|${type}|${secret}`, version);
}

/** Constant-time equality of two strings of public length (hashes, ids). */
export function timingSafeEqual(a: string, b: string): boolean {
  const ab = te.encode(a);
  const bb = te.encode(b);
  if (ab.length !== bb.length) {
    crypto.subtle.timingSafeEqual(ab, ab);
    return false;
  }
  return crypto.subtle.timingSafeEqual(ab, bb);
}

// ---- data keys ----------------------------------------------------------------------------------

const dekAad = (userId: string) => te.encode(`subpool:dek|${userId}`);

/** A fresh data key for a user: the usable (non-extractable) key and its wrapped form for KV. */
export async function newDataKey(ring: Keyring, userId: string): Promise<{ key: CryptoKey; wrapped: string }> {
  const raw = (await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, true, ["encrypt", "decrypt"])) as CryptoKey;
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.wrapKey("raw", raw, ring.current.kek, { name: "AES-GCM", iv, additionalData: dekAad(userId) });
  const wrapped = `k1.${ring.current.version}.${b64urlEncode(iv)}.${b64urlEncode(ct)}`;
  return { key: (await unwrapDataKey(ring, userId, wrapped)).key, wrapped };
}

/** Unwraps a user's data key; `stale` says it was wrapped by an older KEK and should be re-wrapped. */
export async function unwrapDataKey(ring: Keyring, userId: string, wrapped: string): Promise<{ key: CryptoKey; stale: boolean }> {
  const m = /^k1\.(\d+)\.([\w-]+)\.([\w-]+)$/.exec(wrapped);
  if (!m) throw new VaultError("wrapped data key has an unknown format");
  const kv = ring.byVersion.get(Number(m[1]));
  if (!kv) throw new VaultError(`data key is wrapped by master key version ${m[1]}, which is not configured`);
  try {
    const key = await crypto.subtle.unwrapKey(
      "raw",
      b64urlDecode(m[3]!),
      kv.kek,
      { name: "AES-GCM", iv: b64urlDecode(m[2]!), additionalData: dekAad(userId) },
      { name: "AES-GCM", length: 256 },
      false,
      ["encrypt", "decrypt"],
    );
    return { key, stale: kv.version !== ring.current.version };
  } catch {
    throw new VaultError("data key does not unwrap (wrong master key, or the record belongs to another user)");
  }
}

/** Re-wraps a data key under the current KEK (MASTER_KEY rotation). Needs the old KEK to open it. */
export async function rewrapDataKey(ring: Keyring, userId: string, wrapped: string): Promise<string> {
  const m = /^k1\.(\d+)\.([\w-]+)\.([\w-]+)$/.exec(wrapped);
  if (!m) throw new VaultError("wrapped data key has an unknown format");
  if (Number(m[1]) === ring.current.version) return wrapped;
  const kv = ring.byVersion.get(Number(m[1]));
  if (!kv) throw new VaultError(`data key is wrapped by master key version ${m[1]}, which is not configured`);
  // Unwrapped extractable only for the instant of re-wrapping; it never leaves this function.
  const tmp = await crypto.subtle.unwrapKey(
    "raw",
    b64urlDecode(m[3]!),
    kv.kek,
    { name: "AES-GCM", iv: b64urlDecode(m[2]!), additionalData: dekAad(userId) },
    { name: "AES-GCM", length: 256 },
    true,
    ["encrypt", "decrypt"],
  );
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.wrapKey("raw", tmp, ring.current.kek, { name: "AES-GCM", iv, additionalData: dekAad(userId) });
  return `k1.${ring.current.version}.${b64urlEncode(iv)}.${b64urlEncode(ct)}`;
}

// ---- credential fields ----------------------------------------------------------------------------

export interface FieldPlace {
  userId: string;
  accountId: string;
  field: string;
}

const fieldAad = (p: FieldPlace) => te.encode(`subpool:field|${p.userId}|${p.accountId}|${p.field}`);

export async function encryptField(dek: CryptoKey, place: FieldPlace, plaintext: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: fieldAad(place) }, dek, te.encode(plaintext));
  return `e1.${b64urlEncode(iv)}.${b64urlEncode(ct)}`;
}

export async function decryptField(dek: CryptoKey, place: FieldPlace, envelope: string): Promise<string> {
  const m = /^e1\.([\w-]+)\.([\w-]+)$/.exec(envelope);
  if (!m) throw new VaultError(`field ${place.field} has an unknown envelope format`);
  try {
    const pt = await crypto.subtle.decrypt({ name: "AES-GCM", iv: b64urlDecode(m[1]!), additionalData: fieldAad(place) }, dek, b64urlDecode(m[2]!));
    return td.decode(pt);
  } catch {
    throw new VaultError(`field ${place.field} of account ${place.accountId} does not decrypt (moved, tampered, or wrong key)`);
  }
}

// ---- secrets sealed under the master key (no user to hold them) ----------------------------------

const sealAad = (place: string) => te.encode(`subpool:seal|${place}`);

/**
 * Seals a secret that belongs to no user (the team alert's signing secret) for KV, under the
 * current master-key version; `place` names where it is stored and binds it there (AAD).
 */
export async function sealUnderMaster(ring: Keyring, place: string, plaintext: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: sealAad(place) }, ring.current.sealKey, te.encode(plaintext));
  return `s1.${ring.current.version}.${b64urlEncode(iv)}.${b64urlEncode(ct)}`;
}

/** Opens sealUnderMaster's envelope; `stale` says an older master key sealed it (seal it again). */
export async function openUnderMaster(ring: Keyring, place: string, sealed: string): Promise<{ plaintext: string; stale: boolean }> {
  const m = /^s1\.(\d+)\.([\w-]+)\.([\w-]+)$/.exec(sealed);
  if (!m) throw new VaultError(`sealed ${place} has an unknown format`);
  const kv = ring.byVersion.get(Number(m[1]));
  if (!kv) throw new VaultError(`sealed ${place} is under master key version ${m[1]}, which is not configured`);
  try {
    const pt = await crypto.subtle.decrypt({ name: "AES-GCM", iv: b64urlDecode(m[2]!), additionalData: sealAad(place) }, kv.sealKey, b64urlDecode(m[3]!));
    return { plaintext: td.decode(pt), stale: kv.version !== ring.current.version };
  } catch {
    throw new VaultError(`sealed ${place} does not open (moved, tampered, or wrong master key)`);
  }
}

// ---- webhook signatures -------------------------------------------------------------------------

/** A webhook signing secret: shown once, then kept only sealed. Recognisable prefix, 256 bits. */
export const newSigningSecret = (): string => `whsec_${randomToken(32)}`;

/**
 * Hex HMAC-SHA-256 of a body under a signing secret, the secret's UTF-8 bytes being the key (what a
 * receiver recomputes: `hmac.new(secret.encode(), body, sha256).hexdigest()`).
 */
export async function hmacSha256Hex(secret: string, body: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", te.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, te.encode(body)));
  let hex = "";
  for (const b of mac) hex += b.toString(16).padStart(2, "0");
  return hex;
}

// ---- PKCE (RFC 7636) ------------------------------------------------------------------------------

/**
 * An unkeyed SHA-256 of a gateway key, for the isolate's map of keys it already verified: the map
 * then holds digests, not the keys themselves (a heap snapshot or a bug that dumps the map shows
 * no usable key). Not a stored hash: what is stored is the keyed HMAC above.
 */
export async function keyDigest(key: string): Promise<string> {
  return b64urlEncode(await crypto.subtle.digest("SHA-256", te.encode(key)));
}

export async function pkceChallenge(verifier: string): Promise<string> {
  return b64urlEncode(await crypto.subtle.digest("SHA-256", te.encode(verifier)));
}
