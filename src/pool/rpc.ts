/**
 * Calling a user's Durable Object from the Worker: a fresh stub per try (a stub that threw may be
 * broken, per Cloudflare's guidance), a bounded retry of errors the runtime marks `retryable` and
 * not `overloaded` (retrying an overloaded object only adds load), and the typed result unwrapped:
 * a refusal becomes the GatewayError it describes, with its status and field.
 */
import type { Env } from "../config";
import { GatewayError } from "../errors";
import type { PoolResult } from "./result";
import type { UserPool } from "./user-pool";

const MAX_TRIES = 3;
const BACKOFF_MS = 25;

export type PoolStub = DurableObjectStub<UserPool>;
export type PoolCall<T> = (stub: PoolStub) => Promise<PoolResult<T>>;

export function poolStub(env: Env, userId: string): PoolStub {
  return env.USER_POOL.get(env.USER_POOL.idFromName(userId));
}

/** What the runtime attaches to a Durable Object error (developers.cloudflare.com, DO error handling). */
function isRetryable(e: unknown): boolean {
  const x = e as { retryable?: unknown; overloaded?: unknown } | null;
  return typeof x === "object" && x !== null && x.retryable === true && x.overloaded !== true;
}

export interface CallOptions {
  /** False for calls that must not run twice (a retried "add" could add twice). Default true. */
  retry?: boolean;
}

export async function callPool<T>(env: Env, userId: string, call: PoolCall<T>, opts: CallOptions = {}): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    let r: PoolResult<T>;
    try {
      r = await call(poolStub(env, userId));
    } catch (e) {
      if (opts.retry === false || attempt >= MAX_TRIES || !isRetryable(e)) throw e;
      await scheduler.wait(BACKOFF_MS * 2 ** (attempt - 1) * (0.5 + Math.random()));
      continue;
    }
    if (r.ok) return r.value;
    throw GatewayError.from(r.error);
  }
}
