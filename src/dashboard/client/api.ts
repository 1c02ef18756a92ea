/**
 * Contract: talking to the gateway. api() sends the key in S.key as `Authorization: Bearer`, tracks
 * the server's clock, turns errors into ApiError with words for a person, and signs out (through
 * hooks.signOut) when the key is refused. Also the page's messages (flash, alert, field errors) and
 * copying to the clipboard.
 */
import { $, h } from "./dom";
import { S, hooks } from "./state";

// ---- the API ---------------------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
    readonly routeMissing = false,
  ) {
    super(message);
  }
}

/** Turns an API error into words for a person. */
function explain(status: number, message: string | undefined): string {
  const m = message ? message.replace(/\s+/g, " ").trim() : "";
  if (status === 401) return "Your gateway key was not accepted. It may have been mistyped, rotated by an admin, or its user deleted.";
  if (status === 403) return m ? `Not allowed: ${m}.` : "Your key is not allowed to do that.";
  if (status === 404) return m ? `Not found: ${m}.` : "Not found.";
  if (status === 409) return m ? `${capital(m)}.` : "That conflicts with something that already exists.";
  if (status === 410) return m ? `${capital(m)}.` : "That has expired. Start again.";
  if (status === 413) return "That is too large for the gateway.";
  if (status === 429) return m ? `Too many requests: ${m}.` : "Too many requests: wait a moment and try again.";
  if (status >= 500) return m ? `The gateway could not finish this (${status}): ${m}.` : `The gateway could not finish this (${status}). Try again in a moment.`;
  return m ? `${capital(m)}.` : `The gateway refused this (${status}).`;
}
const capital = (s: string) => (s ? s[0]!.toUpperCase() + s.slice(1) : s).replace(/[.]$/, "");

export async function api<T>(method: string, path: string, body?: unknown, opts: { signInCheck?: boolean } = {}): Promise<{ status: number; data: T }> {
  const sentKey = S.key;
  if (!sentKey) throw new ApiError(401, "Sign in first.");
  let r: Response;
  try {
    r = await fetch(path, {
      method,
      headers: { authorization: `Bearer ${sentKey}`, accept: "application/json", ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new ApiError(0, "Could not reach the gateway. Check your connection; the page keeps trying.");
  }
  const date = r.headers.get("date");
  if (date) {
    const server = Date.parse(date);
    // The Date header has whole seconds: correct only a real difference of clocks.
    if (!Number.isNaN(server) && Math.abs(server - Date.now()) > 2500) S.skewMs = server - Date.now();
    else if (!Number.isNaN(server)) S.skewMs = 0;
  }
  const text = await r.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {}
  if (r.ok) return { status: r.status, data: json as T };
  const err = (json as { error?: { message?: string; field?: string } } | null)?.error;
  const routeMissing = r.status === 404 && /^no route /.test(err?.message ?? "");
  if (r.status === 401 && !opts.signInCheck && S.key === sentKey) {
    hooks.signOut("Your gateway key is no longer accepted (an admin may have rotated it, or its user was deleted). Sign in with a current key.");
  }
  throw new ApiError(r.status, explain(r.status, err?.message), err?.field, routeMissing);
}

export const errText = (e: unknown) => (e instanceof ApiError ? e.message : `Something went wrong in the page: ${String(e)}`);

// ---- messages --------------------------------------------------------------------------------------

let flashTimer: number | undefined;
export function flash(text: string) {
  const el = $("flash");
  el.textContent = text;
  window.clearTimeout(flashTimer);
  flashTimer = window.setTimeout(() => (el.textContent = ""), 8000);
}
export function alertMsg(text: string) {
  $("alert").textContent = text;
}

export function setError(id: string, e: unknown) {
  const el = $(id);
  el.textContent = e === null ? "" : errText(e);
}

// ---- copy ------------------------------------------------------------------------------------------

export async function copyText(text: string, button: HTMLButtonElement) {
  let ok = false;
  try {
    await navigator.clipboard.writeText(text);
    ok = true;
  } catch {
    // No clipboard API (an http:// page other than localhost): a selected textarea + execCommand.
    const ta = h("textarea", { class: "offscreen", readonly: true, "aria-hidden": "true" });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    try {
      ok = document.execCommand("copy");
    } catch {}
    ta.remove();
  }
  const label = button.dataset.label ?? button.textContent ?? "Copy";
  button.dataset.label = label;
  button.textContent = ok ? "Copied" : "Copy failed: select the text and copy it";
  window.setTimeout(() => (button.textContent = label), 2000);
}
