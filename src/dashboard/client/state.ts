/**
 * Contract: the page's shared state and constants. One mutable object, S, holds what several views
 * read and write (the key, the signed-in user, the accounts, timers, flags); the Maps and Set are
 * shared the same way. `hooks` are the late-bound calls that would otherwise make import circles
 * (the API signs out on a refused key; adding an account reloads the list): app.ts fills them.
 * No DOM work here.
 */

import type { AccountView, Me, Quota, UsageDay } from "../../wire";

/** `quota` is absent on a gateway that does not read quota telemetry yet; null before the first answer. */
export type Account = AccountView & { quota?: Quota | null };
interface ProviderInfo {
  id: string;
  name: string;
  types: string[];
}

// ---- constants --------------------------------------------------------------------------------------

export const KEY_STORE = "subpool.gatewayKey";
export const REFRESH_MS = 10_000;
export const USAGE_MAX_AGE_MS = 60_000;
export const USAGE_DAYS = 14;

export const VIEWS = ["accounts", "settings", "connect", "admin"] as const;
export type View = (typeof VIEWS)[number];

// ---- state -----------------------------------------------------------------------------------------

export const S = {
  key: null as string | null,
  me: null as Me | null,
  providers: [] as ProviderInfo[],
  accounts: [] as Account[],
  /** Server clock minus ours (from the Date header), so countdowns match the gateway's cooldowns. */
  skewMs: 0,
  refreshTimer: undefined as number | undefined,
  tickTimer: undefined as number | undefined,
  settingsAvailable: null as boolean | null,
  usageAvailable: true,
  login: null as { provider: string; loginId: string; cancelled: boolean; timer?: number } | null,
  /** The view on screen; a hash that names no view (the skip link's #main) keeps it. */
  shownView: null as View | null,
  /** The settings form was changed since it was last filled from the gateway. */
  settingsDirty: false,
};
export const usage = new Map<string, { at: number; days: UsageDay[] | null }>();
export const checks = new Map<string, { ok: boolean | null; text: string }>();
/** Account ids whose inline rename form is open: the periodic refresh leaves the list alone meanwhile. */
export const renaming = new Set<string>();

export const now = () => Date.now() + S.skewMs;

export function providerName(id: string): string {
  return S.providers.find((p) => p.id === id)?.name ?? id;
}

/** Calls wired by app.ts: session.ts's signOut and accounts-view.ts's loadAccounts. */
export const hooks = {
  signOut: (_message?: string): void => {},
  loadAccounts: (): Promise<void> => Promise.resolve(),
};
