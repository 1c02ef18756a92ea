/**
 * Contract: a member's own team limits and what is left of them (GET /api/me), read fresh when a
 * view that shows them opens (and on the Accounts refresh, only for a member who has limits):
 * one line on top of Accounts ("1,234,000 of 2,000,000 tokens left today · resets in 5 h"), and
 * the Team limits panel in Settings with a bar per limit. A member without limits sees no line, and
 * the panel says so. Nothing here is a secret.
 */
import type { Limits, LimitsLeft, Me } from "../../wire";
import { api, setError } from "./api";
import { $, durationWords, h, resetFmt, show, timeEl } from "./dom";
import { full, hasLimits } from "./limits-words";
import { S, now } from "./state";

interface Row {
  name: string;
  limit: number;
  left: number;
  /** "today", "this month", "this minute" */
  when: string;
  unit: string;
  resets: number;
}

function rows(l: Limits, left: LimitsLeft): Row[] {
  const out: Row[] = [];
  if (l.tokensPerDay !== null) out.push({ name: "Tokens per UTC day", limit: l.tokensPerDay, left: left.tokensPerDay ?? l.tokensPerDay, when: "today", unit: "tokens", resets: left.resets.day });
  if (l.tokensPerMonth !== null)
    out.push({ name: "Tokens per UTC month", limit: l.tokensPerMonth, left: left.tokensPerMonth ?? l.tokensPerMonth, when: "this month", unit: "tokens", resets: left.resets.month });
  if (l.requestsPerMinute !== null)
    out.push({ name: "Requests per minute", limit: l.requestsPerMinute, left: left.requestsPerMinute ?? l.requestsPerMinute, when: "this minute", unit: "requests", resets: left.resets.minute });
  return out;
}

/** A limit of 0 is the admin stopping the member: said so, not "0 of 0". */
const leftText = (r: Row) => (r.limit === 0 ? `no ${r.unit} allowed (your admin set this limit to 0)` : `${full.format(r.left)} of ${full.format(r.limit)} ${r.unit} left ${r.when}`);
const resetText = (r: Row) => `resets in ${durationWords(r.resets - now())}`;

/** The line on top of Accounts: every limit in one sentence, in red when one is used up. */
function renderLine(me: Me) {
  const el = $("limits-line");
  if (!hasLimits(me.limits)) {
    show(el, false);
    el.replaceChildren();
    return;
  }
  const list = rows(me.limits, me.left);
  const out = list.find((r) => r.left === 0);
  const parts: (Node | string)[] = [h("strong", {}, "Team limits: ")];
  list.forEach((r, i) => parts.push(i ? " · " : "", r.limit === 0 ? leftText(r) : `${leftText(r)} (${resetText(r)})`));
  if (me.limits.models) parts.push(list.length ? " · " : "", `models: ${me.limits.models.join(", ")}`);
  parts.push(" ", h("a", { href: "#settings" }, "Details"));
  el.className = out ? "limits-line note warn" : "limits-line note";
  el.replaceChildren(...parts);
  show(el, true);
}

/** The Settings panel: a bar per limit (used / limit), when it resets, the model allow-list. */
function renderPanel(me: Me) {
  const body = $("my-limits-body");
  if (!hasLimits(me.limits)) {
    body.replaceChildren(h("p", { class: "muted" }, "No team limits: your admin has set none for you. The providers' own limits still apply."));
    return;
  }
  const list = rows(me.limits, me.left);
  const parts: (HTMLElement | null)[] = [
    h("p", { class: "muted" }, "Your admin set these for you. Past one, requests get 429 with the time until it frees: the team's limit, not the provider's."),
    list.length
      ? h(
          "ul",
          { class: "bars limits" },
          ...list.map((r, i) => {
            const id = `my-limit-${i}`;
            return h(
              "li",
              { "data-limit": r.name },
              h("label", { for: id }, r.name),
              h("meter", { id, min: 0, max: r.limit || 1, value: r.limit === 0 ? 1 : r.limit - r.left, low: r.limit * 0.7, high: r.limit * 0.9, optimum: 0 }),
              r.limit === 0
                ? h("span", { class: "bar-text error-text" }, leftText(r))
                : h("span", { class: `bar-text${r.left === 0 ? " error-text" : ""}` }, `${leftText(r)} · ${resetText(r)} (`, timeEl(r.resets, resetFmt(r.resets)), ")"),
            );
          }),
        )
      : null,
    me.limits.models
      ? h("p", { class: "models" }, h("strong", {}, "Models: "), me.limits.models.join(", "), h("span", { class: "muted" }, " (requests for other models are refused with 403)"))
      : null,
  ];
  body.replaceChildren(...parts.filter((p): p is HTMLElement => p !== null));
}

/** Reads /api/me again (what is left changes with every request) and shows it where it is shown. */
export async function loadMyLimits(): Promise<void> {
  if (!S.me || S.me.id === null) return;
  try {
    const r = await api<Me>("GET", "/api/me");
    if (!S.key) return;
    S.me = r.data;
    setError("my-limits-error", null);
  } catch (e) {
    setError("my-limits-error", e);
  }
  if (S.me?.limits && S.me.left) {
    renderLine(S.me);
    renderPanel(S.me);
  }
}
