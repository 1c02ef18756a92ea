/**
 * Contract: the Admin view. Loads the team (GET /admin/usage over the chosen window) for the table
 * and chart (admin-usage.ts), adds users, makes new keys (showing the secret once, with the setup
 * command), deletes them, opens a member's limits (admin-limits.ts), and re-wraps stored
 * credentials. The team's alert webhook is alerts-view.ts's.
 */
import type { TeamMemberUsage, TeamUsageAnswer, UserWithKey } from "../../wire";
import { openLimits } from "./admin-limits";
import { renderTeam } from "./admin-usage";
import { alertMsg, api, copyText, errText, flash, setError } from "./api";
import { $, btn, confirmDialog, h } from "./dom";
import { KEY_STORE, S, hooks } from "./state";

// ---- admin -----------------------------------------------------------------------------------------

/** The window of the team table and chart, from the page's select (7, 30 or 90 days). */
const teamDays = () => Number(($("team-days") as HTMLSelectElement).value) || 30;

export async function loadUsers(): Promise<void> {
  if (!S.me || S.me.role !== "admin") return;
  const days = teamDays();
  try {
    const r = await api<TeamUsageAnswer>("GET", `/admin/usage?days=${days}`);
    if (!S.key) return;
    setError("users-error", null);
    renderTeam(r.data.users, days, { limits: (u) => openLimits(u, () => void loadUsers()), rotate: (u) => void rotate(u), remove: (u) => void removeUser(u) });
  } catch (e) {
    setError("users-error", e);
  }
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

export async function addUser(ev: Event) {
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

async function rotate(u: TeamMemberUsage) {
  const self = S.me?.id === u.id;
  const ok = await confirmDialog(
    `Make a new key for ${u.name}?`,
    `${u.name}'s current key stops working at once, in every tool that uses it.${self ? " That is your own key: this page signs you out, and you sign in with the new one." : ""}`,
    "Make a new key",
  );
  if (!ok) return;
  try {
    const r = await api<UserWithKey>("POST", `/admin/users/${encodeURIComponent(u.id)}/key`);
    if (self) {
      S.key = r.data.key;
      sessionStorage.setItem(KEY_STORE, r.data.key);
    }
    showNewKey(r.data, true);
  } catch (e) {
    alertMsg(`Could not make a new key for ${u.name}: ${errText(e)}`);
  }
}

async function removeUser(u: TeamMemberUsage) {
  const self = S.me?.id === u.id;
  const ok = await confirmDialog(
    `Delete ${u.name}?`,
    `${u.name}'s key stops working and every account they stored is destroyed (the credentials cannot be recovered).${self ? " That is you: you will be signed out." : ""}`,
    "Delete",
  );
  if (!ok) return;
  try {
    await api("DELETE", `/admin/users/${encodeURIComponent(u.id)}`);
    flash(`Deleted ${u.name}.`);
    if (self) return hooks.signOut(`You deleted your own user (${u.name}).`);
  } catch (e) {
    alertMsg(`Could not delete ${u.name}: ${errText(e)}`);
  }
  await loadUsers();
}

export async function rewrap() {
  const out = $("rewrap-result");
  out.textContent = "Re-wrapping…";
  try {
    const r = await api<{ users: number; rewrapped: number; keyVersion: number }>("POST", "/admin/rewrap");
    out.textContent = `Done: ${r.data.rewrapped} of ${r.data.users} users re-wrapped under key version ${r.data.keyVersion}.`;
  } catch (e) {
    out.textContent = `Could not re-wrap: ${errText(e)}`;
  }
}
