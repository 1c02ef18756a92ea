/** @jsxImportSource hono/jsx */
/**
 * The pieces the dashboard's page is built of, each used in more than one place or long enough to
 * read apart: a form field with its label and hint, the alert webhook panel (the team's on Admin, a
 * member's own in Settings: one markup, two scopes) and a tool's connect card. Server-rendered, no
 * script (page.tsx says why).
 */
import type { FC } from "hono/jsx";
import { type ConnectParts, TOOLS, type ToolId, connectParts, connectText } from "../connect";

/** Stands for the key in the pre-rendered "with my key" texts; the script swaps the key in. */
export const KEY_SENTINEL = "sp_DASHBOARD_KEY_SENTINEL";

/** The shells the connect texts come in (connect.ts knows more spellings of sh). */
export const SHELL_CHOICES = [
  { id: "sh", name: "bash / zsh / sh" },
  { id: "fish", name: "fish" },
  { id: "powershell", name: "PowerShell" },
] as const;

/** Alert events a person can choose (DESIGN §12); `test` is always sent, by "Send a test". */
const ALERT_EVENTS = [
  { id: "account.needs_reauth", team: "An account needs a new login", my: "One of my accounts needs a new login" },
  { id: "account.refused", team: "A provider refused an account's key", my: "A provider refused one of my keys" },
  { id: "pool.exhausted", team: "A request found every account of a provider cooling down", my: "A request found all my accounts of a provider cooling down" },
  { id: "quota.high", team: "An account's quota window crossed its member's threshold", my: "An account's quota window crossed my threshold" },
  { id: "limit.reached", team: "A member hit a team limit", my: "I hit a team limit" },
] as const;

export const Field: FC<{ id: string; label: string; hint?: string; optional?: boolean; children?: unknown }> = ({ id, label, hint, optional, children }) => (
  <div class="field">
    <label for={id}>
      {label}
      {optional ? <span class="opt"> (optional)</span> : null}
    </label>
    {children}
    {hint ? (
      <p class="hint" id={`${id}-hint`}>
        {hint}
      </p>
    ) : null}
  </div>
);

/**
 * An alert webhook's panel: the team's (Admin view, /admin/alerts) or the member's own (Settings,
 * /api/alerts). The script (client/alerts-view.ts) fills the current target and the secret slot by
 * the ids `<scope>-alerts-*`; the event checkboxes carry the words it shows for each event.
 */
export const AlertsPanel: FC<{ scope: "team" | "my"; title: string; intro: string }> = ({ scope, title, intro }) => {
  const p = `${scope}-alerts`;
  return (
    <section class="panel alerts" id={p} aria-labelledby={`${p}-title`}>
      <h2 id={`${p}-title`}>{title}</h2>
      <p class="muted">{intro}</p>
      <p id={`${p}-missing`} class="muted" hidden>
        This gateway does not send alerts yet.
      </p>
      <div id={`${p}-secret`}></div>
      <div id={`${p}-current`} class="alerts-current"></div>
      <p id={`${p}-result`} class="test-result" role="status"></p>
      <form id={`${p}-form`} novalidate>
        <h3 id={`${p}-form-title`}>Set the webhook</h3>
        <Field
          id={`${p}-url`}
          label="Webhook URL"
          hint="https://… anywhere; Slack and Discord webhook URLs get messages in their own shape. http:// only to 127.0.0.1 or localhost, for local runs."
        >
          <input id={`${p}-url`} type="url" inputmode="url" autocomplete="off" spellcheck={false} autocapitalize="off" maxlength={2048} aria-describedby={`${p}-url-hint`} />
        </Field>
        <fieldset class="events">
          <legend>Events</legend>
          {ALERT_EVENTS.map((e) => (
            <div class="check-field">
              <input type="checkbox" id={`${p}-ev-${e.id.replace(".", "-")}`} name="events" value={e.id} checked data-words={e[scope]} />
              <label for={`${p}-ev-${e.id.replace(".", "-")}`}>{e[scope]}</label>
            </div>
          ))}
        </fieldset>
        <p class="hint">
          Saving makes a new signing secret, shown once: the receiver checks <code>x-subpool-signature: sha256=&lt;HMAC-SHA256 of the body&gt;</code> with it.
        </p>
        <button type="submit" class="primary" id={`${p}-save`}>
          Save webhook
        </button>
        <p id={`${p}-error`} class="error" role="alert"></p>
      </form>
    </section>
  );
};

function toolTexts(tool: ToolId, baseUrl: string): string {
  const texts: Record<string, { plain: string; withKey: string }> = {};
  for (const s of SHELL_CHOICES) {
    texts[s.id] = {
      plain: connectText(tool, { baseUrl, key: null, shell: s.id }),
      withKey: connectText(tool, { baseUrl, key: KEY_SENTINEL, shell: s.id }),
    };
  }
  return JSON.stringify(texts);
}

export const ToolCard: FC<{ tool: (typeof TOOLS)[number]; baseUrl: string }> = ({ tool, baseUrl }) => {
  const parts: ConnectParts = connectParts(tool.id, { baseUrl, key: null });
  const codeId = `connect-${tool.id}`;
  return (
    <section class="panel tool" aria-labelledby={`${codeId}-title`}>
      <div class="tool-head">
        <h2 id={`${codeId}-title`}>{tool.name}</h2>
        <button type="button" data-copy={codeId}>
          Copy<span class="sr-only"> the {tool.name} settings</span>
        </button>
      </div>
      <p class="muted">
        {tool.summary}
        {parts.file ? (
          <>
            {" "}
            · goes in <strong>{parts.file.where}</strong>
          </>
        ) : (
          " · shell variables"
        )}
      </p>
      <pre tabindex={0} aria-label={`${tool.name} settings`}>
        <code id={codeId} data-texts={toolTexts(tool.id, baseUrl)}>
          {connectText(tool.id, { baseUrl, key: null })}
        </code>
      </pre>
      {parts.file?.format === "json" && parts.notes.length ? (
        <ul class="notes">
          {parts.notes.map((n) => (
            <li>{n}</li>
          ))}
        </ul>
      ) : null}
    </section>
  );
};

