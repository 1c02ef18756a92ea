/**
 * The provider registry: the one list of providers the gateway serves. Adding a provider is one
 * module (see ./types.ts for what it supplies) plus one line here; routes, validation, error
 * formats, imports and messages all read this list.
 */
import { anthropic } from "./anthropic";
import { copilot } from "./copilot";
import { openai } from "./openai";
import type { Provider, ProviderId } from "./types";

export const PROVIDERS: readonly Provider[] = [anthropic, openai, copilot];

const byId = new Map<string, Provider>(PROVIDERS.map((p) => [p.id, p]));

export const PROVIDER_IDS: readonly ProviderId[] = PROVIDERS.map((p) => p.id);

/** The provider with this id; undefined for anything else (including `constructor` and friends). */
export function findProvider(id: string): Provider | undefined {
  return byId.get(id);
}

/** For ids that come from our own storage: a missing provider is a bug, not bad input. */
export function providerFor(id: ProviderId): Provider {
  const p = byId.get(id);
  if (!p) throw new Error(`unknown provider id in storage: ${id.slice(0, 40)}`);
  return p;
}

/** The provider whose proxy prefix starts this path, if any (for error formats). */
export function providerForPath(path: string): Provider | undefined {
  return PROVIDERS.find((p) => path === p.prefix || path.startsWith(`${p.prefix}/`));
}

/** `"a", "b" or "c"`: for messages that list what is accepted. */
export const providerList = (): string => PROVIDER_IDS.map((id) => `"${id}"`).join(", ");

export type { AccountExtras, AccountRef, AccountType, Provider, ProviderId } from "./types";
