/**
 * Authentication for every route but /healthz. Sets `principal`: the bootstrap admin (ADMIN_TOKEN,
 * manages users, owns no accounts) or a user (their own accounts; admins also manage users).
 */
import { createMiddleware } from "hono/factory";
import { type Config, type Env, getConfig } from "../config";
import { GatewayError } from "../errors";
import { getSnapshot } from "../pool/snapshots";
import type { Role } from "../pool/types";
import { getKeyring, hashGatewayKey, keyDigest, timingSafeEqual } from "../vault/envelope";
import { forgetKey, forgetVerifiedKey, rememberVerifiedKey, verifiedKey } from "./key-cache";
import { hashKey, isAdminToken, presentedKey, resolveKey } from "./keys";

export type Principal = { kind: "root" } | { kind: "user"; userId: string; name: string; role: Role };

export interface AppEnv {
  Bindings: Env;
  Variables: { principal: Principal; cfg: Config };
}

const unauthorized = (message: string) => new GatewayError(401, "authentication_error", message);

/** What newGatewayKey (vault/envelope.ts) makes: "sp_" and 32 random bytes in base64url. */
const GATEWAY_KEY_SHAPE = /^sp_[A-Za-z0-9_-]{43}$/;

export async function authenticate(env: Env, cfg: Config, headers: Headers, waitUntil?: (p: Promise<unknown>) => void): Promise<Principal> {
  const key = presentedKey(headers);
  if (!key) throw unauthorized("send your subpool key as `Authorization: Bearer <key>` or `x-api-key: <key>`");
  // Fast path: a key this isolate verified before; the user's snapshot still decides.
  const digest = await keyDigest(key);
  const known = verifiedKey(digest);
  if (known) {
    const snap = await getSnapshot(env, cfg, known.userId, waitUntil);
    if (snap.user && snap.keyId !== null && timingSafeEqual(snap.keyId, known.keyId)) {
      return { kind: "user", userId: snap.user.id, name: snap.user.name, role: snap.user.role };
    }
    forgetVerifiedKey(digest);
  }
  const hash = await hashKey(cfg, key);
  if (await isAdminToken(cfg, hash)) return { kind: "root" };
  // Gateway keys have one shape: anything else is refused before a KV read (random guesses cost
  // nothing and push no real entry out of the isolate's cache).
  if (!GATEWAY_KEY_SHAPE.test(key)) throw unauthorized("this is not a subpool key (they look like sp_ followed by 43 characters)");
  const entry = await resolveKey(env, cfg, key, hash);
  if (!entry) throw unauthorized("this subpool key is not valid (it may have been rotated or its user deleted)");
  const snap = await getSnapshot(env, cfg, entry.userId, waitUntil);
  // The index entry (KV) names the user; the user's own object must also know this key's hash, so
  // whoever can write KV still cannot make one key open another user's pool.
  if (!snap.user || !snap.keyId || !timingSafeEqual(snap.keyId, entry.keyId) || !(await isUsersKey(cfg, key, hash, snap.keyHash))) {
    forgetKey(hash);
    throw unauthorized("this subpool key is not valid (it may have been rotated or its user deleted)");
  }
  rememberVerifiedKey(digest, entry);
  return { kind: "user", userId: snap.user.id, name: snap.user.name, role: snap.user.role };
}

/** Whether the user's object holds this key's hash (under the current master-key version, or an older one during a rotation). */
async function isUsersKey(cfg: Config, key: string, hash: string, stored: string | null): Promise<boolean> {
  if (stored === null) return false;
  if (timingSafeEqual(stored, hash)) return true;
  const ring = await getKeyring(cfg);
  for (const version of ring.byVersion.keys()) {
    if (version !== ring.current.version && timingSafeEqual(stored, await hashGatewayKey(ring, key, version))) return true;
  }
  return false;
}

export const requireKey = createMiddleware<AppEnv>(async (c, next) => {
  const cfg = getConfig(c.env);
  c.set("cfg", cfg);
  c.set("principal", await authenticate(c.env, cfg, c.req.raw.headers, (p) => c.executionCtx.waitUntil(p)));
  await next();
});

/** A user key (accounts are personal: the bootstrap admin token owns none). */
export function userOf(p: Principal): Extract<Principal, { kind: "user" }> {
  if (p.kind !== "user") {
    throw new GatewayError(403, "permission_error", "the ADMIN_TOKEN manages users and owns no accounts: create a user (POST /admin/users) and use its key");
  }
  return p;
}

export function requireAdmin(p: Principal): void {
  if (p.kind === "root" || p.role === "admin") return;
  throw new GatewayError(403, "permission_error", "this route needs an admin key");
}
