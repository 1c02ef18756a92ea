/**
 * Which conversation a request belongs to, for session affinity (docs/ARCHITECTURE.md, "Routing"):
 * the client's own `x-subpool-session` header, else what the provider module finds in the request
 * (Claude Code's metadata.user_id, Codex's session header, prompt_cache_key), else a digest of the
 * system prompt and the first message — the part of a conversation that does not change.
 */
import { digest } from "../providers/telemetry";
import type { Provider } from "../providers/types";
import { parseJsonBody } from "../util";

const MAX_ID = 512;

export function conversationKey(provider: Provider, headers: Headers, body: ArrayBuffer | null): string | null {
  const own = headers.get("x-subpool-session");
  if (own) return `${provider.id}|h:${own.slice(0, MAX_ID)}`;
  const text = body && body.byteLength ? new TextDecoder().decode(body) : "";
  const found = provider.sessionOf(headers, text);
  if (found) return `${provider.id}|${found}`;
  const j = parseJsonBody(text) as { system?: unknown; instructions?: unknown; messages?: unknown; input?: unknown } | undefined;
  if (!j || typeof j !== "object") return null;
  const turns = Array.isArray(j.messages) ? j.messages : Array.isArray(j.input) ? j.input : typeof j.input === "string" ? [j.input] : [];
  if (turns.length === 0) return null;
  return `${provider.id}|d:${digest(JSON.stringify([j.system ?? j.instructions ?? null, turns[0]]))}`;
}
