/**
 * Contract: a card's usage block, the last 14 days of requests and tokens as a small SVG chart with
 * totals, from what accounts-view.ts loaded into `usage`. Renders only; loads nothing.
 */
import type { UsageDay } from "../../wire";
import { compact, h, plural, svg } from "./dom";
import { S, USAGE_DAYS, now, usage, type Account } from "./state";

function lastDays(n: number): string[] {
  const out: string[] = [];
  const t = now();
  for (let i = n - 1; i >= 0; i--) out.push(new Date(t - i * 86_400_000).toISOString().slice(0, 10));
  return out;
}

export function usageBlock(a: Account): HTMLElement | null {
  if (!S.usageAvailable) return null;
  const u = usage.get(a.id);
  if (!u) return null;
  if (!u.days) return h("div", { class: "usage" }, h("p", { class: "muted small" }, "Usage: no data yet."));
  const byDate = new Map(u.days.map((d) => [d.date, d]));
  const days = lastDays(USAGE_DAYS).map((date) => byDate.get(date) ?? { date, requests: 0, inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 });
  const tokens = (d: UsageDay) => d.inputTokens + d.outputTokens + d.cacheReadTokens + d.cacheWriteTokens;
  const totalReq = days.reduce((s, d) => s + d.requests, 0);
  const totalTok = days.reduce((s, d) => s + tokens(d), 0);
  if (totalReq === 0 && totalTok === 0) {
    return h("div", { class: "usage" }, h("p", { class: "muted small" }, "Usage: no requests in the last 14 days."));
  }
  const max = Math.max(1, ...days.map(tokens));
  const W = 14 * USAGE_DAYS;
  const H = 48;
  const chart = svg(
    "svg",
    { viewBox: `0 0 ${W} ${H + 2}`, class: "chart", role: "img", "aria-label": `Tokens per day over the last ${USAGE_DAYS} days; the most on one day was ${compact.format(max)}` },
    ...days.map((d, i) => {
      const t = tokens(d);
      const bh = t === 0 ? 0 : Math.max(2, Math.round((t / max) * H));
      return svg(
        "rect",
        { x: i * 14 + 2, y: H - bh + 1, width: 10, height: bh, rx: 1.5, class: t === 0 ? "bar zero" : "bar" },
        svg("title", {}, `${d.date}: ${plural(d.requests, "request")}, ${compact.format(d.inputTokens)} input, ${compact.format(d.outputTokens)} output, ${compact.format(d.cacheReadTokens)} cache read, ${compact.format(d.cacheWriteTokens)} cache write tokens`),
      );
    }),
    svg("line", { x1: 0, x2: W, y1: H + 1, y2: H + 1, class: "axis" }),
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
