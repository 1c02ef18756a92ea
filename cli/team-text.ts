/**
 * The team's limits and alert events as the CLI reads and writes them: counts typed the human way
 * (`2M`, `500k`, `none`), the short form a table has room for (`60 rpm · 2M/day · claude-sonnet-*`),
 * and the option each field of the API is set with. Plain functions, no imports at run time: the
 * option parsers in program.ts use them, so --help stays as light as it was.
 */
import type { AlertEventName, LimitField, Limits } from "../src/wire.js";

const MULTIPLIERS: Record<string, number> = { "": 1, k: 1e3, m: 1e6, g: 1e9, b: 1e9, t: 1e12 };

/**
 * "2M" -> 2_000_000, "500k" -> 500_000, "1.5m" -> 1_500_000, "2,000,000" and "2_000_000" -> 2_000_000,
 * "none" (or "off", "unlimited") -> null. Whether the number is in range is the gateway's to say (its
 * refusal names the field); this only reads what was typed. Throws Error with what to type instead.
 */
export function parseCount(raw: string): number | null {
  const s = raw.trim().toLowerCase();
  if (s === "none" || s === "off" || s === "unlimited" || s === "null") return null;
  const m = /^(-?)(\d+(?:[,_]\d{3})*(?:\.\d+)?|\.\d+)\s*([kmgbt]?)$/.exec(s);
  if (!m) throw new Error(`"${raw}" is not a number: give a whole number (2000000, 2M, 500k), or none for no limit`);
  const n = Number(`${m[1]}${m[2]!.replace(/[,_]/g, "")}`) * MULTIPLIERS[m[3]!]!;
  // 1.5M is exact; 0.0000001M is not a whole number: refused here, not rounded behind the person's back.
  const whole = Math.round(n);
  if (Math.abs(n - whole) > 1e-6 * Math.max(1, Math.abs(n))) throw new Error(`"${raw}" is not a whole number`);
  if (!Number.isSafeInteger(whole)) throw new Error(`"${raw}" is too large`);
  return whole;
}

/**
 * "claude-sonnet-*, claude-haiku-*" -> the globs; "none" (or "all", "*") -> null: every model. Split on
 * commas only, each trimmed: "claude opus" stays one name, for the gateway to refuse in its words
 * (a glob has no spaces), instead of becoming two names nobody typed.
 */
export function parseModels(raw: string): string[] | null {
  const s = raw.trim();
  if (/^(none|all|any|null)$/i.test(s) || s === "*") return null;
  const globs = s
    .split(",")
    .map((g) => g.trim())
    .filter(Boolean);
  if (globs.length === 0) throw new Error("give model names or globs, comma-separated (claude-sonnet-*,claude-haiku-*), or none for every model");
  return globs;
}

/**
 * What an option parser answers for "none": commander turns a parser's null into "" (its value for
 * an option given without one), so the "no limit" of an option travels as this string until the
 * command reads it (fromOption).
 */
export const NONE = "none";
export type OptionValue<T> = T | typeof NONE;

export const toOption = <T>(v: T | null): OptionValue<T> => (v === null ? NONE : v);
export const fromOption = <T>(v: OptionValue<T> | undefined): T | null | undefined => (v === NONE ? null : v);

/** Each limit: the option that sets it, and how it is named in a sentence. */
export const LIMIT_FIELDS: Record<LimitField, { flag: string; label: string }> = {
  requestsPerMinute: { flag: "--rpm", label: "requests per minute" },
  tokensPerDay: { flag: "--tokens-per-day", label: "tokens per UTC day" },
  tokensPerMonth: { flag: "--tokens-per-month", label: "tokens per UTC month" },
  models: { flag: "--models", label: "models" },
};

export const NO_LIMITS: Limits = { requestsPerMinute: null, tokensPerDay: null, tokensPerMonth: null, models: null };

/** Whether any limit is set. */
export const hasLimits = (l: Limits): boolean => l.requestsPerMinute !== null || l.tokensPerDay !== null || l.tokensPerMonth !== null || l.models !== null;

/** A limit set to 0, in words: the member is stopped, not idle. */
export const STOPPED: Record<Exclude<LimitField, "models">, string> = {
  requestsPerMinute: "stopped (0 requests/minute)",
  tokensPerDay: "no tokens allowed (0/day)",
  tokensPerMonth: "no tokens allowed (0/month)",
};

/** `60 rpm · 2M/day · 50M/month · claude-sonnet-*`, or "-" when nothing is limited. */
export function limitsShort(l: Limits, count: (n: number) => string): string {
  const parts: string[] = [];
  // 0 is the admin stopping the member: said so, not "0 rpm" (which reads like a member who sent nothing).
  if (l.requestsPerMinute !== null) parts.push(l.requestsPerMinute === 0 ? STOPPED.requestsPerMinute : `${count(l.requestsPerMinute)} rpm`);
  if (l.tokensPerDay !== null) parts.push(l.tokensPerDay === 0 ? STOPPED.tokensPerDay : `${count(l.tokensPerDay)}/day`);
  if (l.tokensPerMonth !== null) parts.push(l.tokensPerMonth === 0 ? STOPPED.tokensPerMonth : `${count(l.tokensPerMonth)}/month`);
  if (l.models !== null) parts.push(l.models.length === 0 ? "no model" : l.models.join(","));
  return parts.length ? parts.join(" · ") : "-";
}

/** The events an alert target can subscribe to (DESIGN §12), for help texts; the gateway checks them. */
export const ALERT_EVENTS = ["account.needs_reauth", "account.refused", "pool.exhausted", "quota.high", "limit.reached", "test"] as const satisfies readonly AlertEventName[];
// Every event of the API is listed above: a new one fails to compile here until it is added.
const allEvents: [AlertEventName] extends [(typeof ALERT_EVENTS)[number]] ? true : never = true;
void allEvents;

/** "a,b" -> ["a","b"]; "all" -> null (every event). */
export function parseEvents(raw: string): string[] | null {
  const s = raw.trim();
  if (/^(all|\*)$/i.test(s)) return null;
  const names = s
    .split(/[,\s]+/)
    .map((e) => e.trim())
    .filter(Boolean);
  if (names.length === 0) throw new Error(`name events, comma-separated (${ALERT_EVENTS.join(", ")}), or all`);
  return names;
}
