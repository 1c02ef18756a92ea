/**
 * One account's try at a request: its credential (renewed first when due), the upstream exchange,
 * and what the answer means (DESIGN §5, §8). A 401/403 on an OAuth account renews the session once
 * and retries the same account; anything else that is the account's fault (or no fault of the
 * request's) is a failure the failover loop moves on from. Every wait is bounded by the exchange's
 * Deadline; every read of an error body by ERROR_HEAD_BYTES, so a large one can still be returned.
 */
import type { Config, Env } from "../config";
import { GatewayError } from "../errors";
import { checkUnreadable, refreshCredential } from "../pool/client";
import { credentialFor, needsRefresh } from "../pool/credentials";
import type { AccountState } from "../pool/types";
import { isEdgeChallenge } from "../providers/classify";
import type { Provider } from "../providers/types";
import { stats } from "../stats";
import { concat, isPrintableAscii, readHead } from "../util";
import { VaultError } from "../vault/envelope";
import type { Credential } from "../vault/records";
import { type Attempt, answer } from "./answer";
import type { ReplayableBody } from "./body";
import { Deadline } from "./deadline";
import { type Failure, failureBody } from "./failure";
import { clientResponse, upstreamRequestHeaders } from "./headers";
import { Outcome, type OutcomeContext } from "./outcome";

/** How much of an error body is read to classify it; the rest is passed on unread, if at all. */
const ERROR_HEAD_BYTES = 64 * 1024;

export interface AttemptContext extends OutcomeContext {
  cfg: Config;
  env: Env;
  request: Request;
  search: string;
  body: ReplayableBody;
  /** The client's headers, cleaned once; the first exchange takes them as they are. */
  headers: Headers;
  /** Exchanges so far in this request (x-subpool-attempts). */
  exchanges: { n: number };
}

export async function attempt(x: AttemptContext, acc: AccountState): Promise<Attempt> {
  const { env, cfg, userId, provider } = x;
  const out = new Outcome(x, acc.id);
  /** A wait the provider stated, else DEFAULT_COOLDOWN_S; never zero (that would retry at once). */
  const benchFor = (s: number | undefined) => (s !== undefined && s > 0 ? s : cfg.DEFAULT_COOLDOWN_S);

  let cred: Credential | null;
  try {
    cred = await credentialFor(env, cfg, userId, acc);
  } catch (e) {
    // A KV or Durable Object hiccup skips this account for this request only.
    if (!(e instanceof VaultError)) {
      out.report(0, false, undefined, `could not load the credential (${(e as Error).name})`);
      return { failure: null };
    }
    // A record that does not authenticate (moved, tampered) is never used: the DO confirms against
    // its own copy and either restores the edge copy or marks the account for a new credential.
    const checked = await checkUnreadable(env, cfg, userId, acc).catch((x: Error) => ({ ok: false as const, reason: `could not check the credential (${x.name})` }));
    if (!checked.ok) {
      out.report(0, false, undefined, checked.reason);
      return { failure: null };
    }
    cred = checked.cred;
  }
  if (!cred) return { failure: null };
  if (acc.type === "api" && !cred.key) {
    out.report(0, false, undefined, "stored credential has no API key: add the account again");
    return { failure: null };
  }
  let refreshed = false;
  const refresh = async (force: boolean) => {
    try {
      return await refreshCredential(env, cfg, userId, acc, cred!.version, force);
    } catch (e) {
      // The Durable Object itself failed (not the token endpoint): try the next account.
      out.report(0, false, undefined, `could not renew the session (${(e as Error).name})`);
      return null;
    }
  };
  if (needsRefresh(acc, cred)) {
    const r = await refresh(false);
    if (!r?.ok) return { failure: null };
    cred = r.cred;
    refreshed = true;
  }

  for (;;) {
    const n = ++x.exchanges.n;
    const route = provider.route(cfg, acc, x.path, x.search);
    if (!("url" in route)) return { failure: null };
    // The first exchange takes the prepared copy as it is; a later one starts again from the client's.
    const headers = n === 1 ? x.headers : upstreamRequestHeaders(x.request.headers);
    if (!sendable(acc, cred)) {
      out.report(0, false, undefined, "stored credential cannot be sent as a header (control or non-ASCII characters): add the account again");
      return { failure: null };
    }
    provider.authorize(headers, acc, cred);

    // One timer for every wait of this exchange (headers, then body, first event or error head).
    const clock = new Deadline(Math.min(cfg.UPSTREAM_TIMEOUT_MS, cfg.FIRST_EVENT_TIMEOUT_MS), cfg.UPSTREAM_TIMEOUT_MS);
    try {
      stats.upstreamFetches++;
      // redirect "manual": a redirect must not carry the account's key to another host.
      // The signal ends a relayed stream whose upstream went silent (and an exchange that timed out).
      // It costs nothing measurable per request (BENCHMARKS.md, "Streams and big requests").
      const upstream = new AbortController();
      const res = await withHeaderTimeout(fetch(route.url, { method: x.request.method, headers, body: x.body.next(), redirect: "manual", signal: upstream.signal }), clock, upstream);
      if (!(res instanceof Response)) {
        // No answer in time: bench briefly, so the next request does not wait all over again.
        // The client's own body turned out too large on the way: that is no fault of the account.
        if (x.body.overLimit()) throw new GatewayError(413, "request_too_large", `request body is larger than the gateway's limit of ${cfg.MAX_BODY_BYTES} bytes (MAX_BODY_BYTES)`);
        if (res === "timeout") out.report(0, false, cfg.DEFAULT_COOLDOWN_S, `no answer within ${cfg.UPSTREAM_TIMEOUT_MS} ms`);
        else out.report(0, false, undefined, `network error (${res.name})`);
        return { failure: null };
      }

      {
        const reading = provider.quotaOf(res.headers, Date.now());
        out.quota = reading ? { ...reading, updatedAt: Date.now() } : undefined;
      }

      if (isEdgeChallenge(res.status, res.headers)) {
        void res.body?.cancel().catch(() => {});
        const reason = `${provider.name}'s edge answered ${res.status} with a Cloudflare challenge: it blocks the gateway's outbound requests, not this account`;
        out.report(res.status, false, undefined, reason);
        return { failure: { accountId: acc.id, cls: "blocked", reason, status: res.status, statusText: res.statusText, headers: res.headers, head: null, rest: null } };
      }

      if (res.status < 400) return await answer({ cfg, provider, accountId: acc.id, n, clock, out, waitUntil: x.waitUntil, benchFor, upstream }, res);

      // An error answer: read its head (bounded in size and time) to classify it.
      let head: Uint8Array<ArrayBuffer> | null = null;
      let rest: ReadableStreamDefaultReader<Uint8Array> | null = null;
      if (res.body) {
        let read: Awaited<ReturnType<typeof readHead>>;
        try {
          read = await readHead(res.body, ERROR_HEAD_BYTES, clock.within(cfg.FIRST_EVENT_TIMEOUT_MS));
        } catch (e) {
          out.report(res.status, false, undefined, `answer ${res.status} was cut off (${(e as Error).name})`);
          return { failure: null };
        }
        if (read === "timeout") {
          out.report(res.status, false, cfg.DEFAULT_COOLDOWN_S, `answer ${res.status} stalled: its body did not arrive within ${cfg.FIRST_EVENT_TIMEOUT_MS} ms`);
          return { failure: null };
        }
        head = concat(read.chunks);
        rest = read.more ? read.reader : null;
      }
      const text = head ? new TextDecoder().decode(head) : "";
      const cls = provider.classify(res.status, res.headers, text, Date.now());
      const failure = (reason: string): Failure => ({ accountId: acc.id, cls: cls.class, reason, status: res.status, statusText: res.statusText, headers: res.headers, head, rest });

      switch (cls.class) {
        case "ok":
        case "client":
          // The request's own fault: the account worked. Return it untouched, no rotation.
          out.report(res.status, true);
          return { done: clientResponse(failureBody(failure("")), res, acc.id, n) };
        case "auth": {
          if (acc.type === "oauth" && !refreshed) {
            refreshed = true;
            const r = await refresh(true);
            if (r === null) return { failure: failure("could not renew the session") }; // reported by refresh()
            if (r.ok) {
              void rest?.cancel().catch(() => {});
              cred = r.cred;
              continue; // the same account, once, with the new token
            }
            if (r.reason === "needs_reauth") {
              out.report(res.status, false, undefined, `needs a new login: ${r.message}`);
              return { failure: failure(`needs a new login: ${r.message}`) };
            }
          }
          const reason = cls.reason ?? `upstream answered ${res.status}`;
          out.report(res.status, false, cfg.AUTH_COOLDOWN_S, reason);
          return { failure: failure(reason) };
        }
        case "quota":
        case "short": {
          const reason = cls.reason ?? "rate limited";
          out.report(res.status, false, benchFor(cls.cooldownS), reason);
          return { failure: failure(reason) };
        }
        case "not-account":
        case "overload":
        case "blocked": {
          const reason = cls.reason ?? `upstream answered ${res.status}`;
          out.report(res.status, false, undefined, reason);
          return { failure: failure(reason) };
        }
      }
    } finally {
      clock.end();
    }
  }
}

/** Whether the credential and the provider's extras can be sent as header values at all. */
function sendable(acc: AccountState, cred: Credential): boolean {
  const value = acc.type === "api" ? cred.key : cred.access;
  if (value === undefined || !isPrintableAscii(value)) return false;
  for (const v of Object.values(acc.extras)) if (!isPrintableAscii(v)) return false;
  return true;
}

/**
 * Waits for the upstream's response headers until the attempt's deadline; past it, the exchange is
 * aborted (its request body branch and connection let go).
 */
async function withHeaderTimeout(pending: Promise<Response>, clock: Deadline, upstream: AbortController): Promise<Response | "timeout" | Error> {
  try {
    const winner = await clock.race(pending);
    if (winner === "timeout") {
      upstream.abort();
      void pending.then((late) => late.body?.cancel()).catch(() => {});
    }
    return winner;
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}
