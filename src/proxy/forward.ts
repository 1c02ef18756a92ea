/**
 * The failover loop: one client request, tried on the caller's accounts in order until one answers
 * with something the client should see. The body is read once and replayed. Outcomes go to the pool
 * off the response path. Once bytes reached the client, no rotation is possible.
 *
 * The promise — a tool never sees a failure while a healthy account remains — holds for untidy
 * failures too (docs/ARCHITECTURE.md, "Faults"): every read of an upstream answer before the client
 * has anything is guarded and bounded in time and size; a reset, a cut, a stall or garbage moves on
 * to the next account. Error bodies are read up to ERROR_HEAD_BYTES to classify them; the rest stays
 * in the stream, so the provider's answer can still be returned whole.
 */
import type { Config, Env } from "../config";
import { GatewayError } from "../errors";
import { candidates, earliestRelease, isCooling } from "../pool/choose";
import { checkUnreadable, refreshCredential } from "../pool/client";
import { credentialFor, needsRefresh } from "../pool/credentials";
import { bindConversation, boundAccount, getSnapshot, hasBindings, liveAccount, nextTurn, recordOutcome, recordUsage } from "../pool/snapshots";
import { orderCandidates } from "../pool/strategies";
import type { AccountState, OutcomeReport } from "../pool/types";
import { type Classification, isEdgeChallenge } from "../providers/classify";
import type { Usage } from "../providers/telemetry";
import type { Provider } from "../providers/types";
import { concat, humanDuration, isPrintableAscii, parseJsonBody, readHead } from "../util";
import { VaultError } from "../vault/envelope";
import type { Credential } from "../vault/records";
import { stats } from "../stats";
import { readBody } from "./body";
import { conversationKey } from "./conversation";
import { clientResponse, upstreamRequestHeaders } from "./headers";
import { isEventStream, passThrough, peekFirstEvent } from "./sse";
import { Deadline } from "./deadline";
import { SseUsage, usageOf, usageOfJson } from "./usage";
import { utcDay } from "../pool/telemetry-store";

/** How much of an error body is read to classify it; the rest is passed on unread, if at all. */
const ERROR_HEAD_BYTES = 64 * 1024;
/** JSON answers up to this size (declared) are read whole before they are returned. */
const SMALL_JSON_BYTES = 256 * 1024;

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
  /**
   * The conversation to bind to the account that served (`"<provider>|<id>"`), or null: set by the
   * routing step when binding matters (another account than the strategy's first served it, or the
   * user's pool already binds conversations).
   */
  conversation?: (servedBy: string) => string | null;
}

/** A failed attempt's answer, kept so it can be returned if nothing better comes. */
interface Failure {
  accountId: string;
  cls: Classification["class"];
  reason: string;
  status: number;
  statusText: string;
  headers: Headers;
  /** The bytes read so far; `rest` holds what was not read (an error body over ERROR_HEAD_BYTES). */
  head: Uint8Array<ArrayBuffer> | null;
  rest: ReadableStreamDefaultReader<Uint8Array> | null;
}

type Attempt = { done: Response } | { failure: Failure | null };

/** A kept failure that will not be returned: let go of its connection. */
function discard(f: Failure | null) {
  void f?.rest?.cancel().catch(() => {});
}

function failureBody(f: Failure): BodyInit | null {
  if (!f.rest) return f.head;
  const { head, rest } = f;
  let sentHead = head === null;
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      if (!sentHead) {
        sentHead = true;
        c.enqueue(head!);
        return;
      }
      try {
        const r = await rest.read();
        if (r.done) c.close();
        else c.enqueue(r.value);
      } catch {
        c.close();
      }
    },
    cancel: (reason) => rest.cancel(reason),
  });
}

export async function forward(f: ForwardRequest): Promise<Response> {
  const { env, cfg, userId, provider } = f;
  const snap = await getSnapshot(env, cfg, userId);
  const usable = candidates(cfg, provider, snap.accounts, f.path, f.search);
  const body = await readBody(f.request, cfg.MAX_BODY_BYTES);
  const base = upstreamRequestHeaders(f.request.headers);
  const counter = { n: 0 };
  let last: Failure | null = null;

  // Routing (docs/ARCHITECTURE.md, "Routing"): the conversation's own account first while it is
  // healthy, then the user's strategy. With one candidate there is nothing to choose.
  let list = usable;
  if (usable.length > 1) {
    const now = Date.now();
    const { settings } = snap;
    // Naming the conversation reads the body: under failover it is needed only once some
    // conversation of this user has moved off the first account (then it is bound), so a pool that
    // never failed over pays nothing for affinity.
    let key: string | null | undefined;
    const conversation = () => (key === undefined ? (key = conversationKey(provider, f.request.headers, body)) : key);
    const needed = settings.strategy !== "failover" || hasBindings(userId, provider.id, settings.affinityTtlS * 1000, now);
    const stickyId = needed && conversation() ? boundAccount(userId, conversation()!, settings.affinityTtlS * 1000, now) : null;
    const turn = stickyId === null ? nextTurn(userId, provider.id) : 0;
    list = orderCandidates(usable, settings, { now, turn, stickyId, quotaThreshold: settings.quotaThreshold });
    const first = list[0]!.id;
    f.conversation = (servedBy) => (servedBy === first && !needed ? null : conversation());
  }

  for (const acc of list) {
    // Concurrent requests in this isolate may have benched it since the list was made.
    const live = liveAccount(userId, acc.id) ?? acc;
    if (isCooling(live, Date.now()) || !live.enabled || live.needsReauth) continue;
    const r = await attempt(f, live, base, body, counter);
    if ("done" in r) {
      discard(last);
      return r.done;
    }
    if (r.failure) {
      discard(last);
      last = r.failure;
    }
  }
  return exhausted(f, list, last, counter.n);
}

async function attempt(f: ForwardRequest, acc: AccountState, base: Headers, body: ArrayBuffer | null, counter: { n: number }): Promise<Attempt> {
  const { env, cfg, userId, provider } = f;
  /** Quota telemetry and tokens of the answer being handled, sent with its outcome. */
  let quota: OutcomeReport["quota"];
  let usage: Usage | null = null;
  const report = (status: number, ok: boolean, cooldownS?: number, reason?: string) => {
    const now = Date.now();
    const p = recordOutcome(env, userId, {
      accountId: acc.id,
      successes: ok ? 1 : 0,
      failures: ok ? 0 : 1,
      lastUsedAt: now,
      lastStatus: status,
      cooldownUntil: cooldownS !== undefined ? now + cooldownS * 1000 : undefined,
      lastError: ok ? undefined : (reason ?? `upstream answered ${status}`),
      ...(quota ? { quota } : {}),
      ...(ok ? { usage: [{ date: utcDay(now), requests: 1, inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, ...usage }] } : {}),
    });
    if (p) f.waitUntil(p.catch(() => undefined));
    const conversation = ok ? f.conversation?.(acc.id) : null;
    if (conversation) {
      const b = bindConversation(env, userId, conversation, acc.id, now);
      if (b) f.waitUntil(b.catch(() => undefined));
    }
    // One line per failed attempt (ids, status and our own reason text only: never a secret), so
    // `wrangler tail` shows every rotation. Successes stay silent: they are the hot path.
    if (!ok) {
      console.log(
        `subpool: ${provider.id} ${f.path} user=${userId} account=${acc.id} -> ${status || "network"}: ${reason ?? "failed"}` +
          `${cooldownS !== undefined ? `; benched ${humanDuration(cooldownS)}` : ""}`,
      );
    }
  };
  /** A wait the provider stated, else DEFAULT_COOLDOWN_S; never zero (that would retry at once). */
  const benchFor = (cls: Classification) => (cls.cooldownS !== undefined && cls.cooldownS > 0 ? cls.cooldownS : cfg.DEFAULT_COOLDOWN_S);

  let cred: Credential | null;
  try {
    cred = await credentialFor(env, cfg, userId, acc);
  } catch (e) {
    // A KV or Durable Object hiccup skips this account for this request only.
    if (!(e instanceof VaultError)) {
      report(0, false, undefined, `could not load the credential (${(e as Error).name})`);
      return { failure: null };
    }
    // A record that does not authenticate (moved, tampered) is never used: the DO confirms against
    // its own copy and either restores the edge copy or marks the account for a new credential.
    const checked = await checkUnreadable(env, cfg, userId, acc).catch((x: Error) => ({ ok: false as const, reason: `could not check the credential (${x.name})` }));
    if (!checked.ok) {
      report(0, false, undefined, checked.reason);
      return { failure: null };
    }
    cred = checked.cred;
  }
  if (!cred) return { failure: null };
  if (acc.type === "api" && !cred.key) {
    report(0, false, undefined, "stored credential has no API key: add the account again");
    return { failure: null };
  }
  let refreshed = false;
  const refresh = async (force: boolean) => {
    try {
      return await refreshCredential(env, cfg, userId, acc, cred!.version, force);
    } catch (e) {
      // The Durable Object itself failed (not the token endpoint): try the next account.
      report(0, false, undefined, `could not renew the session (${(e as Error).name})`);
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
    const n = ++counter.n;
    const route = provider.route(cfg, acc, f.path, f.search);
    if (!("url" in route)) return { failure: null };
    // The first attempt takes the prepared copy as it is; a later one starts again from the client's.
    const headers = n === 1 ? base : upstreamRequestHeaders(f.request.headers);
    if (!sendable(acc, cred)) {
      report(0, false, undefined, "stored credential cannot be sent as a header (control or non-ASCII characters): add the account again");
      return { failure: null };
    }
    provider.authorize(headers, acc, cred);

    // One timer for every wait of this exchange (headers, then body, first event or error head).
    const clock = new Deadline(Math.min(cfg.UPSTREAM_TIMEOUT_MS, cfg.FIRST_EVENT_TIMEOUT_MS), cfg.UPSTREAM_TIMEOUT_MS);
    try {
      stats.upstreamFetches++;
      // redirect "manual": a redirect must not carry the account's key to another host.
      const res = await withHeaderTimeout(fetch(route.url, { method: f.request.method, headers, body, redirect: "manual" }), clock);
      if (!(res instanceof Response)) {
        // No answer in time: bench briefly, so the next request does not wait all over again.
        if (res === "timeout") report(0, false, cfg.DEFAULT_COOLDOWN_S, `no answer within ${cfg.UPSTREAM_TIMEOUT_MS} ms`);
        else report(0, false, undefined, `network error (${res.name})`);
        return { failure: null };
      }

      {
        const reading = provider.quotaOf(res.headers, Date.now());
        quota = reading ? { ...reading, updatedAt: Date.now() } : undefined;
      }

      if (isEdgeChallenge(res.status, res.headers)) {
        void res.body?.cancel().catch(() => {});
        const reason = `${provider.name}'s edge answered ${res.status} with a Cloudflare challenge: it blocks the gateway's outbound requests, not this account`;
        report(res.status, false, undefined, reason);
        return { failure: { accountId: acc.id, cls: "blocked", reason, status: res.status, statusText: res.statusText, headers: res.headers, head: null, rest: null } };
      }

      if (res.status < 400) {
        if (res.body && isEventStream(res.headers)) {
          let peeked: Awaited<ReturnType<typeof peekFirstEvent>>;
          try {
            peeked = await peekFirstEvent(res.body, clock.within(cfg.FIRST_EVENT_TIMEOUT_MS));
          } catch (e) {
            report(res.status, false, undefined, `the stream broke before its first event (${(e as Error).name})`);
            return { failure: null };
          }
          if (peeked === "timeout") {
            report(res.status, false, cfg.DEFAULT_COOLDOWN_S, `the stream sent no event within ${cfg.FIRST_EVENT_TIMEOUT_MS} ms`);
            return { failure: null };
          }
          const ev = peeked.first;
          const cls = ev && (ev.event === "error" || ev.data.includes('"error"')) ? provider.classifySseError(parseJsonBody(ev.data)) : null;
          if (cls) {
            void peeked.reader.cancel().catch(() => {});
            const limited = cls.class === "short" || cls.class === "quota";
            report(limited ? 429 : res.status, false, limited ? benchFor(cls) : undefined, cls.reason);
            return {
              failure: { accountId: acc.id, cls: cls.class, reason: cls.reason ?? "stream error", status: res.status, statusText: res.statusText, headers: res.headers, head: concat(peeked.chunks), rest: null },
            };
          }
          report(res.status, true);
          const counted = new SseUsage(provider);
          const stream = passThrough(peeked, (sent) => provider.errorFormat.sseEvent(`the upstream connection was lost after ${sent} bytes; the response is incomplete`), {
            observe: (chunk) => counted.observe(chunk),
            end: () => {
              const u = counted.end();
              const p = u ? recordUsage(env, userId, acc.id, u, Date.now()) : null;
              if (p) f.waitUntil(p.catch(() => undefined));
            },
          });
          return { done: clientResponse(stream, res, acc.id, n) };
        }
        if (res.body && (res.headers.get("content-type") ?? "").includes("json")) {
          const declared = res.headers.get("content-length");
          if (declared !== null && Number(declared) <= SMALL_JSON_BYTES) {
            // A small whole JSON answer (not a stream: the client needs all of it anyway) is read by
            // the runtime in one go; its tokens ride with this outcome. A cut body is still ours to
            // fail over from: nothing has reached the client.
            let whole: ArrayBuffer | "timeout";
            try {
              clock.within(cfg.FIRST_EVENT_TIMEOUT_MS);
              whole = await clock.race(res.arrayBuffer());
            } catch (e) {
              report(res.status, false, undefined, `the answer was cut off (${(e as Error).name})`);
              return { failure: null };
            }
            if (whole === "timeout") {
              void res.body.cancel().catch(() => {});
              report(res.status, false, cfg.DEFAULT_COOLDOWN_S, `the answer stalled: its body did not arrive within ${cfg.FIRST_EVENT_TIMEOUT_MS} ms`);
              return { failure: null };
            }
            usage = usageOf(provider, whole);
            report(res.status, true);
            return { done: clientResponse(whole, res, acc.id, n) };
          }
          // Larger or of unknown length: passed on as it comes; tokens read from a copy, off the path.
          report(res.status, true);
          const [toClient, copy] = res.body.tee();
          f.waitUntil(
            usageOfJson(provider, copy, declared)
              .then((u) => (u ? recordUsage(env, userId, acc.id, u, Date.now()) : null))
              .catch(() => undefined),
          );
          return { done: clientResponse(toClient, res, acc.id, n) };
        }
        report(res.status, true);
        return { done: clientResponse(res.body, res, acc.id, n) };
      }

      // An error answer: read its head (bounded in size and time) to classify it.
      let head: Uint8Array<ArrayBuffer> | null = null;
      let rest: ReadableStreamDefaultReader<Uint8Array> | null = null;
      if (res.body) {
        let read: Awaited<ReturnType<typeof readHead>>;
        try {
          read = await readHead(res.body, ERROR_HEAD_BYTES, clock.within(cfg.FIRST_EVENT_TIMEOUT_MS));
        } catch (e) {
          report(res.status, false, undefined, `answer ${res.status} was cut off (${(e as Error).name})`);
          return { failure: null };
        }
        if (read === "timeout") {
          report(res.status, false, cfg.DEFAULT_COOLDOWN_S, `answer ${res.status} stalled: its body did not arrive within ${cfg.FIRST_EVENT_TIMEOUT_MS} ms`);
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
          report(res.status, true);
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
              report(res.status, false, undefined, `needs a new login: ${r.message}`);
              return { failure: failure(`needs a new login: ${r.message}`) };
            }
          }
          const reason = cls.reason ?? `upstream answered ${res.status}`;
          report(res.status, false, cfg.AUTH_COOLDOWN_S, reason);
          return { failure: failure(reason) };
        }
        case "quota":
        case "short": {
          const reason = cls.reason ?? "rate limited";
          report(res.status, false, benchFor(cls), reason);
          return { failure: failure(reason) };
        }
        case "not-account":
        case "overload":
        case "blocked": {
          const reason = cls.reason ?? `upstream answered ${res.status}`;
          report(res.status, false, undefined, reason);
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

function exhausted(f: ForwardRequest, list: AccountState[], last: Failure | null, attempts: number): Response {
  const now = Date.now();
  const decorate = (x: Failure) => clientResponse(failureBody(x), x, x.accountId, attempts);
  const name = f.provider.name;
  if (last?.cls === "blocked") {
    throw new GatewayError(
      502,
      "api_error",
      `${name} blocked the gateway: its edge answered with a Cloudflare challenge, which is about the gateway's outbound requests, not your accounts ` +
        `(none was benched or signed out). Try again later; if it persists, the gateway's host is being challenged by ${name}.`,
      { headers: { "x-subpool-attempts": String(attempts) } },
    );
  }
  // An outage or a request-specific refusal is the truest answer: pass it on as the provider sent it.
  if (last && (last.cls === "overload" || last.cls === "not-account")) return decorate(last);

  const live = list.map((a) => liveAccount(f.userId, a.id) ?? a).filter((a) => a.enabled && !a.needsReauth);
  const earliest = earliestRelease(live, now);
  if (earliest !== null) {
    discard(last);
    const retryAfter = Math.max(1, Math.ceil((earliest - now) / 1000));
    const cooling = live.filter((a) => isCooling(a, now)).length;
    throw new GatewayError(
      429,
      "rate_limit_error",
      `All your ${name} accounts are busy: ${cooling} of ${list.length} rate limited or benched` +
        `${last ? ` (last: ${last.reason})` : ""}. The first is free again in ${humanDuration(retryAfter)}.`,
      { headers: { "retry-after": String(retryAfter), "x-subpool-attempts": String(attempts) } },
    );
  }
  if (last) return decorate(last);
  if (live.length === 0) {
    throw new GatewayError(403, "permission_error", `every ${name} account of yours needs a new login: run \`npx subpool login ${f.provider.id}\`.`, {
      headers: { "x-subpool-attempts": String(attempts) },
    });
  }
  throw new GatewayError(502, "api_error", `${name} could not be reached with any of your accounts; try again shortly.`, {
    headers: { "x-subpool-attempts": String(attempts) },
  });
}

/**
 * Waits for the upstream's response headers until the attempt's deadline. No AbortSignal on the
 * fetch: a signal costs about 30 µs a request in workerd, and aborting it later would also cut a
 * long stream. A late answer that lost the race is discarded when it arrives.
 */
async function withHeaderTimeout(pending: Promise<Response>, clock: Deadline): Promise<Response | "timeout" | Error> {
  try {
    const winner = await clock.race(pending);
    if (winner === "timeout") void pending.then((late) => late.body?.cancel()).catch(() => {});
    return winner;
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}
