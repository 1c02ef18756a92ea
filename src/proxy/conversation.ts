/**
 * Which conversation a request belongs to, for session affinity (docs/ARCHITECTURE.md, "Routing").
 * In order, stopping at the first found:
 *  1. headers: the client's own `x-subpool-session`, else what the provider's clients send (Claude
 *     Code's `x-claude-code-session-id`, Codex CLI's `session-id`): free, and the body is not read;
 *  2. the body, with bounded work whatever its size (DESIGN §11): the provider looks for its field
 *     (metadata.user_id, prompt_cache_key) in the body's last and first BODY_WINDOW bytes, where
 *     the real clients put it;
 *  3. a digest of the conversation's opening: of the system prompt and first message (the provider
 *     says which fields) for a body up to PARSE_LIMIT, else of the body's first BODY_WINDOW bytes —
 *     a conversation grows at its end, so its beginning stays the same from turn to turn.
 */
import { digest } from "../providers/telemetry";
import type { Provider } from "../providers/types";
import { parseJsonBody } from "../util";

const MAX_ID = 512;
const BODY_WINDOW = 16 * 1024;
const PARSE_LIMIT = 32 * 1024;

export function headerConversation(provider: Provider, headers: Headers): string | null {
  const own = headers.get("x-subpool-session");
  if (own) return `${provider.id}|h:${own.slice(0, MAX_ID)}`;
  const found = provider.session.fromHeaders(headers);
  return found ? `${provider.id}|${found.slice(0, MAX_ID + 2)}` : null;
}

export function bodyConversation(provider: Provider, body: ArrayBuffer | null): string | null {
  if (!body || body.byteLength === 0) return null;
  const bytes = new Uint8Array(body);
  const dec = new TextDecoder();
  const small = bytes.byteLength <= PARSE_LIMIT;
  const head = small ? dec.decode(bytes) : dec.decode(bytes.subarray(0, BODY_WINDOW));
  const tail = small ? head : dec.decode(bytes.subarray(bytes.byteLength - BODY_WINDOW));
  const found = provider.session.fromBody(tail) ?? (small ? null : provider.session.fromBody(head));
  if (found) return `${provider.id}|${found.slice(0, MAX_ID + 2)}`;
  if (!small) return `${provider.id}|b:${digest(head)}`;
  const opening = provider.session.opening(parseJsonBody(head));
  return opening === null ? null : `${provider.id}|d:${digest(JSON.stringify(opening))}`;
}
