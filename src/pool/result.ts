/**
 * Typed results across the Durable Object boundary. RPC keeps only an exception's name and message,
 * so a refusal thrown inside the DO would reach the Worker as a generic 500: every UserPool method
 * instead returns PoolResult, a refusal carries its status, type and field, and the Worker's pool
 * client turns it back into a GatewayError. Exceptions that still cross are infrastructure failures
 * (see rpc.ts for which are retried).
 */
import { type ErrorInfo, typeForStatus } from "../errors";

export type PoolResult<T> = { ok: true; value: T } | { ok: false; error: ErrorInfo };

/** Thrown inside the DO for an expected refusal; guard() turns it into a result. */
export class PoolRefusal extends Error {
  override readonly name = "PoolRefusal";
  constructor(readonly info: ErrorInfo) {
    super(info.message);
  }
}

export const refuse = (status: number, message: string, field?: string, extra: { retryAfterS?: number } = {}): PoolRefusal =>
  new PoolRefusal({ status, type: typeForStatus(status), message, ...(field ? { field } : {}), ...extra });

/** Runs a DO method body: its value, or its refusal, as a result. Other exceptions propagate. */
export async function guard<T>(body: () => T | Promise<T>): Promise<PoolResult<T>> {
  try {
    return { ok: true, value: await body() };
  } catch (e) {
    if (e instanceof PoolRefusal) return { ok: false, error: e.info };
    throw e;
  }
}
