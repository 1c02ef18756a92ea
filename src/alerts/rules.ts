/**
 * What an alert target may be (DESIGN §12, "Alerts"): the event names, the PUT body's schema and
 * the URL rule. The rule is written against what a person can slip into a URL to reach something
 * other than the receiver they meant: `https:` goes anywhere (a Worker's fetch reaches only the
 * public internet, never the private network it runs next to), `http:` only to a loopback address
 * written in its plain form (local runs), and nothing that has to be normalised to look loopback
 * (0x7f.1, 2130706433, [::ffff:7f00:1], localhost.evil.com, full-width dots) is taken for one. The
 * URL that passes is stored and fetched exactly as the WHATWG parser prints it, so what was checked
 * is what is called. Messages never echo the URL: a Slack or Discord URL is itself a secret.
 */
import { z } from "zod";
import type { AlertEventName } from "../wire";

export const ALERT_EVENTS = ["account.needs_reauth", "account.refused", "pool.exhausted", "quota.high", "limit.reached", "test"] as const;
export type AlertEvent = (typeof ALERT_EVENTS)[number];
// The API's type (wire.ts) and this list name the same events: a change to one fails to compile here.
const sameEvents: [AlertEvent] extends [AlertEventName] ? ([AlertEventName] extends [AlertEvent] ? true : never) : never = true;
void sameEvents;

export const isAlertEvent = (s: string): s is AlertEvent => (ALERT_EVENTS as readonly string[]).includes(s);

/** The longest URL taken (Slack and Discord URLs are about 120 characters). */
export const ALERT_URL_MAX = 2048;

const LOOPBACK_NAMES = new Set(["localhost", "[::1]"]);
const OCTET = "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const LOOPBACK_V4 = new RegExp(`^127\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

/** Spaces, controls (C0, DEL, C1), and the invisible and line-separating characters the parser would drop or map. */
const UNSAFE_CHARS = /[\u0000-\u0020\u007f-\u00a0\u00ad\u1680\u2000-\u200f\u2028-\u202f\u205f-\u2064\u3000\ufeff\\]/u;

const LOCAL_HINT = "only https: URLs are taken, or http: to a loopback address (127.0.0.1, [::1] or localhost) for local runs";

/** The authority of a URL as written (between "//" and the first "/", "?" or "#"), or null. */
function writtenAuthority(raw: string): string | null {
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(raw);
  return m ? m[1]! : null;
}

/** Why a webhook URL cannot be used, or null when it can. */
export function alertUrlProblem(raw: string): string | null {
  if (raw.length === 0) return "must not be empty";
  if (raw.length > ALERT_URL_MAX) return `at most ${ALERT_URL_MAX} characters`;
  if (UNSAFE_CHARS.test(raw)) return "must not contain spaces, control characters, invisible characters or backslashes";
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return `is not an absolute URL; ${LOCAL_HINT}`;
  }
  if (u.href.length > ALERT_URL_MAX) return `at most ${ALERT_URL_MAX} characters`;
  const scheme = u.protocol.slice(0, 24);
  if (scheme !== "https:" && scheme !== "http:") return `scheme ${scheme} is refused; ${LOCAL_HINT}`;
  const authority = writtenAuthority(raw);
  if (authority === null || u.hostname === "") return `has no host; ${LOCAL_HINT}`;
  // Credentials in a URL end up in logs and Referer-like places; the receiver's secret is the path or the signature.
  if (authority.includes("@") || u.username !== "" || u.password !== "") return "must not hold a user name or password (user:pass@)";
  if (scheme === "http:") {
    // The host as written must already be the loopback form the parser prints: no alternative
    // spellings (hex, octal, shortened, IPv4-mapped IPv6, full-width dots, trailing dot).
    const written = authority.replace(/:\d*$/, "").toLowerCase();
    const host = u.hostname;
    const loopback = LOOPBACK_NAMES.has(host) || LOOPBACK_V4.test(host);
    if (!loopback || written !== host) return `http: is taken only to a loopback address written as 127.x.x.x, [::1] or localhost (local runs); use https: for anything else`;
  }
  return null;
}

/** The URL as it will be stored and fetched (the parser's form of one that passed alertUrlProblem). */
export const normalAlertUrl = (raw: string): string => new URL(raw).href;

/** A name as it may be quoted back: short, printable, nothing that could be a secret's length. */
const quoted = (s: string) => JSON.stringify(s.replace(/[^\x21-\x7e]/g, "?").slice(0, 40));

const alertUrl = z
  .string({ error: "required: a string (the webhook URL)" })
  .superRefine((s, ctx) => {
    const problem = alertUrlProblem(s);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  })
  .transform(normalAlertUrl);

const alertEvents = z
  .array(z.string({ error: `each event is a string, one of ${ALERT_EVENTS.join(", ")}` }), {
    error: `an array of event names (${ALERT_EVENTS.join(", ")}), or null for all`,
  })
  .superRefine((list, ctx) => {
    if (list.length === 0) {
      ctx.addIssue({ code: "custom", message: "must name at least one event, or be null (or left out) for all" });
      return;
    }
    const unknown = list.find((e) => !isAlertEvent(e));
    if (unknown !== undefined) ctx.addIssue({ code: "custom", message: `unknown event ${quoted(unknown)}; events are ${ALERT_EVENTS.join(", ")}` });
  })
  .transform((list) => ALERT_EVENTS.filter((e) => list.includes(e)));

/** PUT /admin/alerts and PUT /api/alerts. `events: null` (or left out) means every event. */
export const AlertTargetBody = z.strictObject({
  url: alertUrl,
  events: alertEvents.nullable().optional().transform((e): AlertEvent[] | null => e ?? null),
});
export type AlertTargetInput = z.infer<typeof AlertTargetBody>;

/** Whether a target subscribed to this event (null = all). */
export const wants = (events: readonly AlertEvent[] | null, event: AlertEvent): boolean => events === null || events.includes(event);
