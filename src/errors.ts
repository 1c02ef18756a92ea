/**
 * The one error type. Thrown anywhere in the Worker, turned into a response in the app's single
 * onError, in the format the caller's client understands: each provider module supplies its own
 * ErrorFormat for its proxy routes; the management API uses `{error:{type,message,field?}}`.
 * Messages are written for the person reading them and never carry a secret.
 */

/** Our error vocabulary (Anthropic's names, which every format maps from). */
export type ErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "request_too_large"
  | "rate_limit_error"
  | "api_error"
  | "overloaded_error";

/** How one family of clients expects an error: as a JSON body, and as a final SSE event. */
export interface ErrorFormat {
  body(type: ErrorType, message: string, field?: string): string;
  /** A last event for a stream the upstream cut after bytes went out (never a silent truncation). */
  sseEvent(message: string): string;
}

/** The refusal part of a typed result, as it crosses the Durable Object boundary. */
export interface ErrorInfo {
  status: number;
  type: ErrorType;
  message: string;
  field?: string;
  /** For a 429: seconds until the caller may try again (sent as Retry-After). */
  retryAfterS?: number;
}

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

  static from(e: ErrorInfo): GatewayError {
    return new GatewayError(e.status, e.type, e.message, {
      ...(e.field ? { field: e.field } : {}),
      ...(e.retryAfterS !== undefined ? { headers: { "retry-after": String(e.retryAfterS) } } : {}),
    });
  }
}

export const badRequest = (message: string, field?: string) =>
  new GatewayError(400, "invalid_request_error", message, field ? { field } : {});

export const notFound = (message: string, field?: string) => new GatewayError(404, "not_found_error", message, field ? { field } : {});

/** The error type that goes with a status, for refusals that carry only a status. */
export function typeForStatus(status: number): ErrorType {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404 || status === 410) return "not_found_error";
  if (status === 413) return "request_too_large";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return "api_error";
  return "invalid_request_error";
}

/** The management API's format. */
export const apiErrorFormat: ErrorFormat = {
  body: (type, message, field) => JSON.stringify({ error: field ? { type, message, field } : { type, message } }),
  sseEvent: (message) => `event: error\ndata: ${JSON.stringify({ error: { type: "api_error", message } })}\n\n`,
};

export function errorResponse(format: ErrorFormat, err: GatewayError, extraHeaders?: Record<string, string>): Response {
  const headers = new Headers({ "content-type": "application/json", ...err.extra.headers, ...extraHeaders });
  // SDKs (Anthropic, OpenAI) honour x-should-retry; a gateway-side refusal is not worth retrying
  // unless it is a rate limit or an upstream outage.
  if (!headers.has("x-should-retry") && err.status < 500 && err.status !== 429 && err.status !== 408) {
    headers.set("x-should-retry", "false");
  }
  return new Response(format.body(err.type, err.message, err.extra.field), { status: err.status, headers });
}
