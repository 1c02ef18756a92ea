/** The provider registry: ids, proxy prefixes and modules (DESIGN §4 table). */
import { anthropic } from "./anthropic";
import { copilot } from "./copilot";
import { openai } from "./openai";
import type { Provider, ProviderId } from "./types";

export const PROVIDERS: Record<ProviderId, Provider> = {
  anthropic,
  openai,
  "github-copilot": copilot,
};

export function providerFor(id: ProviderId): Provider {
  return PROVIDERS[id];
}

export type { Provider, ProviderId } from "./types";
export { PROVIDER_IDS } from "./types";
