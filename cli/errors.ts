/**
 * The CLI's one error type: a message for the user and, where it helps, what to do next. Anything
 * else that reaches the top level is a bug and is reported as one.
 */
export class CliError extends Error {
  constructor(
    message: string,
    /** What to do about it, shown on its own line. */
    readonly hint?: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = "CliError";
  }
}

/** The user pressed Ctrl-C or Esc at a prompt. */
export class Cancelled extends CliError {
  constructor() {
    super("cancelled", undefined, 130);
    this.name = "Cancelled";
  }
}
