/**
 * Asking the user. On a terminal: @clack/prompts (drawn on stderr). Otherwise (a pipe, a script, a
 * test): questions are printed to stderr and answers read line by line from stdin; confirmations
 * need --yes, since nobody can answer them.
 */
import { createInterface, type Interface } from "node:readline";
import { Cancelled, CliError } from "./errors.js";
import { say } from "./ui.js";

type Clack = typeof import("@clack/prompts");
let clackModule: Clack | undefined;
/** @clack/prompts, loaded when a prompt or spinner is first drawn (it costs ~30 ms to load; --help and scripts never need it). */
export async function loadClack(): Promise<Clack> {
  clackModule ??= await import("@clack/prompts");
  return clackModule;
}

const output = process.stderr;

export const isInteractive = (): boolean => process.stdin.isTTY === true && process.env.SUBPOOL_NO_PROMPT !== "1";

// ---- line input for pipes ------------------------------------------------------------------------

let rl: Interface | undefined;
const lines: string[] = [];
let ended = false;
const waiters: ((line: string | null) => void)[] = [];

function lineReader(): void {
  if (rl) return;
  rl = createInterface({ input: process.stdin, terminal: false });
  rl.on("line", (line) => {
    const w = waiters.shift();
    if (w) w(line);
    else lines.push(line);
  });
  rl.on("close", () => {
    ended = true;
    for (const w of waiters.splice(0)) w(null);
  });
}

/** The next line of stdin (null at its end); an abort stops waiting without consuming a line. */
export function readLine(signal?: AbortSignal): Promise<string | null> {
  lineReader();
  const buffered = lines.shift();
  if (buffered !== undefined) return Promise.resolve(buffered);
  if (ended) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const waiter = (line: string | null) => {
      signal?.removeEventListener("abort", onAbort);
      resolve(line);
    };
    const onAbort = () => {
      const i = waiters.indexOf(waiter);
      if (i >= 0) waiters.splice(i, 1);
      reject(new DOMException("aborted", "AbortError"));
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    waiters.push(waiter);
  });
}

/** All of stdin (for `subpool import -`). */
export async function readAllStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(typeof c === "string" ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

/** Lets the process exit once the command is done. */
export function closeInput(): void {
  rl?.close();
  rl = undefined;
}

// ---- prompts -------------------------------------------------------------------------------------

export interface AskOptions {
  message: string;
  placeholder?: string;
  initialValue?: string;
  /** Returned for an empty answer. */
  defaultValue?: string;
  secret?: boolean;
  validate?: (value: string) => string | undefined;
  /** Aborting ends the question: ask() then rejects with an AbortError. */
  signal?: AbortSignal;
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new DOMException("aborted", "AbortError");
}

export async function ask(o: AskOptions): Promise<string> {
  if (isInteractive()) {
    const clack = await loadClack();
    const validate = (v: string | undefined): string | undefined => {
      const s = (v ?? "").trim();
      if (!s && o.defaultValue !== undefined) return undefined;
      return o.validate?.(s);
    };
    const common = { message: o.message, output, validate, ...(o.signal ? { signal: o.signal } : {}) };
    const v = o.secret
      ? await clack.password({ ...common, mask: "•" })
      : await clack.text({
          ...common,
          ...(o.placeholder !== undefined ? { placeholder: o.placeholder } : {}),
          ...(o.initialValue !== undefined ? { initialValue: o.initialValue } : {}),
        });
    checkAborted(o.signal);
    if (clack.isCancel(v)) throw new Cancelled();
    const s = v.trim();
    return s === "" && o.defaultValue !== undefined ? o.defaultValue : s;
  }
  for (;;) {
    say(`${o.message}${o.defaultValue !== undefined ? ` [${o.defaultValue}]` : ""}`);
    const line = await readLine(o.signal);
    if (line === null) throw new CliError(`no answer to "${o.message}" (stdin ended)`, "run it in a terminal, or give the value as an option (see --help)");
    const s = line.trim();
    if (s === "" && o.defaultValue !== undefined) return o.defaultValue;
    const problem = o.validate?.(s);
    if (!problem) return s;
    say(problem);
  }
}

/** Yes/no. `yes` (from --yes) answers yes; without a terminal, --yes is required. */
export async function confirm(message: string, opts: { yes?: boolean; initialValue?: boolean; action: string }): Promise<boolean> {
  if (opts.yes) return true;
  if (!isInteractive()) throw new CliError(`${opts.action} needs a confirmation and there is no terminal to ask in`, "add --yes to confirm");
  const clack = await loadClack();
  const v = await clack.confirm({ message, output, initialValue: opts.initialValue ?? false });
  if (clack.isCancel(v)) throw new Cancelled();
  return v;
}

// ---- progress ------------------------------------------------------------------------------------

export interface Progress {
  message(text: string): void;
  stop(text?: string): void;
  fail(text?: string): void;
}

/** A spinner on a terminal; plain lines otherwise. `onCancel`, if given, runs on Ctrl-C. */
export async function progress(text: string, onCancel?: () => void): Promise<Progress> {
  if (process.stderr.isTTY === true && isInteractive()) {
    const clack = await loadClack();
    const s = clack.spinner({ output, ...(onCancel ? { onCancel } : {}), cancelMessage: "cancelled" });
    // The spinner reads the keyboard raw and answers Ctrl-C with process.exit(0): make that a 130.
    const onExit = () => {
      process.exitCode = 130;
    };
    process.on("exit", onExit);
    const end = () => process.removeListener("exit", onExit);
    s.start(text);
    return {
      message: (t) => s.message(t),
      stop: (t) => {
        end();
        s.stop(t);
      },
      fail: (t) => {
        end();
        s.error(t);
      },
    };
  }
  say(`${text}...`);
  // Without a handler, Ctrl-C ends the process as usual.
  const onSig = () => onCancel?.();
  if (onCancel) process.once("SIGINT", onSig);
  const done = (t?: string) => {
    process.removeListener("SIGINT", onSig);
    if (t) say(t);
  };
  return { message: () => undefined, stop: done, fail: done };
}

/** Sleeps, or rejects with an AbortError when the signal fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new DOMException("aborted", "AbortError"));
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new DOMException("aborted", "AbortError"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

