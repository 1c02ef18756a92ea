/** `subpool setup`: the gateway URL and key, checked with GET /api/me, saved 0600. `subpool whoami`, `subpool profiles`. */
import { Api, ApiError } from "../api.js";
import { configPath, currentProfile, loadConfig, normalizeUrl, profileFlag, profileOf, readConfigFile, saveConfig, type ConfigFile, type StoredConfig } from "../config.js";
import { CliError } from "../errors.js";
import { installLine, subpool } from "../invocation.js";
import { ask, isInteractive, progress, readLine } from "../prompts.js";
import { CREDENTIAL_TOOLS, PROVIDERS, type Me } from "../types.js";
import { out, paint, printJson, printTable, say, warn } from "../ui.js";

interface SetupOptions {
  url?: string;
  key?: string;
  json?: boolean;
}

function validUrl(v: string): string | undefined {
  try {
    normalizeUrl(v);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

async function verify(url: string, key: string): Promise<Me> {
  const api = new Api(url, key, "input");
  const spin = await progress(`Checking ${url}`);
  try {
    const me = await api.get<Me>("/api/me");
    spin.stop(`Connected to ${url}`);
    return me;
  } catch (e) {
    spin.fail("Not connected");
    if (e instanceof ApiError && e.status === 401) {
      throw new CliError(
        `the key was refused by ${url}; nothing was saved`,
        `check the key: an admin shows it once, with \`${subpool()} users add <name>\` or \`${subpool()} users rotate <name>\``,
      );
    }
    if (e instanceof CliError) throw new CliError(`${e.message}; nothing was saved`, e.hint, e.exitCode);
    throw e;
  }
}

export async function setup(opts: SetupOptions): Promise<void> {
  const profile = currentProfile();
  let existing: Partial<StoredConfig> | null = null;
  try {
    existing = profileOf(readConfigFile(), profile);
  } catch {
    existing = null; // a broken file is about to be replaced
  }
  const interactive = isInteractive();
  const envUrl = profile === null ? process.env.SUBPOOL_URL : undefined;

  let url: string;
  if (opts.url !== undefined) url = normalizeUrl(opts.url);
  else if (interactive) {
    url = normalizeUrl(
      await ask({
        message: profile ? `Gateway URL (profile ${profile})` : "Gateway URL",
        // A default, not pre-filled text: a pasted URL must not be appended to it.
        placeholder: existing?.url ?? envUrl ?? "http://localhost:8787",
        defaultValue: existing?.url ?? envUrl ?? "http://localhost:8787",
        validate: validUrl,
      }),
    );
  } else if (existing?.url) url = normalizeUrl(existing.url);
  else throw new CliError("no gateway URL given", "pass --url <url> (e.g. --url http://localhost:8787)");

  let key: string;
  if (opts.key === "-") {
    const line = await readLine();
    if (!line?.trim()) throw new CliError("--key - read no key from stdin", `pipe the key in: echo "$KEY" | ${subpool()} setup --url … --key -`);
    key = line.trim();
  } else if (opts.key !== undefined) key = opts.key.trim();
  else if (interactive) {
    const keep = existing?.key;
    key = await ask({
      message: keep ? "Gateway key (Enter keeps the saved one)" : "Gateway key (sp_…, from your admin)",
      secret: true,
      ...(keep ? { defaultValue: keep } : {}),
      validate: (v) => (v ? undefined : "paste the key your admin gave you"),
    });
  } else if (existing?.key) key = existing.key;
  else throw new CliError("no gateway key given", "pass --key <key>, or --key - to read it from stdin");
  if (!key) throw new CliError("the gateway key is empty", "pass the key your admin gave you");

  const me = await verify(url, key);
  const path = saveConfig({ url, key }, configPath(), profile);
  const p = profileFlag(profile);
  if (opts.json) {
    printJson({ url, path, profile, user: me });
  } else {
    out(`Saved ${url} and your key to ${path}${profile ? ` as the profile "${profile}"` : ""} (readable by you only).`);
    out(me.id === null ? `Signed in with the bootstrap ADMIN_TOKEN.` : `Signed in as ${paint("bold", me.name)} (${me.role}).`);
    out();
    const next: [string, string][] =
      me.id === null
        ? [
            ["users add <your-name> --admin", "an account-holding user for yourself"],
            ["users add <teammate>", "one per teammate; each gets a key, shown once"],
          ]
        : [
            [`login ${PROVIDERS.join(" | ")}`, "sign in to a subscription"],
            ["import", `or bring in logins ${CREDENTIAL_TOOLS.join(", ")} already have`],
            ["env claude-code", "then point your tools at the gateway"],
          ];
    out(me.id === null ? "This token manages users only; it owns no accounts. Next:" : "Next:");
    const lines = next.map(([args, why]) => [subpool(`${p ? `${p.trim()} ` : ""}${args}`), why] as const);
    const width = Math.max(...lines.map(([c]) => c.length));
    for (const [c, why] of lines) out(`  ${c.padEnd(width)}   # ${why}`);
    if (me.id === null && !profile) out(`Tip: keep this token as a profile and your own key as the default: \`${subpool("setup --profile admin")}\`.`);
    // Run through npx or from the one file, the CLI is no command of its own: say how to make it one.
    const install = installLine(url);
    if (install) {
      out();
      out(`Run it as shown above, or install it once as the command \`subpool\`: ${install}`);
    }
  }
  if (!profile) {
    for (const v of ["SUBPOOL_URL", "SUBPOOL_KEY"]) {
      if (process.env[v]?.trim()) warn(`${v} is set in your environment and overrides the saved ${v === "SUBPOOL_URL" ? "URL" : "key"}`);
    }
  }
}

export async function whoami(opts: { json?: boolean }): Promise<void> {
  const cfg = loadConfig();
  const me = await Api.from(cfg).get<Me>("/api/me");
  const from = (s: "env" | "file") => (s === "env" ? "environment" : cfg.path);
  if (opts.json) {
    printJson({ url: cfg.url, user: me, config: cfg.path, profile: cfg.profile, urlFrom: cfg.urlFrom, keyFrom: cfg.keyFrom });
    return;
  }
  out(`${me.id === null ? "the bootstrap ADMIN_TOKEN" : `${me.name} (${me.role}, ${me.id})`} at ${cfg.url}${cfg.profile ? ` (profile ${cfg.profile})` : ""}`);
  say(`url from ${from(cfg.urlFrom)}; key from ${cfg.keyFrom === "env" ? "SUBPOOL_KEY" : cfg.path}`);
}

export async function profiles(opts: { json?: boolean }): Promise<void> {
  const path = configPath();
  const file: ConfigFile | null = readConfigFile(path);
  const current = currentProfile();
  const rows: { name: string; url: string | null; current: boolean }[] = [];
  if (file && (file.url || file.key)) rows.push({ name: "default", url: file.url ?? null, current: current === null });
  for (const [name, p] of Object.entries(file?.profiles ?? {})) rows.push({ name, url: p.url ?? null, current: current === name });
  if (opts.json) {
    printJson({ config: path, profiles: rows });
    return;
  }
  if (rows.length === 0) {
    out(`No profiles saved in ${path}.`);
    say(`Save one: \`${subpool()} setup\` (the default), \`${subpool()} setup --profile admin\` (another).`);
    return;
  }
  await printTable(["profile", "url", ""], rows.map((r) => [r.name, r.url ?? "-", r.current ? "(in use)" : ""]));
  say(`Saved in ${path}. Pick one with --profile NAME or SUBPOOL_PROFILE=NAME.`);
}
