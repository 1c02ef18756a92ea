/**
 * The credential files people already have (PROVIDERS.md), turned into account entries:
 *   opencode    auth.json          {"<provider>": {"type":"oauth",refresh,access,expires} | {"type":"api",key}}
 *   Claude Code .credentials.json  {"claudeAiOauth": {accessToken, refreshToken, expiresAt, ...}}
 *   Codex       auth.json          {"OPENAI_API_KEY": null|string, "tokens": {id_token, access_token, refresh_token, account_id}}
 * Each entry is validated on its own: a partly bad file yields what it can, and says per entry what
 * was refused and why. Reasons never quote a value (it could be a token).
 */
import { z } from "zod";
import { chatgptAccountIdFromJwt, jwtExpiry, openaiIdentity } from "../providers/openai";
import type { AccountType, ProviderId } from "../providers/types";

export type CredentialFileFormat = "opencode" | "claude-code" | "codex";

export interface ImportEntry {
  entry: string;
  provider: ProviderId;
  type: AccountType;
  key?: string;
  refresh?: string;
  access?: string;
  expires?: number | null;
  identity?: string | null;
  label?: string;
}

export interface Refusal {
  entry: string;
  reason: string;
}

const token = z.string().trim().min(1).max(16384);
const epochMs = z.number().int().nonnegative();

const OpencodeOAuth = z.object({ type: z.literal("oauth"), refresh: token, access: token.optional(), expires: epochMs.optional(), accountId: z.string().optional() });
const OpencodeApi = z.object({ type: z.literal("api"), key: token });
const ClaudeCode = z.object({ accessToken: token.optional(), refreshToken: token, expiresAt: epochMs.optional(), subscriptionType: z.string().max(40).optional() });
const CodexTokens = z.object({ id_token: z.string().optional(), access_token: token.optional(), refresh_token: token, account_id: z.string().optional() });

/** opencode's ids for the providers subpool serves. */
const OPENCODE_PROVIDERS: Record<string, ProviderId> = { anthropic: "anthropic", openai: "openai", "github-copilot": "github-copilot" };

const why = (e: z.ZodError) => {
  const i = e.issues[0]!;
  return `${i.path.length ? `${i.path.join(".")}: ` : ""}${i.message}`;
};

function openaiOAuth(entry: string, refresh: string, access: string | undefined, idToken: string | undefined, label?: string): ImportEntry {
  const who = openaiIdentity(access, idToken);
  return {
    entry,
    provider: "openai",
    type: "oauth",
    refresh,
    access,
    expires: access ? jwtExpiry(access) : null,
    identity: who.identity,
    label: label ?? who.label ?? undefined,
  };
}

export function detectFormat(data: Record<string, unknown>): CredentialFileFormat | null {
  if ("claudeAiOauth" in data) return "claude-code";
  if ("tokens" in data || "OPENAI_API_KEY" in data) return "codex";
  const values = Object.values(data);
  if (values.length > 0 && values.every((v) => v !== null && typeof v === "object" && "type" in (v as object))) return "opencode";
  return null;
}

export function parseCredentialFile(data: Record<string, unknown>): { format: CredentialFileFormat; entries: ImportEntry[]; refused: Refusal[] } | null {
  const format = detectFormat(data);
  if (!format) return null;
  const entries: ImportEntry[] = [];
  const refused: Refusal[] = [];

  if (format === "claude-code") {
    const r = ClaudeCode.safeParse(data.claudeAiOauth);
    if (!r.success) refused.push({ entry: "claudeAiOauth", reason: why(r.error) });
    else
      entries.push({
        entry: "claudeAiOauth",
        provider: "anthropic",
        type: "oauth",
        refresh: r.data.refreshToken,
        access: r.data.accessToken,
        expires: r.data.expiresAt ?? null,
        label: `Claude Code${r.data.subscriptionType ? ` (${r.data.subscriptionType.replace(/[^\w -]/g, "")})` : ""}`,
      });
  }

  if (format === "codex") {
    if (data.tokens !== undefined && data.tokens !== null) {
      const r = CodexTokens.safeParse(data.tokens);
      if (!r.success) refused.push({ entry: "tokens", reason: why(r.error) });
      else {
        const e = openaiOAuth("tokens", r.data.refresh_token, r.data.access_token, r.data.id_token);
        if (!chatgptAccountIdFromJwt(r.data.access_token) && r.data.account_id && !e.identity) e.identity = `openai:${r.data.account_id}:`;
        entries.push(e);
      }
    }
    if (typeof data.OPENAI_API_KEY === "string" && data.OPENAI_API_KEY.trim()) {
      entries.push({ entry: "OPENAI_API_KEY", provider: "openai", type: "api", key: data.OPENAI_API_KEY.trim(), label: "Codex API key" });
    } else if (data.OPENAI_API_KEY !== undefined && data.OPENAI_API_KEY !== null) {
      refused.push({ entry: "OPENAI_API_KEY", reason: "expected a string or null" });
    }
  }

  if (format === "opencode") {
    for (const [name, value] of Object.entries(data)) {
      const provider = OPENCODE_PROVIDERS[name];
      if (!provider) {
        refused.push({ entry: name, reason: `provider "${name.slice(0, 40).replace(/[^\w.-]/g, "")}" is not one subpool serves (anthropic, openai, github-copilot)` });
        continue;
      }
      const type = (value as { type?: unknown }).type;
      if (type === "api") {
        const r = OpencodeApi.safeParse(value);
        if (!r.success) refused.push({ entry: name, reason: why(r.error) });
        else if (provider === "github-copilot") refused.push({ entry: name, reason: "github-copilot takes OAuth accounts only" });
        else entries.push({ entry: name, provider, type: "api", key: r.data.key, label: "opencode API key" });
      } else if (type === "oauth") {
        const r = OpencodeOAuth.safeParse(value);
        if (!r.success) refused.push({ entry: name, reason: why(r.error) });
        else if (provider === "openai") entries.push({ ...openaiOAuth(name, r.data.refresh, r.data.access, undefined, "opencode"), expires: r.data.expires ?? null });
        else entries.push({ entry: name, provider, type: "oauth", refresh: r.data.refresh, access: r.data.access, expires: r.data.expires ?? null, label: "opencode" });
      } else {
        refused.push({ entry: name, reason: `entries of type "${String(type).slice(0, 20).replace(/[^\w-]/g, "")}" cannot be imported (only "api" and "oauth")` });
      }
    }
  }
  return { format, entries, refused };
}
