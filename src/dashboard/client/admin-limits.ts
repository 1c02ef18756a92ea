/**
 * Contract: setting a member's team limits from the Admin view, in a modal dialog (it opens where
 * the admin is, in a table of hundreds; Escape or Cancel closes it and the focus goes back). The
 * form sends every field (empty = null, no limit) with PATCH /admin/users/:id; what the gateway
 * refuses is shown in its words next to the field it names, and nothing is changed.
 */
import type { Limits, TeamMemberUsage, UserListed } from "../../wire";
import { ApiError, api, errText, flash } from "./api";
import { $ } from "./dom";
import { parseLimit, parseModels } from "./limits-words";

const FIELDS = [
  { key: "requestsPerMinute", input: "limit-rpm", label: "Requests per minute" },
  { key: "tokensPerDay", input: "limit-day", label: "Tokens per day" },
  { key: "tokensPerMonth", input: "limit-month", label: "Tokens per month" },
] as const;
const MODELS = { key: "models", input: "limit-models", label: "Models" } as const;

let editing: { user: TeamMemberUsage; back: HTMLElement | null; onSaved: (u: TeamMemberUsage) => void } | null = null;

const input = (id: string) => $<HTMLInputElement>(id);
const dialog = () => $("limits-dialog") as HTMLDialogElement;

function clearInvalid() {
  for (const f of [...FIELDS, MODELS]) input(f.input).removeAttribute("aria-invalid");
  $("limits-error").textContent = "";
}

function refuse(field: (typeof FIELDS)[number] | typeof MODELS, message: string) {
  const el = input(field.input);
  el.setAttribute("aria-invalid", "true");
  el.setAttribute("aria-errormessage", "limits-error");
  $("limits-error").textContent = message;
  el.focus();
}

export function openLimits(u: TeamMemberUsage, onSaved: (u: TeamMemberUsage) => void): void {
  editing = { user: u, back: document.activeElement as HTMLElement | null, onSaved };
  clearInvalid();
  $("limits-title").textContent = `Limits for ${u.name}`;
  for (const f of FIELDS) input(f.input).value = u.limits[f.key] === null ? "" : String(u.limits[f.key]);
  input(MODELS.input).value = u.limits.models?.join(", ") ?? "";
  dialog().showModal();
  input(FIELDS[0].input).focus();
}

function close() {
  const back = editing?.back;
  editing = null;
  if (dialog().open) dialog().close();
  if (back && back.isConnected) back.focus();
}

async function save(ev: Event) {
  ev.preventDefault();
  if (!editing) return;
  clearInvalid();
  const limits: Limits = { requestsPerMinute: null, tokensPerDay: null, tokensPerMonth: null, models: parseModels(input(MODELS.input).value) };
  for (const f of FIELDS) {
    const n = parseLimit(input(f.input).value);
    if (Number.isNaN(n)) return refuse(f, `${f.label}: a whole number (2000000, 2,000,000 or 2M), or empty for no limit.`);
    limits[f.key] = n;
  }
  const { user, onSaved } = editing;
  try {
    const r = await api<UserListed>("PATCH", `/admin/users/${encodeURIComponent(user.id)}`, { limits });
    const saved = { ...user, limits: r.data.limits };
    close();
    flash(`Limits for ${user.name} saved. The gateway applies them within seconds.`);
    onSaved(saved);
  } catch (e) {
    // "limits.tokensPerDay: must be 0 or more": the field's name for a person, next to its input.
    const name = e instanceof ApiError ? /^limits\.(\w+)/.exec(e.field ?? "")?.[1] : undefined;
    const field = [...FIELDS, MODELS].find((f) => f.key === name);
    if (field) return refuse(field, `${field.label}: ${errText(e).replace(/^Limits\.\w+(\.\d+)?: /i, "")}`);
    $("limits-error").textContent = `Could not save the limits: ${errText(e)}`;
  }
}

export function wireLimits(): void {
  $("limits-form").addEventListener("submit", (ev) => void save(ev));
  $("limits-cancel").addEventListener("click", close);
  dialog().addEventListener("cancel", (ev) => {
    ev.preventDefault();
    close();
  });
}
