/**
 * Which of a user's accounts may serve a request, in which order: the caller's own
 * enabled accounts for the provider that can serve the path, not needs_reauth, by position.
 * Accounts still cooling stay in the list (they decide the all-cooling Retry-After) and are skipped
 * by the loop at the moment it reaches them.
 */
import type { Config } from "../config";
import { GatewayError } from "../errors";
import type { Provider } from "../providers/types";
import type { AccountState } from "./types";

export function candidates(cfg: Config, provider: Provider, accounts: AccountState[], path: string, search: string): AccountState[] {
  const mine = accounts.filter((a) => a.provider === provider.id);
  if (mine.length === 0) {
    throw new GatewayError(
      400,
      "invalid_request_error",
      `subpool has no ${provider.name} account for you yet. Add one with \`npx subpool login ${provider.id}\`, ` +
        `or POST /api/accounts {"provider":"${provider.id}",...}.`,
    );
  }
  let refusal = "";
  const serving = mine.filter((a) => {
    const r = provider.route(cfg, a, path, search);
    if ("refused" in r) refusal = r.refused;
    return "url" in r;
  });
  if (serving.length === 0) {
    throw new GatewayError(400, "invalid_request_error", `none of your ${provider.name} accounts can serve ${path}: ${refusal}.`);
  }
  const usable = serving.filter((a) => a.enabled && !a.needsReauth).sort((a, b) => a.position - b.position || a.createdAt - b.createdAt);
  if (usable.length === 0) {
    const reauth = serving.filter((a) => a.needsReauth).map((a) => `"${a.label}"`);
    throw new GatewayError(
      403,
      "permission_error",
      reauth.length
        ? `every ${provider.name} account of yours is disabled or needs a new login (${reauth.join(", ")}): run \`npx subpool login ${provider.id}\`.`
        : `every ${provider.name} account of yours is disabled: enable one with PATCH /api/accounts/:id {"enabled":true}.`,
    );
  }
  return usable;
}

export function isCooling(a: AccountState, now: number): boolean {
  return a.cooldownUntil !== null && a.cooldownUntil > now;
}

/** The earliest moment any of the accounts is free again, or null if none is cooling. */
export function earliestRelease(accounts: AccountState[], now: number): number | null {
  const ends = accounts.map((a) => a.cooldownUntil).filter((t): t is number => t !== null && t > now);
  return ends.length ? Math.min(...ends) : null;
}
