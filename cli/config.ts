/**
 * Where the CLI finds the gateway: `{url, key}` in the user's config dir, written by `subpool setup`
 * with mode 0600 (directory 0700). SUBPOOL_URL / SUBPOOL_KEY override the file field by field;
 * SUBPOOL_CONFIG names another file.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join } from "node:path";
import { CliError } from "./errors.js";
import { warn } from "./ui.js";

export interface StoredConfig {
  url: string;
  key: string;
}

export type Source = "env" | "file";

export interface ResolvedConfig extends StoredConfig {
  path: string;
  urlFrom: Source;
  keyFrom: Source;
}

const env = (name: string): string | undefined => {
  const v = process.env[name]?.trim();
  return v ? v : undefined;
};

/** The default config directory for this platform (not SUBPOOL_CONFIG). */
export function defaultConfigDir(): string {
  if (process.platform === "win32") return join(env("APPDATA") ?? join(homedir(), "AppData", "Roaming"), "subpool");
  return join(env("XDG_CONFIG_HOME") ?? join(homedir(), ".config"), "subpool");
}

export function configPath(): string {
  return env("SUBPOOL_CONFIG") ?? join(defaultConfigDir(), "config.json");
}

/**
 * Accepts what people type: "https://gw.example.com/", "localhost:8787". No scheme means http for
 * a loopback host and https otherwise. Returns the origin plus any path prefix, without a trailing /.
 */
export function normalizeUrl(raw: string): string {
  let s = raw.trim();
  if (!s) throw new CliError("the gateway URL is empty", "give the address of your gateway, e.g. http://localhost:8787 or https://subpool.<you>.workers.dev");
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) {
    const loopback = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?(\/|$)/i.test(s);
    s = `${loopback ? "http" : "https"}://${s}`;
  }
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new CliError(`"${raw}" is not a URL`, "give the address of your gateway, e.g. http://localhost:8787 or https://subpool.<you>.workers.dev");
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new CliError(`the gateway URL must start with http:// or https:// (got ${u.protocol})`);
  if (u.username || u.password) throw new CliError("put the key in `subpool setup`, not in the URL");
  if (u.search || u.hash) throw new CliError("the gateway URL takes no ?query or #fragment");
  return `${u.origin}${u.pathname.replace(/\/+$/, "")}`;
}

function parseStored(text: string, path: string): Partial<StoredConfig> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new CliError(`the config file ${path} is not valid JSON`, "run `subpool setup` to write it again");
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) throw new CliError(`the config file ${path} is not a JSON object`, "run `subpool setup` to write it again");
  const o = v as Record<string, unknown>;
  return {
    ...(typeof o.url === "string" ? { url: o.url } : {}),
    ...(typeof o.key === "string" ? { key: o.key } : {}),
  };
}

/** The file's content, or null when there is none. */
export function readConfigFile(path = configPath()): Partial<StoredConfig> | null {
  if (!existsSync(path)) return null;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new CliError(`cannot read the config file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (process.platform !== "win32") {
    const mode = statSync(path).mode & 0o777;
    if (mode & 0o077) warn(`${path} can be read by other users (mode ${mode.toString(8)}); it holds your gateway key: chmod 600 ${path}`);
  }
  return parseStored(text, path);
}

/** URL and key from the environment and the file; fails with what to do when either is missing. */
export function loadConfig(): ResolvedConfig {
  const path = configPath();
  const file = readConfigFile(path);
  const url = env("SUBPOOL_URL") ?? file?.url;
  const key = env("SUBPOOL_KEY") ?? file?.key;
  if (!url || !key) {
    const missing = !file ? `no gateway configured (${path} does not exist)` : `the config file ${path} has no ${!url ? "url" : "key"}`;
    throw new CliError(missing, "run `subpool setup` first (or set SUBPOOL_URL and SUBPOOL_KEY)");
  }
  return {
    url: normalizeUrl(url),
    key,
    path,
    urlFrom: env("SUBPOOL_URL") ? "env" : "file",
    keyFrom: env("SUBPOOL_KEY") ? "env" : "file",
  };
}

/** The URL alone (for `subpool env`), which needs no key. */
export function loadUrl(): string {
  const url = env("SUBPOOL_URL") ?? readConfigFile()?.url;
  if (!url) throw new CliError("no gateway configured", "run `subpool setup` first (or set SUBPOOL_URL, or pass --url)");
  return normalizeUrl(url);
}

/**
 * Writes the file readable by its owner only: created 0600 next to its final name, then renamed
 * over it, so the key never sits in a wider-mode file, not even for a moment.
 */
export function saveConfig(cfg: StoredConfig, path = configPath()): string {
  const dir = dirname(path);
  const ours = !env("SUBPOOL_CONFIG") && basename(dir) === "subpool";
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (ours && process.platform !== "win32") chmodSync(dir, 0o700);
    const tmp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
    writeFileSync(tmp, `${JSON.stringify({ url: cfg.url, key: cfg.key }, null, 2)}\n`, { mode: 0o600 });
    if (process.platform !== "win32") chmodSync(tmp, 0o600);
    renameSync(tmp, path);
  } catch (e) {
    throw new CliError(`cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, "check the permissions of that directory, or point SUBPOOL_CONFIG at another file");
  }
  return path;
}
