/**
 * /api/oauth/:provider/start|finish: the interactive logins (docs/ARCHITECTURE.md, "Provider facts"). The pending login —
 * state, PKCE verifier or device code — lives sealed in the caller's Durable Object for 10 minutes;
 * the verifier never leaves the server. A finished login is one new account, or, when the same
 * provider account is already there, a refresh of it (never a duplicate, never an overwrite of
 * another account).
 */
import { Hono } from "hono";
import { z } from "zod";
import { type AppEnv, userOf } from "../auth/middleware";
import { badRequest } from "../errors";
import { poolClient } from "../pool/client";
import { type Provider, findProvider } from "../providers";
import { pasted } from "../providers/import-fields";
import { jsonBody, labelField, parseWith, providerId } from "./validate";

const Start = z.strictObject({ label: labelField.optional() });
const Finish = z.strictObject({
  loginId: z.string({ error: "required: the loginId that start returned" }).regex(/^login_[\w-]{16}$/, "not a login id (login_…)"),
  code: pasted("code").optional(),
});

const providerParam = (raw: string | undefined): Provider => findProvider(parseWith(z.object({ provider: providerId }), { provider: raw }).provider)!;

export const oauth = new Hono<AppEnv>()
  .post("/:provider/start", async (c) => {
    const me = userOf(c.var.principal);
    const provider = providerParam(c.req.param("provider"));
    const hasBody = (c.req.header("content-length") ?? "0") !== "0" || c.req.header("transfer-encoding") !== undefined;
    const body = hasBody ? await jsonBody(c, Start) : {};
    const r = await poolClient(c.env, me.userId).startLogin(provider.id, body.label ?? null);
    return c.json({ loginId: r.loginId, provider: provider.id, expiresAt: r.expiresAt, ...r.public }, 200, { "cache-control": "no-store" });
  })

  .post("/:provider/finish", async (c) => {
    const me = userOf(c.var.principal);
    const provider = providerParam(c.req.param("provider"));
    const body = await jsonBody(c, Finish);
    if (provider.login.needsCode && body.code === undefined) throw badRequest("code: required: paste what the sign-in page gave you", "code");
    const r = await poolClient(c.env, me.userId).finishLogin(provider.id, body.loginId, body.code);
    if (r.kind === "pending") return c.json({ status: "pending", interval: r.intervalS }, 202);
    return c.json({ account: r.account, created: r.created }, r.created ? 201 : 200);
  });
