/**
 * Contract: an alert webhook's panel, the team's in the Admin view (/admin/alerts) or a member's
 * own in Settings (/api/alerts), built from the same page shell (page.tsx AlertsPanel, ids
 * `<scope>-alerts-*`). Shows the current target (404: none), its events and last delivery; saves a
 * new one and shows its signing secret this once, with a copy button, until the person hides it;
 * sends a test and shows what the receiver answered; removes it after a confirmation.
 *
 * The webhook URL is not shown back in full: a Slack or Discord URL's path is itself a secret, so
 * the page shows its scheme and host only. The form never fills the URL in: saving again makes a
 * new target (and a new secret) anyway.
 */
import type { AlertDelivery, AlertEventName, AlertTargetCreated, AlertTargetView } from "../../wire";
import { ApiError, api, copyText, errText, flash, setError } from "./api";
import { $, ago, btn, confirmDialog, h, show, timeEl } from "./dom";
import { S } from "./state";

export type AlertScope = "team" | "my";

const PATH: Record<AlertScope, string> = { team: "/admin/alerts", my: "/api/alerts" };
const WHOSE: Record<AlertScope, string> = { team: "the team's", my: "your" };

/** undefined: not loaded; null: none set. */
const targets: Record<AlertScope, AlertTargetView | null | undefined> = { team: undefined, my: undefined };
/** The form was changed since it was last filled from the gateway. */
const dirty: Record<AlertScope, boolean> = { team: false, my: false };

const id = (scope: AlertScope, part: string) => `${scope}-alerts-${part}`;
const eventBoxes = (scope: AlertScope) => [...document.querySelectorAll<HTMLInputElement>(`#${id(scope, "form")} input[name="events"]`)];

const allowed = (scope: AlertScope) => !!S.me && (scope === "team" ? S.me.role === "admin" : S.me.id !== null);

/** "https://hooks.slack.com/…": the scheme and host; the path (often the webhook's secret) left out. */
export function maskedUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}/${u.pathname.length > 1 || u.search ? "…" : ""}`;
  } catch {
    return "(an address the page cannot read)";
  }
}

function shapeOf(url: string): string | null {
  try {
    const u = new URL(url);
    if (u.hostname === "hooks.slack.com") return "Slack";
    if ((u.hostname === "discord.com" || u.hostname === "discordapp.com") && u.pathname.startsWith("/api/webhooks")) return "Discord";
  } catch {}
  return null;
}

function eventsWords(scope: AlertScope, events: AlertEventName[] | null): string {
  if (events === null) return "every event";
  const words = new Map(eventBoxes(scope).map((b) => [b.value, b.dataset.words ?? b.value]));
  return events.map((e) => words.get(e) ?? e).join("; ");
}

/** What a delivery came to, in words: the receiver's status, or why nothing came back. */
export function deliveryWords(d: AlertDelivery): string {
  if (d.ok) return `delivered: the receiver answered ${d.status}`;
  if (d.error) return `not delivered: ${d.error.replace(/[.]$/, "")}`;
  return `not delivered: the receiver answered ${d.status}`;
}

function renderCurrent(scope: AlertScope) {
  const t = targets[scope];
  const el = $(id(scope, "current"));
  $(id(scope, "form-title")).textContent = t ? "Replace the webhook" : "Set the webhook";
  if (!t) {
    el.replaceChildren(h("p", { class: "muted" }, "No webhook is set: these alerts go nowhere."));
    return;
  }
  const shape = shapeOf(t.url);
  const last = t.lastDelivery;
  el.replaceChildren(
    h("h3", {}, "Current webhook"),
    h(
      "dl",
      { class: "facts" },
      h("div", { class: "wide" }, h("dt", {}, "Sends to"), h("dd", {}, h("code", { title: "The rest of the address is not shown: a webhook's path is often its secret." }, maskedUrl(t.url)), shape ? ` (${shape}'s message shape)` : "")),
      h("div", { class: "wide" }, h("dt", {}, "Events"), h("dd", {}, eventsWords(scope, t.events))),
      h(
        "div",
        { class: "wide" },
        h("dt", {}, "Last delivery"),
        h("dd", { class: last && !last.ok ? "error-text" : null, id: id(scope, "last") }, last ? deliveryLine(last) : "none yet"),
      ),
    ),
    h(
      "div",
      { class: "row" },
      btn("Send a test", (ev) => void sendTest(scope, ev.currentTarget as HTMLButtonElement), { of: `${WHOSE[scope]} alert webhook`, key: `${scope}:test` }),
      btn("Remove", () => void remove(scope), { of: `${WHOSE[scope]} alert webhook`, key: `${scope}:remove`, cls: "danger" }),
    ),
  );
}

function deliveryLine(d: AlertDelivery): DocumentFragment {
  const f = document.createDocumentFragment();
  f.append(deliveryWords(d), " · ", timeEl(d.at, ago(d.at)));
  return f;
}

/** Fills the events from the target (never over what the person is choosing). */
function fillForm(scope: AlertScope) {
  if (dirty[scope]) return;
  const t = targets[scope];
  for (const b of eventBoxes(scope)) b.checked = !t || t.events === null || t.events.includes(b.value as AlertEventName);
}

export async function loadAlerts(scope: AlertScope): Promise<void> {
  if (!allowed(scope)) return;
  try {
    const r = await api<AlertTargetView>("GET", PATH[scope]);
    targets[scope] = r.data;
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 404)) {
      setError(id(scope, "error"), e);
      return;
    }
    if (e.routeMissing) {
      // A gateway without alerts: say so instead of a form that cannot work.
      show($(id(scope, "missing")), true);
      show($(id(scope, "form")), false);
      return;
    }
    targets[scope] = null;
  }
  if (!S.key) return;
  show($(id(scope, "missing")), false);
  show($(id(scope, "form")), true);
  renderCurrent(scope);
  fillForm(scope);
}

/** The one place the signing secret is shown: right after it was made, until the person hides it. */
function showSecret(scope: AlertScope, made: AlertTargetCreated) {
  const slot = $(id(scope, "secret"));
  const titleId = id(scope, "secret-title");
  const shape = shapeOf(made.url);
  slot.replaceChildren(
    h(
      "section",
      { class: "panel new-key", "aria-labelledby": titleId },
      h("h3", { id: titleId, tabindex: -1 }, "Webhook saved: its signing secret"),
      h(
        "p",
        {},
        "It is shown this once: copy it now into the receiver, which checks each body's ",
        h("code", {}, "x-subpool-signature: sha256=<hex HMAC-SHA256 of the body>"),
        " with it. If it is lost, save the webhook again for a new one.",
        shape ? ` ${shape} does not check signatures: the secret matters to a receiver of your own only.` : "",
      ),
      h("p", { class: "key-line" }, h("code", { class: "secret", id: id(scope, "secret-value") }, made.secret), " ", btn("Copy secret", (ev) => void copyText(made.secret, ev.currentTarget as HTMLButtonElement), { cls: "primary" })),
      btn("Done, hide the secret", () => {
        slot.replaceChildren();
        $(id(scope, "url")).focus();
      }),
    ),
  );
  slot.querySelector<HTMLElement>(`#${titleId}`)?.focus();
}

async function save(scope: AlertScope, ev: Event) {
  ev.preventDefault();
  const err = $(id(scope, "error"));
  const urlInput = $<HTMLInputElement>(id(scope, "url"));
  err.textContent = "";
  urlInput.removeAttribute("aria-invalid");
  const url = urlInput.value.trim();
  if (!url) {
    err.textContent = "Enter the webhook URL.";
    urlInput.setAttribute("aria-invalid", "true");
    urlInput.focus();
    return;
  }
  const boxes = eventBoxes(scope);
  const chosen = boxes.filter((b) => b.checked).map((b) => b.value as AlertEventName);
  if (chosen.length === 0) {
    err.textContent = "Choose at least one event.";
    boxes[0]?.focus();
    return;
  }
  const events = chosen.length === boxes.length ? null : chosen;
  try {
    const r = await api<AlertTargetCreated>("PUT", PATH[scope], { url, events });
    urlInput.value = "";
    dirty[scope] = false;
    $(id(scope, "result")).textContent = "";
    targets[scope] = { url: r.data.url, events: r.data.events, lastDelivery: null };
    renderCurrent(scope);
    showSecret(scope, r.data);
  } catch (e) {
    // "url: http: is taken only to a loopback address…": the gateway's reason, about the URL.
    const why = errText(e).replace(/^Url: /, "the URL was refused: ");
    err.textContent = `Could not save the webhook: ${why}`;
    if (e instanceof ApiError && e.field === "url") {
      urlInput.setAttribute("aria-invalid", "true");
      urlInput.focus();
    }
  }
}

async function sendTest(scope: AlertScope, button: HTMLButtonElement) {
  const out = $(id(scope, "result"));
  out.className = "test-result";
  out.textContent = "Sending a test…";
  button.disabled = true;
  try {
    const r = await api<AlertDelivery>("POST", `${PATH[scope]}/test`);
    out.className = `test-result ${r.data.ok ? "good" : "error"}`;
    out.textContent = `Test ${deliveryWords(r.data)}.`;
  } catch (e) {
    out.className = "test-result error";
    out.textContent = `Could not send a test: ${errText(e)}`;
  } finally {
    button.disabled = false;
  }
  await loadAlerts(scope);
  // The re-render replaced the button that had the focus: give it to the new one, unless the
  // person has moved on meanwhile.
  const active = document.activeElement;
  if (!active || active === document.body || !active.isConnected) $(id(scope, "current")).querySelector<HTMLElement>(`[data-focus-key="${scope}:test"]`)?.focus();
}

async function remove(scope: AlertScope) {
  const ok = await confirmDialog(`Remove ${WHOSE[scope]} alert webhook?`, "Alerts stop going to it, and its signing secret is forgotten.", "Remove");
  if (!ok) return;
  try {
    await api("DELETE", PATH[scope]);
    targets[scope] = null;
    $(id(scope, "secret")).replaceChildren();
    $(id(scope, "result")).textContent = "";
    renderCurrent(scope);
    flash("The alert webhook was removed.");
    $(id(scope, "url")).focus();
  } catch (e) {
    setError(id(scope, "error"), e);
  }
}

export function wireAlerts(scope: AlertScope): void {
  const form = $(id(scope, "form"));
  form.addEventListener("submit", (ev) => void save(scope, ev));
  for (const t of ["input", "change"]) form.addEventListener(t, () => (dirty[scope] = true));
}

/** Signing out forgets both panels. */
export function resetAlerts(): void {
  for (const scope of ["team", "my"] as const) {
    targets[scope] = undefined;
    dirty[scope] = false;
    for (const part of ["current", "secret", "result", "error"]) $(id(scope, part)).replaceChildren();
    $<HTMLInputElement>(id(scope, "url")).value = "";
  }
}
