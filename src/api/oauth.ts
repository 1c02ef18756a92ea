/**
 * /api/oauth/:provider/start|finish: the interactive logins (PROVIDERS.md). The pending login —
 * state, PKCE verifier or device code — lives sealed in the caller's Durable Object for 10 minutes;
 * the verifier never leaves the server. A finished login is one new account, or, when the same
 * provider account is already there, a refresh of it (never a duplicate, never an overwrite of
 * another account).
 */
import { Hono } from "hono";
import { z } from "zod";
import { type AppEnv, userOf } from "../auth/middleware";
import { type ErrorType, GatewayError } from "../errors";
import { invalidateSnapshot, poolStub } from "../pool/isolate-cache";
import { PROVIDER_IDS, type ProviderId } from "../providers/types";
import { jsonBody, parseWith } from "./validate";

const Provider = z.enum(PROVIDER_IDS, { error: `must be one of ${PROVIDER_IDS.map((p) => `"${p}"`).join(", ")}` });
const Start = z.strictObject({ label: z.string().trim().min(1).max(100).optional() });
const Finish = z.strictObject({
  loginId: z.string({ error: "required: the loginId that start returned" }).regex(/^login_[\w-]{16}$/, "not a login id (login_…)"),
  code: z.string().trim().min(1, "is empty").max(8192).optional(),
});

const providerParam = (raw: string | undefined): ProviderId => parseWith(z.object({ provider: Provider }), { provider: raw }).provider;

const typeFor = (status: number): ErrorType => (status === 404 || status === 410 ? "not_found_error" : status === 403 ? "permission_error" : status >= 500 ? "api_error" : "invalid_request_error");

export const oauth = new Hono<AppEnv>()
  .post("/:provider/start", async (c) => {
    const me = userOf(c.var.principal);
    const provider = providerParam(c.req.param("provider"));
    const hasBody = (c.req.header("content-length") ?? "0") !== "0" || c.req.header("transfer-encoding") !== undefined;
    const body = hasBody ? await jsonBody(c, Start) : {};
    const r = await poolStub(c.env, me.userId).startLogin(provider, body.label ?? null);
    return c.json({ loginId: r.loginId, provider, expiresAt: r.expiresAt, ...r.public }, 200, { "cache-control": "no-store" });
  })

  .post("/:provider/finish", async (c) => {
    const me = userOf(c.var.principal);
    const provider = providerParam(c.req.param("provider"));
    const body = await jsonBody(c, Finish);
    if (provider !== "github-copilot" && body.code === undefined) {
      throw new GatewayError(400, "invalid_request_error", "code: required: paste what the sign-in page gave you", { field: "code" });
    }
    const r = await poolStub(c.env, me.userId).finishLogin(provider, body.loginId, body.code);
    if (r.kind === "pending") return c.json({ status: "pending", interval: r.intervalS }, 202);
    if (r.kind === "error") throw new GatewayError(r.status, typeFor(r.status), r.message, r.field ? { field: r.field } : {});
    invalidateSnapshot(me.userId);
    return c.json({ account: r.account, created: r.created }, r.created ? 201 : 200);
  });
