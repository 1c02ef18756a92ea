/**
 * A failed attempt's answer, kept while the next account is tried so it can be returned if nothing
 * better comes, and the answer when every candidate failed or was cooling (DESIGN §5): the
 * provider's own error when that is the truest answer (an outage, a refusal about the request), a
 * 429 with Retry-After to the earliest cooldown end, a 502 when the provider's edge blocked the
 * gateway. Error bodies are kept as the head read to classify them plus the unread rest, so a large
 * one still reaches the client whole.
 */
import { GatewayError } from "../errors";
import { earliestRelease, isCooling } from "../pool/choose";
import { liveAccount } from "../pool/snapshots";
import type { AccountState } from "../pool/types";
import type { Classification } from "../providers/classify";
import type { Provider } from "../providers/types";
import { humanDuration } from "../util";
import { clientResponse } from "./headers";

export interface Failure {
  accountId: string;
  cls: Classification["class"];
  reason: string;
  status: number;
  statusText: string;
  headers: Headers;
  /** The bytes read so far; `rest` holds what was not read (an error body over the head's limit). */
  head: Uint8Array<ArrayBuffer> | null;
  rest: ReadableStreamDefaultReader<Uint8Array> | null;
}

/** A kept failure that will not be returned: let go of its connection. */
export function discard(f: Failure | null): void {
  void f?.rest?.cancel().catch(() => {});
}

export function failureBody(f: Failure): BodyInit | null {
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

/** `onBusy`: every account was cooling (the 429), for the member's `pool.exhausted` alert. */
export function exhausted(provider: Provider, userId: string, list: AccountState[], last: Failure | null, attempts: number, onBusy: () => void = () => {}): Response {
  const now = Date.now();
  const decorate = (x: Failure) => clientResponse(failureBody(x), x, x.accountId, attempts);
  const name = provider.name;
  const tried = { headers: { "x-subpool-attempts": String(attempts) } };
  if (last?.cls === "blocked") {
    throw new GatewayError(
      502,
      "api_error",
      `${name} blocked the gateway: its edge answered with a Cloudflare challenge, which is about the gateway's outbound requests, not your accounts ` +
        `(none was benched or signed out). Try again later; if it persists, the gateway's host is being challenged by ${name}.`,
      tried,
    );
  }
  // An outage or a request-specific refusal is the truest answer: pass it on as the provider sent it.
  if (last && (last.cls === "overload" || last.cls === "not-account")) return decorate(last);

  const live = list.map((a) => liveAccount(userId, a.id) ?? a).filter((a) => a.enabled && !a.needsReauth);
  const earliest = earliestRelease(live, now);
  if (earliest !== null) {
    discard(last);
    const retryAfter = Math.max(1, Math.ceil((earliest - now) / 1000));
    const cooling = live.filter((a) => isCooling(a, now)).length;
    onBusy();
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
    throw new GatewayError(403, "permission_error", `every ${name} account of yours needs a new login: run \`npx subpool login ${provider.id}\`.`, tried);
  }
  throw new GatewayError(502, "api_error", `${name} could not be reached with any of your accounts; try again shortly.`, tried);
}
