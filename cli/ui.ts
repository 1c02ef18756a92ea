/**
 * Output. Results (tables, JSON, confirmations) go to stdout; conversation (prompts, spinners,
 * instructions, warnings) goes to stderr, so `--json` output and `subpool env … > file` stay clean.
 * Colour only on a terminal, and never with NO_COLOR.
 */
import { styleText } from "node:util";

type Style = Parameters<typeof styleText>[0];

function colours(stream: NodeJS.WriteStream): boolean {
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== "") return false;
  if (process.env.FORCE_COLOR !== undefined) return process.env.FORCE_COLOR !== "0";
  return stream.isTTY === true && process.env.TERM !== "dumb";
}

export const paint = (style: Style, text: string, stream: NodeJS.WriteStream = process.stdout): string =>
  colours(stream) ? styleText(style, text) : text;

/** A result line (stdout). */
export function out(text = ""): void {
  process.stdout.write(`${text}\n`);
}

/** A conversation line (stderr). */
export function say(text = ""): void {
  process.stderr.write(`${text}\n`);
}

export function warn(text: string): void {
  say(`${paint("yellow", "warning:", process.stderr)} ${text}`);
}

export function printJson(value: unknown): void {
  out(JSON.stringify(value, null, 2));
}

/** A table on stdout; plain ASCII borders stay readable when piped or pasted. cli-table3 is loaded on first use (fast --help). */
export async function printTable(head: string[], rows: (string | number)[][]): Promise<void> {
  out(await renderTable(head, rows));
}

/** The table printTable prints, as text (to measure it first). */
export async function renderTable(head: string[], rows: (string | number)[][]): Promise<string> {
  const { default: Table } = await import("cli-table3");
  const color = colours(process.stdout);
  const table = new Table({
    head: head.map((h) => (color ? styleText("bold", h) : h)),
    style: { head: [], border: color ? ["grey"] : [], compact: true },
  });
  for (const r of rows) table.push(r.map((c) => String(c)));
  return table.toString();
}

/** How wide stdout is: the terminal's width, else $COLUMNS, else unknown (a pipe: no limit). */
export function outputWidth(): number | undefined {
  if (process.stdout.isTTY && process.stdout.columns > 0) return process.stdout.columns;
  const env = Number(process.env.COLUMNS);
  return Number.isSafeInteger(env) && env > 0 ? env : undefined;
}

/** The widest line of a rendered table, in characters, colours left out. */
export function textWidth(text: string): number {
  // eslint-disable-next-line no-control-regex
  return Math.max(0, ...text.split("\n").map((l) => l.replace(/\u001b\[[0-9;]*m/g, "").length));
}

/** 7_140_000 -> "1h 59m"; 250_000 -> "4m 10s"; 35_000 -> "35s". Two units at most. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (d > 0) return h > 0 ? `${d}d ${h}h` : `${d}d`;
  if (h > 0) return m > 0 ? `${h}h ${m}m` : `${h}h`;
  if (m > 0) return sec > 0 ? `${m}m ${sec}s` : `${m}m`;
  return `${sec}s`;
}

/** "3m ago", "just now", "never". */
export function ago(ts: number | null, now = Date.now()): string {
  if (ts === null) return "never";
  const ms = now - ts;
  if (ms < 5000) return "just now";
  return `${duration(ms)} ago`;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** 950 -> "950", 45_230 -> "45.2k", 2_000_000 -> "2M", 1_250_000_000 -> "1.3G": a count in a few characters. */
export function shortCount(n: number): string {
  const units = ["", "k", "M", "G", "T", "P"];
  let v = Math.abs(n);
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  if (u === 0) return String(n);
  const sign = n < 0 ? "-" : "";
  const text = v >= 100 ? v.toFixed(0) : v.toFixed(1).replace(/\.0$/, "");
  // 999.95k rounds to "1000k": that is 1M.
  if (Number(text) >= 1000 && u < units.length - 1) return `${sign}1${units[u + 1]}`;
  return `${sign}${text}${units[u]}`;
}

/** 2_000_000 -> "2,000,000". */
export const grouped = (n: number): string => n.toLocaleString("en-US");
