/**
 * The order in which one request tries the caller's accounts (docs/ARCHITECTURE.md, "Routing"):
 * the conversation's own account first while it is healthy, then the user's strategy; and which
 * conversation, if any, to bind to the account that serves. With one candidate there is nothing to
 * choose. Under failover, naming the conversation is needed only once some conversation of this
 * user has moved off the first account (then it is bound), so a pool that never failed over pays
 * nothing for affinity. The plan is returned, never written into the request it was made from.
 *
 * Naming costs nothing for clients that name their session in a header (Claude Code, Codex CLI).
 * Otherwise the body is looked at with bounded work; a large body that was not read (./body.ts) is
 * read only when the strategy or a live binding needs the name — after a plain failover such a
 * conversation is not bound (reading a megabyte for it would cost every such request).
 */
import { boundAccount, hasBindings, nextTurn } from "../pool/snapshots";
import { orderCandidates } from "../pool/strategies";
import type { AccountState } from "../pool/types";
import type { Provider } from "../providers/types";
import type { Settings } from "../wire";
import type { ReplayableBody } from "./body";
import { bodyConversation, headerConversation } from "./conversation";

export interface Plan {
  list: AccountState[];
  /** The conversation to bind to the account that served (`"<provider>|<id>"`), or null. */
  bindAs(servedBy: string): string | null;
}

const noBinding = () => null;

export async function plan(userId: string, provider: Provider, headers: Headers, body: ReplayableBody, usable: AccountState[], settings: Settings): Promise<Plan> {
  if (usable.length < 2) return { list: usable, bindAs: noBinding };
  const now = Date.now();
  const ttlMs = settings.affinityTtlS * 1000;
  let key: string | null | undefined;
  const named = () => {
    if (key === undefined) {
      key = headerConversation(provider, headers);
      const held = key === null ? body.held() : null;
      if (held) key = bodyConversation(provider, held);
    }
    return key;
  };
  const needed = settings.strategy !== "failover" || hasBindings(userId, provider.id, ttlMs, now);
  if (needed && named() === null && body.held() === null) key = bodyConversation(provider, await body.bytes());
  const sticky = needed && key ? boundAccount(userId, key, ttlMs, now) : null;
  const turn = sticky === null ? nextTurn(userId, provider.id) : 0;
  const list = orderCandidates(usable, settings, { now, turn, stickyId: sticky, quotaThreshold: settings.quotaThreshold });
  const first = list[0]!.id;
  return { list, bindAs: (servedBy) => (servedBy === first && !needed ? null : named()) };
}
