/**
 * The providers subpool serves, as plain data: ids, the names people type for them, which account
 * types each takes, how each signs in, and how its tools' credential files name it. One list for
 * every place that names providers outside the Worker's hot path: the CLI compiles this file in (as
 * it does src/wire.ts and src/connect.ts), and the provider modules are meant to read their facts
 * from here (test/provider-catalogue.test.ts holds the registry in ./index.ts to the same facts until
 * they do). No imports, no functions beyond lookups over this data: both builds can take it.
 *
 * Order matters: it is the order providers are listed in (the registry's order).
 */

export type CatalogueAccountType = "api" | "oauth";

/** How a subscription signs in: paste a code, come back to a redirect address, or enter a device code. */
export type LoginMethod = "code" | "redirect" | "device";

export interface ProviderFacts {
  /** The provider's id in the API and in storage: "anthropic". */
  id: string;
  /** For people: "Anthropic". */
  name: string;
  /** A short name where room is tight (a narrow table): "copilot". */
  short: string;
  /** The gateway's proxy prefix: "/anthropic". */
  prefix: string;
  /** Other names people type for it ("claude"); never another provider's id or alias. */
  aliases: readonly string[];
  /** The account types it takes, in the order to offer them. */
  types: readonly CatalogueAccountType[];
  /** The subscription a login signs in to: "Claude Pro/Max". */
  subscription: string;
  /** Where the subscription's sign-in happens (what the user is told to open). */
  loginSite: string;
  login: LoginMethod;
  /** Whether a login's refresh token works once: a login shared with another tool signs one of them out. */
  singleUseRefresh: boolean;
  /** The provider's key in opencode's auth.json. */
  opencodeKey: string;
  /** The "connect your tools" entry (src/connect.ts) that speaks this provider's API as is. */
  sdkTool: string;
  /**
   * The provider's own tools whose credential files `import` reads: the format's name in the import
   * answer, the tool's name, and the file's top-level keys that hold a credential, with its type.
   */
  toolFiles: readonly { format: string; tool: string; entries: Readonly<Record<string, CatalogueAccountType>> }[];
}

export const PROVIDER_CATALOGUE = [
  {
    id: "anthropic",
    name: "Anthropic",
    short: "anthropic",
    prefix: "/anthropic",
    aliases: ["claude"],
    types: ["api", "oauth"],
    subscription: "Claude Pro/Max",
    loginSite: "Claude",
    login: "code",
    singleUseRefresh: true,
    opencodeKey: "anthropic",
    sdkTool: "anthropic-sdk",
    toolFiles: [{ format: "claude-code", tool: "Claude Code", entries: { claudeAiOauth: "oauth" } }],
  },
  {
    id: "openai",
    name: "OpenAI",
    short: "openai",
    prefix: "/openai",
    aliases: ["chatgpt", "codex"],
    types: ["api", "oauth"],
    subscription: "ChatGPT Plus/Pro",
    loginSite: "ChatGPT",
    login: "redirect",
    singleUseRefresh: true,
    opencodeKey: "openai",
    sdkTool: "openai-sdk",
    toolFiles: [{ format: "codex", tool: "Codex", entries: { tokens: "oauth", OPENAI_API_KEY: "api" } }],
  },
  {
    id: "github-copilot",
    name: "GitHub Copilot",
    short: "copilot",
    prefix: "/copilot",
    aliases: ["copilot", "github"],
    types: ["oauth"],
    subscription: "GitHub Copilot",
    loginSite: "GitHub",
    login: "device",
    singleUseRefresh: false,
    opencodeKey: "github-copilot",
    sdkTool: "copilot",
    toolFiles: [],
  },
] as const satisfies readonly ProviderFacts[];

export type CatalogueEntry = (typeof PROVIDER_CATALOGUE)[number];
export type CatalogueProviderId = CatalogueEntry["id"];

/** Every provider id, in catalogue order. */
export const CATALOGUE_IDS: readonly CatalogueProviderId[] = PROVIDER_CATALOGUE.map((p) => p.id);

/** The provider an id or alias names (any case, surrounding blanks ignored); undefined for anything else. */
export function providerFacts(nameOrAlias: string): CatalogueEntry | undefined {
  const n = nameOrAlias.trim().toLowerCase();
  return PROVIDER_CATALOGUE.find((p: ProviderFacts) => p.id === n || p.aliases.includes(n));
}
