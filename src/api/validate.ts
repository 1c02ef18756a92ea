/**
 * Input validation at the edge: JSON bodies through zod, read back typed. A bad body gets a 400 that
 * names the field and what is wrong, and nothing is changed. Parser messages are not echoed: V8
 * quotes the offending text, which may be a secret.
 */
import type { Context } from "hono";
import { z } from "zod";
import { GatewayError, badRequest } from "../errors";
import { findProvider, providerList } from "../providers";
import { readBody } from "../proxy/body";
import { labelProblem } from "../util";

/** Management bodies are small; an import file of a few hundred accounts fits easily. */
const API_BODY_LIMIT = 1024 * 1024;

export async function jsonBody<T extends z.ZodType>(c: Context, schema: T): Promise<z.infer<T>> {
  const buf = await readBody(c.req.raw, API_BODY_LIMIT);
  if (!buf || buf.byteLength === 0) throw badRequest("request body is empty: send a JSON object");
  let data: unknown;
  try {
    data = JSON.parse(new TextDecoder().decode(buf));
  } catch {
    throw badRequest("request body is not valid JSON");
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) throw badRequest("request body must be a JSON object");
  return parseWith(schema, data);
}

export function parseWith<T extends z.ZodType>(schema: T, data: unknown): z.infer<T> {
  const r = schema.safeParse(data);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = issue.path.length ? issue.path.join(".") : undefined;
  const keys = issue.code === "unrecognized_keys" ? issue.keys : undefined;
  if (keys?.length) throw badRequest(`unknown field ${keys.map((k) => `"${k}"`).join(", ")}`, keys[0]);
  throw badRequest(field ? `${field}: ${issue.message}` : issue.message, field);
}

/** Path ids have a fixed shape; anything else cannot exist. */
export function pathId(c: Context, name: string, prefix: string, what: string): string {
  const id = c.req.param(name) ?? "";
  if (!new RegExp(`^${prefix}_[A-Za-z0-9_-]{16}$`).test(id)) throw new GatewayError(404, "not_found_error", `no ${what} with id "${id.slice(0, 40).replace(/[^\w-]/g, "")}"`);
  return id;
}

/** A registered provider's id (looked up in the registry, so `constructor` is just unknown). */
export const providerId = z.string({ error: () => `must be one of ${providerList()}` }).refine((id) => findProvider(id) !== undefined, {
  error: () => `must be one of ${providerList()}`,
});

/** An account label a person sends (adding, renaming, signing in): the one rule of util.ts, trimmed. */
export const labelField = z
  .string({ error: "must be a string" })
  .superRefine((s, ctx) => {
    const problem = labelProblem(s);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  })
  .transform((s) => s.trim());
