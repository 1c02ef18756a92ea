#!/usr/bin/env node
/**
 * subpool's command-line tool: `npx subpool <command>`. Talks to the gateway's HTTP API with the URL
 * and key that `subpool setup` saved. Results go to stdout, conversation to stderr; every error says
 * what to do and exits non-zero (1; 2 for a usage error; 130 when cancelled).
 */
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { registerAccounts } from "./commands/accounts.js";
import { registerEnv } from "./commands/env.js";
import { registerImport } from "./commands/import.js";
import { registerLogin } from "./commands/login.js";
import { registerSetup } from "./commands/setup.js";
import { registerUsers } from "./commands/users.js";
import { CliError } from "./errors.js";
import { closeInput } from "./prompts.js";
import { paint } from "./ui.js";

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: unknown };
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    return "unknown";
  }
}

function reportError(message: string, hint?: string): void {
  process.stderr.write(`${paint("red", "error:", process.stderr)} ${message}\n`);
  if (hint) process.stderr.write(`${paint("dim", "  →", process.stderr)} ${hint}\n`);
}

export function buildProgram(): Command {
  const program = new Command("subpool")
    .description("subpool: your AI provider accounts behind one gateway. Start with `subpool setup`.")
    .version(version(), "-v, --version")
    .showSuggestionAfterError(true)
    .showHelpAfterError("(add --help for usage)")
    .configureOutput({ outputError: (str, write) => write(paint("red", str, process.stderr)) })
    .exitOverride()
    .addHelpText(
      "after",
      `
Getting started:
  subpool setup                    gateway URL and your key (an admin gives you the key)
  subpool login anthropic          sign in to a subscription (or: openai, github-copilot)
  subpool import                   or upload the logins opencode, Claude Code, Codex already have
  subpool accounts                 your pool: status, cooldowns, counts
  subpool env claude-code          what to set so a tool uses the gateway (see: subpool env list)

Environment: SUBPOOL_URL, SUBPOOL_KEY (override the saved ones), SUBPOOL_CONFIG (another config file),
SUBPOOL_NO_BROWSER=1 (print addresses instead of opening a browser), NO_COLOR.`,
    );
  registerSetup(program);
  registerLogin(program);
  registerImport(program);
  registerAccounts(program);
  registerUsers(program);
  registerEnv(program);
  // Every subcommand reports usage errors the same way.
  const configure = (c: Command) => {
    c.exitOverride().showSuggestionAfterError(true).showHelpAfterError("(add --help for usage)");
    c.configureOutput({ outputError: (str, write) => write(paint("red", str, process.stderr)) });
    c.commands.forEach(configure);
  };
  program.commands.forEach(configure);
  return program;
}

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and --version "fail" with exit code 0; usage errors were already printed.
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof CliError) {
      if (e.exitCode === 130) process.stderr.write("cancelled\n");
      else reportError(e.message, e.hint);
      return e.exitCode;
    }
    const err = e as Error;
    reportError(`unexpected: ${err?.stack ?? String(e)}`, "this is a bug in the subpool CLI; please report it with the command you ran");
    return 1;
  } finally {
    closeInput();
  }
}

process.exitCode = await main(process.argv);
