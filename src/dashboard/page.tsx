/** @jsxImportSource hono/jsx */
/**
 * The dashboard's shell, rendered on the server with Hono's JSX: every view's static part (forms,
 * labels, headings, the connect texts), so the one script (bundled from client/app.ts) only signs in, fetches
 * and fills lists. Nothing here is secret and nothing depends on who asks: the page is the same for
 * everyone until the script has a key. No inline script, style or event handler (the CSP forbids
 * them): data the script needs travels in data-* attributes.
 */
import type { FC } from "hono/jsx";
import { TOOLS, setupCommand } from "../connect";
import { AlertsPanel, Field, KEY_SENTINEL, SHELL_CHOICES, ToolCard } from "./page-parts";

export { KEY_SENTINEL } from "./page-parts";

export interface PageProviders {
  id: string;
  name: string;
  types: readonly string[];
}

export interface PageProps {
  /** The gateway's address as the browser sees it (the page's origin). */
  baseUrl: string;
  providers: readonly PageProviders[];
  assetVersion: string;
}


const STRATEGIES = [
  { id: "failover", name: "Failover", help: "Every request goes to your first healthy account in the order of the list; the next one only while it is cooling down or failing." },
  { id: "round-robin", name: "Round-robin", help: "New conversations take your healthy accounts in turn, so the load spreads over all of them." },
  { id: "quota-aware", name: "Quota-aware", help: "New conversations go to the healthy account with the most room left in its quota windows, avoiding accounts above the threshold." },
];

/** The windows the Admin view's team table and chart can cover (GET /admin/usage?days=1..90). */
const TEAM_WINDOWS = [7, 30, 90] as const;

export const Page: FC<PageProps> = ({ baseUrl, providers, assetVersion }) => {
  const oauth = providers.filter((p) => p.types.includes("oauth"));
  const api = providers.filter((p) => p.types.includes("api"));
  const providerData = JSON.stringify(providers.map((p) => ({ id: p.id, name: p.name, types: p.types })));
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        <meta name="color-scheme" content="light dark" />
        <title>subpool</title>
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href={`/assets/app.css?v=${assetVersion}`} />
        <script type="module" src={`/assets/app.js?v=${assetVersion}`}></script>
      </head>
      <body data-providers={providerData} data-key-placeholder={KEY_SENTINEL}>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="top">
          <div class="brand">
            <span class="logo" aria-hidden="true">
              ◆
            </span>{" "}
            subpool
          </div>
          <nav id="nav" aria-label="Sections" hidden>
            <ul>
              <li>
                <a href="#accounts" data-view="accounts">
                  Accounts
                </a>
              </li>
              <li>
                <a href="#settings" data-view="settings">
                  Settings
                </a>
              </li>
              <li>
                <a href="#connect" data-view="connect">
                  Connect your tools
                </a>
              </li>
              <li>
                <a href="#admin" data-view="admin">
                  Admin
                </a>
              </li>
            </ul>
          </nav>
          <div id="who" hidden>
            <span class="who-text">
              Signed in as <strong id="who-name"></strong> <span class="role" id="who-role"></span>
            </span>
            <button type="button" id="sign-out">
              Sign out
            </button>
          </div>
        </header>

        <main id="main">
          <div id="flash" class="flash" role="status" aria-live="polite"></div>
          <div id="alert" class="alert" role="alert"></div>

          <section id="sign-in" class="panel narrow" aria-labelledby="sign-in-title">
            <h1 id="sign-in-title">Sign in</h1>
            <p>
              Sign in with the gateway key an admin gave you (it starts with <code>sp_</code>). The key stays in this browser tab only and
              is sent with each request the page makes; signing out or closing the tab forgets it.
            </p>
            <form id="sign-in-form" novalidate>
              <Field id="gateway-key" label="Gateway key">
                <input id="gateway-key" name="gateway-key" type="password" autocomplete="off" spellcheck={false} autocapitalize="off" required />
              </Field>
              <button type="submit" class="primary">
                Sign in
              </button>
              <p id="sign-in-error" class="error" role="alert"></p>
            </form>
            <noscript>
              <p class="error">This page needs JavaScript. Everything it does is also in the HTTP API and the CLI (npx subpool).</p>
            </noscript>
          </section>

          <section id="view-accounts" data-view-panel="accounts" hidden aria-labelledby="accounts-title">
            <div class="view-head">
              <h1 id="accounts-title" tabindex={-1}>
                Accounts
              </h1>
              <p class="muted small" id="accounts-updated"></p>
            </div>
            <p class="muted lead">
              Requests through the gateway use your accounts of the matching provider in this order. When one is rate limited it cools down
              and the next one answers, inside the same request.
            </p>
            <p id="limits-line" class="limits-line" hidden></p>
            <div id="accounts-error" class="alert" role="alert"></div>
            <div id="account-groups"></div>
            <section id="login-panel" class="panel login-panel" hidden aria-labelledby="login-title" aria-live="polite"></section>

            <div class="add-grid">
              <section class="panel" aria-labelledby="login-form-title">
                <h2 id="login-form-title">Sign in to a subscription</h2>
                <p class="muted">{oauth.map((p) => p.name).join(", ")}: sign in with the provider, and the login becomes one more account.</p>
                <form id="login-form" novalidate>
                  <Field id="login-provider" label="Provider">
                    <select id="login-provider">
                      {oauth.map((p) => (
                        <option value={p.id}>{p.name}</option>
                      ))}
                    </select>
                  </Field>
                  <Field id="login-label" label="Label" optional>
                    <input id="login-label" maxlength={100} autocomplete="off" />
                  </Field>
                  <button type="submit" class="primary">
                    Start sign-in
                  </button>
                  <p id="login-form-error" class="error" role="alert"></p>
                </form>
              </section>

              <section class="panel" aria-labelledby="add-key-title">
                <h2 id="add-key-title">Add an API key</h2>
                <p class="muted">The gateway checks the key with the provider (at no cost), then stores it encrypted. It is never shown again, here or anywhere.</p>
                <form id="add-key-form" novalidate>
                  <Field id="add-provider" label="Provider">
                    <select id="add-provider">
                      {api.map((p) => (
                        <option value={p.id}>{p.name}</option>
                      ))}
                    </select>
                  </Field>
                  <Field id="add-key" label="API key">
                    <input id="add-key" type="password" autocomplete="off" spellcheck={false} autocapitalize="off" required />
                  </Field>
                  <Field id="add-label" label="Label" optional>
                    <input id="add-label" maxlength={100} autocomplete="off" />
                  </Field>
                  <button type="submit" class="primary">
                    Add API key
                  </button>
                  <p id="add-key-status" class="muted small" role="status"></p>
                  <p id="add-key-error" class="error" role="alert"></p>
                </form>
              </section>

              <section class="panel" aria-labelledby="import-title">
                <h2 id="import-title">Import a credentials file</h2>
                <p class="muted">
                  opencode's <code>auth.json</code>, Claude Code's <code>.credentials.json</code> or Codex's <code>auth.json</code>. Claude and
                  ChatGPT logins are then shared with that tool: whichever refreshes second is signed out. A sign-in above gives an independent
                  session.
                </p>
                <form id="import-form" novalidate>
                  <Field id="import-file" label="File">
                    <input id="import-file" type="file" accept=".json,application/json" />
                  </Field>
                  <button type="submit">Import</button>
                  <div id="import-result" role="status"></div>
                </form>
              </section>
            </div>
          </section>

          <section id="view-settings" data-view-panel="settings" hidden aria-labelledby="settings-title">
            <h1 id="settings-title" tabindex={-1}>
              Settings
            </h1>
            <p class="muted lead">How the gateway picks one of your accounts for a new conversation. Your settings apply to your accounts only.</p>
            <p id="settings-missing" class="panel muted" hidden>
              This gateway does not offer routing settings yet: it always uses the first healthy account in your order.
            </p>
            <form id="settings-form" class="panel narrow" hidden novalidate>
              <Field id="strategy" label="Strategy">
                <select id="strategy" aria-describedby="strategy-help">
                  {STRATEGIES.map((s) => (
                    <option value={s.id} data-help={s.help}>
                      {s.name}
                    </option>
                  ))}
                </select>
              </Field>
              <p id="strategy-help" class="hint"></p>
              <Field id="quota-threshold" label="Quota threshold, % of a window" hint="Quota-aware: accounts at or above this share of a window are left alone while another account is below it.">
                <input id="quota-threshold" type="number" min={5} max={100} step="any" inputmode="decimal" aria-describedby="quota-threshold-hint" />
              </Field>
              <Field id="affinity-ttl" label="Keep a conversation on its account for, minutes" hint="A conversation stays on the account that served it while that account is healthy, so its prompt cache is reused. 0 turns this off.">
                <input id="affinity-ttl" type="number" min={0} step="any" inputmode="decimal" aria-describedby="affinity-ttl-hint" />
              </Field>
              <button type="submit" class="primary">
                Save settings
              </button>
              <p id="settings-error" class="error" role="alert"></p>
            </form>
            <section id="my-limits" class="panel" aria-labelledby="my-limits-title">
              <h2 id="my-limits-title">Team limits</h2>
              <p id="my-limits-error" class="error" role="alert"></p>
              <div id="my-limits-body">
                <p class="muted">Loading…</p>
              </div>
            </section>
            <AlertsPanel
              scope="my"
              title="My alerts"
              intro="A webhook the gateway calls when one of your accounts needs a new login, is refused or runs out, or you hit a team limit: at most once an hour per event and account."
            />
          </section>

          <section id="view-connect" data-view-panel="connect" hidden aria-labelledby="connect-title">
            <h1 id="connect-title" tabindex={-1}>
              Connect your tools
            </h1>
            <p class="muted lead">
              Point each tool at this gateway and give it your gateway key where it asks for an API key. These are the same settings{" "}
              <code>npx subpool env &lt;tool&gt;</code> prints.
            </p>
            <div class="panel connect-top">
              <div class="base-url">
                <span class="base-label">Base URL</span> <code id="base-url">{baseUrl}</code>{" "}
                <button type="button" data-copy="base-url">
                  Copy<span class="sr-only"> the base URL</span>
                </button>
              </div>
              <div class="connect-options">
                <Field id="connect-shell" label="Shell">
                  <select id="connect-shell">
                    {SHELL_CHOICES.map((s) => (
                      <option value={s.id}>{s.name}</option>
                    ))}
                  </select>
                </Field>
                <div class="check-field">
                  <input type="checkbox" id="show-key" aria-describedby="show-key-hint" />
                  <label for="show-key">Show with my key</label>
                </div>
              </div>
              <p class="hint" id="show-key-hint">
                Off, the settings read the key from <code>$SUBPOOL_KEY</code>. On, your key is written into them: mind where you paste it.
              </p>
              <p class="error" id="connect-key-note" role="status"></p>
            </div>
            <div class="tools">
              {TOOLS.map((t) => (
                <ToolCard tool={t} baseUrl={baseUrl} />
              ))}
            </div>
          </section>

          <section id="view-admin" data-view-panel="admin" hidden aria-labelledby="admin-title" data-setup-command={setupCommand(baseUrl)}>
            <h1 id="admin-title" tabindex={-1}>
              Admin
            </h1>
            <p id="root-note" class="muted lead" hidden>
              You signed in with the admin token: it manages users and owns no accounts. To keep accounts yourself, add a user for yourself and
              sign in with its key.
            </p>
            <div id="new-key-slot"></div>
            <section class="panel" aria-labelledby="users-title">
              <div class="panel-head">
                <h2 id="users-title">Team</h2>
                <div class="field inline-field">
                  <label for="team-days">Usage over</label>
                  <select id="team-days">
                    {TEAM_WINDOWS.map((d) => (
                      <option value={d} selected={d === 30}>
                        the last {d} days
                      </option>
                    ))}
                  </select>
                </div>
              </div>
              <p id="users-error" class="error" role="alert"></p>
              <div id="team-summary"></div>
              <div id="team-chart"></div>
              <div class="table-wrap">
                <table class="users team">
                  <thead>
                    <tr>
                      <th scope="col">Member</th>
                      <th scope="col">Last seen</th>
                      <th scope="col">Added</th>
                      <th scope="col">Accounts</th>
                      <th scope="col">Today (UTC)</th>
                      <th scope="col" id="team-window-head">
                        Last 30 days
                      </th>
                      <th scope="col">Limits</th>
                      <th scope="col">
                        <span class="sr-only">Actions</span>
                      </th>
                    </tr>
                  </thead>
                  <tbody id="users"></tbody>
                </table>
              </div>
              <p class="muted small">
                Admins see each member's usage, account health and limits, never their accounts, labels or credentials. Tokens count input,
                output and cache, as limits do.
              </p>
            </section>
            <section class="panel" aria-labelledby="add-user-title">
              <h2 id="add-user-title">Add a user</h2>
              <form id="add-user-form" class="row-form" novalidate>
                <Field id="user-name" label="Name">
                  <input id="user-name" autocomplete="off" maxlength={63} required aria-describedby="user-name-hint" />
                </Field>
                <Field id="user-role" label="Role">
                  <select id="user-role">
                    <option value="member">member</option>
                    <option value="admin">admin (also manages users)</option>
                  </select>
                </Field>
                <button type="submit" class="primary">
                  Add user
                </button>
              </form>
              <p class="hint" id="user-name-hint">
                A name is 1 to 63 letters, digits, '.', '_' or '-'. The new user's key is shown once, here.
              </p>
              <p id="add-user-error" class="error" role="alert"></p>
            </section>
            <AlertsPanel
              scope="team"
              title="Team alerts"
              intro="A webhook the gateway calls when any member's account needs a new login, is refused, runs out, or a member hits a team limit: at most once an hour per event and account."
            />
            <section class="panel" aria-labelledby="rewrap-title">
              <h2 id="rewrap-title">After rotating MASTER_KEY</h2>
              <p class="muted">Re-wraps every user's data key under the current key version (users are also re-wrapped as they make requests).</p>
              <button type="button" id="rewrap">
                Re-wrap data keys
              </button>
              <p id="rewrap-result" role="status"></p>
            </section>
          </section>
        </main>

        <dialog id="confirm" aria-labelledby="confirm-title" aria-describedby="confirm-text">
          <h2 id="confirm-title"></h2>
          <p id="confirm-text"></p>
          <div class="row end">
            <button type="button" id="confirm-cancel">
              Cancel
            </button>
            <button type="button" id="confirm-ok" class="danger">
              OK
            </button>
          </div>
        </dialog>

        <dialog id="limits-dialog" aria-labelledby="limits-title" aria-describedby="limits-help">
          <form id="limits-form" novalidate>
            <h2 id="limits-title">Limits</h2>
            <p id="limits-help" class="muted small">
              Empty means no limit; 0 stops the member. Tokens count input, output and cache tokens, per UTC day and month. Over a limit the
              member's requests get 429 with the time until it frees.
            </p>
            <Field id="limit-rpm" label="Requests per minute">
              <input id="limit-rpm" inputmode="numeric" autocomplete="off" spellcheck={false} />
            </Field>
            <Field id="limit-day" label="Tokens per day" hint="2000000, 2,000,000 or 2M">
              <input id="limit-day" inputmode="numeric" autocomplete="off" spellcheck={false} aria-describedby="limit-day-hint" />
            </Field>
            <Field id="limit-month" label="Tokens per month">
              <input id="limit-month" inputmode="numeric" autocomplete="off" spellcheck={false} />
            </Field>
            <Field id="limit-models" label="Models" hint="Comma-separated model names or globs (claude-sonnet-*, gpt-5*); empty: every model.">
              <input id="limit-models" autocomplete="off" spellcheck={false} autocapitalize="off" aria-describedby="limit-models-hint" />
            </Field>
            <p id="limits-error" class="error" role="alert"></p>
            <div class="row end">
              <button type="button" id="limits-cancel">
                Cancel
              </button>
              <button type="submit" class="primary">
                Save limits
              </button>
            </div>
          </form>
        </dialog>
      </body>
    </html>
  );
};
