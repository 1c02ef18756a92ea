/**
 * Contract: the Admin view's team table and its summary, from GET /admin/usage: per member the last
 * request, the day they were added, account health counts, requests and tokens today and over the
 * window, and limits.
 * Members with an account that needs a new login are named on top and their rows stand out (a badge
 * and a red edge), since that is the one thing a team lead must act on. Renders only: the row's
 * actions are the caller's.
 */
import type { TeamMemberUsage } from "../../wire";
import { $, ago, btn, compact, dayText, h, plural, timeEl } from "./dom";
import { full, limitsLong, limitsParts } from "./limits-words";
import { S } from "./state";
import { teamChart } from "./team-chart";
import { dayTokens } from "./usage";

export interface RowActions {
  limits: (u: TeamMemberUsage) => void;
  rotate: (u: TeamMemberUsage) => void;
  remove: (u: TeamMemberUsage) => void;
}

/** Tokens first (what limits and bills count), the requests under them. */
function usedCell(th: string, requests: number, tokens: number): HTMLElement {
  const td = h("td", { "data-th": th, class: "num", title: `${full.format(tokens)} tokens, ${full.format(requests)} ${requests === 1 ? "request" : "requests"}` });
  if (requests === 0 && tokens === 0) td.append(h("span", { class: "muted" }, "none"));
  else td.append(h("span", { class: "tok" }, `${compact.format(tokens)} tokens`), " ", h("span", { class: "req muted" }, `${full.format(requests)} ${requests === 1 ? "request" : "requests"}`));
  return td;
}

function accountsCell(u: TeamMemberUsage): HTMLElement {
  const a = u.accounts;
  const td = h("td", { "data-th": "Accounts" });
  if (a.total === 0) {
    td.append(h("span", { class: "muted" }, "none"));
    return td;
  }
  const parts = [
    a.active ? `${a.active} active` : null,
    a.cooling ? `${a.cooling} cooling down` : null,
    a.disabled ? `${a.disabled} disabled` : null,
  ].filter((p): p is string => p !== null);
  td.append(h("span", { class: "acct-total" }, String(a.total)), parts.length ? h("span", { class: "muted" }, `: ${parts.join(", ")}`) : "");
  if (a.needsReauth) td.append(" ", h("span", { class: "badge badge-needs_reauth" }, `${a.needsReauth} ${a.needsReauth === 1 ? "needs" : "need"} a new login`));
  return td;
}

/** One line per limit; a glob never broken at its hyphens. */
function limitsCell(u: TeamMemberUsage): (HTMLElement | string)[] {
  const parts = limitsParts(u.limits);
  if (parts.length === 0) return [h("span", { class: "muted" }, "none")];
  return parts.map((p) =>
    typeof p === "string"
      ? h("span", { class: /^(stopped|no tokens)/.test(p) ? "lim lim-stopped error-text" : "lim" }, p)
      : h("span", { class: "lim lim-models" }, "models: ", ...p.models.flatMap((g, i) => [i ? ", " : "", h("span", { class: "glob" }, g)])),
  );
}

function row(u: TeamMemberUsage, actions: RowActions): HTMLTableRowElement {
  const today = u.days[u.days.length - 1];
  const winReq = u.days.reduce((s, d) => s + d.requests, 0);
  const winTok = u.days.reduce((s, d) => s + dayTokens(d), 0);
  const needs = u.accounts.needsReauth > 0;
  return h(
    "tr",
    { "data-user": u.id, "data-name": u.name, class: needs ? "needs-login" : null },
    h(
      "th",
      { scope: "row" },
      u.name,
      S.me?.id === u.id ? h("span", { class: "muted" }, " (you)") : null,
      u.role === "admin" ? h("span", { class: "role" }, "admin") : null,
    ),
    h("td", { "data-th": "Last seen" }, u.lastSeenAt ? timeEl(u.lastSeenAt, ago(u.lastSeenAt)) : h("span", { class: "muted" }, "never")),
    h("td", { "data-th": "Added" }, timeEl(u.createdAt, dayText(u.createdAt))),
    accountsCell(u),
    usedCell("Today", today?.requests ?? 0, today ? dayTokens(today) : 0),
    usedCell(`Last ${u.days.length} days`, winReq, winTok),
    h("td", { "data-th": "Limits", title: limitsLong(u.limits) }, ...limitsCell(u)),
    h(
      "td",
      { class: "actions" },
      btn("Limits", () => actions.limits(u), { of: u.name, key: `${u.id}:limits` }),
      btn("New key", () => actions.rotate(u), { of: u.name, key: `${u.id}:rotate` }),
      btn("Delete", () => actions.remove(u), { of: u.name, key: `${u.id}:delete`, cls: "danger" }),
    ),
  );
}

/** The lines above the table: who needs a new login (names them), and the team at a glance. */
function summary(users: TeamMemberUsage[], days: number): HTMLElement[] {
  const out: HTMLElement[] = [];
  const needing = users.filter((u) => u.accounts.needsReauth > 0);
  if (needing.length) {
    const accounts = needing.reduce((s, u) => s + u.accounts.needsReauth, 0);
    const many = needing.length > 1;
    out.push(
      h(
        "p",
        { class: "note warn", id: "needs-login-summary" },
        h("strong", {}, `${plural(needing.length, "member")} ${many ? "have" : "has"} ${accounts > 1 ? "accounts that need" : "an account that needs"} a new login`),
        `: ${needing.map((u) => u.name).join(", ")}. Requests skip those accounts until ${many ? "their owners sign" : "its owner signs"} in again (Accounts page, or subpool login).`,
      ),
    );
  }
  const todayOf = (u: TeamMemberUsage) => u.days[u.days.length - 1];
  const activeToday = users.filter((u) => (todayOf(u)?.requests ?? 0) > 0).length;
  const tokToday = users.reduce((s, u) => s + (todayOf(u) ? dayTokens(todayOf(u)!) : 0), 0);
  const tokWindow = users.reduce((s, u) => s + u.days.reduce((t, d) => t + dayTokens(d), 0), 0);
  out.push(
    h(
      "p",
      { class: "muted team-glance" },
      `${plural(users.length, "member")} · ${activeToday} made requests today · ${compact.format(tokToday)} tokens today, ${compact.format(tokWindow)} in the last ${plural(days, "day")}`,
    ),
  );
  return out;
}

export function renderTeam(users: TeamMemberUsage[], days: number, actions: RowActions): void {
  const tbody = $("users");
  const focused = (document.activeElement as HTMLElement | null)?.dataset?.focusKey;
  tbody.replaceChildren(...users.map((u) => row(u, actions)));
  if (users.length === 0) tbody.append(h("tr", {}, h("td", { colspan: 8, class: "muted" }, "No users yet.")));
  $("team-window-head").textContent = `Last ${days} days`;
  $("team-summary").replaceChildren(...summary(users, days));
  $("team-chart").replaceChildren(teamChart(users, days));
  if (focused) tbody.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(focused)}"]`)?.focus();
}
