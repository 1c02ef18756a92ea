/**
 * Contract: the Settings view. Loads /api/settings into the form (never over what the person is
 * typing, S.settingsDirty), hides the view when the gateway has no settings route, and saves only
 * what changed.
 */
import type { Settings, Strategy } from "../../wire";
import { ApiError, api, errText, flash, setError } from "./api";
import { $, show } from "./dom";
import { S } from "./state";

// ---- settings --------------------------------------------------------------------------------------

export let settings: Settings | null = null;

export async function loadSettings(): Promise<void> {
  if (!S.me || S.me.id === null) return;
  try {
    const r = await api<Settings>("GET", "/api/settings");
    settings = r.data;
    S.settingsAvailable = true;
    show($("settings-form"), true);
    show($("settings-missing"), false);
    // Never overwrite what the person is typing with a load that answered meanwhile.
    if (S.settingsDirty) return;
    ($("strategy") as HTMLSelectElement).value = settings.strategy;
    ($("quota-threshold") as HTMLInputElement).value = String(Math.round(settings.quotaThreshold * 1000) / 10);
    ($("affinity-ttl") as HTMLInputElement).value = String(Math.round((settings.affinityTtlS / 60) * 100) / 100);
    describeStrategy();
  } catch (e) {
    if (e instanceof ApiError && e.routeMissing) {
      S.settingsAvailable = false;
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

export function describeStrategy() {
  const sel = $("strategy") as HTMLSelectElement;
  const opt = sel.selectedOptions[0];
  $("strategy-help").textContent = opt?.dataset.help ?? "";
}

export async function saveSettings(ev: Event) {
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
    S.settingsDirty = false;
    flash("Settings saved. New conversations follow them from now on.");
    await loadSettings();
  } catch (e) {
    $("settings-error").textContent = `Could not save: ${errText(e)}`;
  }
}
