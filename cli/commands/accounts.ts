/** `subpool accounts`: the caller's pool as a table, and rm | disable | enable | move | rename | add. */
import { context, type Ctx } from "../context.js";
import { CliError } from "../errors.js";
import { ask, confirm, isInteractive, readLine } from "../prompts.js";
import { describeAccount, findAccount, slotOf } from "../resolve.js";
import { PROVIDERS, type Account, type AccountStatus, type Provider } from "../types.js";
import { ago, duration, out, paint, printJson, printTable, say } from "../ui.js";

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
export function accountNotes(accounts: Account[], now = Date.now()): string[] {
  const notes: string[] = [];
  for (const a of sortAccounts(accounts)) {
    if (!a.lastError && a.status !== "needs_reauth") continue;
    const who = `${slotOf(a)} "${a.label}"`;
    const at = lastErrorAt(a);
    const when = at !== null ? `, ${ago(at, now)}` : "";
    if (a.status === "needs_reauth") notes.push(`${who} needs a new login: ${a.lastError ?? "the provider refused its refresh token"}${when}. Sign in again: subpool login ${a.provider}`);
    else if (errorIsCurrent(a)) {
      // Already whole in the table's cell: nothing to add.
      if (a.lastStatus !== null && a.lastError && a.lastError.length <= CELL_ERROR && at === null) continue;
      notes.push(`${who}: ${a.lastError}${when}`);
    }
    else notes.push(`${who}: earlier error, before its last success${when}: ${a.lastError}`);
  }
  return notes;
}

export async function printAccounts(accounts: Account[]): Promise<void> {
  const now = Date.now();
  await printTable(
    ["#", "provider", "label", "type", "status", "cooldown", "last used", "last status", "ok/fail", "id"],
    sortAccounts(accounts).map((a) => [
      a.position,
      a.provider,
      truncate(a.label, 32),
      a.type === "api" ? "api key" : "oauth",
      paint(STATUS_STYLE[a.status] ?? "white", a.status),
      cooldownText(a, now),
      ago(a.lastUsedAt, now),
      lastStatusText(a),
      `${a.successCount}/${a.failureCount}`,
      a.id,
    ]),
  );
  for (const n of accountNotes(accounts, now)) out(`  ${n}`);
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
    say("Add one: `subpool login anthropic|openai|github-copilot`, `subpool import` (files of opencode, Claude Code, Codex), or `subpool accounts add <provider>` for an API key.");
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
  else out(enabled ? `Enabled ${describeAccount(a)}: it is ${a.status} now.` : `Disabled ${describeAccount(a)}: requests skip it until \`subpool accounts enable ${a.id}\`.`);
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
  if (provider === "github-copilot") throw new CliError("GitHub Copilot accounts are subscriptions, not API keys", "run `subpool login github-copilot`");
  const ctx = context();
  let key: string;
  if (opts.key === "-") key = (await readLine())?.trim() ?? "";
  else if (opts.key !== undefined) key = opts.key.trim();
  else if (isInteractive()) key = await ask({ message: `${provider === "anthropic" ? "Anthropic" : "OpenAI"} API key`, secret: true, validate: (v) => (v ? undefined : "paste the key") });
  else throw new CliError("no API key given", "pass --key - and pipe the key in");
  if (!key) throw new CliError("the API key is empty");
  const a = await ctx.api.post<Account & { check?: CheckResult }>("/api/accounts", { provider, type: "api", key, ...(opts.label ? { label: opts.label } : {}) });
  if (opts.json) {
    printJson(a);
    return;
  }
  out(`Added ${describeAccount(a)}.`);
  if (a.check) say(a.check.verdict === "ok" ? "The provider accepted the key." : `The provider could not be asked about the key now (${a.check.message}); it is kept. \`subpool accounts check ${a.id}\` asks again.`);
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
    const r = await ctx.api.post<CheckResult & { account: Account }>(`/api/accounts/${encodeURIComponent(a.id)}/check`);
    results.push({ account: r.account ?? a, result: { verdict: r.verdict, status: r.status, message: r.message } });
  }
  if (opts.json) printJson({ checks: results.map((r) => ({ id: r.account.id, provider: r.account.provider, label: r.account.label, ...r.result })) });
  else {
    await printTable(
      ["account", "type", "verdict", "provider said", "status now"],
      results.map(({ account: a, result: c }) => [`${slotOf(a)} "${truncate(a.label, 28)}"`, a.type === "api" ? "api key" : "oauth", paint(c.verdict === "ok" ? "green" : c.verdict === "invalid" ? "red" : "yellow", VERDICT[c.verdict] ?? c.verdict), truncate(c.message || String(c.status), 48), a.status]),
    );
    for (const { account: a, result: c } of results) {
      if (c.verdict === "invalid") say(`${slotOf(a)} "${a.label}": ${a.type === "api" ? "a new key is needed (subpool accounts rm, then add)" : `sign in again: subpool login ${a.provider}`}`);
    }
  }
  if (results.some((r) => r.result.verdict === "invalid")) process.exitCode = 1;
}
