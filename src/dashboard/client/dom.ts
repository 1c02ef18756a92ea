/**
 * Contract: building and describing things on the page, with no state of its own: h()/svg()/$()/
 * btn()/show(), the words for statuses, HTTP codes and quota windows, time and number formatting
 * (on the gateway's clock, now() from state.ts), and the confirmation dialog.
 */
import { now } from "./state";

// ---- small DOM helpers -------------------------------------------------------------------------------

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | ((ev: Event) => void)>;

/** An element with attributes (functions become event listeners; false/null are skipped) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === "function") el.addEventListener(k, v);
    else if (k === "class") el.className = String(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

export const SVG = "http://www.w3.org/2000/svg";
export function svg(tag: string, attrs: Record<string, string | number>, ...children: (Node | string)[]): SVGElement {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  el.append(...children);
  return el;
}

export function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el as T;
}

/** A button's visible text plus, for screen readers, what it acts on ("Delete" + " work key"). */
export function btn(text: string, onClick: (ev: Event) => void, opts: { of?: string; cls?: string; key?: string; disabled?: boolean } = {}): HTMLButtonElement {
  return h(
    "button",
    { type: "button", class: opts.cls ?? null, "data-focus-key": opts.key ?? null, disabled: opts.disabled ?? false, click: onClick },
    text,
    opts.of ? h("span", { class: "sr-only" }, `: ${opts.of}`) : null,
  );
}

export function show(el: HTMLElement, on: boolean) {
  el.hidden = !on;
}

// ---- words -----------------------------------------------------------------------------------------

export const STATUS_WORDS: Record<string, string> = { active: "Active", cooling: "Cooling down", needs_reauth: "Needs re-login", disabled: "Disabled" };

const HTTP_WORDS: Record<number, string> = {
  200: "OK",
  201: "created",
  400: "bad request",
  401: "key refused",
  403: "forbidden",
  404: "not found",
  408: "timed out",
  413: "too large",
  429: "rate limited",
  500: "provider error",
  502: "bad gateway",
  503: "unavailable",
  504: "timed out",
  529: "overloaded",
};

export function httpWords(status: number | null): string {
  if (status === null) return "none yet";
  const w = HTTP_WORDS[status] ?? (status >= 500 ? "provider error" : status >= 400 ? "refused" : status >= 200 && status < 300 ? "OK" : "");
  return w ? `${status} ${w}` : String(status);
}

const WINDOW_WORDS: Record<string, string> = {
  "5h": "5-hour window",
  "7d": "Weekly window",
  primary: "Primary window",
  secondary: "Secondary window",
  requests: "Requests per minute",
  tokens: "Tokens per minute",
};
export const WINDOW_ORDER = ["5h", "7d", "primary", "secondary", "requests", "tokens"];
/** A window's name for people; Claude's per-model weekly windows are "7d_<model>". */
export const windowWords = (n: string) => WINDOW_WORDS[n] ?? (n.startsWith("7d_") ? `Weekly window, ${n.slice(3)}` : n);

/** m:ss, or h:mm:ss from an hour up. */
export function clock(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hh > 0 ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

/** "in 2 h 5 min", "in 40 s". */
export function durationWords(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return m % 60 ? `${hrs} h ${m % 60} min` : `${hrs} h`;
  return `${Math.round(hrs / 24)} days`;
}

export function ago(t: number): string {
  const d = now() - t;
  if (d < 45_000) return "just now";
  return `${durationWords(d)} ago`;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const clockFmt = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const dayClockFmt = new Intl.DateTimeFormat(undefined, { weekday: "short", hour: "numeric", minute: "2-digit" });
const dateFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" });
/** A reset time: the clock today, the weekday within a week, else the date. */
export const resetFmt = (t: number) => (t - now() < 20 * 3_600_000 ? clockFmt : t - now() < 6 * 86_400_000 ? dayClockFmt : dateFmt).format(t);
const dayFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const dayYearFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", year: "numeric" });
/** A day in short: "Dec 3" this year, "Dec 3, 2025" before it (in the reader's locale). */
export const dayText = (t: number) => (new Date(t).getFullYear() === new Date(now()).getFullYear() ? dayFmt : dayYearFmt).format(t);
export const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
export const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });

export function timeEl(t: number, text: string): HTMLTimeElement {
  return h("time", { datetime: new Date(t).toISOString(), title: timeFmt.format(t) }, text);
}

// ---- confirmation ----------------------------------------------------------------------------------

export function confirmDialog(title: string, text: string, okLabel: string): Promise<boolean> {
  const dlg = $("confirm") as HTMLDialogElement;
  const back = document.activeElement as HTMLElement | null;
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = okLabel;
  return new Promise((resolve) => {
    const done = (v: boolean) => {
      $("confirm-ok").removeEventListener("click", onOk);
      $("confirm-cancel").removeEventListener("click", onCancel);
      dlg.removeEventListener("cancel", onEsc);
      if (dlg.open) dlg.close();
      if (back && back.isConnected) back.focus();
      resolve(v);
    };
    const onOk = () => done(true);
    const onCancel = () => done(false);
    const onEsc = (ev: Event) => {
      ev.preventDefault();
      done(false);
    };
    $("confirm-ok").addEventListener("click", onOk);
    $("confirm-cancel").addEventListener("click", onCancel);
    dlg.addEventListener("cancel", onEsc);
    dlg.showModal();
    $("confirm-cancel").focus();
  });
}
