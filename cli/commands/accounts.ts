/** `subpool accounts`: the caller's pool as a table, and rm | disable | enable | move | rename | add. */
import { ApiError } from "../api.js";
import { context, type Ctx } from "../context.js";
import { CliError } from "../errors.js";
import { subpool } from "../invocation.js";
import { ask, confirm, isInteractive, readLine } from "../prompts.js";
import { describeAccount, findAccount, slotOf } from "../resolve.js";
import { CREDENTIAL_TOOLS, infoOf, PROVIDERS, type Account, type AccountStatus, type Provider } from "../types.js";
import { ago, duration, out, outputWidth, paint, printJson, printTable, renderTable, say, textWidth } from "../ui.js";

const STATUS_STYLE: Record<AccountStatus, "green" | "yellow" | "red" | "gray"> = {
  active: "green",
  cooling: "yellow",
  needs_reauth: "red",
  disabled: "gray",
};

/** How much of an error the "last status" cell shows; longer ones are written out under the table. */
const CELL_ERROR = 30;

const truncate = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

export function sortAccounts(accounts: Account[]): Account[] {
  const order = (p: string) => (PROVIDERS as readonly string[]).indexOf(p);
  return [...accounts].sort((a, b) => order(a.provider) - order(b.provider) || a.position - b.position);
}

export function cooldownText(a: Account, now = Date.now()): string {
  return a.cooldownUntil !== null && a.cooldownUntil > now ? duration(a.cooldownUntil - now) : "-";
}

/** When the last error happened, where the gateway says so (a newer field; older gateways omit it). */
const lastErrorAt = (a: Account): number | null => {
  const at = (a as Account & { lastErrorAt?: unknown }).lastErrorAt;
  return typeof at === "number" ? at : null;
};

const ok = (status: number | null) => status !== null && status < 400;

/**
 * Whether `lastError` is news, as opposed to something that happened before the account's last
 * success. With the error's time: newer than the last use that succeeded. Without it: the last
 * attempt did not succeed (a 2xx after an error means the error is older).
 */
export function errorIsCurrent(a: Account): boolean {
  if (!a.lastError) return false;
  if (a.status === "needs_reauth") return true;
  const at = lastErrorAt(a);
  if (at !== null) return !(ok(a.lastStatus) && a.lastUsedAt !== null && a.lastUsedAt > at);
  return !ok(a.lastStatus);
}

/** The "last status" cell: the last attempt's HTTP status, with the error beside it only when the error is current. */
export function lastStatusText(a: Account): string {
  const current = errorIsCurrent(a);
  if (a.lastStatus === null) return current ? "error" : "-";
  return current && a.lastError ? `${a.lastStatus} ${truncate(a.lastError, CELL_ERROR)}` : String(a.lastStatus);
}

/** One line under the table per account with something to say: why it needs a login, its current error, or an older one. */
export function accountNotes(accounts: Account[], now = Date.now(), compact = false): string[] {
  const notes: string[] = [];
  for (const a of sortAccounts(accounts)) {
    if (!a.lastError && a.status !== "needs_reauth") continue;
    const who = `${slotOf(a)} "${a.label}"`;
    const at = lastErrorAt(a);
    const when = at !== null ? `, ${ago(at, now)}` : "";
    if (a.status === "needs_reauth" && a.type === "api") notes.push(`${who} needs a new key: ${a.lastError ?? "the provider refused it"}${when}. Remove it (${subpool()} accounts rm ${a.id}) and add the new key.`);
    else if (a.status === "needs_reauth") notes.push(`${who} needs a new login: ${a.lastError ?? "the provider refused its refresh token"}${when}. Sign in again: ${subpool()} login ${a.provider}`);
    else if (errorIsCurrent(a)) {
      // Already whole in the table's cell: nothing to add.
      if (!compact && a.lastStatus !== null && a.lastError && a.lastError.length <= CELL_ERROR && at === null) continue;
      notes.push(`${who}: ${a.lastError}${when}`);
    }
    else notes.push(`${who}: earlier error, before its last success${when}: ${a.lastError}`);
  }
  return notes;
}

/** 7_800_000 -> "2h10m", 3d 4h -> "3d4h": the short form a quota cell has room for. */
export function shortDuration(ms: number): string {
  return duration(ms).replace(" ", "");
}

type Window = NonNullable<Account["quota"]>["windows"][string];

/** The two main windows of an account's quota, in the "5h used" / "week used" columns, with a prefix when they are not those. */
const WINDOW_PAIRS: [string, string, string][] = [
  ["5h", "7d", ""], // Claude subscriptions
  ["primary", "secondary", ""], // ChatGPT: the 5-hour and the weekly window
  ["requests", "tokens", "api"], // API keys: the provider's request and token budgets
];

/** One quota cell: "42% (2h10m)" = 42 % used, resets in 2 h 10 min; "req 3% (40s)" for an API key's budget; "-" without telemetry. */
export function windowText(w: Window | undefined, prefix: string, now = Date.now()): string {
  if (!w || typeof w.utilization !== "number") return "-";
  if (w.resetsAt !== null && w.resetsAt <= now) return `${prefix}reset`; // the window started again since this reading
  const pct = `${Math.round(w.utilization * 100)}%`;
  const text = `${prefix}${pct}${w.resetsAt !== null ? ` (${shortDuration(w.resetsAt - now)})` : ""}`;
  return w.utilization >= 0.9 ? paint("red", text) : w.utilization >= 0.7 ? paint("yellow", text) : text;
}

/** The "5h used" and "week used" cells of an account. */
export function quotaCells(a: Account, now = Date.now()): [string, string] {
  const windows = a.quota?.windows ?? {};
  for (const [first, second, kind] of WINDOW_PAIRS) {
    if (!windows[first] && !windows[second]) continue;
    const [p1, p2] = kind === "api" ? ["req ", "tok "] : ["", ""];
    return [windowText(windows[first], p1, now), windowText(windows[second], p2, now)];
  }
  return ["-", "-"];
}

const usesApiWindows = (a: Account) => !!a.quota && !a.quota.windows["5h"] && !a.quota.windows["primary"] && !!(a.quota.windows["requests"] || a.quota.windows["tokens"]);

const STATUS_SHORT: Partial<Record<AccountStatus, string>> = { needs_reauth: "relogin" };

/**
 * The pool as a table. Every column when there is room (or the width is unknown: a pipe); on a
 * narrower terminal ($COLUMNS, else the window) a compact one: no id, type or counts, the cooldown
 * beside the status, the last status as its code (the error goes under the table), a shorter label.
 */
export async function printAccounts(accounts: Account[]): Promise<void> {
  const now = Date.now();
  const sorted = sortAccounts(accounts);
  const width = outputWidth();
  const full = await renderTable(
    ["#", "provider", "label", "type", "status", "cooldown", "last used", "last status", "ok/fail", "5h used", "week used", "id"],
    sorted.map((a) => [
      a.position,
      a.provider,
      truncate(a.label, 32),
      a.type === "api" ? "api key" : "oauth",
      paint(STATUS_STYLE[a.status] ?? "white", a.status),
      cooldownText(a, now),
      ago(a.lastUsedAt, now),
      lastStatusText(a),
      `${a.successCount}/${a.failureCount}`,
      ...quotaCells(a, now),
      a.id,
    ]),
  );
  let table = full;
  let compact = false;
  if (width !== undefined && textWidth(full) > width) {
    compact = true;
    const render = (labelMax: number) =>
      renderTable(
        ["#", "provider", "label", "status", "last used", "last", "5h used", "week used"],
        sorted.map((a) => {
          const cd = cooldownText(a, now);
          const status = `${STATUS_SHORT[a.status] ?? a.status}${cd !== "-" ? ` ${shortDuration(a.cooldownUntil! - now)}` : ""}`;
          return [
            a.position,
            infoOf(a.provider)?.short ?? a.provider,
            truncate(a.label, labelMax),
            paint(STATUS_STYLE[a.status] ?? "white", status),
            ago(a.lastUsedAt, now).replace(/^(\S+) (\S+) ago$/, "$1$2").replace(/ ago$/, ""),
            a.lastStatus === null ? (errorIsCurrent(a) ? "error" : "-") : String(a.lastStatus),
            ...quotaCells(a, now),
          ];
        }),
      );
    const longest = Math.min(32, Math.max(5, ...sorted.map((a) => a.label.length)));
    table = await render(longest);
    const over = textWidth(table) - width;
    if (over > 0) table = await render(Math.max(8, longest - over));
  }
  out(table);
  for (const n of accountNotes(accounts, now, compact)) out(`  ${n}`);
  if (sorted.some(usesApiWindows)) out("  req / tok: an API key's request and token budgets (its provider's rate-limit windows).");
  if (compact) out(`  (${width} columns: id, type and counts left out; a wider window or --json shows them)`);
}

async function fetchAccounts(ctx: Ctx): Promise<Account[]> {
  return (await ctx.api.get<{ accounts: Account[] }>("/api/accounts")).accounts;
}

async function resolve(ctx: Ctx, ref: string): Promise<Account> {
  return findAccount(await fetchAccounts(ctx), ref);
}

async function patch(ctx: Ctx, a: Account, body: { label?: string; position?: number; enabled?: boolean }): Promise<Account> {
  return ctx.api.patch<Account>(`/api/accounts/${encodeURIComponent(a.id)}`, body);
}

export async function list(opts: { json?: boolean; provider?: Provider }): Promise<void> {
  const ctx = context();
  const data = await ctx.api.get<{ accounts: Account[] }>("/api/accounts");
  const shown = opts.provider ? data.accounts.filter((a) => a.provider === opts.provider) : data.accounts;
  if (opts.json) {
    printJson(opts.provider ? { accounts: shown } : data);
    return;
  }
  if (shown.length === 0) {
    out(opts.provider ? `No ${opts.provider} accounts.` : "No accounts yet.");
    say(`Add one: \`${subpool(`login ${PROVIDERS.join("|")}`)}\`, \`${subpool("import")}\` (files of ${CREDENTIAL_TOOLS.join(", ")}), or \`${subpool()} accounts add <provider>\` for an API key.`);
    return;
  }
  await printAccounts(shown);
}

export async function rm(ref: string, opts: { yes?: boolean; json?: boolean }): Promise<void> {
  const ctx = context();
  const a = await resolve(ctx, ref);
  if (!(await confirm(`Remove ${describeAccount(a)}? Its stored credential is deleted.`, { yes: opts.yes === true, action: `removing ${a.provider} "${a.label}"` }))) {
    say("Nothing removed.");
    return;
  }
  await ctx.api.del(`/api/accounts/${encodeURIComponent(a.id)}`);
  if (opts.json) printJson({ removed: a });
  else out(`Removed ${describeAccount(a)}.`);
}

async function setEnabled(ref: string, enabled: boolean, opts: { json?: boolean }): Promise<void> {
  const ctx = context();
  const a = await patch(ctx, await resolve(ctx, ref), { enabled });
  if (opts.json) printJson(a);
  else out(enabled ? `Enabled ${describeAccount(a)}: it is ${a.status} now.` : `Disabled ${describeAccount(a)}: requests skip it until \`${subpool()} accounts enable ${a.id}\`.`);
}

export const enable = (ref: string, opts: { json?: boolean }) => setEnabled(ref, true, opts);
export const disable = (ref: string, opts: { json?: boolean }) => setEnabled(ref, false, opts);

export async function move(ref: string, position: number, opts: { json?: boolean }): Promise<void> {
  const ctx = context();
  const before = await resolve(ctx, ref);
  const a = await patch(ctx, before, { position });
  if (opts.json) {
    printJson(a);
    return;
  }
  out(`Moved ${before.provider} "${a.label}" from #${before.position} to #${a.position}.`);
  await printAccounts((await fetchAccounts(ctx)).filter((x) => x.provider === a.provider));
}

export async function rename(ref: string, label: string, opts: { json?: boolean }): Promise<void> {
  const ctx = context();
  const before = await resolve(ctx, ref);
  const a = await patch(ctx, before, { label });
  if (opts.json) printJson(a);
  else out(`Renamed ${before.provider} #${a.position} "${before.label}" to "${a.label}".`);
}

export async function add(provider: Provider, opts: { key?: string; label?: string; json?: boolean }): Promise<void> {
  const info = infoOf(provider);
  if (info && !(info.types as readonly string[]).includes("api")) throw new CliError(`${info.name} accounts are subscriptions, not API keys`, `run \`${subpool(`login ${provider}`)}\``);
  const ctx = context();
  let key: string;
  if (opts.key === "-") key = (await readLine())?.trim() ?? "";
  else if (opts.key !== undefined) key = opts.key.trim();
  else if (isInteractive()) key = await ask({ message: `${info?.name ?? provider} API key`, secret: true, validate: (v) => (v ? undefined : "paste the key") });
  else throw new CliError("no API key given", "pass --key - and pipe the key in");
  if (!key) throw new CliError("the API key is empty");
  const a = await ctx.api.post<Account & { check?: CheckResult }>("/api/accounts", { provider, type: "api", key, ...(opts.label ? { label: opts.label } : {}) });
  if (opts.json) {
    printJson(a);
    return;
  }
  out(`Added ${describeAccount(a)}.`);
  if (a.check) say(a.check.verdict === "ok" ? "The provider accepted the key." : `The provider could not be asked about the key now (${a.check.message}); it is kept. \`${subpool()} accounts check ${a.id}\` asks again.`);
}

interface CheckResult {
  verdict: "ok" | "invalid" | "unknown";
  status: number;
  message: string;
}

const VERDICT: Record<CheckResult["verdict"], string> = { ok: "ok", invalid: "refused", unknown: "could not tell" };

/** `subpool accounts check [account]`: asks the provider whether it accepts each credential, at no token cost. */
export async function check(ref: string | undefined, opts: { json?: boolean }): Promise<void> {
  const ctx = context();
  const all = await fetchAccounts(ctx);
  const targets = ref ? [findAccount(all, ref)] : sortAccounts(all);
  if (targets.length === 0) {
    out("No accounts yet.");
    return;
  }
  const results: { account: Account; result: CheckResult }[] = [];
  for (const a of targets) {
    try {
      const r = await ctx.api.post<CheckResult & { account: Account }>(`/api/accounts/${encodeURIComponent(a.id)}/check`);
      results.push({ account: r.account ?? a, result: { verdict: r.verdict, status: r.status, message: r.message } });
    } catch (e) {
      // The gateway allows a few checks of one account a minute: that account waits, the others go on.
      if (!(e instanceof ApiError) || e.status !== 429) throw e;
      results.push({ account: a, result: { verdict: "unknown", status: 429, message: e.body.message } });
    }
  }
  if (opts.json) printJson({ checks: results.map((r) => ({ id: r.account.id, provider: r.account.provider, label: r.account.label, ...r.result })) });
  else {
    await printTable(
      ["account", "type", "verdict", "provider said", "status now"],
      results.map(({ account: a, result: c }) => [`${slotOf(a)} "${truncate(a.label, 28)}"`, a.type === "api" ? "api key" : "oauth", paint(c.verdict === "ok" ? "green" : c.verdict === "invalid" ? "red" : "yellow", VERDICT[c.verdict] ?? c.verdict), truncate(c.message || String(c.status), 48), a.status]),
    );
    for (const { account: a, result: c } of results) {
      if (c.verdict === "invalid") say(`${slotOf(a)} "${a.label}": ${a.type === "api" ? `a new key is needed (${subpool("accounts rm")}, then add)` : `sign in again: ${subpool(`login ${a.provider}`)}`}`);
    }
  }
  if (results.some((r) => r.result.verdict === "invalid")) process.exitCode = 1;
}
