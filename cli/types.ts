/**
 * The gateway's answers as the CLI reads them: the wire types the Worker itself uses (src/wire.ts),
 * and the providers as the gateway's catalogue lists them (src/providers/catalogue.ts: ids, the names
 * people type, account types, sign-in methods). Neither is copied here: both files are compiled in.
 */
import { PROVIDER_CATALOGUE, providerFacts, type CatalogueEntry, type CatalogueProviderId } from "../src/providers/catalogue.js";
import type { AccountView, ImportAnswer, LoginDoneAnswer, LoginPendingAnswer, LoginStartAnswer, UserProfile } from "../src/wire.js";

export type { AccountStatus, Me, UserWithKey } from "../src/wire.js";
export { PROVIDER_CATALOGUE };
export type Account = AccountView;
export type User = UserProfile;
export type LoginStart = LoginStartAnswer;
export type LoginDone = LoginDoneAnswer;
export type LoginPending = LoginPendingAnswer;
export type ImportResult = ImportAnswer;

export type Provider = CatalogueProviderId;
export type ProviderInfo = CatalogueEntry;

/** Every provider id, in the catalogue's order. */
export const PROVIDERS: readonly Provider[] = PROVIDER_CATALOGUE.map((p) => p.id);

/** The provider an id or one of its aliases names ("claude", "chatgpt", "copilot" …); undefined otherwise. */
export function findProvider(nameOrAlias: string): ProviderInfo | undefined {
  return providerFacts(nameOrAlias);
}

/** The catalogue's entry for an id the gateway sent; undefined for a provider this CLI does not know (a newer gateway). */
export function infoOf(id: string): ProviderInfo | undefined {
  return PROVIDER_CATALOGUE.find((p) => p.id === id);
}

/** The providers that take API keys (`subpool accounts add`). */
export const API_KEY_PROVIDERS: readonly ProviderInfo[] = PROVIDER_CATALOGUE.filter((p) => (p.types as readonly string[]).includes("api"));

/** Every alias, for help texts: "claude, chatgpt, codex, copilot, github". */
export const PROVIDER_ALIAS_LIST: readonly string[] = PROVIDER_CATALOGUE.flatMap((p) => p.aliases);

/** The tools whose credential files `subpool import` reads: opencode (every provider in one file), then each provider's own. */
export const CREDENTIAL_TOOLS: readonly string[] = ["opencode", ...PROVIDER_CATALOGUE.flatMap((p) => p.toolFiles.map((f) => f.tool))];
