/**
 * Contract: the Admin view's chart of the team's tokens per UTC day over the asked window, stacked
 * by member so a team lead sees who uses the gateway: the five who used the most get a colour each,
 * everyone else shares one. A legend names the colours with each one's total. Renders only.
 */
import type { TeamMemberUsage } from "../../wire";
import { barChart } from "./bar-chart";
import { compact, h, plural } from "./dom";
import { dayTokens } from "./usage";

const COLOURED = 5;
const dateFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
const dateWords = (date: string) => dateFmt.format(Date.parse(`${date}T00:00:00Z`));

export function teamChart(users: TeamMemberUsage[], days: number): HTMLElement {
  const dates = users[0]?.days.map((d) => d.date) ?? [];
  const windowTokens = (u: TeamMemberUsage) => u.days.reduce((s, d) => s + dayTokens(d), 0);
  const ranked = users
    .map((u) => ({ u, tokens: windowTokens(u) }))
    .filter((r) => r.tokens > 0)
    .sort((a, b) => b.tokens - a.tokens);
  const wrap = h("div", { class: "team-chart" }, h("h3", {}, "Tokens per day"));
  if (ranked.length === 0 || dates.length === 0) {
    wrap.append(h("p", { class: "muted small" }, `No requests in the last ${plural(days, "day")}.`));
    return wrap;
  }
  const top = ranked.slice(0, COLOURED);
  const rest = ranked.slice(COLOURED);
  const series = [
    ...top.map((r, i) => ({ name: r.u.name, cls: `bar s${i}`, swatch: `s${i}`, total: r.tokens, on: (i2: number) => dayTokens(r.u.days[i2]!) })),
    ...(rest.length
      ? [
          {
            name: `${plural(rest.length, "other member")}`,
            cls: "bar others",
            swatch: "others",
            total: rest.reduce((s, r) => s + r.tokens, 0),
            on: (i2: number) => rest.reduce((s, r) => s + dayTokens(r.u.days[i2]!), 0),
          },
        ]
      : []),
  ];
  const requestsOn = (i: number) => users.reduce((s, u) => s + (u.days[i]?.requests ?? 0), 0);
  const totals = dates.map((_, i) => series.reduce((s, x) => s + x.on(i), 0));
  const max = Math.max(...totals);
  const maxDate = dates[totals.indexOf(max)]!;
  const chart = barChart(
    dates.map((date, i) => ({
      parts: series.map((x) => ({ value: x.on(i), cls: x.cls })),
      title: `${dateWords(date)}: ${compact.format(totals[i]!)} tokens, ${plural(requestsOn(i), "request")}${
        totals[i] ? `; ${series.filter((x) => x.on(i) > 0).map((x) => `${x.name} ${compact.format(x.on(i))}`).join(", ")}` : ""
      }`,
    })),
    {
      height: 100,
      cls: "chart wide",
      stretch: true,
      label: `The team's tokens per UTC day over the last ${plural(days, "day")}, by member; the most in one day was ${compact.format(max)} on ${dateWords(maxDate)}`,
    },
  );
  wrap.append(
    chart,
    h("p", { class: "chart-axis muted small", "aria-hidden": "true" }, h("span", {}, dateWords(dates[0]!)), h("span", {}, `most in a day: ${compact.format(max)}`), h("span", {}, dateWords(dates[dates.length - 1]!))),
    h(
      "ul",
      { class: "legend", "aria-label": "Members in the chart, with their tokens over the window" },
      ...series.map((x) => h("li", {}, h("span", { class: `swatch ${x.swatch}`, "aria-hidden": "true" }), `${x.name} `, h("span", { class: "muted" }, compact.format(x.total)))),
    ),
  );
  return wrap;
}
