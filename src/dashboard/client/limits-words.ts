/**
 * Contract: a member's team limits in words, the same in the Admin view's table and in the member's
 * own views, so an admin and a member read one limit the same way. Formatting only: no DOM, no state.
 */
import type { Limits } from "../../wire";
import { compact } from "./dom";

/** Full numbers where a person compares them ("1,234,000 of 2,000,000"). */
export const full = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

export const hasLimits = (l: Limits | undefined | null): l is Limits =>
  !!l && (l.requestsPerMinute !== null || l.tokensPerDay !== null || l.tokensPerMonth !== null || l.models !== null);

/**
 * Short words for a table cell, a part per limit: "60 req/min", "2M tokens/day", {models}. A limit
 * of 0 is the admin stopping the member, said so ("stopped (0 requests/minute)", "no tokens allowed
 * (0/day)"): "0 req/min" would read like a member who sent nothing.
 */
export function limitsParts(l: Limits): (string | { models: string[] })[] {
  const parts: (string | { models: string[] })[] = [];
  if (l.requestsPerMinute !== null) parts.push(l.requestsPerMinute === 0 ? "stopped (0 requests/minute)" : `${full.format(l.requestsPerMinute)} req/min`);
  if (l.tokensPerDay !== null) parts.push(l.tokensPerDay === 0 ? "no tokens allowed (0/day)" : `${compact.format(l.tokensPerDay)} tokens/day`);
  if (l.tokensPerMonth !== null) parts.push(l.tokensPerMonth === 0 ? "no tokens allowed (0/month)" : `${compact.format(l.tokensPerMonth)} tokens/month`);
  if (l.models !== null) parts.push({ models: l.models });
  return parts;
}

/** The same in full, for a title or a screen reader: "2,000,000 tokens per UTC day". */
export function limitsLong(l: Limits): string {
  if (!hasLimits(l)) return "No limits";
  const parts: string[] = [];
  if (l.requestsPerMinute !== null) parts.push(l.requestsPerMinute === 0 ? "stopped: no requests allowed (0 requests per minute)" : `${full.format(l.requestsPerMinute)} requests per minute`);
  if (l.tokensPerDay !== null) parts.push(l.tokensPerDay === 0 ? "no tokens allowed (0 tokens per UTC day)" : `${full.format(l.tokensPerDay)} tokens per UTC day`);
  if (l.tokensPerMonth !== null) parts.push(l.tokensPerMonth === 0 ? "no tokens allowed (0 tokens per UTC month)" : `${full.format(l.tokensPerMonth)} tokens per UTC month`);
  if (l.models !== null) parts.push(`only the models ${l.models.join(", ")}`);
  return parts.join("; ");
}

/**
 * A number a person typed for a limit: empty is no limit (null); "2,000,000", "2 000 000", "2M",
 * "500k" are numbers. Anything else is NaN. Negative and fractional numbers pass through, for the
 * gateway to refuse in its own words.
 */
export function parseLimit(text: string): number | null {
  const t = text.trim().replace(/[,_\s]/g, "");
  if (t === "") return null;
  const m = /^(-?\d+(?:\.\d+)?)([kKmMbB]?)$/.exec(t);
  if (!m) return Number.NaN;
  const mult = { "": 1, k: 1e3, m: 1e6, b: 1e9 }[m[2]!.toLowerCase() as "" | "k" | "m" | "b"];
  return Math.round(Number(m[1]) * mult * 1e6) / 1e6;
}

/** Model globs from "claude-sonnet-*, gpt-5*": null when none. */
export function parseModels(text: string): string[] | null {
  const list = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  return list.length ? list : null;
}
