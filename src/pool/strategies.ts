/**
 * The order in which one request tries its candidates (docs/ARCHITECTURE.md, "Routing"):
 *   1. the conversation's own account (session affinity), while it is healthy — whatever the
 *      strategy, so its prompt cache is not thrown away;
 *   2. then the user's strategy, which decides where new conversations go:
 *        failover     by position (the first healthy account takes everything);
 *        round-robin  the healthy accounts in turn;
 *        quota-aware  most headroom first (the lowest utilization of an account's most-used
 *                     window; no telemetry counts as 0); an account at or above quotaThreshold is
 *                     left alone — even by the conversations bound to it — while another is below
 *                     it, so it is set aside before it hits its limit and comes back when its
 *                     window resets.
 * Cooling accounts stay in the list (the loop skips them, and they decide the all-cooling
 * Retry-After). A strategy is one entry in STRATEGIES.
 */
import { mostUsed } from "../providers/telemetry";
import type { Settings, Strategy } from "../wire";
import type { AccountState } from "./types";

export interface OrderContext {
  now: number;
  /** How many new conversations this isolate has placed for this user and provider (round-robin). */
  turn: number;
  /** The account the conversation is bound to, if any. */
  stickyId: string | null;
  quotaThreshold: number;
}

const cooling = (a: AccountState, now: number) => a.cooldownUntil !== null && a.cooldownUntil > now;

export const STRATEGIES: Record<Strategy, (byPosition: AccountState[], ctx: OrderContext) => AccountState[]> = {
  failover: (list) => list,

  "round-robin": (list, ctx) => {
    const healthy = list.filter((a) => !cooling(a, ctx.now));
    if (healthy.length < 2) return list;
    const start = ctx.turn % healthy.length;
    const turned = [...healthy.slice(start), ...healthy.slice(0, start)];
    return [...turned, ...list.filter((a) => cooling(a, ctx.now))];
  },

  "quota-aware": (list, ctx) => {
    const used = new Map(list.map((a) => [a.id, mostUsed(a.quota, ctx.now)]));
    const byHeadroom = [...list].sort((a, b) => used.get(a.id)! - used.get(b.id)! || a.position - b.position);
    const below = byHeadroom.filter((a) => used.get(a.id)! < ctx.quotaThreshold);
    const above = byHeadroom.filter((a) => used.get(a.id)! >= ctx.quotaThreshold);
    return below.some((a) => !cooling(a, ctx.now)) ? [...below, ...above] : byHeadroom;
  },
};

/** The candidates (usable, by position) in the order this request tries them. */
export function orderCandidates(byPosition: AccountState[], settings: Settings, ctx: OrderContext): AccountState[] {
  if (byPosition.length < 2) return byPosition;
  const sticky = ctx.stickyId ? byPosition.find((a) => a.id === ctx.stickyId) : undefined;
  if (sticky && !cooling(sticky, ctx.now) && !setAside(sticky, byPosition, settings, ctx)) {
    return [sticky, ...STRATEGIES[settings.strategy](byPosition.filter((a) => a !== sticky), ctx)];
  }
  return STRATEGIES[settings.strategy](byPosition, ctx);
}

/**
 * quota-aware: an account at or above the threshold is left alone while another healthy one is
 * below it — conversations bound to it included, or long conversations alone would drive it into
 * its limit (the very thing the threshold is for). The conversation moves once, and stays.
 */
function setAside(a: AccountState, list: AccountState[], settings: Settings, ctx: OrderContext): boolean {
  if (settings.strategy !== "quota-aware" || mostUsed(a.quota, ctx.now) < ctx.quotaThreshold) return false;
  return list.some((b) => b !== a && !cooling(b, ctx.now) && mostUsed(b.quota, ctx.now) < ctx.quotaThreshold);
}

export const DEFAULT_SETTINGS: Settings = { strategy: "failover", quotaThreshold: 0.95, affinityTtlS: 3600 };
