/**
 * Contract: a card's usage block, the last 14 days of requests and tokens as a small SVG chart with
 * totals, from what accounts-view.ts loaded into `usage`. Renders only; loads nothing.
 */
import type { UsageDay } from "../../wire";
import { barChart, lastDays } from "./bar-chart";
import { compact, h, plural } from "./dom";
import { S, USAGE_DAYS, now, usage, type Account } from "./state";

export const dayTokens = (d: UsageDay) => d.inputTokens + d.outputTokens + d.cacheReadTokens + d.cacheWriteTokens;

export function usageBlock(a: Account): HTMLElement | null {
  if (!S.usageAvailable) return null;
  const u = usage.get(a.id);
  if (!u) return null;
  if (!u.days) return h("div", { class: "usage" }, h("p", { class: "muted small" }, "Usage: no data yet."));
  const byDate = new Map(u.days.map((d) => [d.date, d]));
  const days = lastDays(USAGE_DAYS, now()).map((date) => byDate.get(date) ?? { date, requests: 0, inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 });
  const totalReq = days.reduce((s, d) => s + d.requests, 0);
  const totalTok = days.reduce((s, d) => s + dayTokens(d), 0);
  if (totalReq === 0 && totalTok === 0) {
    return h("div", { class: "usage" }, h("p", { class: "muted small" }, "Usage: no requests in the last 14 days."));
  }
  const max = Math.max(1, ...days.map(dayTokens));
  const chart = barChart(
    days.map((d) => ({
      parts: [{ value: dayTokens(d), cls: "bar" }],
      title: `${d.date}: ${plural(d.requests, "request")}, ${compact.format(d.inputTokens)} input, ${compact.format(d.outputTokens)} output, ${compact.format(d.cacheReadTokens)} cache read, ${compact.format(d.cacheWriteTokens)} cache write tokens`,
    })),
    { height: 48, cls: "chart", label: `Tokens per day over the last ${USAGE_DAYS} days; the most on one day was ${compact.format(max)}` },
  );
  const sum = (f: (d: UsageDay) => number) => compact.format(days.reduce((s, d) => s + f(d), 0));
  return h(
    "div",
    { class: "usage" },
    h("h4", {}, "Usage, last 14 days"),
    chart,
    h(
      "p",
      { class: "muted small" },
      `${plural(totalReq, "request")} · ${sum((d) => d.inputTokens)} input · ${sum((d) => d.outputTokens)} output · ${sum((d) => d.cacheReadTokens)} cache read · ${sum((d) => d.cacheWriteTokens)} cache write tokens`,
    ),
  );
}
