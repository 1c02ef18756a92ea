/**
 * Per-isolate counters of the gateway's own storage traffic, for `GET /admin/stats` and the
 * benchmark's "KV and DO operations per proxied request" figure. The KV namespace and the Durable
 * Object namespace are wrapped once per env object, so every call through them is counted without
 * sprinkling counters over the code. Counting is a few integer increments: nothing on the hot path.
 */
import type { Env } from "./config";

export const stats = {
  since: Date.now(),
  requests: 0,
  proxied: 0,
  upstreamFetches: 0,
  /** Streams relayed, and the reads of their copies (usage and silence): reads per stream shows the pace. */
  streams: { relayed: 0, copyReads: 0 },
  kv: { get: 0, put: 0, delete: 0, list: 0 },
  do: { calls: 0, byMethod: {} as Record<string, number> },
};

const wrapped = new WeakMap<object, Env>();

/** The env with counting KV and DO bindings; the same object for the same env. */
export function countedEnv(env: Env): Env {
  let w = wrapped.get(env);
  if (w) return w;
  const kv = env.VAULT;
  const countedKv = new Proxy(kv, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== "function") return v;
      const name = String(prop);
      return (...args: unknown[]) => {
        if (name in stats.kv) stats.kv[name as keyof typeof stats.kv]++;
        return Reflect.apply(v as (...a: unknown[]) => unknown, target, args);
      };
    },
  });
  const ns = env.USER_POOL;
  const countedNs = new Proxy(ns, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (prop !== "get" || typeof v !== "function") return typeof v === "function" ? (v as () => unknown).bind(target) : v;
      return (...args: unknown[]) => countStub(Reflect.apply(v as (...a: unknown[]) => object, target, args));
    },
  });
  w = Object.assign(Object.create(Object.getPrototypeOf(env) as object) as Env, env, { VAULT: countedKv, USER_POOL: countedNs });
  wrapped.set(env, w);
  return w;
}

function countStub<T extends object>(stub: T): T {
  return new Proxy(stub, {
    get(target, prop) {
      const v = Reflect.get(target, prop) as unknown;
      if (typeof v !== "function" || typeof prop !== "string") return v;
      return (...args: unknown[]) => {
        stats.do.calls++;
        stats.do.byMethod[prop] = (stats.do.byMethod[prop] ?? 0) + 1;
        return Reflect.apply(v as (...a: unknown[]) => unknown, target, args);
      };
    },
  });
}
