/**
 * Contract: adding accounts. An API key, an imported credentials file, or a subscription sign-in
 * (device code or paste-back code flows) in the login panel; each reloads the accounts list through
 * hooks.loadAccounts when done. stopLogin() cancels a sign-in in progress.
 */
import type { ImportAnswer, LoginDoneAnswer, LoginPendingAnswer, LoginStartAnswer } from "../../wire";
import { ApiError, alertMsg, api, copyText, errText, flash, setError } from "./api";
import { $, btn, h, show } from "./dom";
import { S, hooks, providerName, type Account } from "./state";

// ---- adding accounts -----------------------------------------------------------------------------

export async function addApiKey(ev: Event) {
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
    await hooks.loadAccounts();
  } catch (e) {
    $("add-key-error").textContent = `Could not add the key: ${errText(e)}`;
  } finally {
    button.disabled = false;
    status.textContent = "";
  }
}

export async function importFile(ev: Event) {
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
    await hooks.loadAccounts();
  } catch (e) {
    out.append(h("span", { class: "error" }, `Could not import: ${errText(e)}`));
  }
}

// ---- logins ----------------------------------------------------------------------------------------

export function stopLogin() {
  if (S.login) {
    S.login.cancelled = true;
    window.clearTimeout(S.login.timer);
  }
  S.login = null;
}

const safeUrl = (u: string): string | null => {
  try {
    const url = new URL(u);
    return url.protocol === "https:" || url.protocol === "http:" ? url.toString() : null;
  } catch {
    return null;
  }
};

export async function startLogin(provider: string, label: string | null, relogin?: Account) {
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
  const state = { provider, loginId: ans.loginId, cancelled: false } as NonNullable<typeof S.login>;
  S.login = state;
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
    void hooks.loadAccounts();
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
