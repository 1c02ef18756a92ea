/**
 * How this CLI was started, so that every command it suggests runs as shown. A teammate who ran
 * `npx https://gw/cli/subpool-cli.tgz setup` has no `subpool` on PATH: the hints must say
 * `npx https://gw/cli/subpool-cli.tgz login anthropic`, not `subpool login anthropic`.
 *
 *   npx <spec> …            npm installs the package under <cache>/_npx/<hash>/node_modules/ and writes
 *                           the spec as typed to <cache>/_npx/<hash>/package.json ("_npx": {"packages"})
 *                           -> `npx <spec>`
 *   npx subpool (checkout)  node_modules/.bin/subpool (scripts/link-cli.mjs) -> `npx subpool`
 *   subpool                 a command on PATH that is this very file (npm install -g) -> `subpool`
 *   node subpool-cli.mjs    anything else -> `node <the file>`, relative to the working directory when under it
 *
 * A few file-system calls, once per run (memoized); nothing is spawned.
 */
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { basename, delimiter, dirname, isAbsolute, join, relative } from "node:path";

export interface Invocation {
  /** What to type for this CLI: "subpool", "npx subpool", "npx https://gw/cli/subpool-cli.tgz", "node subpool-cli.mjs". */
  command: string;
  how: "npx-package" | "npx-project" | "path" | "node";
  /** npx-package: the package spec npx was given (a URL, a path, a name). */
  spec: string | null;
}

const real = (p: string): string | null => {
  try {
    return realpathSync(p);
  } catch {
    return null;
  }
};

/** Single-quotes a word for sh when it needs it (URLs and plain paths do not). */
export function shellWord(s: string): string {
  if (/^[A-Za-z0-9_./:@%+=,~-]+$/.test(s)) return s;
  return process.platform === "win32" ? `"${s.replace(/"/g, '\\"')}"` : `'${s.replace(/'/g, `'\\''`)}'`;
}

function npxSpec(file: string): string | null {
  const m = /^(.*[\\/]_npx[\\/][^\\/]+)[\\/]node_modules[\\/]/.exec(file);
  if (!m) return null;
  try {
    const pkg = JSON.parse(readFileSync(join(m[1]!, "package.json"), "utf8")) as { _npx?: { packages?: unknown } };
    const spec = Array.isArray(pkg._npx?.packages) ? pkg._npx.packages[0] : undefined;
    return typeof spec === "string" && spec.trim() ? spec.trim() : "";
  } catch {
    return "";
  }
}

/** Whether `name` on PATH is this very file (npm's global bin links; on Windows, npm's .cmd shim beside node_modules). */
function onPath(name: string, file: string): boolean {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    if (process.platform === "win32") {
      if (existsSync(join(dir, "subpool.cmd")) && real(join(dir, "node_modules", "subpool-cli", "subpool-cli.mjs")) === file) return true;
      continue;
    }
    const candidate = join(dir, name);
    if (existsSync(candidate) && real(candidate) === file) return true;
  }
  return false;
}

export function detectInvocation(script = process.argv[1] ?? "", cwd = process.cwd()): Invocation {
  const file = real(script) ?? script;
  const spec = npxSpec(file);
  if (spec) return { command: `npx ${shellWord(spec)}`, how: "npx-package", spec };
  const name = basename(script);
  if (spec === null && basename(dirname(script)) === ".bin" && basename(dirname(dirname(script))) === "node_modules") {
    return { command: `npx ${shellWord(name)}`, how: "npx-project", spec: null };
  }
  if (spec === "" || onPath(process.platform === "win32" ? "subpool" : name, file)) {
    // An npx install whose spec could not be read: the bin's own name is the best guess.
    return { command: process.platform === "win32" ? "subpool" : name, how: spec === "" ? "npx-package" : "path", spec: null };
  }
  const rel = relative(cwd, script);
  const shown = rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel : script;
  return { command: `node ${shellWord(shown)}`, how: "node", spec: null };
}

let memo: Invocation | undefined;

/** How this run was started (computed once). */
export function invocation(): Invocation {
  memo ??= detectInvocation();
  return memo;
}

/** A command line that runs this CLI with `rest`: subpool("login anthropic") -> "npx https://gw/cli/subpool-cli.tgz login anthropic". */
export function subpool(rest = ""): string {
  return rest ? `${invocation().command} ${rest}` : invocation().command;
}

/**
 * Where the CLI is not a command of its own yet, the line that makes it one (`subpool` on PATH), or
 * null: run through npx from a package (the same spec, installed globally), or from the one file
 * (the gateway's package). In a checkout or once installed: null.
 */
export function installLine(gatewayUrl: string | null): string | null {
  const inv = invocation();
  if (inv.how === "npx-package" && inv.spec) return `npm install -g ${shellWord(inv.spec)}`;
  if (inv.how === "node" && gatewayUrl) return `npm install -g ${shellWord(`${gatewayUrl}/cli/subpool-cli.tgz`)}`;
  return null;
}
