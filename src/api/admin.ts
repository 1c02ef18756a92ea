/**
 * /admin: users and their gateway keys. Admins manage users, never other users'
 * secrets: nothing here reads a credential. The key is returned once, on creation and rotation.
 */
import { Hono } from "hono";
import { z } from "zod";
import { type AppEnv, requireAdmin, requireKey } from "../auth/middleware";
import { issueKey } from "../auth/keys";
import { GatewayError } from "../errors";
import { forgetKey } from "../auth/key-cache";
import { poolClient } from "../pool/client";
import type { UserProfile } from "../pool/types";
import { newId } from "../vault/envelope";
import { kvKeys } from "../vault/records";
import { stats } from "../stats";
import { jsonBody, pathId } from "./validate";

const CreateUser = z.strictObject({
  name: z
    .string({ error: "required: a string" })
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, "1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit"),
  role: z.enum(["member", "admin"]).default("member"),
});

const noStore = { "cache-control": "no-store" };

export const admin = new Hono<AppEnv>()
  .use(requireKey)
  .use(async (c, next) => {
    requireAdmin(c.var.principal);
    await next();
  })

  .post("/users", async (c) => {
    const body = await jsonBody(c, CreateUser);
    const env = c.env;
    if (await env.VAULT.get(kvKeys.userName(body.name))) {
      throw new GatewayError(409, "invalid_request_error", `a user named "${body.name}" already exists`, { field: "name" });
    }
    const profile: UserProfile = { id: newId("u"), name: body.name, role: body.role, createdAt: Date.now() };
    const key = await issueKey(c.var.cfg);
    const wrapped = await poolClient(env, profile.id).init(profile, key.keyId, key.hash);
    await Promise.all([
      env.VAULT.put(kvKeys.dataKey(profile.id), wrapped),
      env.VAULT.put(kvKeys.user(profile.id), JSON.stringify(profile), { metadata: profile }),
      env.VAULT.put(kvKeys.userName(profile.name), profile.id),
    ]);
    // Last: the key works only once everything it leads to exists.
    await env.VAULT.put(kvKeys.gatewayKey(key.hash), JSON.stringify({ userId: profile.id, keyId: key.keyId }));
    return c.json({ ...profile, key: key.key }, 201, noStore);
  })

  .get("/users", async (c) => {
    const users: UserProfile[] = [];
    let cursor: string | undefined;
    do {
      const page = await c.env.VAULT.list<UserProfile>({ prefix: kvKeys.userPrefix, cursor });
      for (const k of page.keys) if (k.metadata) users.push(k.metadata);
      cursor = page.list_complete ? undefined : page.cursor;
    } while (cursor);
    users.sort((a, b) => a.createdAt - b.createdAt);
    return c.json({ users });
  })

  .delete("/users/:id", async (c) => {
    const id = pathId(c, "id", "u", "user");
    const pool = poolClient(c.env, id);
    const found = await pool.profile();
    if (!found) throw new GatewayError(404, "not_found_error", `no user with id "${id}"`);
    // Crypto-shred first: once the wrapped data key is gone, leftover ciphertext is unreadable.
    await c.env.VAULT.delete(kvKeys.dataKey(id));
    const { keyHash, accountIds } = await pool.destroy();
    await Promise.all([
      ...accountIds.map((a) => c.env.VAULT.delete(kvKeys.credential(id, a))),
      keyHash ? c.env.VAULT.delete(kvKeys.gatewayKey(keyHash)) : null,
      c.env.VAULT.delete(kvKeys.userName(found.profile.name)),
      c.env.VAULT.delete(kvKeys.user(id)),
    ]);
    if (keyHash) forgetKey(keyHash);
    return c.body(null, 204);
  })

  .post("/users/:id/key", async (c) => {
    const id = pathId(c, "id", "u", "user");
    const pool = poolClient(c.env, id);
    const found = await pool.profile();
    if (!found) throw new GatewayError(404, "not_found_error", `no user with id "${id}"`);
    const key = await issueKey(c.var.cfg);
    await c.env.VAULT.put(kvKeys.gatewayKey(key.hash), JSON.stringify({ userId: id, keyId: key.keyId }));
    // From here the DO knows only the new keyId: the old key is refused even where KV still has it.
    const p = c.var.principal;
    const by = p.kind === "root" ? { id: null, name: "ADMIN_TOKEN" } : { id: p.userId, name: p.name };
    const old = await pool.setKey(key.keyId, key.hash, by);
    if (old) {
      forgetKey(old);
      await c.env.VAULT.delete(kvKeys.gatewayKey(old));
    }
    return c.json({ ...found.profile, key: key.key }, 200, noStore);
  })

  /** This isolate's counters: requests, upstream fetches, KV and Durable Object calls. */
  .get("/stats", (c) => c.json({ isolate: stats, now: Date.now() }))

  /** After a MASTER_KEY rotation: re-wrap every user's data key under the current key version. */
  .post("/rewrap", async (c) => {
    let cursor: string | undefined;
    let users = 0;
    let rewrapped = 0;
    do {
      const page = await c.env.VAULT.list({ prefix: kvKeys.userPrefix, cursor });
      for (const k of page.keys) {
        users++;
        if (await poolClient(c.env, k.name.slice(kvKeys.userPrefix.length)).rewrap()) rewrapped++;
      }
      cursor = page.list_complete ? undefined : page.cursor;
    } while (cursor);
    return c.json({ users, rewrapped, keyVersion: c.var.cfg.MASTER_KEY_VERSION });
  });
