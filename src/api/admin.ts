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
import { NO_LIMITS } from "../pool/limits-store";
import { MODEL_GLOB } from "../limits/models";
import type { Limits, TeamMemberUsage, TeamUsageAnswer, UserListed } from "../wire";
import { readTeamTarget, writeTeamTarget } from "../alerts/team-target";
import { getKeyring, newId } from "../vault/envelope";
import { kvKeys } from "../vault/records";
import { stats } from "../stats";
import { jsonBody, parseWith, pathId } from "./validate";

const CreateUser = z.strictObject({
  name: z
    .string({ error: "required: a string" })
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, "1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit"),
  role: z.enum(["member", "admin"]).default("member"),
});

const noStore = { "cache-control": "no-store" };

const count = (what: string) =>
  z
    .number({ error: `must be a whole number of ${what}, or null for no limit` })
    .int(`must be a whole number of ${what}`)
    .min(0, "must be 0 or more (0 stops the member)")
    .max(1e15, "is larger than any real limit")
    .nullable()
    .optional();

/** A KV key's metadata holds at most 1024 bytes: the profile and limits together stay well under. */
const MODEL_GLOBS_MAX = 16;
const MODEL_GLOBS_CHARS = 400;

const LimitsPatch = z.strictObject({
  limits: z.strictObject(
    {
      requestsPerMinute: count("requests per minute"),
      tokensPerDay: count("tokens per UTC day"),
      tokensPerMonth: count("tokens per UTC month"),
      models: z
        .array(z.string({ error: "must be a model name or glob" }).regex(MODEL_GLOB, "a model name or glob: letters, digits, '.', '_', '-', ':', '/', '@', '*' (any run) and '?' (one character), up to 100"), {
          error: 'must be a list of model globs like ["claude-sonnet-*"], or null for every model',
        })
        .max(MODEL_GLOBS_MAX, `at most ${MODEL_GLOBS_MAX} globs`)
        .refine((g) => g.join("").length <= MODEL_GLOBS_CHARS, `at most ${MODEL_GLOBS_CHARS} characters in all`)
        .nullable()
        .optional(),
    },
    { error: "must be an object of limits (requestsPerMinute, tokensPerDay, tokensPerMonth, models)" },
  ),
});

const daysRule = "must be a whole number of days from 1 to 90";
const UsageQuery = z.object({ days: z.coerce.number({ error: daysRule }).int(daysRule).min(1, daysRule).max(90, daysRule).default(30) });

/** Members' objects asked at once by GET /admin/usage (each is one Durable Object call). */
const USAGE_FAN_OUT = 32;

/** Every user as listed in KV (the profile and limits are the key's metadata). */
async function listUsers(env: AppEnv["Bindings"]): Promise<UserListed[]> {
  const users: UserListed[] = [];
  let cursor: string | undefined;
  do {
    const page = await env.VAULT.list<Partial<UserListed>>({ prefix: kvKeys.userPrefix, cursor });
    for (const k of page.keys) {
      const m = k.metadata;
      if (m?.id && m.name && m.role && m.createdAt !== undefined) users.push({ id: m.id, name: m.name, role: m.role, createdAt: m.createdAt, limits: m.limits ?? { ...NO_LIMITS } });
    }
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor);
  return users.sort((a, b) => a.createdAt - b.createdAt);
}

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
    const listed: UserListed = { ...profile, limits: { ...NO_LIMITS } };
    const key = await issueKey(c.var.cfg);
    const wrapped = await poolClient(env, profile.id).init(profile, key.keyId, key.hash);
    await Promise.all([
      env.VAULT.put(kvKeys.dataKey(profile.id), wrapped),
      env.VAULT.put(kvKeys.user(profile.id), JSON.stringify(listed), { metadata: listed }),
      env.VAULT.put(kvKeys.userName(profile.name), profile.id),
    ]);
    // Last: the key works only once everything it leads to exists.
    await env.VAULT.put(kvKeys.gatewayKey(key.hash), JSON.stringify({ userId: profile.id, keyId: key.keyId }));
    return c.json({ ...profile, key: key.key }, 201, noStore);
  })

  .get("/users", async (c) => c.json({ users: await listUsers(c.env) }))

  /**
   * The team's limits for one member (DESIGN §12). The member's object is the authority (its
   * snapshot carries them to every isolate within SNAPSHOT_TTL_MS); the KV listing's copy is for
   * GET /admin/users.
   */
  .patch("/users/:id", async (c) => {
    const id = pathId(c, "id", "u", "user");
    const body = await jsonBody(c, LimitsPatch);
    const pool = poolClient(c.env, id);
    const found = await pool.profile();
    if (!found) throw new GatewayError(404, "not_found_error", `no user with id "${id}"`);
    const patch = Object.fromEntries(Object.entries(body.limits).filter(([, v]) => v !== undefined)) as Partial<Limits>;
    const limits = await pool.setLimits(patch);
    const listed: UserListed = { ...found.profile, limits };
    await c.env.VAULT.put(kvKeys.user(id), JSON.stringify(listed), { metadata: listed });
    return c.json(listed);
  })

  /**
   * Team usage: each member's last request, account health counts, limits and usage per UTC day,
   * asked of every member's object in parallel (USAGE_FAN_OUT at a time). Never a credential, label
   * or account id. One Durable Object call per member: within both plans' limits on subrequests to
   * Cloudflare services for a team of hundreds (BENCHMARKS.md, "Team usage").
   */
  .get("/usage", async (c) => {
    const { days } = parseWith(UsageQuery, { days: c.req.query("days") });
    const users = await listUsers(c.env);
    const out: TeamMemberUsage[] = [];
    for (let i = 0; i < users.length; i += USAGE_FAN_OUT) {
      const batch = await Promise.all(users.slice(i, i + USAGE_FAN_OUT).map((u) => poolClient(c.env, u.id).teamView(days)));
      for (const v of batch) if (v) out.push(v);
    }
    return c.json({ users: out } satisfies TeamUsageAnswer);
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
    // The team alert's signing secret is sealed under the master keyring too (alerts/team-target.ts).
    const ring = await getKeyring(c.var.cfg);
    const team = await readTeamTarget(c.env, ring);
    if (team?.stale) await writeTeamTarget(c.env, ring, team);
    return c.json({ users, rewrapped, teamAlertsResealed: team?.stale ?? false, keyVersion: c.var.cfg.MASTER_KEY_VERSION });
  });
