/** The gateway's answers (README "HTTP API"), as the CLI reads them. */

export const PROVIDERS = ["anthropic", "openai", "github-copilot"] as const;
export type Provider = (typeof PROVIDERS)[number];

export type AccountStatus = "active" | "cooling" | "needs_reauth" | "disabled";

export interface Account {
  id: string;
  provider: Provider;
  type: "api" | "oauth";
  label: string;
  position: number;
  enabled: boolean;
  status: AccountStatus;
  cooldownUntil: number | null;
  lastStatus: number | null;
  lastError: string | null;
  lastUsedAt: number | null;
  successCount: number;
  failureCount: number;
  createdAt: number;
}

export interface Me {
  id: string | null;
  name: string;
  role: "member" | "admin";
}

export interface User {
  id: string;
  name: string;
  role: "member" | "admin";
  createdAt: number;
}

export interface UserWithKey extends User {
  key: string;
}

export type LoginStart =
  | { loginId: string; provider: Provider; method: "code" | "redirect"; url: string; instructions?: string; expiresAt: number }
  | { loginId: string; provider: Provider; method: "device"; userCode: string; verificationUri: string; interval: number; instructions?: string; expiresAt: number };

export interface LoginDone {
  account: Account;
  created: boolean;
}

export interface LoginPending {
  status: "pending";
  interval: number;
}

export interface ImportResult {
  format: "opencode" | "claude-code" | "codex";
  imported: { entry: string; provider: Provider; type: "api" | "oauth"; action: "created" | "updated" | "unchanged"; account: Account }[];
  refused: { entry: string; reason: string }[];
}

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
