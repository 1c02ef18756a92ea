/**
 * The failover loop: one client request, tried on the caller's accounts in the plan's order until
 * one answers with something the client should see (DESIGN §5). Once bytes reached the client, no
 * rotation is possible. The jobs live in their own rooms:
 *   body.ts          the request body, replayable (large ones never read: tee branches);
 *   ../limits/       the team's limits for the member, from the snapshot (no round trip);
 *   plan.ts          which accounts, in which order, and which conversation to bind
 *                    (conversation.ts names it: headers first, bounded windows of the body);
 *   attempt.ts       one account: credential, exchange (headers.ts, deadline.ts), what the answer means;
 *   answer.ts        a 2xx handed over: SSE peeked (sse.ts) then relayed (relay.ts), usage (usage.ts);
 *   outcome.ts       what each attempt came to, recorded off the response path;
 *   failure.ts       the kept failure, and the answer when every account failed or was cooling.
 */
import type { Config, Env } from "../config";
import { candidates, isCooling } from "../pool/choose";
import { admit, getSnapshot, liveAccount, noteEvent } from "../pool/snapshots";
import type { EdgeEvent, Snapshot } from "../pool/types";
import { enforceLimits, limitFieldOf, limited } from "../limits/enforce";
import type { Provider } from "../providers/types";
import { attempt } from "./attempt";
import { type ReplayableBody, replayable } from "./body";
import { type Failure, discard, exhausted } from "./failure";
import { upstreamRequestHeaders } from "./headers";
import { plan } from "./plan";

export interface ForwardRequest {
  env: Env;
  cfg: Config;
  userId: string;
  provider: Provider;
  request: Request;
  /** Path after the provider prefix, e.g. "/v1/messages". */
  path: string;
  search: string;
  waitUntil(p: Promise<unknown>): void;
}

export async function forward(f: ForwardRequest): Promise<Response> {
  const { userId, provider } = f;
  const snap = await getSnapshot(f.env, f.cfg, userId);
  const usable = candidates(f.cfg, provider, snap.accounts, f.path, f.search);
  const body = await replayable(f.request, f.cfg.MAX_BODY_BYTES);
  try {
    if (limited(snap)) await admitWithinLimits(f, snap, body);
    const { list, bindAs } = await plan(userId, provider, f.request.headers, body, usable, snap.settings);
    const x = { ...f, body, bindAs, headers: upstreamRequestHeaders(f.request.headers), exchanges: { n: 0 } };
    let last: Failure | null = null;
    for (const acc of list) {
      // Concurrent requests in this isolate may have benched it since the list was made.
      const live = liveAccount(userId, acc.id) ?? acc;
      if (isCooling(live, Date.now()) || !live.enabled || live.needsReauth) continue;
      const r = await attempt(x, live);
      if ("done" in r) {
        discard(last);
        return r.done;
      }
      if (r.failure) {
        discard(last);
        last = r.failure;
      }
    }
    return exhausted(provider, userId, list, last, x.exchanges.n, () => note(f, { event: "pool.exhausted", provider: provider.id, at: Date.now() }));
  } finally {
    body.release();
  }
}

/** The team's limits for the member (src/limits/enforce.ts): refused, or counted as admitted. */
async function admitWithinLimits(f: ForwardRequest, snap: Snapshot, body: ReplayableBody): Promise<void> {
  const now = Date.now();
  try {
    await enforceLimits(snap, f.provider, { method: f.request.method, path: f.path, body }, now);
  } catch (e) {
    const field = limitFieldOf(e);
    if (field) note(f, { event: "limit.reached", field, at: now });
    throw e;
  }
  admit(f.userId, now);
}

function note(f: ForwardRequest, ev: EdgeEvent): void {
  const p = noteEvent(f.env, f.userId, ev);
  if (p) f.waitUntil(p.catch(() => undefined));
}
