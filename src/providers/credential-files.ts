/**
 * The credential files people already have, turned into account entries:
 *   opencode    auth.json   {"<provider>": {"type":"oauth",refresh,access,expires} | {"type":"api",key}}
 *               (several providers in one file: each provider module names its key)
 *   tool files  each provider module describes its own tools' files (Claude Code, Codex CLI, ...)
 * Each entry is validated on its own: a partly bad file yields what it can, and says per entry what
 * was refused and why. Reasons never quote a value (it could be a token).
 */
import { z } from "zod";
import { PROVIDERS } from "./index";
import { credentialProblem, epochMs, token, why } from "./import-fields";
import type { ImportEntry, Provider, Refusal } from "./types";

export type { ImportEntry, Refusal } from "./types";

const OpencodeOAuth = z.object({ type: z.literal("oauth"), refresh: token, access: token.optional(), expires: epochMs.optional(), accountId: z.string().optional() });
const OpencodeApi = z.object({ type: z.literal("api"), key: token });

/** opencode's keys for the providers subpool serves (a Map: a key named `constructor` is just unknown). */
const byOpencodeKey = new Map<string, Provider>(PROVIDERS.flatMap((p) => (p.imports.opencodeKey ? [[p.imports.opencodeKey, p] as const] : [])));

const clean = (s: string, n: number) => s.slice(0, n).replace(/[^\w.-]/g, "");

function isOpencode(data: Record<string, unknown>): boolean {
  const values = Object.values(data);
  return values.length > 0 && values.every((v) => v !== null && typeof v === "object" && !Array.isArray(v) && "type" in (v as object));
}

function parseOpencode(data: Record<string, unknown>): { entries: ImportEntry[]; refused: Refusal[] } {
  const entries: ImportEntry[] = [];
  const refused: Refusal[] = [];
  for (const [name, value] of Object.entries(data)) {
    const provider = byOpencodeKey.get(name);
    if (!provider) {
      refused.push({ entry: name, reason: `provider "${clean(name, 40)}" is not one subpool serves (${[...byOpencodeKey.keys()].join(", ")})` });
      continue;
    }
    const type = (value as { type?: unknown }).type;
    if (type === "api") {
      const r = OpencodeApi.safeParse(value);
      if (!r.success) refused.push({ entry: name, reason: why(r.error) });
      else if (!provider.types.includes("api")) refused.push({ entry: name, reason: `${provider.name} takes OAuth accounts only` });
      else entries.push({ entry: name, provider: provider.id, type: "api", key: r.data.key, label: "opencode API key" });
    } else if (type === "oauth") {
      const r = OpencodeOAuth.safeParse(value);
      if (!r.success) refused.push({ entry: name, reason: why(r.error) });
      else {
        const e: ImportEntry = { entry: name, provider: provider.id, type: "oauth", refresh: r.data.refresh, access: r.data.access, expires: r.data.expires ?? null, label: "opencode" };
        entries.push(provider.imports.oauthEntry?.(e) ?? e);
      }
    } else {
      // Never String() an untrusted value: a deeply nested array overflows the stack when joined.
      const shown = typeof type === "string" ? `"${clean(type, 20)}"` : Array.isArray(type) ? "an array" : typeof type;
      refused.push({ entry: name, reason: `entries of type ${shown} cannot be imported (only "api" and "oauth")` });
    }
  }
  return { entries, refused };
}

/**
 * Every entry a reader produced, held to the credential rule once more: a file format whose reader
 * takes a field as a plain string still cannot bring in what POST /api/accounts would refuse.
 */
function checked(parsed: { entries: ImportEntry[]; refused: Refusal[] }): { entries: ImportEntry[]; refused: Refusal[] } {
  const entries: ImportEntry[] = [];
  const refused = [...parsed.refused];
  for (const raw of parsed.entries) {
    const e = { ...raw };
    for (const f of CRED_FIELDS) if (typeof e[f] === "string") e[f] = e[f].trim();
    const bad = CRED_FIELDS.map((f) => [f, typeof e[f] === "string" ? credentialProblem(e[f]) : null] as const).find(([, p]) => p);
    if (bad) refused.push({ entry: e.entry, reason: `${bad[0]}: the ${FIELD_NAMES[bad[0]]} ${bad[1]}` });
    else entries.push(e);
  }
  return { entries, refused };
}

const CRED_FIELDS = ["key", "refresh", "access"] as const;
const FIELD_NAMES = { key: "API key", refresh: "refresh token", access: "access token" } as const;

export function parseCredentialFile(data: Record<string, unknown>): { format: string; entries: ImportEntry[]; refused: Refusal[] } | null {
  for (const p of PROVIDERS) {
    for (const f of p.imports.files ?? []) if (f.detect(data)) return { format: f.name, ...checked(f.parse(data)) };
  }
  if (isOpencode(data)) return { format: "opencode", ...checked(parseOpencode(data)) };
  return null;
}
