/**
 * The dashboard's one script (served at /assets/app.js under `script-src 'self'`). The page's shell is
 * rendered on the server (src/dashboard/page.tsx); this script signs in, talks to the HTTP API with
 * the key from sessionStorage as `Authorization: Bearer`, and fills the views. It builds every node
 * with the DOM API and sets text with textContent: no innerHTML, no inline styles (the CSP forbids
 * both), no cookies.
 *
 * Secrets: the gateway key lives in sessionStorage (this tab only) and in memory; it is written into
 * the page only when the person asks for it ("Show with my key" in Connect your tools). The one
 * other secret ever shown is a user's new key, right after an admin created or rotated it.
 *
 * Data that other parts of the gateway may not serve yet (account quota, usage, checks, settings)
 * is optional: a missing field or a 404 shows "no data yet" or hides that part.
 */
import type {
  AccountView,
  ImportAnswer,
  LoginDoneAnswer,
  LoginPendingAnswer,
  LoginStartAnswer,
  Me,
  Quota,
  Settings,
  Strategy,
  UsageAnswer,
  UsageDay,
  UserProfile,
  UserWithKey,
} from "../../wire";

/** `quota` is absent on a gateway that does not read quota telemetry yet; null before the first answer. */
type Account = AccountView & { quota?: Quota | null };
interface ProviderInfo {
  id: string;
  name: string;
  types: string[];
}

// ---- constants --------------------------------------------------------------------------------------

const KEY_STORE = "subpool.gatewayKey";
const REFRESH_MS = 10_000;
const USAGE_MAX_AGE_MS = 60_000;
const USAGE_DAYS = 14;

// ---- small DOM helpers -------------------------------------------------------------------------------

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | ((ev: Event) => void)>;

/** An element with attributes (functions become event listeners; false/null are skipped) and children. */
function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
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

const SVG = "http://www.w3.org/2000/svg";
function svg(tag: string, attrs: Record<string, string | number>, ...children: (Node | string)[]): SVGElement {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  el.append(...children);
  return el;
}

function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el as T;
}

/** A button's visible text plus, for screen readers, what it acts on ("Delete" + " work key"). */
function btn(text: string, onClick: (ev: Event) => void, opts: { of?: string; cls?: string; key?: string; disabled?: boolean } = {}): HTMLButtonElement {
  return h(
    "button",
    { type: "button", class: opts.cls ?? null, "data-focus-key": opts.key ?? null, disabled: opts.disabled ?? false, click: onClick },
    text,
    opts.of ? h("span", { class: "sr-only" }, `: ${opts.of}`) : null,
  );
}

function show(el: HTMLElement, on: boolean) {
  el.hidden = !on;
}

// ---- words -----------------------------------------------------------------------------------------

const STATUS_WORDS: Record<string, string> = { active: "Active", cooling: "Cooling down", needs_reauth: "Needs re-login", disabled: "Disabled" };

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

function httpWords(status: number | null): string {
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
const WINDOW_ORDER = ["5h", "7d", "primary", "secondary", "requests", "tokens"];
/** A window's name for people; Claude's per-model weekly windows are "7d_<model>". */
const windowWords = (n: string) => WINDOW_WORDS[n] ?? (n.startsWith("7d_") ? `Weekly window, ${n.slice(3)}` : n);

/** m:ss, or h:mm:ss from an hour up. */
function clock(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hh > 0 ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

/** "in 2 h 5 min", "in 40 s". */
function durationWords(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return m % 60 ? `${hrs} h ${m % 60} min` : `${hrs} h`;
  return `${Math.round(hrs / 24)} days`;
}

function ago(t: number): string {
  const d = now() - t;
  if (d < 45_000) return "just now";
  return `${durationWords(d)} ago`;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const clockFmt = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const dayClockFmt = new Intl.DateTimeFormat(undefined, { weekday: "short", hour: "numeric", minute: "2-digit" });
const dateFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" });
/** A reset time: the clock today, the weekday within a week, else the date. */
const resetFmt = (t: number) => (t - now() < 20 * 3_600_000 ? clockFmt : t - now() < 6 * 86_400_000 ? dayClockFmt : dateFmt).format(t);
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });

function timeEl(t: number, text: string): HTMLTimeElement {
  return h("time", { datetime: new Date(t).toISOString(), title: timeFmt.format(t) }, text);
}

// ---- state -----------------------------------------------------------------------------------------

let key: string | null = null;
let me: Me | null = null;
let providers: ProviderInfo[] = [];
let accounts: Account[] = [];
/** Server clock minus ours (from the Date header), so countdowns match the gateway's cooldowns. */
let skewMs = 0;
let refreshTimer: number | undefined;
let tickTimer: number | undefined;
let settingsAvailable: boolean | null = null;
let usageAvailable = true;
const usage = new Map<string, { at: number; days: UsageDay[] | null }>();
const checks = new Map<string, { ok: boolean | null; text: string }>();
/** Account ids whose inline rename form is open: the periodic refresh leaves the list alone meanwhile. */
const renaming = new Set<string>();
let login: { provider: string; loginId: string; cancelled: boolean; timer?: number } | null = null;

const now = () => Date.now() + skewMs;

// ---- the API ---------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
    readonly routeMissing = false,
  ) {
    super(message);
  }
}

/** Turns an API error into words for a person. */
function explain(status: number, message: string | undefined): string {
  const m = message ? message.replace(/\s+/g, " ").trim() : "";
  if (status === 401) return "Your gateway key was not accepted. It may have been mistyped, rotated by an admin, or its user deleted.";
  if (status === 403) return m ? `Not allowed: ${m}.` : "Your key is not allowed to do that.";
  if (status === 404) return m ? `Not found: ${m}.` : "Not found.";
  if (status === 409) return m ? `${capital(m)}.` : "That conflicts with something that already exists.";
  if (status === 410) return m ? `${capital(m)}.` : "That has expired. Start again.";
  if (status === 413) return "That is too large for the gateway.";
  if (status === 429) return m ? `Too many requests: ${m}.` : "Too many requests: wait a moment and try again.";
  if (status >= 500) return m ? `The gateway could not finish this (${status}): ${m}.` : `The gateway could not finish this (${status}). Try again in a moment.`;
  return m ? `${capital(m)}.` : `The gateway refused this (${status}).`;
}
const capital = (s: string) => (s ? s[0]!.toUpperCase() + s.slice(1) : s).replace(/[.]$/, "");

async function api<T>(method: string, path: string, body?: unknown, opts: { signInCheck?: boolean } = {}): Promise<{ status: number; data: T }> {
  const sentKey = key;
  if (!sentKey) throw new ApiError(401, "Sign in first.");
  let r: Response;
  try {
    r = await fetch(path, {
      method,
      headers: { authorization: `Bearer ${sentKey}`, accept: "application/json", ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new ApiError(0, "Could not reach the gateway. Check your connection; the page keeps trying.");
  }
  const date = r.headers.get("date");
  if (date) {
    const server = Date.parse(date);
    // The Date header has whole seconds: correct only a real difference of clocks.
    if (!Number.isNaN(server) && Math.abs(server - Date.now()) > 2500) skewMs = server - Date.now();
    else if (!Number.isNaN(server)) skewMs = 0;
  }
  const text = await r.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {}
  if (r.ok) return { status: r.status, data: json as T };
  const err = (json as { error?: { message?: string; field?: string } } | null)?.error;
  const routeMissing = r.status === 404 && /^no route /.test(err?.message ?? "");
  if (r.status === 401 && !opts.signInCheck && key === sentKey) {
    signOut("Your gateway key is no longer accepted (an admin may have rotated it, or its user was deleted). Sign in with a current key.");
  }
  throw new ApiError(r.status, explain(r.status, err?.message), err?.field, routeMissing);
}

const errText = (e: unknown) => (e instanceof ApiError ? e.message : `Something went wrong in the page: ${String(e)}`);

// ---- messages --------------------------------------------------------------------------------------

let flashTimer: number | undefined;
function flash(text: string) {
  const el = $("flash");
  el.textContent = text;
  window.clearTimeout(flashTimer);
  flashTimer = window.setTimeout(() => (el.textContent = ""), 8000);
}
function alertMsg(text: string) {
  $("alert").textContent = text;
}

function setError(id: string, e: unknown) {
  const el = $(id);
  el.textContent = e === null ? "" : errText(e);
}

// ---- copy ------------------------------------------------------------------------------------------

async function copyText(text: string, button: HTMLButtonElement) {
  let ok = false;
  try {
    await navigator.clipboard.writeText(text);
    ok = true;
  } catch {
    // No clipboard API (an http:// page other than localhost): a selected textarea + execCommand.
    const ta = h("textarea", { class: "offscreen", readonly: true, "aria-hidden": "true" });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    try {
      ok = document.execCommand("copy");
    } catch {}
    ta.remove();
  }
  const label = button.dataset.label ?? button.textContent ?? "Copy";
  button.dataset.label = label;
  button.textContent = ok ? "Copied" : "Copy failed: select the text and copy it";
  window.setTimeout(() => (button.textContent = label), 2000);
}

// ---- sign in / out ---------------------------------------------------------------------------------

async function signIn(candidate: string): Promise<void> {
  const err = $("sign-in-error");
  err.textContent = "";
  const k = candidate.trim();
  if (!k) {
    err.textContent = "Enter your gateway key (it starts with sp_).";
    $("gateway-key").focus();
    return;
  }
  if (!/^[\x21-\x7e]+$/.test(k)) {
    err.textContent = "That is not a gateway key: keys are one word of letters, digits and _ or - (no spaces).";
    $("gateway-key").focus();
    return;
  }
  key = k;
  try {
    const r = await api<Me>("GET", "/api/me", undefined, { signInCheck: true });
    me = r.data;
  } catch (e) {
    key = null;
    err.textContent =
      e instanceof ApiError && e.status === 401
        ? "That gateway key was not accepted. Check that you copied all of it; an admin may also have rotated or removed it."
        : errText(e);
    $("gateway-key").focus();
    return;
  }
  sessionStorage.setItem(KEY_STORE, k);
  ($("gateway-key") as HTMLInputElement).value = "";
  enterApp();
}

function signOut(message?: string) {
  key = null;
  me = null;
  sessionStorage.removeItem(KEY_STORE);
  stopLogin();
  window.clearInterval(refreshTimer);
  window.clearInterval(tickTimer);
  accounts = [];
  usage.clear();
  checks.clear();
  renaming.clear();
  settingsAvailable = null;
  settingsDirty = false;
  shownView = null;
  for (const id of ["account-groups", "users", "new-key-slot", "login-panel", "import-result", "alert", "flash", "check-slot"]) {
    const el = document.getElementById(id);
    if (el) el.replaceChildren();
  }
  applyKeyToConnect(false);
  ($("show-key") as HTMLInputElement).checked = false;
  show($("login-panel"), false);
  show($("who"), false);
  show($("nav"), false);
  for (const p of document.querySelectorAll<HTMLElement>("[data-view-panel]")) show(p, false);
  show($("sign-in"), true);
  $("sign-in-error").textContent = message ?? "";
  if (location.hash) history.replaceState(null, "", location.pathname);
  $("gateway-key").focus();
}

function enterApp() {
  if (!me) return;
  show($("sign-in"), false);
  $("sign-in-error").textContent = "";
  const isRoot = me.id === null;
  const isAdmin = me.role === "admin";
  $("who-name").textContent = isRoot ? "the admin token" : me.name;
  $("who-role").textContent = isAdmin ? "admin" : "member";
  show($("who"), true);
  show($("nav"), true);
  for (const a of document.querySelectorAll<HTMLElement>("#nav [data-view]")) {
    const v = a.dataset.view!;
    const visible = v === "admin" ? isAdmin : v === "settings" ? !isRoot && settingsAvailable !== false : !isRoot;
    show(a.parentElement ?? a, visible);
  }
  show($("root-note"), isRoot);
  // Whether this gateway has routing settings decides whether the Settings link shows.
  if (!isRoot && settingsAvailable === null && currentView() !== "settings") void loadSettings();
  route();
  window.clearInterval(refreshTimer);
  window.clearInterval(tickTimer);
  refreshTimer = window.setInterval(() => {
    if (document.visibilityState === "visible" && currentView() === "accounts") void loadAccounts();
  }, REFRESH_MS);
  tickTimer = window.setInterval(tick, 1000);
}

// ---- views -----------------------------------------------------------------------------------------

const VIEWS = ["accounts", "settings", "connect", "admin"] as const;
type View = (typeof VIEWS)[number];

function allowed(v: View): boolean {
  if (!me) return false;
  if (v === "admin") return me.role === "admin";
  if (me.id === null) return false;
  if (v === "settings") return settingsAvailable !== false;
  return true;
}

/** The view on screen; a hash that names no view (the skip link's #main) keeps it. */
let shownView: View | null = null;

function currentView(): View {
  const h = location.hash.slice(1) as View;
  if (VIEWS.includes(h) && allowed(h)) return h;
  if (shownView && allowed(shownView) && !VIEWS.includes(h)) return shownView;
  return me?.id === null ? "admin" : "accounts";
}

function route() {
  if (!me) return;
  const v = currentView();
  shownView = v;
  for (const p of document.querySelectorAll<HTMLElement>("[data-view-panel]")) show(p, p.dataset.viewPanel === v);
  for (const a of document.querySelectorAll<HTMLAnchorElement>("#nav [data-view]")) {
    if (a.dataset.view === v) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (v === "accounts") void loadAccounts();
  if (v === "settings") void loadSettings();
  if (v === "admin") void loadUsers();
  document.title = `${{ accounts: "Accounts", settings: "Settings", connect: "Connect your tools", admin: "Admin" }[v]} · subpool`;
}

// ---- accounts ----------------------------------------------------------------------------------------

let accountsLoad: Promise<void> | null = null;
let accountsStale = false;

/**
 * Fetches and shows the accounts. A call while a load is in flight (an action right after the
 * periodic refresh started) waits for it and then loads again, so the list never shows an answer
 * older than the action.
 */
function loadAccounts(): Promise<void> {
  if (!me || me.id === null) return Promise.resolve();
  if (accountsLoad) {
    accountsStale = true;
    return accountsLoad;
  }
  accountsLoad = (async () => {
    do {
      accountsStale = false;
      await fetchAccounts();
    } while (accountsStale && key);
  })().finally(() => (accountsLoad = null));
  return accountsLoad;
}

async function fetchAccounts(): Promise<void> {
  try {
    const r = await api<{ accounts: Account[] }>("GET", "/api/accounts");
    if (!key) return;
    accounts = r.data.accounts;
    setError("accounts-error", null);
    $("accounts-updated").textContent = `Updated ${new Date().toLocaleTimeString()} · refreshes every ${REFRESH_MS / 1000} s`;
    if (renaming.size === 0) renderAccounts();
    void loadUsage();
  } catch (e) {
    if (key) setError("accounts-error", e);
  }
}

function providerName(id: string): string {
  return providers.find((p) => p.id === id)?.name ?? id;
}

function renderAccounts() {
  const root = $("account-groups");
  const focused = (document.activeElement as HTMLElement | null)?.dataset?.focusKey;
  const groups: Node[] = [];
  const order = [...providers.map((p) => p.id), ...new Set(accounts.map((a) => a.provider).filter((id) => !providers.some((p) => p.id === id)))];
  for (const pid of order) {
    const list = accounts.filter((a) => a.provider === pid).sort((a, b) => a.position - b.position);
    if (list.length === 0) continue;
    const hid = `group-${pid}`;
    groups.push(
      h(
        "section",
        { class: "group", "aria-labelledby": hid, "data-provider": pid },
        h("h2", { id: hid }, providerName(pid), h("span", { class: "count" }, ` ${plural(list.length, "account")}`)),
        h("ol", { class: "cards" }, ...list.map((a, i) => card(a, i === 0, i === list.length - 1))),
      ),
    );
  }
  if (groups.length === 0) {
    groups.push(
      h(
        "div",
        { class: "empty panel" },
        h("h2", {}, "No accounts yet"),
        h("p", {}, "Sign in to a subscription or add an API key below. Requests you send through the gateway then use these accounts, in the order shown here, and move to the next one when an account is rate limited."),
      ),
    );
  }
  root.replaceChildren(...groups);
  if (focused) refocus(root, focused);
  tick();
}

/**
 * After a re-render, the focus goes back to the same control ("<account id>:<action>"); when that one
 * is now disabled (an account moved to the end), to the first usable control of the same card.
 */
function refocus(root: HTMLElement, focusKey: string) {
  const same = root.querySelector<HTMLButtonElement>(`[data-focus-key="${CSS.escape(focusKey)}"]`);
  if (same && !same.disabled) return same.focus();
  const id = focusKey.split(":")[0] ?? "";
  root.querySelector<HTMLElement>(`[data-account="${CSS.escape(id)}"] button:not(:disabled)`)?.focus();
}

function badge(a: Account): HTMLElement {
  const words = STATUS_WORDS[a.status] ?? a.status;
  const el = h("span", { class: `badge badge-${a.status}` }, words);
  if (a.status === "cooling" && a.cooldownUntil) {
    el.append(" ", h("span", { class: "countdown", role: "timer", "data-until": a.cooldownUntil, "aria-label": "time left" }, clock(a.cooldownUntil - now())));
  }
  return el;
}

/** The provider's own words about the last failure (lastError without our "check: " prefix), or "". */
const saidWhy = (a: Account) => (a.lastError ?? "").replace(/^check: /, "");

/**
 * Why an account is benched, in words, from what the gateway recorded: the last status and the
 * provider's error. A refused key or an expired session is not a rate limit, and says so.
 */
function coolingWhy(a: Account): { lead: string; rest: string } {
  const name = providerName(a.provider);
  const why = saidWhy(a);
  const said = why ? ` (${why})` : "";
  if (/^refresh failed: /.test(a.lastError ?? "")) {
    return { lead: "Session renewal failed", rest: `: ${name}'s sign-in service did not renew this login (${why.replace(/^refresh failed: /, "")}). It is tried again at ` };
  }
  if (a.lastStatus === 401 || a.lastStatus === 403) {
    return a.type === "api"
      ? { lead: "Key refused", rest: `: ${name} did not accept this key${said}. Check it, or add a new one; requests use your next account until ` }
      : { lead: "Session expired", rest: `: ${name} did not accept this login and it could not be renewed${said}. Requests use your next account until ` };
  }
  if (a.lastStatus === 429 || a.lastStatus === 404) {
    const plan = /limit reached|out of credit|insufficient_quota|usage limit/i.test(why);
    return { lead: plan ? "Usage limit reached" : "Rate limited", rest: `${plan ? `: ${why}` : ""}. Requests use your next account until ` };
  }
  if (a.lastStatus === 529 || (a.lastStatus ?? 0) >= 500) return { lead: "Overloaded", rest: `: ${name} answered ${httpWords(a.lastStatus)}. Requests use your next account until ` };
  if (a.lastStatus === 0 || /no answer|stalled|did not arrive|sent no event/.test(why)) return { lead: "Not answering", rest: `: ${why || `${name} did not answer in time`}. Requests use your next account until ` };
  return { lead: "Benched", rest: `${said}: requests use your next account until ` };
}

function statusNote(a: Account): HTMLElement | null {
  if (a.status === "needs_reauth") {
    const why = saidWhy(a);
    if (a.type === "api") {
      return h("p", { class: "note warn" }, h("strong", {}, "Key refused"), `: ${providerName(a.provider)} does not accept this key${why ? ` (${why})` : ""}. Requests skip it until you add a new key or a check passes.`);
    }
    return h("p", { class: "note warn" }, h("strong", {}, "Needs a new sign-in"), `: ${providerName(a.provider)} no longer accepts this login${why ? ` (${why})` : ""}. Sign in again to keep using it; until then requests skip it.`);
  }
  if (a.status === "disabled") return h("p", { class: "note" }, "Disabled: requests skip this account until you enable it.");
  if (a.status === "cooling" && a.cooldownUntil) {
    const { lead, rest } = coolingWhy(a);
    return h("p", { class: "note" }, h("strong", {}, lead), rest, timeEl(a.cooldownUntil, resetFmt(a.cooldownUntil)), ".");
  }
  return null;
}

/**
 * The last error, dated. One the account has served since is history: shown with its age and not
 * in red, so a card that works again does not look broken.
 */
function lastErrorFact(a: Account): HTMLElement | null {
  if (!a.lastError) return null;
  const at = a.lastErrorAt;
  const past = at !== null && a.lastUsedAt !== null && a.lastUsedAt > at && a.lastStatus !== null && a.lastStatus < 400 && a.status === "active";
  return h(
    "div",
    { class: "wide" },
    h("dt", {}, "Last error"),
    h(
      "dd",
      { class: past ? "old-error" : "error-text" },
      a.lastError,
      at !== null ? h("span", { class: "muted" }, " · ", timeEl(at, ago(at)), past ? ", before the last success" : "") : null,
    ),
  );
}

function card(a: Account, first: boolean, last: boolean): HTMLElement {
  const label = a.label;
  const facts = h(
    "dl",
    { class: "facts" },
    h("div", {}, h("dt", {}, "Last status"), h("dd", {}, httpWords(a.lastStatus))),
    h("div", {}, h("dt", {}, "Last used"), h("dd", {}, a.lastUsedAt ? timeEl(a.lastUsedAt, ago(a.lastUsedAt)) : "never")),
    h("div", {}, h("dt", {}, "Requests"), h("dd", {}, `${a.successCount} succeeded · ${a.failureCount} failed`)),
    lastErrorFact(a),
  );
  const actions = h(
    "div",
    { class: "actions" },
    btn("Rename", () => openRename(a), { of: label, key: `${a.id}:rename` }),
    btn("Move up", () => void move(a, -1), { of: label, key: `${a.id}:up`, disabled: first }),
    btn("Move down", () => void move(a, 1), { of: label, key: `${a.id}:down`, disabled: last }),
    btn(a.enabled ? "Disable" : "Enable", () => void setEnabled(a, !a.enabled), { of: label, key: `${a.id}:enable` }),
    btn("Check", () => void check(a), { of: label, key: `${a.id}:check` }),
    a.status === "needs_reauth" && a.type === "oauth" ? btn("Sign in again", () => void startLogin(a.provider, a.label, a), { of: label, key: `${a.id}:relogin`, cls: "primary" }) : null,
    btn("Delete", () => void remove(a), { of: label, key: `${a.id}:delete`, cls: "danger" }),
  );
  const c = checks.get(a.id);
  return h(
    "li",
    { class: `card status-${a.status}`, "data-account": a.id, "data-label": label },
    h(
      "div",
      { class: "card-head" },
      h("span", { class: "pos", title: `Position ${a.position}: tried ${a.position === 1 ? "first" : `after ${a.position - 1} other${a.position > 2 ? "s" : ""}`}` }, h("span", { class: "sr-only" }, "Position "), String(a.position)),
      h("h3", { class: "label" }, label),
      h("span", { class: "type" }, a.type === "api" ? "API key" : "Subscription login"),
      badge(a),
    ),
    statusNote(a),
    facts,
    quotaBlock(a),
    usageBlock(a),
    c ? h("p", { class: `note check ${c.ok === false ? "warn" : c.ok ? "good" : ""}`, role: "status" }, c.text) : null,
    h("div", { class: "inline-slot" }),
    actions,
  );
}

function quotaBlock(a: Account): HTMLElement | null {
  if (a.quota === undefined) return null; // a gateway without quota telemetry
  if (a.quota === null || (Object.keys(a.quota.windows ?? {}).length === 0 && !a.quota.credits)) {
    return h("div", { class: "quota" }, h("p", { class: "muted small" }, "Quota: no data yet (it comes with the provider's answers)."));
  }
  const q = a.quota;
  const names = Object.keys(q.windows).sort((x, y) => {
    const ix = WINDOW_ORDER.indexOf(x);
    const iy = WINDOW_ORDER.indexOf(y);
    return (ix < 0 ? 99 : ix) - (iy < 0 ? 99 : iy) || x.localeCompare(y);
  });
  const status = q.status === "rejected" ? h("span", { class: "badge badge-needs_reauth" }, "Limit reached") : q.status === "allowed_warning" ? h("span", { class: "badge badge-cooling" }, "Near the limit") : null;
  return h(
    "div",
    { class: "quota" },
    h("h4", {}, "Quota ", status, h("span", { class: "muted small" }, " as of ", timeEl(q.updatedAt, ago(q.updatedAt)))),
    h(
      "ul",
      { class: "bars" },
      ...names.map((n) => {
        const w = q.windows[n]!;
        const u = Math.min(1, Math.max(0, Number(w.utilization) || 0));
        const pct = Math.round(u * 100);
        const id = `q-${a.id}-${n.replace(/\W/g, "_")}`;
        const reset =
          w.resetsAt && w.resetsAt > now()
            ? h("span", { class: "muted" }, " · resets in ", timeEl(w.resetsAt, durationWords(w.resetsAt - now())), ` (${resetFmt(w.resetsAt)})`)
            : w.resetsAt
              ? h("span", { class: "muted" }, " · reset due")
              : null;
        return h(
          "li",
          {},
          h("label", { for: id }, windowWords(n)),
          h("meter", { id, min: 0, max: 1, low: 0.7, high: 0.9, optimum: 0, value: u, title: `${pct} % used` }),
          h("span", { class: "bar-text" }, `${pct} % used`, reset),
        );
      }),
    ),
    q.credits ? h("p", { class: "muted small" }, creditsWords(q.credits)) : null,
  );
}

/** ChatGPT credits beyond the plan's windows, in words. */
function creditsWords(c: NonNullable<NonNullable<Account["quota"]>["credits"]>): string {
  if (c.unlimited) return "Credits: unlimited";
  if (!c.hasCredits) return "Credits: none (requests stop when a window is used up)";
  return `Credits: ${c.balance === null ? "some" : c.balance.toLocaleString()} left beyond the plan's windows`;
}

function lastDays(n: number): string[] {
  const out: string[] = [];
  const t = now();
  for (let i = n - 1; i >= 0; i--) out.push(new Date(t - i * 86_400_000).toISOString().slice(0, 10));
  return out;
}

function usageBlock(a: Account): HTMLElement | null {
  if (!usageAvailable) return null;
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

async function loadUsage(): Promise<void> {
  if (!usageAvailable) return;
  const stale = accounts.filter((a) => (usage.get(a.id)?.at ?? 0) < Date.now() - USAGE_MAX_AGE_MS);
  if (stale.length === 0) return;
  let changed = false;
  await Promise.all(
    stale.map(async (a) => {
      try {
        const r = await api<UsageAnswer>("GET", `/api/accounts/${encodeURIComponent(a.id)}/usage?days=${USAGE_DAYS}`);
        usage.set(a.id, { at: Date.now(), days: Array.isArray(r.data?.days) ? r.data.days : null });
        changed = true;
      } catch (e) {
        if (e instanceof ApiError && e.routeMissing) usageAvailable = false;
        else if (e instanceof ApiError && e.status === 404) usage.set(a.id, { at: Date.now(), days: null });
        // Other failures: try again on the next refresh.
      }
    }),
  );
  if (changed && renaming.size === 0 && key) renderAccounts();
}

/** Every second: countdowns; a cooldown that ran out makes the list reload. */
function tick() {
  let expired = false;
  for (const el of document.querySelectorAll<HTMLElement>(".countdown[data-until]")) {
    const left = Number(el.dataset.until) - now();
    el.textContent = clock(left);
    if (left <= 0 && !el.dataset.done) {
      el.dataset.done = "1";
      expired = true;
    }
  }
  if (expired && currentView() === "accounts") window.setTimeout(() => void loadAccounts(), 1200);
}

function cardOf(a: Account): HTMLElement | null {
  return document.querySelector<HTMLElement>(`[data-account="${CSS.escape(a.id)}"]`);
}

function openRename(a: Account) {
  const c = cardOf(a);
  if (!c) return;
  const slot = c.querySelector<HTMLElement>(".inline-slot")!;
  const id = `rename-${a.id}`;
  const input = h("input", { id, value: a.label, maxlength: 100, required: true, autocomplete: "off" });
  const err = h("p", { class: "error", role: "alert" });
  const close = () => {
    renaming.delete(a.id);
    slot.replaceChildren();
    renderAccounts();
    c.ownerDocument.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(`${a.id}:rename`)}"]`)?.focus();
  };
  const form = h(
    "form",
    {
      class: "inline-form",
      novalidate: true,
      submit: async (ev: Event) => {
        ev.preventDefault();
        const label = input.value.trim();
        if (!label) {
          err.textContent = "Enter a name.";
          return;
        }
        try {
          await api("PATCH", `/api/accounts/${encodeURIComponent(a.id)}`, { label });
          renaming.delete(a.id);
          flash(`Renamed to “${label}”.`);
          await loadAccounts();
          document.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(`${a.id}:rename`)}"]`)?.focus();
        } catch (e) {
          err.textContent = `Could not rename: ${errText(e)}`;
        }
      },
      keydown: (ev: Event) => {
        if ((ev as KeyboardEvent).key === "Escape") close();
      },
    },
    h("label", { for: id }, "New name"),
    input,
    h("button", { type: "submit", class: "primary" }, "Save"),
    btn("Cancel", close),
    err,
  );
  renaming.add(a.id);
  slot.replaceChildren(form);
  input.focus();
  input.select();
}

async function move(a: Account, by: number) {
  try {
    await api("PATCH", `/api/accounts/${encodeURIComponent(a.id)}`, { position: a.position + by });
    flash(`Moved “${a.label}” to position ${a.position + by}.`);
  } catch (e) {
    alertMsg(`Could not move “${a.label}”: ${errText(e)}`);
  }
  await loadAccounts();
}

async function setEnabled(a: Account, enabled: boolean) {
  try {
    await api("PATCH", `/api/accounts/${encodeURIComponent(a.id)}`, { enabled });
    flash(enabled ? `Enabled “${a.label}”.` : `Disabled “${a.label}”: requests skip it now.`);
  } catch (e) {
    alertMsg(`Could not ${enabled ? "enable" : "disable"} “${a.label}”: ${errText(e)}`);
  }
  await loadAccounts();
}

/** What POST /api/accounts/:id/check answered ({verdict, status, message, account}), in a sentence. */
function describeCheck(data: unknown): { ok: boolean | null; text: string } {
  const d = (data ?? {}) as { verdict?: unknown; status?: unknown; message?: unknown };
  const ok = d.verdict === "ok" ? true : d.verdict === "invalid" ? false : null;
  const head = ok === true ? "Check passed" : ok === false ? "Check failed: the provider refused this account" : "Could not check";
  const parts: string[] = [];
  if (typeof d.message === "string" && d.message) parts.push(d.message);
  if (typeof d.status === "number" && d.status > 0 && !(ok === true && d.status === 200)) parts.push(`the provider answered ${httpWords(d.status)}`);
  return { ok, text: parts.length ? `${head}: ${parts.join("; ")}.` : `${head}.` };
}

async function check(a: Account) {
  checks.set(a.id, { ok: null, text: "Checking…" });
  renderAccounts();
  try {
    const r = await api<unknown>("POST", `/api/accounts/${encodeURIComponent(a.id)}/check`);
    checks.set(a.id, describeCheck(r.data));
  } catch (e) {
    if (e instanceof ApiError && e.routeMissing) checks.set(a.id, { ok: null, text: "Check is not available on this gateway." });
    else checks.set(a.id, { ok: false, text: `Check failed: ${errText(e)}` });
  }
  await loadAccounts();
  renderAccounts();
}

async function remove(a: Account) {
  const ok = await confirmDialog(
    `Delete “${a.label}”?`,
    `This removes the ${providerName(a.provider)} ${a.type === "api" ? "API key" : "login"} from the gateway for good. Requests will no longer use it. ${a.type === "oauth" ? "You can sign in again later to add it back." : "You would have to add the key again."}`,
    "Delete",
  );
  if (!ok) return;
  try {
    await api("DELETE", `/api/accounts/${encodeURIComponent(a.id)}`);
    checks.delete(a.id);
    usage.delete(a.id);
    flash(`Deleted “${a.label}”.`);
  } catch (e) {
    alertMsg(`Could not delete “${a.label}”: ${errText(e)}`);
  }
  await loadAccounts();
}

// ---- confirmation ----------------------------------------------------------------------------------

function confirmDialog(title: string, text: string, okLabel: string): Promise<boolean> {
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

// ---- adding accounts -----------------------------------------------------------------------------

async function addApiKey(ev: Event) {
  ev.preventDefault();
  const form = ev.currentTarget as HTMLFormElement;
  const provider = ($("add-provider") as HTMLSelectElement).value;
  const keyInput = $("add-key") as HTMLInputElement;
  const label = ($("add-label") as HTMLInputElement).value.trim();
  setError("add-key-error", null);
  if (!keyInput.value.trim()) {
    $("add-key-error").textContent = "Paste the API key first.";
    keyInput.focus();
    return;
  }
  const button = form.querySelector<HTMLButtonElement>("button[type=submit]")!;
  button.disabled = true;
  const status = $("add-key-status");
  status.textContent = `Adding the key and asking ${providerName(provider)} whether it works…`;
  try {
    const r = await api<Account & { check?: { verdict: string; message: string } }>("POST", "/api/accounts", { provider, type: "api", key: keyInput.value.trim(), ...(label ? { label } : {}) });
    keyInput.value = "";
    ($("add-label") as HTMLInputElement).value = "";
    const c = r.data.check;
    const checked = !c ? "" : c.verdict === "ok" ? ` ${providerName(provider)} accepts it.` : ` It could not be checked just now (${c.message}); it is kept.`;
    flash(`Added “${r.data.label}” to ${providerName(provider)}, at position ${r.data.position}.${checked}`);
    await loadAccounts();
  } catch (e) {
    $("add-key-error").textContent = `Could not add the key: ${errText(e)}`;
  } finally {
    button.disabled = false;
    status.textContent = "";
  }
}

async function importFile(ev: Event) {
  ev.preventDefault();
  const input = $("import-file") as HTMLInputElement;
  const out = $("import-result");
  out.replaceChildren();
  const file = input.files?.[0];
  if (!file) {
    out.append(h("span", { class: "error" }, "Choose a file first."));
    return;
  }
  let body: unknown;
  try {
    body = JSON.parse(await file.text());
  } catch {
    out.append(h("span", { class: "error" }, `${file.name} is not a JSON file.`));
    return;
  }
  try {
    const r = await api<ImportAnswer>("POST", "/api/import", body);
    const count = (k: string) => r.data.imported.filter((i) => i.action === k).length;
    input.value = "";
    out.append(
      h("p", {}, `Read ${file.name} (${r.data.format}): ${count("created")} added, ${count("updated")} refreshed, ${count("unchanged")} already there.`),
    );
    if (r.data.refused.length) out.append(h("ul", { class: "refused" }, ...r.data.refused.map((x) => h("li", {}, `${x.entry}: ${x.reason}`))));
    await loadAccounts();
  } catch (e) {
    out.append(h("span", { class: "error" }, `Could not import: ${errText(e)}`));
  }
}

// ---- logins ----------------------------------------------------------------------------------------

function stopLogin() {
  if (login) {
    login.cancelled = true;
    window.clearTimeout(login.timer);
  }
  login = null;
}

const safeUrl = (u: string): string | null => {
  try {
    const url = new URL(u);
    return url.protocol === "https:" || url.protocol === "http:" ? url.toString() : null;
  } catch {
    return null;
  }
};

async function startLogin(provider: string, label: string | null, relogin?: Account) {
  stopLogin();
  const panel = $("login-panel");
  setError("login-form-error", null);
  let ans: LoginStartAnswer;
  try {
    const r = await api<LoginStartAnswer>("POST", `/api/oauth/${encodeURIComponent(provider)}/start`, label ? { label } : {});
    ans = r.data;
  } catch (e) {
    if (relogin) alertMsg(`Could not start the sign-in for “${relogin.label}”: ${errText(e)}`);
    else $("login-form-error").textContent = `Could not start the sign-in: ${errText(e)}`;
    return;
  }
  const state = { provider, loginId: ans.loginId, cancelled: false } as NonNullable<typeof login>;
  login = state;
  const title = relogin ? `Sign in again: ${relogin.label} (${providerName(provider)})` : `Sign in to ${providerName(provider)}`;
  const status = h("p", { class: "login-status", role: "status" });
  const cancel = btn("Cancel", () => {
    stopLogin();
    panel.replaceChildren();
    show(panel, false);
    $("login-provider").focus();
  });
  const done = (r: LoginDoneAnswer) => {
    stopLogin();
    panel.replaceChildren(
      h("h2", { id: "login-title", tabindex: -1 }, title),
      h("p", { class: "good", role: "status" }, r.created ? `Signed in: “${r.account.label}” was added at position ${r.account.position}.` : `Signed in: “${r.account.label}” was refreshed and is ready again.`),
      btn("Close", () => {
        panel.replaceChildren();
        show(panel, false);
      }),
    );
    panel.querySelector<HTMLElement>("#login-title")?.focus();
    void loadAccounts();
  };

  if (ans.method === "device") {
    const link = safeUrl(ans.verificationUri);
    const code = h("code", { class: "user-code", id: "user-code" }, ans.userCode);
    panel.replaceChildren(
      h("h2", { id: "login-title", tabindex: -1 }, title),
      h("ol", { class: "steps" },
        h("li", {}, "Open ", link ? h("a", { href: link, target: "_blank", rel: "noopener noreferrer" }, ans.verificationUri) : h("code", {}, ans.verificationUri), " (a new tab)."),
        h("li", {}, "Enter this code: ", code, " ", btn("Copy code", (ev) => void copyText(ans.userCode, ev.currentTarget as HTMLButtonElement))),
        h("li", {}, "Approve the sign-in. This page notices by itself."),
      ),
      status,
      h("div", { class: "row" }, cancel),
    );
    show(panel, true);
    panel.querySelector<HTMLElement>("#login-title")?.focus();
    let interval = Math.max(1, ans.interval || 5);
    const expiresAt = ans.expiresAt;
    const poll = async () => {
      if (state.cancelled) return;
      if (Date.now() > expiresAt) {
        status.textContent = "The code expired before it was approved. Start the sign-in again.";
        status.className = "login-status error";
        return;
      }
      try {
        const r = await api<LoginDoneAnswer | LoginPendingAnswer>("POST", `/api/oauth/${encodeURIComponent(provider)}/finish`, { loginId: state.loginId });
        if (state.cancelled) return;
        if (r.status === 202) {
          interval = Math.max(1, (r.data as LoginPendingAnswer).interval || interval);
          status.textContent = `Waiting for you to approve on GitHub… (checking every ${interval} s)`;
          state.timer = window.setTimeout(() => void poll(), interval * 1000);
          return;
        }
        done(r.data as LoginDoneAnswer);
      } catch (e) {
        if (state.cancelled) return;
        if (e instanceof ApiError && (e.status === 0 || e.status >= 500)) {
          status.textContent = `${errText(e)} Still trying…`;
          state.timer = window.setTimeout(() => void poll(), interval * 1000);
          return;
        }
        status.className = "login-status error";
        status.textContent = e instanceof ApiError && e.status === 410 ? "The code expired before it was approved. Start the sign-in again." : `The sign-in did not finish: ${errText(e)}`;
        stopLogin();
      }
    };
    status.textContent = `Waiting for you to approve on GitHub… (checking every ${interval} s)`;
    state.timer = window.setTimeout(() => void poll(), interval * 1000);
    return;
  }

  // Code flows: the person signs in in another tab and pastes what they get back.
  const link = safeUrl(ans.url);
  const id = "login-code";
  const input = h("input", { id, autocomplete: "off", spellcheck: "false", required: true });
  const err = h("p", { class: "error", role: "alert" });
  const form = h(
    "form",
    {
      class: "stack",
      novalidate: true,
      submit: async (ev: Event) => {
        ev.preventDefault();
        const code = input.value.trim();
        err.textContent = "";
        if (!code) {
          err.textContent = ans.method === "redirect" ? "Paste the address the browser went to after you signed in." : "Paste the code the sign-in page showed.";
          input.focus();
          return;
        }
        const submit = form.querySelector<HTMLButtonElement>("button[type=submit]")!;
        submit.disabled = true;
        try {
          const r = await api<LoginDoneAnswer>("POST", `/api/oauth/${encodeURIComponent(provider)}/finish`, { loginId: state.loginId, code });
          input.value = "";
          done(r.data);
        } catch (e) {
          err.textContent =
            e instanceof ApiError && e.status === 410 ? "This sign-in expired (they last 10 minutes). Cancel and start again." : `The sign-in did not finish: ${errText(e)}`;
          input.focus();
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("label", { for: id }, ans.method === "redirect" ? "The address the browser ended on (or its code)" : "Code from the sign-in page"),
    input,
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Finish sign-in"), cancel),
    err,
  );
  panel.replaceChildren(
    h("h2", { id: "login-title", tabindex: -1 }, title),
    h("p", {}, ans.instructions ?? ""),
    h("p", {}, link ? h("a", { href: link, target: "_blank", rel: "noopener noreferrer", class: "button-link" }, "Open the sign-in page") : "The gateway did not give a usable sign-in address.", " (opens a new tab)"),
    form,
  );
  show(panel, true);
  panel.querySelector<HTMLElement>("#login-title")?.focus();
}

// ---- settings --------------------------------------------------------------------------------------

let settings: Settings | null = null;
/** The form was changed since it was last filled from the gateway. */
let settingsDirty = false;

async function loadSettings(): Promise<void> {
  if (!me || me.id === null) return;
  try {
    const r = await api<Settings>("GET", "/api/settings");
    settings = r.data;
    settingsAvailable = true;
    show($("settings-form"), true);
    show($("settings-missing"), false);
    // Never overwrite what the person is typing with a load that answered meanwhile.
    if (settingsDirty) return;
    ($("strategy") as HTMLSelectElement).value = settings.strategy;
    ($("quota-threshold") as HTMLInputElement).value = String(Math.round(settings.quotaThreshold * 1000) / 10);
    ($("affinity-ttl") as HTMLInputElement).value = String(Math.round((settings.affinityTtlS / 60) * 100) / 100);
    describeStrategy();
  } catch (e) {
    if (e instanceof ApiError && e.routeMissing) {
      settingsAvailable = false;
      show($("settings-form"), false);
      show($("settings-missing"), true);
      const link = document.querySelector<HTMLElement>('#nav [data-view="settings"]');
      if (link) show(link.parentElement ?? link, false);
      if (location.hash === "#settings") location.hash = "#accounts";
      return;
    }
    setError("settings-error", e);
  }
}

function describeStrategy() {
  const sel = $("strategy") as HTMLSelectElement;
  const opt = sel.selectedOptions[0];
  $("strategy-help").textContent = opt?.dataset.help ?? "";
}

async function saveSettings(ev: Event) {
  ev.preventDefault();
  setError("settings-error", null);
  const strategy = ($("strategy") as HTMLSelectElement).value;
  const pct = Number(($("quota-threshold") as HTMLInputElement).value);
  const minutes = Number(($("affinity-ttl") as HTMLInputElement).value);
  if (!Number.isFinite(pct) || pct < 5 || pct > 100) {
    $("settings-error").textContent = "The quota threshold is a percentage from 5 to 100.";
    $("quota-threshold").focus();
    return;
  }
  if (!Number.isFinite(minutes) || minutes < 0) {
    $("settings-error").textContent = "The time to keep a conversation on its account is a number of minutes, 0 or more.";
    $("affinity-ttl").focus();
    return;
  }
  const patch: Partial<Settings> = {};
  if (!settings || strategy !== settings.strategy) patch.strategy = strategy as Strategy;
  const threshold = Math.round(pct * 10) / 1000;
  if (!settings || Math.abs(threshold - settings.quotaThreshold) > 1e-9) patch.quotaThreshold = threshold;
  const ttl = Math.round(minutes * 60);
  if (!settings || ttl !== settings.affinityTtlS) patch.affinityTtlS = ttl;
  if (Object.keys(patch).length === 0) {
    flash("Nothing changed.");
    return;
  }
  try {
    const r = await api<Settings>("PATCH", "/api/settings", patch);
    settings = r.data ?? { ...settings!, ...patch };
    settingsDirty = false;
    flash("Settings saved. New conversations follow them from now on.");
    await loadSettings();
  } catch (e) {
    $("settings-error").textContent = `Could not save: ${errText(e)}`;
  }
}

// ---- connect your tools ----------------------------------------------------------------------------

/** The key goes into the texts only while "Show with my key" is on; the placeholder otherwise. */
function applyKeyToConnect(withKey: boolean) {
  const placeholder = document.body.dataset.keyPlaceholder ?? "";
  const shell = (document.getElementById("connect-shell") as HTMLSelectElement | null)?.value ?? "sh";
  // A key is one word of printable ASCII; one with quotes or backslashes would need escaping per format.
  const usable = withKey && key !== null && placeholder !== "" && /^[A-Za-z0-9_.~+/=-]+$/.test(key);
  for (const code of document.querySelectorAll<HTMLElement>("code[data-texts]")) {
    let texts: Record<string, { plain: string; withKey: string }>;
    try {
      texts = JSON.parse(code.dataset.texts!);
    } catch {
      continue;
    }
    const t = texts[shell] ?? texts.sh;
    if (!t) continue;
    code.textContent = usable ? t.withKey.split(placeholder).join(key!) : t.plain;
  }
  $("connect-key-note").textContent = withKey && !usable ? "Your key cannot be filled in here: copy the text and put the key in by hand." : "";
}

// ---- admin -----------------------------------------------------------------------------------------

let users: UserProfile[] = [];

async function loadUsers(): Promise<void> {
  if (!me || me.role !== "admin") return;
  try {
    const r = await api<{ users: UserProfile[] }>("GET", "/admin/users");
    users = r.data.users;
    setError("users-error", null);
    renderUsers();
  } catch (e) {
    setError("users-error", e);
  }
}

function renderUsers() {
  const tbody = $("users");
  const focused = (document.activeElement as HTMLElement | null)?.dataset?.focusKey;
  tbody.replaceChildren(
    ...users.map((u) =>
      h(
        "tr",
        { "data-user": u.id, "data-name": u.name },
        h("th", { scope: "row" }, u.name, me?.id === u.id ? h("span", { class: "muted" }, " (you)") : null),
        h("td", { "data-th": "Role" }, u.role),
        h("td", { "data-th": "Added" }, timeEl(u.createdAt, new Date(u.createdAt).toLocaleDateString())),
        h(
          "td",
          { class: "actions" },
          btn("New key", () => void rotate(u), { of: u.name, key: `${u.id}:rotate` }),
          btn("Delete", () => void removeUser(u), { of: u.name, key: `${u.id}:delete`, cls: "danger" }),
        ),
      ),
    ),
  );
  if (users.length === 0) tbody.append(h("tr", {}, h("td", { colspan: 4, class: "muted" }, "No users yet.")));
  if (focused) tbody.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(focused)}"]`)?.focus();
}

/**
 * What the member runs with the key: the one command the CLI prints too (`subpool users add`), from
 * src/connect.ts through the page (data-setup-command), since a new member has only Node and this
 * address. After a new key, the same command saves the new one.
 */
function setupLines(u: UserWithKey, rotated: boolean): HTMLElement | null {
  const command = $("view-admin").dataset.setupCommand;
  if (!command) return null;
  const code = h("code", { id: "setup-command" }, command);
  return h(
    "div",
    { class: "setup" },
    h("p", {}, rotated ? `${u.name} runs this again (Node 20 or later) and pastes the new key when asked:` : `${u.name} runs this (Node 20 or later is all it takes) and pastes the key when asked:`),
    h("p", { class: "key-line" }, code, " ", btn("Copy command", (ev) => void copyText(command, ev.currentTarget as HTMLButtonElement))),
  );
}

/** The one place a secret is shown: a key an admin just made, until they hide it. */
function showNewKey(u: UserWithKey, rotated: boolean) {
  const slot = $("new-key-slot");
  const keyText = h("code", { class: "secret", id: "new-key" }, u.key);
  const copy = btn("Copy key", (ev) => void copyText(u.key, ev.currentTarget as HTMLButtonElement), { cls: "primary" });
  slot.replaceChildren(
    h(
      "section",
      { class: "panel new-key", "aria-labelledby": "new-key-title" },
      h("h2", { id: "new-key-title", tabindex: -1 }, rotated ? `New key for ${u.name}` : `${u.name} was added`),
      h(
        "p",
        {},
        rotated ? "The old key stopped working. " : "",
        `This is ${u.name}'s gateway key. It is shown this once: copy it now and give it to ${u.name} privately. If it is lost, make a new one.`,
      ),
      h("p", { class: "key-line" }, keyText, " ", copy),
      setupLines(u, rotated),
      btn("Done, hide the key", () => {
        slot.replaceChildren();
        $("user-name").focus();
      }),
    ),
  );
  slot.querySelector<HTMLElement>("#new-key-title")?.focus();
}

async function addUser(ev: Event) {
  ev.preventDefault();
  setError("add-user-error", null);
  const name = ($("user-name") as HTMLInputElement).value.trim();
  const role = ($("user-role") as HTMLSelectElement).value;
  if (!name) {
    $("add-user-error").textContent = "Enter a name.";
    $("user-name").focus();
    return;
  }
  try {
    const r = await api<UserWithKey>("POST", "/admin/users", { name, role });
    ($("user-name") as HTMLInputElement).value = "";
    showNewKey(r.data, false);
    await loadUsers();
  } catch (e) {
    $("add-user-error").textContent = `Could not add ${name}: ${errText(e)}`;
  }
}

async function rotate(u: UserProfile) {
  const self = me?.id === u.id;
  const ok = await confirmDialog(
    `Make a new key for ${u.name}?`,
    `${u.name}'s current key stops working at once, in every tool that uses it.${self ? " That is your own key: this page signs you out, and you sign in with the new one." : ""}`,
    "Make a new key",
  );
  if (!ok) return;
  try {
    const r = await api<UserWithKey>("POST", `/admin/users/${encodeURIComponent(u.id)}/key`);
    if (self) {
      key = r.data.key;
      sessionStorage.setItem(KEY_STORE, r.data.key);
    }
    showNewKey(r.data, true);
  } catch (e) {
    alertMsg(`Could not make a new key for ${u.name}: ${errText(e)}`);
  }
}

async function removeUser(u: UserProfile) {
  const self = me?.id === u.id;
  const ok = await confirmDialog(
    `Delete ${u.name}?`,
    `${u.name}'s key stops working and every account they stored is destroyed (the credentials cannot be recovered).${self ? " That is you: you will be signed out." : ""}`,
    "Delete",
  );
  if (!ok) return;
  try {
    await api("DELETE", `/admin/users/${encodeURIComponent(u.id)}`);
    flash(`Deleted ${u.name}.`);
    if (self) return signOut(`You deleted your own user (${u.name}).`);
  } catch (e) {
    alertMsg(`Could not delete ${u.name}: ${errText(e)}`);
  }
  await loadUsers();
}

async function rewrap() {
  const out = $("rewrap-result");
  out.textContent = "Re-wrapping…";
  try {
    const r = await api<{ users: number; rewrapped: number; keyVersion: number }>("POST", "/admin/rewrap");
    out.textContent = `Done: ${r.data.rewrapped} of ${r.data.users} users re-wrapped under key version ${r.data.keyVersion}.`;
  } catch (e) {
    out.textContent = `Could not re-wrap: ${errText(e)}`;
  }
}

// ---- start -----------------------------------------------------------------------------------------

function wire() {
  try {
    providers = JSON.parse(document.body.dataset.providers ?? "[]");
  } catch {
    providers = [];
  }
  $("sign-in-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    void signIn(($("gateway-key") as HTMLInputElement).value);
  });
  $("sign-out").addEventListener("click", () => signOut("Signed out. The key was removed from this tab."));
  window.addEventListener("hashchange", () => {
    if (!me || !VIEWS.includes(location.hash.slice(1) as View)) return;
    alertMsg("");
    $("flash").textContent = "";
    route();
    const v = currentView();
    document.querySelector<HTMLElement>(`[data-view-panel="${v}"] h1`)?.focus();
  });
  $("add-key-form").addEventListener("submit", (ev) => void addApiKey(ev));
  $("import-form").addEventListener("submit", (ev) => void importFile(ev));
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const label = ($("login-label") as HTMLInputElement).value.trim();
    void startLogin(($("login-provider") as HTMLSelectElement).value, label || null);
  });
  $("settings-form").addEventListener("submit", (ev) => void saveSettings(ev));
  $("strategy").addEventListener("change", describeStrategy);
  for (const ev of ["input", "change"]) $("settings-form").addEventListener(ev, () => (settingsDirty = true));
  $("show-key").addEventListener("change", (ev) => applyKeyToConnect((ev.currentTarget as HTMLInputElement).checked));
  $("connect-shell").addEventListener("change", () => applyKeyToConnect(($("show-key") as HTMLInputElement).checked));
  for (const b of document.querySelectorAll<HTMLButtonElement>("button[data-copy]")) {
    b.addEventListener("click", () => {
      const src = document.getElementById(b.dataset.copy!);
      if (src) void copyText(src.textContent ?? "", b);
    });
  }
  $("add-user-form").addEventListener("submit", (ev) => void addUser(ev));
  $("rewrap").addEventListener("click", () => void rewrap());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && me && currentView() === "accounts") void loadAccounts();
  });
  document.documentElement.classList.add("js");

  const saved = sessionStorage.getItem(KEY_STORE);
  if (saved) {
    key = saved;
    api<Me>("GET", "/api/me", undefined, { signInCheck: true }).then(
      (r) => {
        me = r.data;
        enterApp();
      },
      (e) => {
        key = null;
        if (e instanceof ApiError && e.status === 401) signOut("Your saved gateway key is no longer accepted. Sign in with a current key.");
        else {
          key = null;
          show($("sign-in"), true);
          $("sign-in-error").textContent = errText(e);
        }
      },
    );
  } else {
    signOut();
  }
}

wire();
