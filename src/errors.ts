/**
 * The one error type. Thrown anywhere, turned into a response in the app's single onError, in the
 * format the caller's client understands: Anthropic's envelope on /anthropic/*, OpenAI's on
 * /openai/* and /copilot/*, a plain `{error:{type,message}}` on the management API.
 * Messages are written for the person reading them and never carry a secret.
 */

export type ErrorFormat = "anthropic" | "openai" | "api";

/** Anthropic's error types; OpenAI-shaped bodies reuse them as `type` with an OpenAI-style `code`. */
export type ErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "request_too_large"
  | "rate_limit_error"
  | "api_error"
  | "overloaded_error";

const OPENAI_CODE: Record<ErrorType, string> = {
  invalid_request_error: "invalid_request",
  authentication_error: "invalid_api_key",
  permission_error: "permission_denied",
  not_found_error: "not_found",
  request_too_large: "request_too_large",
  rate_limit_error: "rate_limit_exceeded",
  api_error: "server_error",
  overloaded_error: "overloaded",
};

export class GatewayError extends Error {
  override readonly name = "GatewayError";
  constructor(
    readonly status: number,
    readonly type: ErrorType,
    message: string,
    readonly extra: { headers?: Record<string, string>; field?: string } = {},
  ) {
    super(message);
  }
}

export const badRequest = (message: string, field?: string) =>
  new GatewayError(400, "invalid_request_error", message, field ? { field } : {});

export function errorBody(format: ErrorFormat, type: ErrorType, message: string, field?: string): string {
  switch (format) {
    case "anthropic":
      return JSON.stringify({ type: "error", error: { type, message } });
    case "openai":
      return JSON.stringify({ error: { message, type, code: OPENAI_CODE[type], param: field ?? null } });
    case "api":
      return JSON.stringify({ error: field ? { type, message, field } : { type, message } });
  }
}

export function errorResponse(format: ErrorFormat, err: GatewayError, extraHeaders?: Record<string, string>): Response {
  const headers = new Headers({ "content-type": "application/json", ...err.extra.headers, ...extraHeaders });
  // SDKs (Anthropic, OpenAI) honour x-should-retry; a gateway-side refusal is not worth retrying
  // unless it is a rate limit or an upstream outage.
  if (!headers.has("x-should-retry") && err.status < 500 && err.status !== 429 && err.status !== 408) {
    headers.set("x-should-retry", "false");
  }
  return new Response(errorBody(format, err.type, err.message, err.extra.field), { status: err.status, headers });
}

export function formatForPath(path: string): ErrorFormat {
  if (path.startsWith("/anthropic/") || path === "/anthropic") return "anthropic";
  if (/^\/(openai|copilot)(\/|$)/.test(path)) return "openai";
  return "api";
}

/** A final SSE event in the provider's format, for a stream the upstream cut after bytes went out. */
export function sseErrorEvent(format: ErrorFormat, message: string): string {
  if (format === "anthropic") {
    return `event: error\ndata: ${JSON.stringify({ type: "error", error: { type: "api_error", message } })}\n\n`;
  }
  // Chat Completions clients look for `error` in the data; Responses clients for `type: "error"`.
  const error = { type: "api_error", code: "upstream_disconnected", message };
  return `event: error\ndata: ${JSON.stringify({ type: "error", code: error.code, message, error })}\n\n`;
}
