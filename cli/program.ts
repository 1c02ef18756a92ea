/**
 * Every command, argument and option of `subpool`, and nothing else: what --help shows. The work of
 * each command lives in ./commands/*.ts and is imported only when that command runs, so
 * `subpool --help` loads commander and this file (the prompts and table libraries stay unloaded).
 */
import { Argument, Command, InvalidArgumentError, Option } from "commander";
import { SHELLS, TOOLS, type Shell } from "../src/connect.js";
import { usualPlacesHelp } from "./commands/import-places.js";
import { configPath, normalizeUrl, validProfileName } from "./config.js";
import { subpool } from "./invocation.js";
import { ALERT_EVENTS, parseCount, parseEvents, parseModels, toOption } from "./team-text.js";
import { API_KEY_PROVIDERS, CREDENTIAL_TOOLS, findProvider, infoOf, PROVIDER_ALIAS_LIST, PROVIDERS, type Provider } from "./types.js";
import { paint } from "./ui.js";

export function parseProvider(raw: string): Provider {
  const p = findProvider(raw)?.id;
  if (!p) throw new InvalidArgumentError(`unknown provider "${raw}": use one of ${PROVIDERS.join(", ")}`);
  return p;
}

function parsePosition(raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError("a position is a whole number from 1 (1 is tried first)");
  return n;
}

function parseProfile(raw: string): string {
  const problem = validProfileName(raw);
  if (problem) throw new InvalidArgumentError(problem);
  return raw;
}

function parseUrl(raw: string): string {
  try {
    return normalizeUrl(raw);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

function parseDays(raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || n < 1 || n > 366) throw new InvalidArgumentError("a whole number of days from 1 to 366");
  return n;
}

/** Days of team usage: the gateway keeps 1 to 90 for it. */
function parseTeamDays(raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || n < 1 || n > 90) throw new InvalidArgumentError("a whole number of days from 1 to 90");
  return n;
}

/** An option parser from a plain function that throws Error: commander's usage error with its message. */
function parser<T>(fn: (raw: string) => T): (raw: string) => T {
  return (raw) => {
    try {
      return fn(raw);
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
  };
}

/** 0.9, or 90% (a fraction of the window used). The range is the gateway's to check: its refusal names the field. */
function parseFraction(raw: string): number {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(%?)\s*$/.exec(raw);
  if (!m) throw new InvalidArgumentError("a fraction such as 0.9, or a percentage such as 90%");
  return m[2] ? Number(m[1]) / 100 : Number(m[1]);
}

/** Seconds: 3600, or 3600s, 60m, 1h, 1d; 0 turns affinity off. */
function parseSeconds(raw: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$/i.exec(raw);
  if (!m) throw new InvalidArgumentError("seconds (3600), or with a unit: 30m, 1h, 1d; 0 = off");
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? "s").toLowerCase() as "s" | "m" | "h" | "d"];
  return Math.round(Number(m[1]) * unit);
}

function defaultShell(): Shell {
  if (process.platform === "win32") return "powershell";
  const sh = /([a-z]+)$/.exec(process.env.SHELL ?? "")?.[1];
  return (SHELLS as readonly string[]).includes(sh ?? "") ? (sh as Shell) : "sh";
}

/** Example lines for --help: each command as this CLI was started (`npx <gateway>/cli/subpool-cli.tgz …` too), its note aligned. */
function examples(rows: ([string, string] | [string, string, true])[]): string {
  const lines = rows.map(([args, note, whole]) => [whole ? args : subpool(args), note] as const);
  const width = Math.max(0, ...lines.filter(([, note]) => note).map(([c]) => c.length));
  return lines.map(([c, note]) => (note ? `  ${c.padEnd(width)}   ${note}` : `  ${c}`)).join("\n");
}

const ACCOUNT_ARG = "id, first characters of the id, label, or <provider>:<position> (e.g. anthropic:2)";
const USER_ARG = "name or id";

type Module = typeof import("./commands/accounts.js") &
  typeof import("./commands/env.js") &
  typeof import("./commands/import.js") &
  typeof import("./commands/login.js") &
  typeof import("./commands/routing.js") &
  typeof import("./commands/setup.js") &
  typeof import("./commands/team.js") &
  typeof import("./commands/alerts.js") &
  typeof import("./commands/users.js");

const loaders: Record<string, () => Promise<Partial<Module>>> = {
  accounts: () => import("./commands/accounts.js"),
  env: () => import("./commands/env.js"),
  import: () => import("./commands/import.js"),
  login: () => import("./commands/login.js"),
  routing: () => import("./commands/routing.js"),
  setup: () => import("./commands/setup.js"),
  team: () => import("./commands/team.js"),
  alerts: () => import("./commands/alerts.js"),
  users: () => import("./commands/users.js"),
};

/** An action that loads ./commands/<file>.js and calls its export `fn` with commander's arguments. */
function run(file: keyof typeof loaders, fn: keyof Module) {
  return async (...args: unknown[]): Promise<void> => {
    const mod = await loaders[file]!();
    const f = mod[fn] as ((...a: unknown[]) => Promise<void> | void) | undefined;
    if (!f) throw new Error(`cli: ./commands/${file}.js has no ${fn}`);
    await f(...args);
  };
}

/**
 * `subpool accounts` runs `accounts list`, but `subpool accounts frob` is an unknown command (not
 * "too many arguments for 'list'"): the default subcommand takes no operands of its own.
 */
function defaultSubcommand(parent: Command, child: Command): void {
  child.allowExcessArguments(true).hook("preAction", () => {
    if (child.args.length === 0) return;
    const viaName = parent.args[0] === child.name() || child.aliases().includes(parent.args[0] ?? "");
    if (!viaName) {
      // commander's own message and "Did you mean …?" (a method its typings leave out).
      const own = (parent as unknown as { unknownCommand?: () => void }).unknownCommand;
      if (typeof own === "function") own.call(parent);
      parent.error(`error: unknown command '${child.args[0]}'`, { code: "commander.unknownCommand" });
    }
    else child.error(`error: too many arguments for '${child.name()}'. Expected 0 arguments but got ${child.args.length}.`, { code: "commander.excessArguments" });
  });
}

export function buildProgram(version: string): Command {
  const program = new Command("subpool")
    .description("subpool: your AI provider accounts behind one gateway. Start with `setup` (see Getting started, below).")
    .version(version, "-v, --version")
    .addOption(new Option("--profile <name>", "use a saved profile (e.g. admin), saved by `setup --profile NAME`").argParser(parseProfile))
    .addHelpText(
      "after",
      () => `
Getting started:
${examples([
  ["setup", "gateway URL and your key (an admin gives you the key)"],
  [`login ${PROVIDERS[0]}`, `sign in to a subscription (or: ${PROVIDERS.slice(1).join(", ")})`],
  ["import", `or upload the logins ${CREDENTIAL_TOOLS.join(", ")} already have`],
  ["accounts", "your pool: status, cooldowns, quota used, last use, counts"],
  ["usage", "requests and tokens per day, per account"],
  ["settings", "how requests pick an account (failover, round-robin, quota-aware)"],
  ["env claude-code", `what to set so a tool uses the gateway (see: ${subpool("env list")})`],
  ["me", "your team limits and what is left of them"],
])}

Profiles: \`${subpool("setup --profile admin")}\` saves a second gateway key beside your own (an admin's
ADMIN_TOKEN, another gateway); \`${subpool("--profile admin users list")}\` uses it; \`${subpool("profiles")}\` lists them.

Environment: SUBPOOL_URL, SUBPOOL_KEY (override the saved ones, unless a profile is chosen),
SUBPOOL_PROFILE (a profile, as --profile), SUBPOOL_CONFIG (another config file),
SUBPOOL_NO_BROWSER=1 (print addresses instead of opening a browser), NO_COLOR.`,
    );

  // ---- setup, whoami, profiles ---------------------------------------------------------------
  program
    .command("setup")
    .description("connect to a gateway: asks for its URL and your key, checks them, saves them (mode 0600)")
    .option("--url <url>", "the gateway's address, e.g. http://localhost:8787")
    .option("--key <key>", "your gateway key; `-` reads it from stdin (keeps it out of the shell history)")
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      `\nSaved to ${configPath()}\n(SUBPOOL_CONFIG picks another file; SUBPOOL_URL and SUBPOOL_KEY override it.)\nWith --profile NAME (before or after \`setup\`) it is saved as that profile and the others are kept.`,
    )
    .action(run("setup", "setup"));

  program.command("whoami").description("show which gateway and user this machine is set up for").option("--json", "print the result as JSON").action(run("setup", "whoami"));

  program
    .command("me")
    .description("you, the limits your team's admin set for you, what is left of each now and when it frees")
    .option("--json", "print the gateway's answer (GET /api/me) as JSON")
    .addHelpText("after", "\nTokens count input, output and cache reads and writes, as `usage` does. Days and months are UTC.")
    .action(run("team", "me"));

  program.command("profiles").description("the saved profiles (names and URLs; never keys)").option("--json", "print them as JSON").action(run("setup", "profiles"));

  // ---- login, import ---------------------------------------------------------------------------
  program
    .command("login")
    .description(`sign in to a subscription (${PROVIDERS.map((id) => infoOf(id)?.subscription).join(", ")}); the account is stored in the gateway`)
    .argument("<provider>", `${PROVIDERS.join(" | ")} (also: ${PROVIDER_ALIAS_LIST.join(", ")})`, parseProvider)
    .option("--label <label>", "a name for the account (default: the email or login the provider reports)")
    .option("--no-browser", "do not open a browser; print the address")
    .option("--no-callback", `${PROVIDERS.filter((id) => infoOf(id)?.login === "redirect").join(", ")}: do not listen on localhost:1455 for the browser; paste the address instead`)
    .option("--json", "print the resulting account as JSON")
    .addHelpText(
      "after",
      "\nSigning in to an account already in the gateway refreshes it (e.g. after needs_reauth) instead of adding a copy.\nSUBPOOL_NO_BROWSER=1 never opens a browser.",
    )
    .action(run("login", "login"));

  program
    .command("import")
    .description("upload the logins opencode, Claude Code or Codex keep on this machine (asks first)")
    .argument("[files...]", "credential files; `-` reads one from stdin. Default: the usual places")
    .option("-y, --yes", "upload without asking")
    .option("--json", "print the gateway's answers as JSON")
    .addHelpText("after", usualPlacesHelp)
    .action(run("import", "importFiles"));

  // ---- accounts --------------------------------------------------------------------------------
  const accounts = program
    .command("accounts")
    .description("your provider accounts: list (the default), rm, disable, enable, move, rename, add, check")
    .addHelpText(
      "after",
      `
An account is named by its id (or the id's first characters), its label (or the label's first
characters, when only one label starts so), or <provider>:<position> (e.g. anthropic:2). A name
that fits several accounts is refused with the list of them. Requests try a provider's accounts in
position order, 1 first.`,
    );

  const list = accounts
    .command("list", { isDefault: true })
    .alias("ls")
    .description("a table of your accounts: position, provider, label, type, status, cooldown, last use, last status, counts")
    .option("--json", "print the gateway's JSON answer")
    .option("-p, --provider <provider>", "only this provider's accounts", parseProvider)
    .action(run("accounts", "list"));
  defaultSubcommand(accounts, list);

  accounts
    .command("rm")
    .alias("remove")
    .description("delete an account and its stored credential")
    .argument("<account>", ACCOUNT_ARG)
    .option("-y, --yes", "do not ask for confirmation")
    .option("--json", "print the removed account as JSON")
    .action(run("accounts", "rm"));

  for (const [name, enabled] of [
    ["disable", false],
    ["enable", true],
  ] as const) {
    accounts
      .command(name)
      .description(enabled ? "use the account again (clears its cooldown)" : "skip the account until it is enabled again")
      .argument("<account>", ACCOUNT_ARG)
      .option("--json", "print the updated account as JSON")
      .action(run("accounts", enabled ? "enable" : "disable"));
  }

  accounts
    .command("move")
    .description("change the order accounts are tried in (1 = first); the others shift")
    .argument("<account>", ACCOUNT_ARG)
    .argument("<position>", "the new position, from 1", parsePosition)
    .option("--json", "print the updated account as JSON")
    .action(run("accounts", "move"));

  accounts
    .command("rename")
    .description("change an account's label")
    .argument("<account>", ACCOUNT_ARG)
    .argument("<label>", "the new label")
    .option("--json", "print the updated account as JSON")
    .action(run("accounts", "rename"));

  accounts
    .command("check")
    .description("ask the provider whether it accepts the account's credential (every account when none is named); costs no tokens")
    .argument("[account]", ACCOUNT_ARG)
    .option("--json", "print the verdicts as JSON")
    .addHelpText("after", "\nExit code 1 when the provider refused a credential (verdict: refused).")
    .action(run("accounts", "check"));

  accounts
    .command("add")
    .description(`add an API key account (subscriptions: \`${subpool("login")}\`)`)
    .argument("<provider>", API_KEY_PROVIDERS.map((p) => p.id).join(" | "), parseProvider)
    .option("--key <key>", "the API key; `-` reads it from stdin (keeps it out of the shell history)")
    .option("--label <label>", "a name for it")
    .option("--json", "print the new account as JSON")
    .action(run("accounts", "add"));

  // ---- usage, settings ------------------------------------------------------------------------
  program
    .command("usage")
    .description("requests and tokens per day (UTC) of one account, or of each account")
    .argument("[account]", ACCOUNT_ARG)
    .option("--days <n>", "how many days back, 1 to 366", parseDays, 14)
    .option("--json", "print the gateway's answer as JSON (every account: {accounts:[{id,provider,label,position,days}]})")
    .addHelpText("after", "\nInput tokens exclude cache reads and writes, which have columns of their own. Days without requests are left out.")
    .action(run("routing", "usage"));

  program
    .command("settings")
    .description("how your requests pick an account: show the routing settings, or change the ones given")
    .option("--strategy <strategy>", "failover (by position) | round-robin (in turn) | quota-aware (most headroom first)")
    .option("--quota-threshold <fraction>", "quota-aware: accounts this full are set aside, 0.05 to 1 (0.9 or 90%)", parseFraction)
    .option("--affinity-ttl <seconds>", "how long a conversation stays on its account after its last request: seconds, or 30m, 1h; 0 = off (at most 7d)", parseSeconds)
    .option("--json", "print the settings as JSON")
    .addHelpText(
      "after",
      () => `
Examples:
${examples([
  ["settings", "what is set now"],
  ["settings --strategy quota-aware --quota-threshold 90%", ""],
  ["settings --affinity-ttl 1h", "keep a conversation on its account for an hour"],
])}`,
    )
    .action(run("routing", "settings"));

  // ---- users -----------------------------------------------------------------------------------
  const users = program
    .command("users")
    .description("manage the team (admins): list (the default), add, rm, rotate")
    .addHelpText("after", "\nA user is named by name or id. Keys are shown once, when made; the gateway keeps only a hash.");

  const usersList = users
    .command("list", { isDefault: true })
    .alias("ls")
    .description("everyone who has a gateway key: role, last seen, accounts (and how many need a new login), requests and tokens today and over --days, limits")
    .option("--days <n>", "the usage window, 1 to 90 days (UTC, today included)", parseTeamDays, 7)
    .option("--json", "print the gateway's answer (GET /admin/usage) as JSON")
    .addHelpText(
      "after",
      "\nTokens count input, output and cache reads and writes. No credential, account label or account id of a member is shown here; members see theirs with `accounts`.",
    )
    .action(run("users", "listUsers"));
  defaultSubcommand(users, usersList);

  users
    .command("add")
    .description("create a user and show their gateway key (once)")
    .argument("<name>", "the user's name (unique)")
    .option("--admin", "make them an admin (can manage users)")
    .option("--json", "print the answer as JSON (it holds the key)")
    .action(run("users", "addUser"));

  users
    .command("rm")
    .alias("remove")
    .description("delete a user, their key and every account they stored")
    .argument("<user>", USER_ARG)
    .option("-y, --yes", "do not ask for confirmation")
    .option("--json", "print the removed user as JSON")
    .action(run("users", "removeUser"));

  users
    .command("rotate")
    .description("issue a new key for a user; the old one stops working at once")
    .argument("<user>", USER_ARG)
    .option("-y, --yes", "do not ask for confirmation")
    .option("--json", "print the answer as JSON (it holds the key)")
    .action(run("users", "rotateUser"));

  // ---- limits, alerts ---------------------------------------------------------------------------
  program
    .command("limits")
    .description("a member's limits (admins): show them, or set the ones given")
    .argument("<user>", USER_ARG)
    .option("--rpm <n>", "requests per minute; none = no limit", parser((raw) => toOption(parseCount(raw))))
    .option("--tokens-per-day <n>", "input + output + cache tokens per UTC day: 2000000, 2M, 500k; 0 stops them; none = no limit", parser((raw) => toOption(parseCount(raw))))
    .option("--tokens-per-month <n>", "the same per UTC month", parser((raw) => toOption(parseCount(raw))))
    .option("--models <globs>", "the models they may use, comma-separated names or globs (* any run, ? one character); none = every model", parser((raw) => toOption(parseModels(raw))))
    .option("--json", "print the gateway's answer as JSON")
    .addHelpText(
      "after",
      () => `
Over a limit, requests get 429 (403 for a model outside --models) in the provider's own error format,
with retry-after, x-subpool-limit and a message saying it is the team's limit. It applies within
about a second; members see theirs with \`${subpool("me")}\`.

Examples:
${examples([
  ["limits alice", "what is set"],
  ["limits alice --rpm 60 --tokens-per-day 2M --models 'claude-sonnet-*'", ""],
  ["limits alice --tokens-per-day none", "lift one limit, keep the others"],
])}`,
    )
    .action(run("team", "limits"));

  const TEAM_ALERTS = "the team's target (admins): every member's events. Without it, your own";
  const alerts = program
    .command("alerts")
    .description("webhooks for account, pool and limit events: show (the default), set, test, rm")
    .addHelpText(
      "after",
      () => `
Events: ${ALERT_EVENTS.join(", ")}.
Deliveries are signed: x-subpool-signature: sha256=<hex HMAC-SHA256 of the body, keyed with the
secret \`alerts set\` shows once>. Slack (hooks.slack.com) and Discord (discord.com/api/webhooks)
URLs get a message in their own shape. Only https: URLs, or http: to 127.0.0.1, [::1] or localhost.

Examples:
${examples([
  ["alerts set https://hooks.slack.com/services/… --team", "the team's alerts to a Slack channel"],
  ["alerts set https://example.com/hook --events account.needs_reauth,limit.reached", "your own, two events"],
  ["alerts test --team", "send a test now and show what the receiver answered"],
])}`,
    );

  const alertsShow = alerts
    .command("show", { isDefault: true })
    .description("where alerts go, which events, and the last delivery")
    .option("--team", TEAM_ALERTS)
    .option("--json", "print the gateway's answer as JSON")
    .action(run("alerts", "showAlerts"));
  defaultSubcommand(alerts, alertsShow);

  alerts
    .command("set")
    .description("send alerts to a webhook URL; shows the signing secret once (setting it again makes a new secret, after asking)")
    .argument("<url>", "https://… (Slack and Discord webhook URLs too), or http://127.0.0.1:<port>/… for a local receiver")
    .option("--events <names>", `comma-separated: ${ALERT_EVENTS.join(", ")}; all (the default) = every event`, parser((raw) => toOption(parseEvents(raw))))
    .option("--team", TEAM_ALERTS)
    .option("-y, --yes", "do not ask before replacing a target already set (its secret changes)")
    .option("--json", "print the gateway's answer as JSON (it holds the secret)")
    .action(run("alerts", "setAlerts"));

  alerts
    .command("test")
    .description("send a test event now; shows what the receiver answered (exit code 1 when it was not delivered)")
    .option("--team", TEAM_ALERTS)
    .option("--json", "print the delivery as JSON")
    .action(run("alerts", "testAlerts"));

  alerts
    .command("rm")
    .alias("remove")
    .description("stop sending alerts (the target and its secret are deleted; asks first)")
    .option("--team", TEAM_ALERTS)
    .option("-y, --yes", "do not ask for confirmation")
    .option("--json", "print the result as JSON")
    .action(run("alerts", "removeAlerts"));

  // ---- env -------------------------------------------------------------------------------------
  program
    .command("env")
    .description(`print exactly what to set so a tool uses the gateway: ${TOOLS.map((t) => t.id).join(", ")}`)
    .addArgument(new Argument("[tool]", `${TOOLS.map((t) => t.id).join(" | ")} | list`).default("list"))
    .option("--show-key", "put your saved gateway key into the output instead of $SUBPOOL_KEY")
    .addOption(new Option("--shell <shell>", "syntax for the variables").choices(SHELLS).default(defaultShell(), "from $SHELL / the platform"))
    .option("--url <url>", "the gateway URL to use (default: the configured one)", parseUrl)
    .option("--write", "codex: edit ~/.codex/config.toml (or $CODEX_HOME/config.toml) in place, keeping a .bak copy")
    .option("--json", "print the settings as JSON")
    .addHelpText(
      "after",
      () => `
Examples:
${examples([
  [`eval "$(${subpool("env claude-code")})"`, "sets them in this shell (with your saved key unless SUBPOOL_KEY is exported)", true],
  ["env opencode > opencode.json", ""],
  ["env codex --write", 'sets model_provider = "subpool" in ~/.codex/config.toml'],
  ["env codex >> ~/.codex/config.toml", "appends a provider and a profile: codex --profile subpool"],
])}`,
    )
    .action(run("env", "env"));

  // Every command reports usage errors the same way.
  const configure = (c: Command) => {
    c.exitOverride()
      .showSuggestionAfterError(true)
      .showHelpAfterError("(add --help for usage)")
      .configureOutput({ outputError: (str, write) => write(paint("red", str, process.stderr)) });
    c.commands.forEach(configure);
  };
  configure(program);
  // --profile, wherever it was given, reaches the config through SUBPOOL_PROFILE.
  program.hook("preAction", () => {
    const p = program.opts<{ profile?: string }>().profile;
    if (p) process.env.SUBPOOL_PROFILE = p;
  });
  return program;
}
