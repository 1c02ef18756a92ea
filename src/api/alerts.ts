/**
 * Alert targets (DESIGN §12, "Alerts"): `/admin/alerts` is the team's (admins only; every member's
 * events), `/api/alerts` a member's own (kept in their Durable Object; only their events). PUT
 * answers the signing secret, once: it is stored sealed and never shown again (PUT again rotates
 * it). A test is sent at once, not through the outbox, and answers with its delivery; it is bounded
 * per target (TESTS_PER_WINDOW a minute), since each one makes the gateway call a URL a person chose.
 */
import { Hono } from "hono";
import { TESTS_PER_WINDOW, TEST_WINDOW_MS, deliver } from "../alerts/deliver";
import { AlertTargetBody } from "../alerts/rules";
import { deleteTeamTarget, readTeamStatus, readTeamTarget, writeTeamStatus, writeTeamTarget } from "../alerts/team-target";
import { type AppEnv, requireAdmin, requireKey, userOf } from "../auth/middleware";
import { GatewayError, notFound } from "../errors";
import { poolClient } from "../pool/client";
import { getKeyring, newSigningSecret } from "../vault/envelope";
import { kvKeys } from "../vault/records";
import type { AlertTargetCreated, AlertTargetView } from "../wire";
import { jsonBody } from "./validate";

const noStore = { "cache-control": "no-store" };

/**
 * Tests of the team target sent by this isolate lately. The team has one target and a few admins:
 * a bound per isolate is enough to keep a script from making the gateway a request cannon.
 */
const teamTests: number[] = [];

/** For tests: forget the tests this isolate sent. */
export function resetTeamTests(): void {
  teamTests.length = 0;
}

function countTeamTest(now: number) {
  while (teamTests.length && now - teamTests[0]! >= TEST_WINDOW_MS) teamTests.shift();
  if (teamTests.length >= TESTS_PER_WINDOW) {
    const retryAfterS = Math.max(1, Math.ceil((teamTests[0]! + TEST_WINDOW_MS - now) / 1000));
    throw new GatewayError(429, "rate_limit_error", `${TESTS_PER_WINDOW} tests were sent to this target in the last minute; send another in ${retryAfterS} s`, {
      headers: { "retry-after": String(retryAfterS) },
    });
  }
  teamTests.push(now);
}

const noTeamTarget = () => notFound("no team alert target is set: PUT /admin/alerts {\"url\": \"https://…\"} first");

export const adminAlerts = new Hono<AppEnv>()
  .use(requireKey)
  .use(async (c, next) => {
    requireAdmin(c.var.principal);
    await next();
  })

  .put("/", async (c) => {
    const body = await jsonBody(c, AlertTargetBody);
    const secret = newSigningSecret();
    await writeTeamTarget(c.env, await getKeyring(c.var.cfg), { url: body.url, events: body.events, secret });
    // The last delivery was to the target this one replaces.
    await c.env.VAULT.delete(kvKeys.teamAlertsStatus);
    const answer: AlertTargetCreated = { url: body.url, events: body.events, secret };
    return c.json(answer, 200, noStore);
  })

  .get("/", async (c) => {
    const ring = await getKeyring(c.var.cfg);
    const [target, lastDelivery] = await Promise.all([readTeamTarget(c.env, ring), readTeamStatus(c.env)]);
    if (!target) throw noTeamTarget();
    // Sealed under a master key being rotated out: sealed again under the current one.
    if (target.stale) await writeTeamTarget(c.env, ring, target);
    const answer: AlertTargetView = { url: target.url, events: target.events, lastDelivery };
    return c.json(answer);
  })

  .delete("/", async (c) => {
    await deleteTeamTarget(c.env);
    return c.body(null, 204);
  })

  .post("/test", async (c) => {
    const target = await readTeamTarget(c.env, await getKeyring(c.var.cfg));
    if (!target) throw noTeamTarget();
    const now = Date.now();
    countTeamTest(now);
    const p = c.var.principal;
    const user = p.kind === "user" ? { id: p.userId, name: p.name } : { id: "admin-token", name: "ADMIN_TOKEN" };
    const result = await deliver(target.url, target.secret, {
      event: "test",
      at: now,
      user,
      account: null,
      message: `A test of the team's alert target, sent by ${user.name}.`,
    });
    await writeTeamStatus(c.env, result);
    return c.json(result);
  });

export const memberAlerts = new Hono<AppEnv>()
  .use(requireKey)

  .put("/", async (c) => {
    const me = userOf(c.var.principal);
    const body = await jsonBody(c, AlertTargetBody);
    const answer: AlertTargetCreated = await poolClient(c.env, me.userId).setAlertTarget(body.url, body.events);
    return c.json(answer, 200, noStore);
  })

  .get("/", async (c) => {
    const me = userOf(c.var.principal);
    const view = await poolClient(c.env, me.userId).alertTarget();
    if (!view) throw notFound("you have no alert target: PUT /api/alerts {\"url\": \"https://…\"} first");
    return c.json(view);
  })

  .delete("/", async (c) => {
    const me = userOf(c.var.principal);
    await poolClient(c.env, me.userId).deleteAlertTarget();
    return c.body(null, 204);
  })

  .post("/test", async (c) => {
    const me = userOf(c.var.principal);
    return c.json(await poolClient(c.env, me.userId).testAlert());
  });
