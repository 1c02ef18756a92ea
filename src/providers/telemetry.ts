/**
 * The shapes of what providers tell us besides the answer itself — quota windows and token usage —
 * and the readers shared by several providers. Each provider module decides which headers and
 * events it reads; the pool only stores and compares the results.
 */
import type { Credits, QuotaWindow } from "../wire";
import { durationToSeconds, resetToSeconds } from "./classify";

export type { Quota, QuotaWindow } from "../wire";

/** Quota read from one answer (the pool stamps `updatedAt`). */
export interface QuotaReading {
  status: "allowed" | "allowed_warning" | "rejected" | null;
  windows: Record<string, QuotaWindow>;
  credits?: Credits;
}

/** Tokens of one answer (Anthropic's meaning: input excludes cache reads and writes). */
export interface Usage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
}

export const noUsage = (): Usage => ({ inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 });

/** Reads usage from a whole JSON answer, and from the events of a stream, one at a time. */
export interface UsageReader {
  /**
   * The JSON key under which answers and stream events carry usage ("usage"): the gateway looks for
   * it in the text first and parses only what holds it.
   */
  key: string;
  fromJson(body: unknown): Usage | null;
  /**
   * Folds one SSE event (its data parsed) into the usage so far. Called only for events whose text
   * mentions "usage". Returns the new total (providers differ: some send cumulative figures).
   */
  fromSse(sofar: Usage | null, event: string, data: unknown): Usage | null;
}

/** A non-negative whole number from a header or a JSON field, else undefined. */
export function count(v: unknown): number | undefined {
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  return typeof n === "number" && Number.isFinite(n) && n >= 0 ? n : undefined;
}

/** Utilization as stated (it can pass 1: "1.01" is seen on an exhausted window), within sane bounds. */
const sane = (x: number) => Math.max(0, Math.min(x, 10));

/**
 * API-key budgets (`1 - remaining / limit` per budget) from `<limit>`, `<remaining>`, `<reset>`
 * header names; the reset may be a duration ("6m0s"), seconds, epoch seconds or an RFC 3339 date.
 */
export function budgetWindows(headers: Headers, now: number, names: Record<string, { limit: string; remaining: string; reset: string }>): Record<string, QuotaWindow> {
  const out: Record<string, QuotaWindow> = {};
  for (const [window, h] of Object.entries(names)) {
    const limit = count(headers.get(h.limit));
    const remaining = count(headers.get(h.remaining));
    if (limit === undefined || remaining === undefined || limit === 0) continue;
    const raw = headers.get(h.reset);
    const secs = durationToSeconds(raw) ?? resetToSeconds(raw, now);
    out[window] = { utilization: sane(1 - remaining / limit), resetsAt: secs !== undefined ? Math.round(now + secs * 1000) : null };
  }
  return out;
}

/** A window from a utilization (0..1) and an absolute reset, when the utilization is there. */
export function windowOf(utilization: number | undefined, resetsAt: number | null): QuotaWindow | undefined {
  return utilization === undefined ? undefined : { utilization: sane(utilization), resetsAt };
}

/**
 * The utilization of the account's most-used window; 0 when it has no telemetry. A window of one
 * model only (named `<window>_<model>`, e.g. Claude's `7d_opus`) does not count: it says nothing of
 * requests for other models.
 */
export function mostUsed(q: { windows: Record<string, QuotaWindow> } | null, now: number): number {
  if (!q) return 0;
  let max = 0;
  for (const [name, w] of Object.entries(q.windows)) {
    if (name.includes("_")) continue;
    // A window whose reset has passed has started again.
    if (w.resetsAt !== null && w.resetsAt <= now) continue;
    if (w.utilization > max) max = w.utilization;
  }
  return max;
}

/**
 * The conversation fallback: a short digest of the system prompt and the first message (cyrb53, not
 * cryptographic — a collision only puts two conversations on the same account).
 */
export function digest(text: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36);
}
