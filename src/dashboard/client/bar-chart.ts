/**
 * Contract: an inline SVG bar chart of days (a card's usage, the team's tokens), one bar per day,
 * stacked when a bar has several parts; `stretch` fills the box (a wide chart) instead of keeping
 * the bars' proportions. No inline style (the CSP): parts are coloured by class in
 * app.css. Each bar carries a <title> with its numbers; the chart as a whole is an image with a
 * label that says what it shows, for screen readers.
 */
import { svg } from "./dom";

export interface Bar {
  /** The bar's parts, bottom first; `cls` colours each (a bar of one part: "bar"). */
  parts: { value: number; cls: string }[];
  /** What a pointer or a screen reader hears for this bar. */
  title: string;
}

const STEP = 14;
const WIDTH = 10;

/**
 * A bar of zero is drawn as one empty rect of class "bar zero", so that every day has its place;
 * a bar that is not zero is at least 2 units high, so that a small day still shows.
 */
export function barChart(bars: Bar[], opts: { height: number; cls: string; label: string; stretch?: boolean }): SVGElement {
  const H = opts.height;
  const total = (b: Bar) => b.parts.reduce((s, p) => s + p.value, 0);
  const max = Math.max(1, ...bars.map(total));
  const W = STEP * bars.length;
  return svg(
    "svg",
    { viewBox: `0 0 ${W} ${H + 2}`, class: opts.cls, role: "img", "aria-label": opts.label, ...(opts.stretch ? { preserveAspectRatio: "none" } : {}) },
    ...bars.map((b, i) => {
      const x = i * STEP + (STEP - WIDTH) / 2;
      const t = total(b);
      if (t === 0) return svg("rect", { x, y: H + 1, width: WIDTH, height: 0, class: "bar zero" }, svg("title", {}, b.title));
      const barH = Math.max(2, Math.round((t / max) * H));
      const shown = b.parts.filter((p) => p.value > 0);
      let y = H + 1;
      const rects = shown.map((p, j) => {
        // The last part takes what rounding left, so the parts add up to the bar.
        const ph = j === shown.length - 1 ? y - (H + 1 - barH) : Math.round((p.value / t) * barH);
        y -= ph;
        // Rounded corners only where the chart keeps its proportions and the bar is one part.
        return svg("rect", { x, y, width: WIDTH, height: ph, class: p.cls, ...(shown.length === 1 && !opts.stretch ? { rx: 1.5 } : {}) });
      });
      if (rects.length === 1) {
        rects[0]!.append(svg("title", {}, b.title));
        return rects[0]!;
      }
      return svg("g", { class: "stack" }, svg("title", {}, b.title), ...rects);
    }),
    svg("line", { x1: 0, x2: W, y1: H + 1, y2: H + 1, class: "axis" }),
  );
}

/** The last n UTC dates (YYYY-MM-DD) up to the given time, oldest first. */
export function lastDays(n: number, t: number): string[] {
  const out: string[] = [];
  for (let i = n - 1; i >= 0; i--) out.push(new Date(t - i * 86_400_000).toISOString().slice(0, 10));
  return out;
}
