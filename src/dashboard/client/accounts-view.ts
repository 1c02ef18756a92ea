/**
 * Contract: the Accounts view. Loads /api/accounts (and the usage for each card), renders the
 * cards by provider with their status, quota and usage, ticks the cooldown countdowns, and runs
 * each card's actions: rename, move, enable/disable, check, delete, sign in again.
 */
import type { UsageAnswer } from "../../wire";
import { startLogin } from "./add-account";
import { ApiError, alertMsg, api, errText, flash, setError } from "./api";
import { $, STATUS_WORDS, WINDOW_ORDER, ago, btn, clock, confirmDialog, durationWords, h, httpWords, plural, resetFmt, timeEl, windowWords } from "./dom";
import { currentView } from "./nav";
import { REFRESH_MS, S, providerName, USAGE_DAYS, USAGE_MAX_AGE_MS, checks, now, renaming, usage, type Account } from "./state";
import { usageBlock } from "./usage";

// ---- accounts ----------------------------------------------------------------------------------------

let accountsLoad: Promise<void> | null = null;
let accountsStale = false;

/**
 * Fetches and shows the accounts. A call while a load is in flight (an action right after the
 * periodic refresh started) waits for it and then loads again, so the list never shows an answer
 * older than the action.
 */
export function loadAccounts(): Promise<void> {
  if (!S.me || S.me.id === null) return Promise.resolve();
  if (accountsLoad) {
    accountsStale = true;
    return accountsLoad;
  }
  accountsLoad = (async () => {
    do {
      accountsStale = false;
      await fetchAccounts();
    } while (accountsStale && S.key);
  })().finally(() => (accountsLoad = null));
  return accountsLoad;
}

async function fetchAccounts(): Promise<void> {
  try {
    const r = await api<{ accounts: Account[] }>("GET", "/api/accounts");
    if (!S.key) return;
    S.accounts = r.data.accounts;
    setError("accounts-error", null);
    $("accounts-updated").textContent = `Updated ${new Date().toLocaleTimeString()} · refreshes every ${REFRESH_MS / 1000} s`;
    if (renaming.size === 0) renderAccounts();
    void loadUsage();
  } catch (e) {
    if (S.key) setError("accounts-error", e);
  }
}

function renderAccounts() {
  const root = $("account-groups");
  const focused = (document.activeElement as HTMLElement | null)?.dataset?.focusKey;
  const groups: Node[] = [];
  const order = [...S.providers.map((p) => p.id), ...new Set(S.accounts.map((a) => a.provider).filter((id) => !S.providers.some((p) => p.id === id)))];
  for (const pid of order) {
    const list = S.accounts.filter((a) => a.provider === pid).sort((a, b) => a.position - b.position);
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

export function card(a: Account, first: boolean, last: boolean): HTMLElement {
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

async function loadUsage(): Promise<void> {
  if (!S.usageAvailable) return;
  const stale = S.accounts.filter((a) => (usage.get(a.id)?.at ?? 0) < Date.now() - USAGE_MAX_AGE_MS);
  if (stale.length === 0) return;
  let changed = false;
  await Promise.all(
    stale.map(async (a) => {
      try {
        const r = await api<UsageAnswer>("GET", `/api/accounts/${encodeURIComponent(a.id)}/usage?days=${USAGE_DAYS}`);
        usage.set(a.id, { at: Date.now(), days: Array.isArray(r.data?.days) ? r.data.days : null });
        changed = true;
      } catch (e) {
        if (e instanceof ApiError && e.routeMissing) S.usageAvailable = false;
        else if (e instanceof ApiError && e.status === 404) usage.set(a.id, { at: Date.now(), days: null });
        // Other failures: try again on the next refresh.
      }
    }),
  );
  if (changed && renaming.size === 0 && S.key) renderAccounts();
}

/** Every second: countdowns; a cooldown that ran out makes the list reload. */
export function tick() {
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

export async function check(a: Account) {
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
