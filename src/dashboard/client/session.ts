/**
 * Contract: signing in and out, entering the app (who you are, the nav, the refresh timers), and
 * route(), which shows the current view and loads what it needs (Accounts and Settings read the
 * member's limits again, /api/me). signOut clears every view's state.
 */
import type { Me } from "../../wire";
import { loadAccounts, tick } from "./accounts-view";
import { stopLogin } from "./add-account";
import { loadUsers } from "./admin-view";
import { loadAlerts, resetAlerts } from "./alerts-view";
import { ApiError, api, errText } from "./api";
import { applyKeyToConnect } from "./connect-view";
import { $, show } from "./dom";
import { currentView } from "./nav";
import { hasLimits } from "./limits-words";
import { loadMyLimits } from "./my-limits";
import { loadSettings } from "./settings-view";
import { KEY_STORE, REFRESH_MS, S, checks, renaming, usage } from "./state";

// ---- sign in / out ---------------------------------------------------------------------------------

export async function signIn(candidate: string): Promise<void> {
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
  S.key = k;
  try {
    const r = await api<Me>("GET", "/api/me", undefined, { signInCheck: true });
    S.me = r.data;
  } catch (e) {
    S.key = null;
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

export function signOut(message?: string) {
  S.key = null;
  S.me = null;
  sessionStorage.removeItem(KEY_STORE);
  stopLogin();
  window.clearInterval(S.refreshTimer);
  window.clearInterval(S.tickTimer);
  S.accounts = [];
  usage.clear();
  checks.clear();
  renaming.clear();
  S.settingsAvailable = null;
  S.settingsDirty = false;
  S.shownView = null;
  for (const id of ["account-groups", "users", "team-summary", "team-chart", "new-key-slot", "login-panel", "import-result", "alert", "flash", "check-slot", "limits-line", "my-limits-body"]) {
    const el = document.getElementById(id);
    if (el) el.replaceChildren();
  }
  resetAlerts();
  show($("limits-line"), false);
  const limitsDialog = $("limits-dialog") as HTMLDialogElement;
  if (limitsDialog.open) limitsDialog.close();
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

export function enterApp() {
  if (!S.me) return;
  show($("sign-in"), false);
  $("sign-in-error").textContent = "";
  const isRoot = S.me.id === null;
  const isAdmin = S.me.role === "admin";
  $("who-name").textContent = isRoot ? "the admin token" : S.me.name;
  $("who-role").textContent = isAdmin ? "admin" : "member";
  show($("who"), true);
  show($("nav"), true);
  for (const a of document.querySelectorAll<HTMLElement>("#nav [data-view]")) {
    const v = a.dataset.view!;
    const visible = v === "admin" ? isAdmin : v === "settings" ? !isRoot && S.settingsAvailable !== false : !isRoot;
    show(a.parentElement ?? a, visible);
  }
  show($("root-note"), isRoot);
  // Whether this gateway has routing settings decides whether the Settings link shows.
  if (!isRoot && S.settingsAvailable === null && currentView() !== "settings") void loadSettings();
  route();
  window.clearInterval(S.refreshTimer);
  window.clearInterval(S.tickTimer);
  S.refreshTimer = window.setInterval(() => {
    if (document.visibilityState !== "visible" || currentView() !== "accounts") return;
    void loadAccounts();
    // What is left of a team limit changes with every request; a member without limits has nothing to update.
    if (hasLimits(S.me?.limits)) void loadMyLimits();
  }, REFRESH_MS);
  S.tickTimer = window.setInterval(tick, 1000);
}

export function route() {
  if (!S.me) return;
  const v = currentView();
  S.shownView = v;
  for (const p of document.querySelectorAll<HTMLElement>("[data-view-panel]")) show(p, p.dataset.viewPanel === v);
  for (const a of document.querySelectorAll<HTMLAnchorElement>("#nav [data-view]")) {
    if (a.dataset.view === v) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (v === "accounts") void Promise.all([loadAccounts(), loadMyLimits()]);
  if (v === "settings") void Promise.all([loadSettings(), loadMyLimits(), loadAlerts("my")]);
  if (v === "admin") void Promise.all([loadUsers(), loadAlerts("team")]);
  document.title = `${{ accounts: "Accounts", settings: "Settings", connect: "Connect your tools", admin: "Admin" }[v]} · subpool`;
}
