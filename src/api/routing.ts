/**
 * /api/settings and /api/accounts/:id/usage: how the caller's requests are routed (strategy, quota
 * threshold, affinity TTL) and what each of their accounts used per day (docs/ARCHITECTURE.md,
 * "Routing"). Bad values get a 400 naming the field, and change nothing.
 */
import { Hono } from "hono";
import { z } from "zod";
import { type AppEnv, userOf } from "../auth/middleware";
import { poolClient } from "../pool/client";
import { STRATEGIES } from "../pool/strategies";
import type { Strategy } from "../wire";
import { jsonBody, parseWith, pathId } from "./validate";

const strategies = Object.keys(STRATEGIES) as [Strategy, ...Strategy[]];

const SettingsPatch = z
  .strictObject({
    strategy: z.enum(strategies, { error: `must be one of ${strategies.map((s) => `"${s}"`).join(", ")}` }).optional(),
    quotaThreshold: z
      .number({ error: "must be a number from 0.05 to 1 (0.95 = 95 % used)" })
      .min(0.05, "must be at least 0.05")
      .max(1, "must be at most 1 (a fraction: 0.95 = 95 % used)")
      .optional(),
    affinityTtlS: z
      .number({ error: "must be whole seconds" })
      .int("must be whole seconds")
      .min(0, "must be 0 (no affinity) or more")
      .max(7 * 86_400, "must be at most 604800 (a week)")
      .optional(),
  })
  .refine((p) => p.strategy !== undefined || p.quotaThreshold !== undefined || p.affinityTtlS !== undefined, {
    message: 'nothing to change: send "strategy", "quotaThreshold" or "affinityTtlS"',
  });

const Days = z.object({
  days: z.coerce.number({ error: "must be a whole number of days" }).int("must be a whole number of days").min(1, "at least 1").max(366, "at most 366").default(30),
});

export const routing = new Hono<AppEnv>()
  .get("/settings", async (c) => c.json(await poolClient(c.env, userOf(c.var.principal).userId).settings()))

  .patch("/settings", async (c) => {
    const me = userOf(c.var.principal);
    const patch = await jsonBody(c, SettingsPatch);
    return c.json(await poolClient(c.env, me.userId).updateSettings(patch));
  })

  .get("/accounts/:id/usage", async (c) => {
    const me = userOf(c.var.principal);
    const id = pathId(c, "id", "acc", "account");
    const { days } = parseWith(Days, { days: c.req.query("days") });
    return c.json({ days: await poolClient(c.env, me.userId).usage(id, days) });
  });
