/**
 * `subpool import [file…]`: uploads the logins other tools already keep (opencode auth.json, Claude
 * Code .credentials.json, Codex auth.json) to POST /api/import. With no file it looks in the usual
 * places, says what it found (names, never values) and asks before anything leaves the machine.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { ApiError } from "../api.js";
import { context } from "../context.js";
import { Cancelled, CliError } from "../errors.js";
import { subpool } from "../invocation.js";
import { confirm, isInteractive, loadClack, readAllStdin } from "../prompts.js";
import { PROVIDER_CATALOGUE, type ImportResult } from "../types.js";
import { out, paint, plural, printJson, printTable, say, warn } from "../ui.js";
import { tilde, usualFiles } from "./import-places.js";

const MAX_BYTES = 1024 * 1024;

interface Loaded {
  label: string;
  text: string;
  /** What the file holds, by name only. */
  summary: string[];
  /** OAuth logins whose refresh tokens are single use (shared with the local tool after upload). */
  singleUse: string[];
}

const obj = (v: unknown): Record<string, unknown> | undefined => (v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);

/** Names what a credential file holds, without reading out any value. The file formats are the catalogue's (src/providers/catalogue.ts). */
export function summarize(data: Record<string, unknown>): { summary: string[]; singleUse: string[] } {
  // A provider's own tool's file (Claude Code's .credentials.json, Codex's auth.json).
  for (const p of PROVIDER_CATALOGUE) {
    for (const f of p.toolFiles) {
      const present = Object.entries(f.entries as Record<string, "api" | "oauth">).filter(([k]) => k in data);
      if (present.length === 0) continue;
      const held = present.filter(([k, type]) => (type === "oauth" ? obj(data[k]) : typeof data[k] === "string" && data[k]));
      return {
        summary: held.map(([, type]) => (type === "oauth" ? `${p.loginSite} login (${p.id}, oauth)` : `${p.name} API key (${p.id}, api)`)),
        singleUse: p.singleUseRefresh && held.some(([, type]) => type === "oauth") ? [f.tool] : [],
      };
    }
  }
  // opencode's auth.json: {"<provider>": {"type": ...}}.
  const summary: string[] = [];
  const singleUse: string[] = [];
  for (const [name, v] of Object.entries(data)) {
    const type = obj(v)?.type;
    if (typeof type !== "string") continue;
    summary.push(`${name} (${type})`);
    if (type === "oauth" && PROVIDER_CATALOGUE.some((p) => p.opencodeKey === name && p.singleUseRefresh)) singleUse.push(`opencode's ${name} login`);
  }
  return { summary, singleUse };
}

function load(label: string, text: string): Loaded {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new CliError(`${label} is not JSON (${(e as Error).message})`, "give the auth.json of opencode or Codex, or the .credentials.json of Claude Code");
  }
  const o = obj(data);
  if (!o) throw new CliError(`${label} is not a JSON object`, "give the auth.json of opencode or Codex, or the .credentials.json of Claude Code");
  const { summary, singleUse } = summarize(o);
  return { label, text, summary: summary.length ? summary : ["nothing subpool recognizes here (the gateway decides)"], singleUse };
}

function readFile(path: string): Loaded {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(code === "ENOENT" ? `${path} does not exist` : `cannot read ${path} (${code ?? (e as Error).message})`);
  }
  if (size > MAX_BYTES) throw new CliError(`${path} is ${size} bytes: too big for a credential file`);
  return load(tilde(path), readFileSync(path, "utf8"));
}

export async function importFiles(files: string[], opts: { yes?: boolean; json?: boolean }): Promise<void> {
  const ctx = context();
  let loaded: Loaded[];
  if (files.length > 0) {
    loaded = [];
    for (const f of files) loaded.push(f === "-" ? load("stdin", await readAllStdin()) : readFile(f));
  } else {
    const found = usualFiles().filter((c) => existsSync(c.path));
    if (found.length === 0) {
      const looked = usualFiles()
        .map((c) => `  ${c.tool}: ${tilde(c.path)}`)
        .join("\n");
      const mac = process.platform === "darwin" ? `\nOn macOS, Claude Code keeps its login in the Keychain: security find-generic-password -s "Claude Code-credentials" -w | ${subpool()} import -` : "";
      throw new CliError(`found no credential files; looked at:\n${looked}`, `give a file: ${subpool()} import <file>${mac}`);
    }
    loaded = found.map((c) => {
      const l = readFile(c.path);
      return { ...l, label: `${c.tool} ${l.label}` };
    });
  }

  say(`To upload to ${ctx.cfg.url}:`);
  for (const l of loaded) say(`  ${paint("bold", l.label, process.stderr)}: ${l.summary.join(", ")}`);
  const shared = loaded.flatMap((l) => l.singleUse);
  if (shared.length) {
    warn(
      `${shared.join(", ")}: the gateway and the tool will then share one login whose refresh tokens work once; whichever refreshes second is signed out. ` +
        `For a separate login use \`${subpool()} login <provider>\` instead, or stop using the tool's own login.`,
    );
  }

  let chosen = loaded;
  const stdinUsed = files.includes("-");
  if (!opts.yes && !stdinUsed) {
    if (loaded.length > 1 && isInteractive()) {
      const clack = await loadClack();
      const picked = await clack.multiselect({
        message: "Upload which files?",
        output: process.stderr,
        options: loaded.map((l, i) => ({ value: i, label: l.label, hint: l.summary.join(", ") })),
        initialValues: loaded.map((_, i) => i),
        required: false,
      });
      if (clack.isCancel(picked)) throw new Cancelled();
      chosen = loaded.filter((_, i) => picked.includes(i));
    } else if (!(await confirm(`Upload ${loaded.length === 1 ? "this file" : `these ${loaded.length} files`} to ${ctx.cfg.url}?`, { action: "uploading credentials" }))) {
      chosen = [];
    }
    if (chosen.length === 0) {
      say("Nothing uploaded.");
      return;
    }
  }

  const results: { file: string; result?: ImportResult; error?: string }[] = [];
  for (const l of chosen) {
    try {
      results.push({ file: l.label, result: await ctx.api.post<ImportResult>("/api/import", l.text) });
    } catch (e) {
      if (!(e instanceof ApiError) || e.status === 401 || e.status === 403 || e.message.includes("does not know")) throw e;
      results.push({ file: l.label, error: e.message });
    }
  }

  if (opts.json) {
    printJson({ results });
  } else {
    const rows: string[][] = [];
    for (const r of results) {
      for (const i of r.result?.imported ?? []) {
        rows.push([r.file, i.entry, i.provider, i.type === "api" ? "api key" : "oauth", i.action, `#${i.account.position} "${i.account.label}"`, i.account.id]);
      }
    }
    if (rows.length) await printTable(["file", "entry", "provider", "type", "action", "account", "id"], rows);
    for (const r of results) {
      for (const x of r.result?.refused ?? []) out(`${r.file}: refused ${x.entry}: ${x.reason}`);
      if (r.error) out(`${r.file}: not imported: ${r.error}`);
    }
    const counts = { created: 0, updated: 0, unchanged: 0 };
    for (const r of results) for (const i of r.result?.imported ?? []) counts[i.action]++;
    out(`${plural(counts.created, "account")} added, ${counts.updated} updated, ${counts.unchanged} already there.`);
  }
  if (results.some((r) => r.error)) process.exitCode = 1;
}
