#!/usr/bin/env node
/**
 * subpool's command-line tool: `npx subpool <command>`. Talks to the gateway's HTTP API with the URL
 * and key that `subpool setup` saved. Results go to stdout, conversation to stderr; every error says
 * what to do and exits non-zero (1; 2 for a usage error; 130 when cancelled).
 *
 * Start-up is kept small: this file and ./program.ts load commander and the command definitions
 * only; a command's own code (prompts, tables, the API client) is imported when it runs.
 */
import { readFileSync } from "node:fs";
import { CommanderError } from "commander";
import { CliError } from "./errors.js";
import { buildProgram } from "./program.js";
import { paint } from "./ui.js";

/** Set by the single-file build (esbuild --define); the checkout reads package.json. */
declare const SUBPOOL_VERSION: string | undefined;

function version(): string {
  if (typeof SUBPOOL_VERSION === "string") return SUBPOOL_VERSION;
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: unknown };
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    return "unknown";
  }
}

// `subpool help login | head -3`: the reader went away. Stop quietly instead of crashing on EPIPE.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(typeof process.exitCode === "number" ? process.exitCode : 0);
    throw e;
  });
}

function reportError(message: string, hint?: string): void {
  process.stderr.write(`${paint("red", "error:", process.stderr)} ${message}\n`);
  if (hint) process.stderr.write(`${paint("dim", "  →", process.stderr)} ${hint}\n`);
}

async function main(argv: string[]): Promise<number> {
  const program = buildProgram(version());
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
    // Only loaded if a command read from stdin.
    const { closeInput } = await import("./prompts.js");
    closeInput();
  }
}

process.exitCode = await main(process.argv);
