/**
 * What an alert says, and the bytes a receiver gets (DESIGN §12): subpool's own body
 * `{event, at, user, account, message}`, or Slack's `{text}` and Discord's `{content}` for their
 * webhook URLs, so a team can paste one in without a relay. Built only from these fields: a
 * credential, gateway key, signing secret or webhook URL has no way in. Labels and names are a
 * member's text: the chat shapes neutralise what those apps would act on (Slack's <!channel> and
 * link syntax, Discord's @everyone), so an account label cannot ping a whole team.
 */
import type { AlertEvent } from "./rules";

export interface AlertAccount {
  id: string;
  provider: string;
  label: string;
}

export interface AlertBody {
  event: AlertEvent;
  /** Epoch ms when the event happened. */
  at: number;
  user: { id: string; name: string };
  account: AlertAccount | null;
  message: string;
}

export type AlertShape = "subpool" | "slack" | "discord";

/** Which body a URL gets: by host (and Discord's webhook path), never by anything the sender says. */
export function shapeOf(url: string): AlertShape {
  const u = new URL(url);
  if (u.protocol !== "https:") return "subpool";
  if (u.hostname === "hooks.slack.com") return "slack";
  if ((u.hostname === "discord.com" || u.hostname === "discordapp.com") && u.pathname.startsWith("/api/webhooks")) return "discord";
  return "subpool";
}

/**
 * One readable line, e.g. `subpool · alice · account.needs_reauth: Anthropic account "work" needs a
 * new login: …` (the message names the account; the event name is there to filter on).
 */
export function alertLine(b: AlertBody): string {
  return `subpool · ${b.user.name} · ${b.event}: ${b.message}`;
}

/** Slack reads &, < and > as markup (<!channel>, <url|text>); escaped, they are shown as typed. */
const slackEscape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** The exact JSON text sent to this URL (the signature is over these bytes). */
export function alertJson(url: string, b: AlertBody): string {
  const body: AlertBody = {
    event: b.event,
    at: b.at,
    user: { id: b.user.id, name: b.user.name },
    account: b.account ? { id: b.account.id, provider: b.account.provider, label: b.account.label } : null,
    message: b.message,
  };
  switch (shapeOf(url)) {
    case "slack":
      return JSON.stringify({ text: slackEscape(alertLine(body)) });
    case "discord":
      // allowed_mentions with no parse: @everyone, @here and <@id> in a label stay text.
      return JSON.stringify({ content: alertLine(body).slice(0, 2000), allowed_mentions: { parse: [] } });
    case "subpool":
      return JSON.stringify(body);
  }
}
