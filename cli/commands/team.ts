/** `subpool limits <user>` (admins: a member's team limits) and `subpool me` (a member's own, and what is left). */
import type { LimitField, Limits, UserListed } from "../../src/wire.js";
import { Api, ApiError } from "../api.js";
import { loadConfig, profileFlag } from "../config.js";
import { context } from "../context.js";
import { CliError } from "../errors.js";
import { subpool } from "../invocation.js";
import { findUser } from "../resolve.js";
import { fromOption, hasLimits, LIMIT_FIELDS, parseCount, STOPPED, type OptionValue } from "../team-text.js";
import type { Me } from "../types.js";
import { duration, grouped, out, paint, printJson, printTable, say, shortCount } from "../ui.js";

/** 2_000_000 -> "2,000,000 (2M)": the short form too when it is exact (1,999,910 is not "2M"). */
function countText(n: number): string {
  const short = shortCount(n);
  let exact = false;
  try {
    exact = parseCount(short) === n;
  } catch {
    exact = false;
  }
  return n >= 10_000 && exact ? `${grouped(n)} (${short})` : grouped(n);
}

function limitValue(l: Limits, f: LimitField): string {
  if (f === "models") return l.models === null ? "every model" : l.models.length === 0 ? "no model" : l.models.join(", ");
  const v = l[f];
  return v === null ? "no limit" : v === 0 ? `0: ${STOPPED[f]}` : countText(v);
}

function printLimits(l: Limits): void {
  const width = Math.max(...Object.values(LIMIT_FIELDS).map((x) => x.label.length));
  for (const [f, { label }] of Object.entries(LIMIT_FIELDS) as [LimitField, { label: string }][]) out(`  ${label.padEnd(width)}  ${limitValue(l, f)}`);
}

interface LimitsOptions {
  rpm?: OptionValue<number>;
  tokensPerDay?: OptionValue<number>;
  tokensPerMonth?: OptionValue<number>;
  models?: OptionValue<string[]>;
  json?: boolean;
}

/** `subpool limits <user> [--rpm N|none] [--tokens-per-day N|none] [--tokens-per-month N|none] [--models globs|none]`. */
export async function limits(ref: string, opts: LimitsOptions): Promise<void> {
  const ctx = context();
  const users = (await ctx.api.get<{ users: UserListed[] }>("/admin/users")).users;
  const u = findUser(users, ref) as UserListed;
  const given: { [F in LimitField]: Limits[F] | undefined } = {
    requestsPerMinute: fromOption(opts.rpm),
    tokensPerDay: fromOption(opts.tokensPerDay),
    tokensPerMonth: fromOption(opts.tokensPerMonth),
    models: fromOption(opts.models),
  };
  const patch = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) as Partial<Limits>;
  const p = profileFlag().trim();
  const cmd = (args: string) => subpool(`${p ? `${p} ` : ""}${args}`);
  if (Object.keys(patch).length === 0) {
    if (opts.json) {
      printJson(u);
      return;
    }
    out(`${paint("bold", u.name)} (${u.role}, ${u.id}):`);
    printLimits(u.limits ?? { requestsPerMinute: null, tokensPerDay: null, tokensPerMonth: null, models: null });
    say(`Change them: \`${cmd(`limits ${u.name} --rpm 60 --tokens-per-day 2M --models 'claude-sonnet-*'`)}\` (none lifts one).`);
    return;
  }
  let saved: UserListed;
  try {
    saved = await ctx.api.patch<UserListed>(`/admin/users/${encodeURIComponent(u.id)}`, { limits: patch });
  } catch (e) {
    // The gateway names the field it refused ("limits.tokensPerDay: must be 0 or more"): say which option that was.
    if (e instanceof ApiError && e.status === 400) {
      const field = (e.body.field ?? "").replace(/^limits\./, "").split(".")[0] as LimitField;
      const known = LIMIT_FIELDS[field];
      const why = e.message.replace(/^limits\.[\w.]+: /, "");
      throw new CliError(
        known ? `the gateway refused ${known.flag} (${known.label}): ${why}` : `the gateway refused the limits: ${e.message}`,
        `nothing was changed; \`${subpool("limits --help")}\` says what each option takes`,
      );
    }
    throw e;
  }
  if (opts.json) {
    printJson(saved);
    return;
  }
  out(`Saved. ${paint("bold", saved.name)} (${saved.role}, ${saved.id}) now has:`);
  printLimits(saved.limits);
  say(`It applies within about a second. ${saved.name} sees it with \`${subpool("me")}\`.`);
}

/** "in 42s (00:00 UTC)" for a day's or month's end; "in 42s" for a minute. */
function freesIn(at: number, now: number, withClock: boolean): string {
  const when = `in ${duration(at - now)}`;
  if (!withClock) return when;
  const d = new Date(at);
  const sameDay = at - now < 86_400_000;
  return `${when} (${sameDay ? "" : `${d.toISOString().slice(0, 10)} `}${d.toISOString().slice(11, 16)} UTC)`;
}

/** `subpool me`: who this key is, the team's limits for them, what is left of each now and when it frees. */
export async function me(opts: { json?: boolean }): Promise<void> {
  const cfg = loadConfig();
  const m = await Api.from(cfg).get<Me>("/api/me");
  if (opts.json) {
    printJson(m);
    return;
  }
  const who = m.id === null ? "the bootstrap ADMIN_TOKEN" : `${paint("bold", m.name)} (${m.role}, ${m.id})`;
  out(`${who} at ${cfg.url}${cfg.profile ? ` (profile ${cfg.profile})` : ""}`);
  if (m.id === null) {
    out("No limits apply: this token manages users and owns no accounts.");
    return;
  }
  const l = m.limits;
  if (!hasLimits(l)) {
    out("No team limits: every model, no cap on requests or tokens.");
    return;
  }
  out();
  const now = Date.now();
  const rows: string[][] = [];
  const counted: [Exclude<LimitField, "models">, number, boolean, string][] = [
    ["requestsPerMinute", m.left.resets.minute, false, "this minute"],
    ["tokensPerDay", m.left.resets.day, true, "today (UTC)"],
    ["tokensPerMonth", m.left.resets.month, true, "this month (UTC)"],
  ];
  const paused: string[] = [];
  const over: string[] = [];
  for (const [f, resets, clock, when] of counted) {
    const limit = l[f];
    if (limit === null) continue;
    const label = LIMIT_FIELDS[f].label;
    if (limit === 0) {
      // Not a window that frees: the admin stopped this member until they lift it.
      rows.push([label, "0", paint("red", "paused by your admin"), "when your admin lifts it"]);
      paused.push(label);
      continue;
    }
    const left = m.left[f] ?? limit;
    const leftWords = `${grouped(left)} of ${grouped(limit)} left ${when}`;
    const leftText = left === 0 ? paint("red", `${leftWords}: refused until it resets`) : left < limit * 0.1 ? paint("yellow", leftWords) : leftWords;
    rows.push([label, countText(limit), leftText, freesIn(resets, now, clock)]);
    if (left === 0) over.push(`${label} resets ${freesIn(resets, now, clock)}`);
  }
  if (rows.length) await printTable(["limit", "set to", "left now", "window resets"], rows);
  if (l.models !== null) out(`Models: ${l.models.length === 0 ? "none (every request is refused)" : l.models.join(", ")}; any other model is refused (403).`);
  if (paused.length) say(`Paused by your admin: ${paused.join(" and ")} set to 0, so every request gets 429 until they lift it. Ask your team's admin.`);
  if (over.length) say(`Over the limit: requests get 429 until then (${over.join("; ")}). The limit is your team's, set by an admin, not the provider's.`);
}
