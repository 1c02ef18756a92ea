/**
 * Where the CLI finds the gateway: `{url, key}` in the user's config dir, written by `subpool setup`
 * with mode 0600 (directory 0700). SUBPOOL_CONFIG names another file.
 *
 * Profiles: one file holds the default `{url, key}` and any number of named ones under
 * `"profiles": {"admin": {url, key}}`, so an admin keeps the ADMIN_TOKEN beside their own key.
 * `--profile NAME` (or SUBPOOL_PROFILE) picks one; `subpool setup --profile NAME` writes it.
 *
 * Precedence: a chosen profile uses its saved URL and key as they are (SUBPOOL_URL / SUBPOOL_KEY,
 * which `subpool env` asks people to export for their tools, must not turn `--profile admin` into
 * the member's key). Without a profile, SUBPOOL_URL / SUBPOOL_KEY override the file field by field.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join } from "node:path";
import { CliError } from "./errors.js";
import { subpool } from "./invocation.js";
import { warn } from "./ui.js";

export interface StoredConfig {
  url: string;
  key: string;
}

/** The file as stored: the default profile at the top, named profiles beside it. */
export interface ConfigFile extends Partial<StoredConfig> {
  profiles: Record<string, Partial<StoredConfig>>;
}

export type Source = "env" | "file";

export interface ResolvedConfig extends StoredConfig {
  path: string;
  /** The chosen profile; null for the default one. */
  profile: string | null;
  urlFrom: Source;
  keyFrom: Source;
  /** The named profiles saved in the file (to say which one holds an admin's key). */
  profiles: string[];
}

const env = (name: string): string | undefined => {
  const v = process.env[name]?.trim();
  return v ? v : undefined;
};

const PROFILE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$/;

/** Checks a profile name (for --profile's parser and SUBPOOL_PROFILE). */
export function validProfileName(name: string): string | undefined {
  return PROFILE_NAME.test(name) ? undefined : `"${name}" is not a profile name: letters, digits, ".", "_" and "-", at most 40, starting with a letter or digit`;
}

/** The profile chosen by --profile (index.ts puts it into SUBPOOL_PROFILE) or SUBPOOL_PROFILE; null: the default. */
export function currentProfile(): string | null {
  const p = env("SUBPOOL_PROFILE");
  if (!p || p === "default") return null;
  const problem = validProfileName(p);
  if (problem) throw new CliError(`SUBPOOL_PROFILE: ${problem}`, "fix or unset SUBPOOL_PROFILE", 2);
  return p;
}

/** `--profile admin` (for messages that tell the user what to run). */
export function profileFlag(profile = currentProfile()): string {
  return profile ? ` --profile ${profile}` : "";
}

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
  if (u.username || u.password) throw new CliError(`put the key in \`${subpool()} setup\`, not in the URL`);
  if (u.search || u.hash) throw new CliError("the gateway URL takes no ?query or #fragment");
  return `${u.origin}${u.pathname.replace(/\/+$/, "")}`;
}

const fields = (v: unknown): Partial<StoredConfig> => {
  const o = v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  return {
    ...(typeof o.url === "string" ? { url: o.url } : {}),
    ...(typeof o.key === "string" ? { key: o.key } : {}),
  };
};

function parseStored(text: string, path: string): ConfigFile {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new CliError(`the config file ${path} is not valid JSON`, `run \`${subpool()} setup\` to write it again`);
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) throw new CliError(`the config file ${path} is not a JSON object`, `run \`${subpool()} setup\` to write it again`);
  const o = v as Record<string, unknown>;
  const profiles: Record<string, Partial<StoredConfig>> = {};
  const raw = o.profiles;
  if (raw && typeof raw === "object" && !Array.isArray(raw)) {
    for (const [name, p] of Object.entries(raw as Record<string, unknown>)) if (!validProfileName(name)) profiles[name] = fields(p);
  }
  return { ...fields(o), profiles };
}

/** The whole file, or null when there is none. */
export function readConfigFile(path = configPath()): ConfigFile | null {
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

/** One profile's saved fields (null: the default profile). */
export function profileOf(file: ConfigFile | null, profile: string | null): Partial<StoredConfig> | null {
  if (!file) return null;
  if (profile === null) return file.url !== undefined || file.key !== undefined ? { url: file.url, key: file.key } as Partial<StoredConfig> : null;
  return file.profiles[profile] ?? null;
}

/** URL and key from the environment and the file; fails with what to do when either is missing. */
export function loadConfig(): ResolvedConfig {
  const path = configPath();
  const profile = currentProfile();
  const file = readConfigFile(path);
  const saved = profileOf(file, profile);
  if (profile !== null) {
    if (!saved?.url || !saved.key) {
      const what = !saved ? `there is no profile "${profile}" in ${path}` : `the profile "${profile}" in ${path} has no ${!saved.url ? "url" : "key"}`;
      throw new CliError(what, `run \`${subpool()} setup --profile ${profile}\` first${knownProfiles(file)}`);
    }
    return { url: normalizeUrl(saved.url), key: saved.key, path, profile, urlFrom: "file", keyFrom: "file", profiles: Object.keys(file?.profiles ?? {}) };
  }
  const url = env("SUBPOOL_URL") ?? saved?.url;
  const key = env("SUBPOOL_KEY") ?? saved?.key;
  if (!url || !key) {
    const missing = !file ? `no gateway configured (${path} does not exist)` : `the config file ${path} has no ${!url ? "url" : "key"}`;
    throw new CliError(missing, `run \`${subpool()} setup\` first (or set SUBPOOL_URL and SUBPOOL_KEY)${knownProfiles(file)}`);
  }
  return {
    url: normalizeUrl(url),
    key,
    path,
    profile: null,
    urlFrom: env("SUBPOOL_URL") ? "env" : "file",
    keyFrom: env("SUBPOOL_KEY") ? "env" : "file",
    profiles: Object.keys(file?.profiles ?? {}),
  };
}

function knownProfiles(file: ConfigFile | null): string {
  const names = Object.keys(file?.profiles ?? {});
  return names.length ? `; saved profiles: ${names.join(", ")} (--profile NAME)` : "";
}

/** The URL alone (for `subpool env`), which needs no key. */
export function loadUrl(): string {
  const profile = currentProfile();
  const file = readConfigFile();
  const url = (profile === null ? env("SUBPOOL_URL") : undefined) ?? profileOf(file, profile)?.url;
  if (!url) throw new CliError(profile ? `no gateway configured for the profile "${profile}"` : "no gateway configured", `run \`${subpool()} setup${profileFlag(profile)}\` first (or pass --url${profile ? "" : ", or set SUBPOOL_URL"})`);
  return normalizeUrl(url);
}

/**
 * Saves one profile (null: the default) and keeps every other one. Writes the file readable by its
 * owner only: created 0600 next to its final name, then renamed over it, so the key never sits in a
 * wider-mode file, not even for a moment.
 */
export function saveConfig(cfg: StoredConfig, path = configPath(), profile: string | null = currentProfile()): string {
  let existing: ConfigFile | null = null;
  try {
    existing = readConfigFile(path);
  } catch {
    existing = null; // a broken file is replaced
  }
  const profiles = { ...(existing?.profiles ?? {}) };
  const top: Partial<StoredConfig> = profile === null ? { url: cfg.url, key: cfg.key } : { ...(existing?.url !== undefined ? { url: existing.url } : {}), ...(existing?.key !== undefined ? { key: existing.key } : {}) };
  if (profile !== null) profiles[profile] = { url: cfg.url, key: cfg.key };
  const content = { ...top, ...(Object.keys(profiles).length ? { profiles } : {}) };
  const dir = dirname(path);
  const ours = !env("SUBPOOL_CONFIG") && basename(dir) === "subpool";
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (ours && process.platform !== "win32") chmodSync(dir, 0o700);
    const tmp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
    writeFileSync(tmp, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 });
    if (process.platform !== "win32") chmodSync(tmp, 0o600);
    renameSync(tmp, path);
  } catch (e) {
    throw new CliError(`cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, "check the permissions of that directory, or point SUBPOOL_CONFIG at another file");
  }
  return path;
}
