/**
 * /api: the caller's own accounts. Every route acts on the caller's Durable Object
 * only, so one user can neither see nor touch another's accounts. Responses never carry a secret.
 */
import { Hono } from "hono";
import { z } from "zod";
import { type AppEnv, requireKey, userOf } from "../auth/middleware";
import { badRequest } from "../errors";
import { leftOf, windowEnds } from "../limits/enforce";
import { poolClient } from "../pool/client";
import { NO_LIMITS } from "../pool/limits-store";
import { getSnapshot } from "../pool/snapshots";
import { findProvider } from "../providers";
import { credential } from "../providers/import-fields";
import { importer } from "./import";
import { oauth } from "./oauth";
import { routing } from "./routing";
import type { Me } from "../wire";
import { jsonBody, labelField, pathId, providerId } from "./validate";

const provider = providerId;
const label = labelField;

const NewAccount = z.discriminatedUnion(
  "type",
  [
    z.strictObject({ provider, type: z.literal("api"), key: credential("API key"), label: label.optional() }),
    z.strictObject({
      provider,
      type: z.literal("oauth"),
      refresh: credential("refresh token"),
      access: credential("access token").optional(),
      expires: z.number({ error: "must be epoch milliseconds (a number)" }).int().nonnegative().optional(),
      label: label.optional(),
    }),
  ],
  { error: 'must be "api" (with "key") or "oauth" (with "refresh")' },
);

const Patch = z
  .strictObject({
    label: label.optional(),
    position: z.number({ error: "must be a whole number from 1" }).int().min(1, "positions start at 1").optional(),
    enabled: z.boolean({ error: "must be true or false" }).optional(),
  })
  .refine((p) => p.label !== undefined || p.position !== undefined || p.enabled !== undefined, {
    message: 'nothing to change: send "label", "position" or "enabled"',
  });

export const accounts = new Hono<AppEnv>()
  .use(requireKey)

  .get("/me", async (c) => {
    const p = c.var.principal;
    const now = Date.now();
    if (p.kind === "root") {
      const none = { requestsPerMinute: null, tokensPerDay: null, tokensPerMonth: null };
      return c.json({ id: null, name: "admin-token", role: "admin", keyResets: [], limits: { ...NO_LIMITS }, left: { ...none, resets: windowEnds(now) } } satisfies Me);
    }
    // The snapshot requests use (this isolate's own counts included, at most SNAPSHOT_TTL_MS old):
    // what is left is what the next request will be measured against. Not invalidated: a dashboard
    // polling this must not make the member's next proxied request wait for the Durable Object.
    const [keyResets, snap] = await Promise.all([poolClient(c.env, p.userId).keyResets(), getSnapshot(c.env, c.var.cfg, p.userId)]);
    return c.json({ id: p.userId, name: p.name, role: p.role, keyResets, limits: snap.limits, left: leftOf(snap, now) } satisfies Me);
  })

  .get("/accounts", async (c) => {
    const me = userOf(c.var.principal);
    return c.json({ accounts: await poolClient(c.env, me.userId).listAccounts() });
  })

  .post("/accounts", async (c) => {
    const me = userOf(c.var.principal);
    const body = await jsonBody(c, NewAccount);
    const p = findProvider(body.provider)!;
    if (!p.types.includes(body.type)) {
      throw badRequest(p.typeHint ?? `${p.name} accounts take type ${p.types.map((t) => `"${t}"`).join(" or ")}`, "type");
    }
    const pool = poolClient(c.env, me.userId);
    const account = await pool.addAccount(body);
    // Adding checks the credential at no token cost (skip with ?check=false, e.g. offline): a key
    // the provider refuses is not kept; one it could not check is kept, with the reason shown.
    if (c.req.query("check") === "false") return c.json(account, 201);
    const check = await pool.checkAccount(account.id);
    if (check.verdict === "invalid") {
      await pool.deleteAccount(account.id);
      throw badRequest(`${p.name} refused this credential (${check.message}); nothing was stored`, body.type === "api" ? "key" : "refresh");
    }
    return c.json({ ...check.account, check: { verdict: check.verdict, status: check.status, message: check.message } }, 201);
  })

  .post("/accounts/:id/check", async (c) => {
    const me = userOf(c.var.principal);
    const id = pathId(c, "id", "acc", "account");
    return c.json(await poolClient(c.env, me.userId).checkAccount(id, { asked: true }));
  })

  .patch("/accounts/:id", async (c) => {
    const me = userOf(c.var.principal);
    const id = pathId(c, "id", "acc", "account");
    const patch = await jsonBody(c, Patch);
    return c.json(await poolClient(c.env, me.userId).updateAccount(id, patch));
  })

  .delete("/accounts/:id", async (c) => {
    const me = userOf(c.var.principal);
    const id = pathId(c, "id", "acc", "account");
    await poolClient(c.env, me.userId).deleteAccount(id);
    return c.body(null, 204);
  })

  .route("/oauth", oauth)
  .route("/", importer)
  .route("/", routing);
