/** `subpool accounts`: the caller's pool as a table, and rm | disable | enable | move | rename | add. */
import { Command, InvalidArgumentError } from "commander";
import { context, type Ctx } from "../context.js";
import { CliError } from "../errors.js";
import { ask, confirm, isInteractive, readLine } from "../prompts.js";
import { describeAccount, findAccount } from "../resolve.js";
import { PROVIDER_ALIASES, PROVIDERS, type Account, type AccountStatus, type Provider } from "../types.js";
import { duration, out, paint, printJson, printTable, say } from "../ui.js";

const STATUS_STYLE: Record<AccountStatus, "green" | "yellow" | "red" | "gray"> = {
  active: "green",
  cooling: "yellow",
  needs_reauth: "red",
  disabled: "gray",
};

export function parseProvider(raw: string): Provider {
  const p = PROVIDER_ALIASES[raw.trim().toLowerCase()];
  if (!p) throw new InvalidArgumentError(`unknown provider "${raw}": use one of ${PROVIDERS.join(", ")}`);
  return p;
}

function parsePosition(raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError("a position is a whole number from 1 (1 is tried first)");
  return n;
}

const truncate = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

export function sortAccounts(accounts: Account[]): Account[] {
  const order = (p: string) => (PROVIDERS as readonly string[]).indexOf(p);
  return [...accounts].sort((a, b) => order(a.provider) - order(b.provider) || a.position - b.position);
}

export function cooldownText(a: Account, now = Date.now()): string {
  return a.cooldownUntil !== null && a.cooldownUntil > now ? duration(a.cooldownUntil - now) : "-";
}

export function printAccounts(accounts: Account[]): void {
  const now = Date.now();
  printTable(
    ["#", "provider", "label", "type", "status", "cooldown", "last status", "ok/fail", "id"],
    sortAccounts(accounts).map((a) => [
      a.position,
      a.provider,
      truncate(a.label, 32),
      a.type === "api" ? "api key" : "oauth",
      paint(STATUS_STYLE[a.status] ?? "white", a.status),
      cooldownText(a, now),
      a.lastStatus === null ? "-" : a.lastError ? `${a.lastStatus} ${truncate(a.lastError, 36)}` : String(a.lastStatus),
      `${a.successCount}/${a.failureCount}`,
      a.id,
    ]),
  );
}

async function listAccounts(ctx: Ctx): Promise<Account[]> {
  return (await ctx.api.get<{ accounts: Account[] }>("/api/accounts")).accounts;
}

async function resolve(ctx: Ctx, ref: string): Promise<Account> {
  return findAccount(await listAccounts(ctx), ref);
}

async function patch(ctx: Ctx, a: Account, body: { label?: string; position?: number; enabled?: boolean }): Promise<Account> {
  return ctx.api.patch<Account>(`/api/accounts/${encodeURIComponent(a.id)}`, body);
}

export function registerAccounts(program: Command): void {
  const accounts = program
    .command("accounts")
    .description("your provider accounts: list (the default), rm, disable, enable, move, rename, add")
    .addHelpText(
      "after",
      `
An account is named by its id (or the id's first characters), its label, or <provider>:<position>
(e.g. anthropic:2). Requests try a provider's accounts in position order, 1 first.`,
    );

  accounts
    .command("list", { isDefault: true })
    .alias("ls")
    .description("a table of your accounts: position, provider, label, type, status, cooldown, last status, counts")
    .option("--json", "print the gateway's JSON answer")
    .option("-p, --provider <provider>", "only this provider's accounts", parseProvider)
    .action(async (opts: { json?: boolean; provider?: Provider }) => {
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
      printAccounts(shown);
      const reauth = [...new Set(shown.filter((a) => a.status === "needs_reauth").map((a) => a.provider))];
      for (const p of reauth) say(`needs_reauth: sign in again with \`subpool login ${p}\` (the same login refreshes the account in place).`);
    });

  accounts
    .command("rm <account>")
    .alias("remove")
    .description("delete an account and its stored credential")
    .option("-y, --yes", "do not ask for confirmation")
    .option("--json", "print the removed account as JSON")
    .action(async (ref: string, opts: { yes?: boolean; json?: boolean }) => {
      const ctx = context();
      const a = await resolve(ctx, ref);
      if (!(await confirm(`Remove ${describeAccount(a)}? Its stored credential is deleted.`, { yes: opts.yes === true, action: `removing ${a.provider} "${a.label}"` }))) {
        say("Nothing removed.");
        return;
      }
      await ctx.api.del(`/api/accounts/${encodeURIComponent(a.id)}`);
      if (opts.json) printJson({ removed: a });
      else out(`Removed ${describeAccount(a)}.`);
    });

  for (const [name, enabled] of [
    ["disable", false],
    ["enable", true],
  ] as const) {
    accounts
      .command(`${name} <account>`)
      .description(enabled ? "use the account again (clears its cooldown)" : "skip the account until it is enabled again")
      .option("--json", "print the updated account as JSON")
      .action(async (ref: string, opts: { json?: boolean }) => {
        const ctx = context();
        const a = await patch(ctx, await resolve(ctx, ref), { enabled });
        if (opts.json) printJson(a);
        else out(enabled ? `Enabled ${describeAccount(a)}: it is ${a.status} now.` : `Disabled ${describeAccount(a)}: requests skip it until \`subpool accounts enable ${a.id}\`.`);
      });
  }

  accounts
    .command("move")
    .description("change the order accounts are tried in (1 = first); the others shift")
    .argument("<account>", "id, id prefix, label or <provider>:<position>")
    .argument("<position>", "the new position, from 1", parsePosition)
    .option("--json", "print the updated account as JSON")
    .action(async (ref: string, position: number, opts: { json?: boolean }) => {
      const ctx = context();
      const before = await resolve(ctx, ref);
      const a = await patch(ctx, before, { position });
      if (opts.json) {
        printJson(a);
        return;
      }
      out(`Moved ${before.provider} "${a.label}" from #${before.position} to #${a.position}.`);
      printAccounts((await listAccounts(ctx)).filter((x) => x.provider === a.provider));
    });

  accounts
    .command("rename <account> <label>")
    .description("change an account's label")
    .option("--json", "print the updated account as JSON")
    .action(async (ref: string, label: string, opts: { json?: boolean }) => {
      const ctx = context();
      const before = await resolve(ctx, ref);
      const a = await patch(ctx, before, { label });
      if (opts.json) printJson(a);
      else out(`Renamed ${before.provider} #${a.position} "${before.label}" to "${a.label}".`);
    });

  accounts
    .command("add")
    .description("add an API key account (subscriptions: `subpool login`)")
    .argument("<provider>", PROVIDERS.join(" | "), parseProvider)
    .option("--key <key>", "the API key; `-` reads it from stdin (keeps it out of the shell history)")
    .option("--label <label>", "a name for it")
    .option("--json", "print the new account as JSON")
    .action(async (provider: Provider, opts: { key?: string; label?: string; json?: boolean }) => {
      if (provider === "github-copilot") throw new CliError("GitHub Copilot accounts are subscriptions, not API keys", "run `subpool login github-copilot`");
      const ctx = context();
      let key: string;
      if (opts.key === "-") key = (await readLine())?.trim() ?? "";
      else if (opts.key !== undefined) key = opts.key.trim();
      else if (isInteractive()) key = await ask({ message: `${provider === "anthropic" ? "Anthropic" : "OpenAI"} API key`, secret: true, validate: (v) => (v ? undefined : "paste the key") });
      else throw new CliError("no API key given", "pass --key - and pipe the key in");
      if (!key) throw new CliError("the API key is empty");
      const a = await ctx.api.post<Account>("/api/accounts", { provider, type: "api", key, ...(opts.label ? { label: opts.label } : {}) });
      if (opts.json) printJson(a);
      else out(`Added ${describeAccount(a)}.`);
    });
}
