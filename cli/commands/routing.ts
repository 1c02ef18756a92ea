/** `subpool usage` (tokens per account and day) and `subpool settings` (how requests are routed). */
import type { Settings, UsageAnswer, UsageDay } from "../../src/wire.js";
import { ApiError } from "../api.js";
import { context, type Ctx } from "../context.js";
import { CliError } from "../errors.js";
import { subpool } from "../invocation.js";
import { findAccount, slotOf } from "../resolve.js";
import type { Account } from "../types.js";
import { duration, out, printJson, printTable, say } from "../ui.js";
import { sortAccounts } from "./accounts.js";

// ---- usage -------------------------------------------------------------------------------------

const num = (n: number): string => n.toLocaleString("en-US");

const COUNTERS = ["requests", "inputTokens", "outputTokens", "cacheReadTokens", "cacheWriteTokens"] as const;

async function usageOf(ctx: Ctx, a: Account, days: number): Promise<UsageAnswer> {
  return ctx.api.get<UsageAnswer>(`/api/accounts/${encodeURIComponent(a.id)}/usage?days=${days}`);
}

function totals(days: UsageDay[]): Record<(typeof COUNTERS)[number], number> {
  const t = { requests: 0, inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 };
  for (const d of days) for (const k of COUNTERS) t[k] += d[k] ?? 0;
  return t;
}

async function printUsage(days: UsageDay[]): Promise<void> {
  const t = totals(days);
  await printTable(
    ["date (UTC)", "requests", "input", "output", "cache read", "cache write"],
    [...days.map((d) => [d.date, ...COUNTERS.map((k) => num(d[k] ?? 0))]), ["total", ...COUNTERS.map((k) => num(t[k]))]],
  );
}

const title = (a: Account) => `${slotOf(a)} "${a.label}"`;

/** `subpool usage [account] [--days N]`: requests and tokens per UTC day, from the gateway's counts. */
export async function usage(ref: string | undefined, opts: { days: number; json?: boolean }): Promise<void> {
  const ctx = context();
  const all = (await ctx.api.get<{ accounts: Account[] }>("/api/accounts")).accounts;
  if (ref !== undefined) {
    const a = findAccount(all, ref);
    const answer = await usageOf(ctx, a, opts.days);
    if (opts.json) {
      printJson(answer);
      return;
    }
    if (answer.days.length === 0) {
      out(`${title(a)}: no requests in the last ${opts.days} days.`);
      return;
    }
    out(`${title(a)}, the last ${opts.days} days:`);
    await printUsage(answer.days);
    return;
  }
  const accounts = sortAccounts(all);
  const answers = await Promise.all(accounts.map((a) => usageOf(ctx, a, opts.days)));
  if (opts.json) {
    printJson({ accounts: accounts.map((a, i) => ({ id: a.id, provider: a.provider, label: a.label, position: a.position, days: answers[i]!.days })) });
    return;
  }
  if (accounts.length === 0) {
    out("No accounts yet.");
    return;
  }
  const idle: string[] = [];
  let first = true;
  for (const [i, a] of accounts.entries()) {
    const days = answers[i]!.days;
    if (days.length === 0) {
      idle.push(title(a));
      continue;
    }
    if (!first) out();
    first = false;
    out(`${title(a)}:`);
    await printUsage(days);
  }
  if (idle.length) {
    if (!first) out();
    out(`No requests in the last ${opts.days} days: ${idle.join(", ")}.`);
  }
  const used = answers.filter((a) => a.days.length > 0);
  if (used.length > 1) {
    const t = totals(used.flatMap((a) => a.days));
    out(`All accounts: ${num(t.requests)} requests, ${num(t.inputTokens)} input, ${num(t.outputTokens)} output, ${num(t.cacheReadTokens)} cache read, ${num(t.cacheWriteTokens)} cache write tokens.`);
  }
}

// ---- settings ----------------------------------------------------------------------------------

const FLAGS: Record<keyof Settings, string> = { strategy: "--strategy", quotaThreshold: "--quota-threshold", affinityTtlS: "--affinity-ttl" };

const STRATEGY_WORDS: Record<string, string> = {
  failover: "by position: the first healthy account takes everything",
  "round-robin": "the healthy accounts in turn",
  "quota-aware": "the account with the most headroom left first",
};

function printSettings(s: Settings): void {
  out(`strategy         ${s.strategy}${STRATEGY_WORDS[s.strategy] ? `  (${STRATEGY_WORDS[s.strategy]})` : ""}`);
  out(`quota threshold  ${s.quotaThreshold}  (${Math.round(s.quotaThreshold * 1000) / 10} % used: quota-aware sets such accounts aside)`);
  out(`affinity TTL     ${s.affinityTtlS}s  (${s.affinityTtlS === 0 ? "off: no conversation stays on its account" : `a conversation stays on its account for ${duration(s.affinityTtlS * 1000)} after its last request`})`);
}

/** `subpool settings [--strategy S] [--quota-threshold F] [--affinity-ttl S]`: shows the routing settings, or changes the ones given. */
export async function settings(opts: { strategy?: string; quotaThreshold?: number; affinityTtl?: number; json?: boolean }): Promise<void> {
  const ctx = context();
  const patch: Partial<Settings> = {
    ...(opts.strategy !== undefined ? { strategy: opts.strategy as Settings["strategy"] } : {}),
    ...(opts.quotaThreshold !== undefined ? { quotaThreshold: opts.quotaThreshold } : {}),
    ...(opts.affinityTtl !== undefined ? { affinityTtlS: opts.affinityTtl } : {}),
  };
  if (Object.keys(patch).length === 0) {
    const s = await ctx.api.get<Settings>("/api/settings");
    if (opts.json) printJson(s);
    else printSettings(s);
    return;
  }
  let s: Settings;
  try {
    s = await ctx.api.patch<Settings>("/api/settings", patch);
  } catch (e) {
    // The gateway names the field it refused ("quotaThreshold: must be at most 1"); say which option that was.
    if (e instanceof ApiError && e.status === 400 && e.body.field) {
      const field = e.body.field as keyof Settings;
      const why = e.message.startsWith(`${field}: `) ? e.message.slice(field.length + 2) : e.message;
      throw new CliError(`the gateway refused ${field}${FLAGS[field] ? ` (${FLAGS[field]})` : ""}: ${why}`, `nothing was changed; \`${subpool()} settings --help\` lists the values`);
    }
    throw e;
  }
  if (opts.json) printJson(s);
  else {
    say("Saved. New conversations follow these settings from now on.");
    printSettings(s);
  }
}
