/**
 * `subpool alerts [show] | set <url> | test | rm`, each with --team: the member's own alert target
 * (/api/alerts) or the team's (/admin/alerts, admins). The signing secret is shown once, by `set`.
 */
import type { AlertDelivery, AlertTargetCreated, AlertTargetView } from "../../src/wire.js";
import { ApiError } from "../api.js";
import { profileFlag } from "../config.js";
import { context, type Ctx } from "../context.js";
import { CliError } from "../errors.js";
import { subpool } from "../invocation.js";
import { confirm } from "../prompts.js";
import { ALERT_EVENTS, fromOption, type OptionValue } from "../team-text.js";
import { ago, out, paint, printJson, say } from "../ui.js";

interface Scope {
  team?: boolean;
}

const pathOf = (o: Scope) => (o.team ? "/admin/alerts" : "/api/alerts");

/** The command, as typed, with the profile and --team of this run. */
function cmd(args: string, o: Scope): string {
  const p = profileFlag().trim();
  return subpool(`${p ? `${p} ` : ""}${args}${o.team ? " --team" : ""}`);
}

const whose = (o: Scope) => (o.team ? "The team's alerts (every member's events)" : "Your alerts");

/** The host a URL names: enough to recognise it. The whole URL is shown too, to its owner only. */
const hostOf = (url: string): string => {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
};

/** Slack and Discord webhook URLs get a chat message instead of subpool's JSON (src/alerts/payload.ts). */
function shapeOf(url: string): "slack" | "discord" | "subpool" {
  try {
    const u = new URL(url);
    if (u.protocol !== "https:") return "subpool";
    if (u.hostname === "hooks.slack.com") return "slack";
    if ((u.hostname === "discord.com" || u.hostname === "discordapp.com") && u.pathname.startsWith("/api/webhooks")) return "discord";
  } catch {
    // shown as the gateway stored it
  }
  return "subpool";
}

const eventsText = (events: readonly string[] | null) => (events === null ? `all (${ALERT_EVENTS.join(", ")})` : events.join(", "));

export function deliveryText(d: AlertDelivery | null, now = Date.now()): string {
  if (!d) return "none yet";
  if (d.ok) return `${ago(d.at, now)}: delivered (${d.status})`;
  return paint("red", `${ago(d.at, now)}: failed: ${d.error ?? (d.status ? `answered ${d.status}` : "no answer")}`);
}

/**
 * Errors every alerts command shares: the ADMIN_TOKEN has no target of its own (the team's is
 * --team); a member asking for the team's needs an admin.
 */
function rethrow(e: unknown, o: Scope): never {
  if (e instanceof ApiError && e.status === 403 && !o.team && /owns no accounts/.test(e.message)) {
    throw new CliError("the ADMIN_TOKEN has no alert target of its own", `the team's target is --team: \`${cmd("alerts", { team: true })}\``);
  }
  if (e instanceof ApiError && e.status === 403 && o.team) {
    throw new CliError(`the team's alert target is for admins: ${e.message}`, `your own alerts: \`${subpool("alerts")}\` (without --team)${e.hint ? `; ${e.hint}` : ""}`);
  }
  throw e;
}

/** The target, or null when none is set (a 404 that is not a missing route). */
async function target(ctx: Ctx, o: Scope): Promise<AlertTargetView | null> {
  try {
    return await ctx.api.get<AlertTargetView>(pathOf(o));
  } catch (e) {
    if (e instanceof ApiError && e.status === 404 && !e.noRoute) return null;
    rethrow(e, o);
  }
}

/** `subpool alerts [show] [--team]`. */
export async function showAlerts(o: Scope & { json?: boolean }): Promise<void> {
  const ctx = context();
  const t = await target(ctx, o);
  if (o.json) {
    printJson(t);
    return;
  }
  if (!t) {
    out(o.team ? "No team alert target is set." : "You have no alert target set.");
    say(`Set one: \`${cmd("alerts set <url>", o)}\` (https://…, a Slack or Discord webhook URL, or http://127.0.0.1:<port>/… locally).`);
    return;
  }
  const shape = shapeOf(t.url);
  out(`${whose(o)} go to ${t.url}`);
  out(`  format         ${shape === "subpool" ? "subpool's JSON, signed (x-subpool-signature)" : `a ${shape === "slack" ? "Slack" : "Discord"} message`}`);
  out(`  events         ${eventsText(t.events)}`);
  out(`  last delivery  ${deliveryText(t.lastDelivery)}`);
}

/**
 * `subpool alerts set <url> [--events a,b] [--team] [--yes]`: prints the signing secret, once. Over a
 * target already set it asks first: the old secret stops verifying, so its receiver refuses what
 * comes next until it is given the new one.
 */
export async function setAlerts(url: string, o: Scope & { events?: OptionValue<string[]>; json?: boolean; yes?: boolean }): Promise<void> {
  const ctx = context();
  const before = o.yes ? null : await target(ctx, o);
  if (before) {
    const replacing = before.url === url ? `Make a new signing secret for ${o.team ? "the team's" : "your"} alerts to ${hostOf(url)}?` : `Send ${o.team ? "the team's" : "your"} alerts to ${hostOf(url)} instead of ${hostOf(before.url)}?`;
    const question = `${replacing} The current secret stops working: a receiver that checks it refuses the next deliveries until it has the new one.`;
    if (!(await confirm(question, { yes: false, action: `replacing the ${o.team ? "team's " : ""}alert target (its signing secret changes)` }))) {
      say("Nothing changed.");
      return;
    }
  }
  let created: AlertTargetCreated;
  try {
    created = await ctx.api.put<AlertTargetCreated>(pathOf(o), { url, events: fromOption(o.events) ?? null });
  } catch (e) {
    if (e instanceof ApiError && e.status === 400) {
      const field = (e.body.field ?? "").split(".")[0];
      const what = field === "url" ? "the URL" : field === "events" ? "--events" : "the target";
      const why = e.message.replace(/^[\w.]+: /, "");
      throw new CliError(`the gateway refused ${what}: ${why}`, "nothing was changed");
    }
    rethrow(e, o);
  }
  if (o.json) {
    printJson(created);
    return;
  }
  const shape = shapeOf(created.url);
  out(`${whose(o)} now go to ${created.url}`);
  out(`Events: ${eventsText(created.events)}.`);
  out();
  out("Signing secret, shown this once (setting the target again makes a new one):");
  out(`  ${created.secret}`);
  out();
  out("Each delivery is a POST with the header x-subpool-signature: sha256=<hex HMAC-SHA256 of the raw");
  out("request body, keyed with this secret>. A receiver recomputes it over the bytes it got and compares");
  out("in constant time (Node: crypto.createHmac(\"sha256\", secret).update(body).digest(\"hex\")).");
  if (shape !== "subpool") out(`${shape === "slack" ? "Slack" : "Discord"} gets a chat message in its own shape and ignores the header.`);
  say(`Send a test: \`${cmd("alerts test", o)}\``);
}

/** `subpool alerts test [--team]`: sends event `test` now; exit code 1 unless the receiver took it (2xx). */
export async function testAlerts(o: Scope & { json?: boolean }): Promise<void> {
  const ctx = context();
  let d: AlertDelivery;
  try {
    d = await ctx.api.post<AlertDelivery>(`${pathOf(o)}/test`);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404 && !e.noRoute) {
      throw new CliError(o.team ? "no team alert target is set" : "you have no alert target set", `set one first: \`${cmd("alerts set <url>", o)}\``);
    }
    rethrow(e, o);
  }
  if (o.json) {
    printJson(d);
    if (!d.ok) process.exitCode = 1;
    return;
  }
  if (d.ok) {
    out(`Test delivered: the receiver answered ${d.status}.`);
    return;
  }
  throw new CliError(`the test was not delivered: ${d.error ?? (d.status ? `the receiver answered ${d.status}` : "no answer")}`, `check the receiver, or set another URL: \`${cmd("alerts set <url>", o)}\``);
}

/** `subpool alerts rm [--team] [--yes]`: asks first. */
export async function removeAlerts(o: Scope & { json?: boolean; yes?: boolean }): Promise<void> {
  const ctx = context();
  const before = await target(ctx, o);
  if (before) {
    const question = `Stop ${o.team ? "the team's alerts (every member's events)" : "your alerts"} to ${hostOf(before.url)}? The target and its signing secret are deleted.`;
    if (!(await confirm(question, { yes: o.yes === true, action: `removing the ${o.team ? "team's " : ""}alert target` }))) {
      say("Nothing removed.");
      return;
    }
    try {
      await ctx.api.del(pathOf(o));
    } catch (e) {
      rethrow(e, o);
    }
  }
  if (o.json) {
    printJson({ removed: before !== null, url: before?.url ?? null });
    return;
  }
  if (!before) out(o.team ? "No team alert target was set; nothing to remove." : "You had no alert target; nothing to remove.");
  else out(`Removed: no more ${o.team ? "team " : ""}alerts go to ${hostOf(before.url)}.`);
}
