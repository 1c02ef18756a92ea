/** The gateway's answers as the CLI reads them: the wire types the Worker itself uses (src/wire.ts), plus the CLI's provider names. */

export const PROVIDERS = ["anthropic", "openai", "github-copilot"] as const;
export type Provider = (typeof PROVIDERS)[number];

import type { AccountView, ImportAnswer, LoginDoneAnswer, LoginPendingAnswer, LoginStartAnswer, UserProfile } from "../src/wire.js";

export type { AccountStatus, Me, UserWithKey } from "../src/wire.js";
export type Account = AccountView;
export type User = UserProfile;
export type LoginStart = LoginStartAnswer;
export type LoginDone = LoginDoneAnswer;
export type LoginPending = LoginPendingAnswer;
export type ImportResult = ImportAnswer;

export const PROVIDER_ALIASES: Record<string, Provider> = {
  anthropic: "anthropic",
  claude: "anthropic",
  openai: "openai",
  chatgpt: "openai",
  codex: "openai",
  "github-copilot": "github-copilot",
  copilot: "github-copilot",
  github: "github-copilot",
};
