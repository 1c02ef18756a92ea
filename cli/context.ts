/** What every command that talks to the gateway starts from. */
import { Api } from "./api.js";
import { loadConfig, type ResolvedConfig } from "./config.js";

export interface Ctx {
  cfg: ResolvedConfig;
  api: Api;
}

export function context(): Ctx {
  const cfg = loadConfig();
  return { cfg, api: Api.from(cfg) };
}
