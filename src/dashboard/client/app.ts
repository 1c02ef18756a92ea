/**
 * The dashboard's one script (served at /assets/app.js under `script-src 'self'`). The page's shell is
 * rendered on the server (src/dashboard/page.tsx); this script signs in, talks to the HTTP API with
 * the key from sessionStorage as `Authorization: Bearer`, and fills the views. It builds every node
 * with the DOM API and sets text with textContent: no innerHTML, no inline styles (the CSP forbids
 * both), no cookies.
 *
 * Secrets: the gateway key lives in sessionStorage (this tab only) and in memory; it is written into
 * the page only when the person asks for it ("Show with my key" in Connect your tools). The only
 * other secrets ever shown are a user's new key, right after an admin created or rotated it, and an
 * alert webhook's signing secret, right after it was saved.
 *
 * Data that other parts of the gateway may not serve yet (account quota, usage, checks, settings)
 * is optional: a missing field or a 404 shows "no data yet" or hides that part.
 *
 * This file is the entry: it fills hooks (state.ts), wires the page's controls to the views and
 * restores a saved key. The views live in the files next to it, each opening with its contract.
 */
import type { Me } from "../../wire";
import { loadAccounts } from "./accounts-view";
import { addApiKey, importFile, startLogin } from "./add-account";
import { wireLimits } from "./admin-limits";
import { addUser, loadUsers, rewrap } from "./admin-view";
import { wireAlerts } from "./alerts-view";
import { ApiError, alertMsg, api, copyText, errText } from "./api";
import { applyKeyToConnect } from "./connect-view";
import { $, show } from "./dom";
import { currentView } from "./nav";
import { enterApp, route, signIn, signOut } from "./session";
import { describeStrategy, saveSettings } from "./settings-view";
import { KEY_STORE, S, VIEWS, hooks, type View } from "./state";

hooks.signOut = signOut;
hooks.loadAccounts = loadAccounts;

// ---- start -----------------------------------------------------------------------------------------

function wire() {
  try {
    S.providers = JSON.parse(document.body.dataset.providers ?? "[]");
  } catch {
    S.providers = [];
  }
  $("sign-in-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    void signIn(($("gateway-key") as HTMLInputElement).value);
  });
  $("sign-out").addEventListener("click", () => signOut("Signed out. The key was removed from this tab."));
  window.addEventListener("hashchange", () => {
    if (!S.me || !VIEWS.includes(location.hash.slice(1) as View)) return;
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
  for (const ev of ["input", "change"]) $("settings-form").addEventListener(ev, () => (S.settingsDirty = true));
  $("show-key").addEventListener("change", (ev) => applyKeyToConnect((ev.currentTarget as HTMLInputElement).checked));
  $("connect-shell").addEventListener("change", () => applyKeyToConnect(($("show-key") as HTMLInputElement).checked));
  for (const b of document.querySelectorAll<HTMLButtonElement>("button[data-copy]")) {
    b.addEventListener("click", () => {
      const src = document.getElementById(b.dataset.copy!);
      if (src) void copyText(src.textContent ?? "", b);
    });
  }
  $("add-user-form").addEventListener("submit", (ev) => void addUser(ev));
  $("team-days").addEventListener("change", () => void loadUsers());
  wireLimits();
  wireAlerts("team");
  wireAlerts("my");
  $("rewrap").addEventListener("click", () => void rewrap());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && S.me && currentView() === "accounts") void loadAccounts();
  });
  document.documentElement.classList.add("js");

  const saved = sessionStorage.getItem(KEY_STORE);
  if (saved) {
    S.key = saved;
    api<Me>("GET", "/api/me", undefined, { signInCheck: true }).then(
      (r) => {
        S.me = r.data;
        enterApp();
      },
      (e) => {
        S.key = null;
        if (e instanceof ApiError && e.status === 401) signOut("Your saved gateway key is no longer accepted. Sign in with a current key.");
        else {
          S.key = null;
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
