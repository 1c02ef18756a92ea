/**
 * `subpool env <tool>`: exactly what to set so a tool uses the gateway. The texts come from
 * src/connect.ts (the dashboard shows the same). stdout holds only what to paste, so
 * `eval "$(subpool env claude-code)"`, `subpool env opencode > opencode.json` and
 * `subpool env codex >> ~/.codex/config.toml` work; shell and TOML output carry their notes as #
 * comments, JSON output has its notes on stderr. The lines refer to $SUBPOOL_KEY when it is exported;
 * when it is not, lines that go to a program (`eval "$(…)"`, a pipe, a file) carry the key `subpool
 * setup` saved, and a terminal gets the $SUBPOOL_KEY lines with a note (--show-key prints the key
 * anywhere). With no key at all it refuses to feed `eval` lines that would set an empty key.
 * `subpool env codex --write` edits Codex's config.toml in place. Run outside a git repository,
 * `env codex` also says what Codex does there (it asks, and `codex exec` refuses without
 * --skip-git-repo-check), so a first try in a scratch directory does not look like a gateway fault.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { connectParts, connectText, findTool, KEY_VAR, keyVarLine, TOOLS, type Shell } from "../../src/connect.js";
import { useGatewayInCodexConfig } from "../codex-config.js";
import { loadConfig, loadUrl } from "../config.js";
import { CliError } from "../errors.js";
import { subpool } from "../invocation.js";
import { PROVIDER_CATALOGUE } from "../types.js";
import { out, printJson, printTable, say, warn } from "../ui.js";

interface EnvOptions {
  showKey?: boolean;
  shell: Shell;
  url?: string;
  json?: boolean;
  write?: boolean;
}

/** Other names people type: a provider's id names the tool that speaks its API as is (the catalogue's sdkTool). */
const TOOL_ALIASES: Record<string, string> = {
  claude: "claude-code",
  "codex-cli": "codex",
  ...Object.fromEntries(PROVIDER_CATALOGUE.map((p) => [p.id, p.sdkTool])),
};

const keyIsExported = (): boolean => Boolean(process.env[KEY_VAR]?.trim());

/** The key `subpool setup` saved (for the chosen profile), or null when there is none to use. */
function savedKey(): { key: string } | null {
  try {
    const cfg = loadConfig();
    return cfg.keyFrom === "file" ? { key: cfg.key } : null;
  } catch {
    return null;
  }
}

/** Whether `dir` or a directory above it holds a .git (a repository or a worktree). */
function inGitRepository(dir = process.cwd()): boolean {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, ".git"))) return true;
    if (dirname(d) === d) return false;
  }
}

/** Codex works in git repositories: elsewhere it asks first, and `codex exec` refuses. */
function codexGitHint(): void {
  if (inGitRepository()) return;
  say("# This directory is not in a git repository: Codex asks before it works here, and `codex exec` refuses unless you pass --skip-git-repo-check (codex exec --skip-git-repo-check \"…\"). In your project's repository it needs neither.");
}

function codexConfigPath(): string {
  const home = process.env.CODEX_HOME?.trim() || join(homedir(), ".codex");
  return join(home, "config.toml");
}

function writeCodex(url: string, shell: Shell, json: boolean): void {
  const path = codexConfigPath();
  let before = "";
  let mode = 0o644;
  if (existsSync(path)) {
    try {
      before = readFileSync(path, "utf8");
      mode = statSync(path).mode & 0o777;
    } catch (e) {
      throw new CliError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  let edit;
  try {
    edit = useGatewayInCodexConfig(before, url, KEY_VAR);
  } catch (e) {
    throw new CliError(`${path} was left as it was: ${(e as Error).message}`, `or append the snippet of \`${subpool()} env codex\` and run \`codex --profile subpool\``);
  }
  const changed = edit.text !== before;
  let backup: string | null = null;
  if (changed) {
    try {
      mkdirSync(dirname(path), { recursive: true });
      if (before !== "") {
        backup = `${path}.bak`;
        copyFileSync(path, backup);
      }
      const tmp = `${path}.${process.pid}.tmp`;
      writeFileSync(tmp, edit.text, { mode });
      renameSync(tmp, path);
    } catch (e) {
      throw new CliError(`cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  if (json) {
    printJson({ tool: "codex", url, path, changed, backup, changes: edit.changes, warnings: edit.warnings });
    return;
  }
  out(changed ? `Updated ${path}${backup ? ` (the previous version is in ${backup})` : ""}:` : `${path} already uses the gateway:`);
  for (const c of edit.changes) out(`  ${c}`);
  for (const w of edit.warnings) warn(w);
  say(`Codex reads your gateway key from ${KEY_VAR} when it starts${keyIsExported() ? " (set in this shell)" : `: ${keyVarLine(shell, null)}`}`);
  codexGitHint();
}

export async function env(rawTool: string, opts: EnvOptions): Promise<void> {
  const name = TOOL_ALIASES[rawTool.toLowerCase()] ?? rawTool.toLowerCase();
  if (name === "list") {
    if (opts.json) printJson({ tools: TOOLS.map((t) => ({ tool: t.id, title: t.summary })) });
    else {
      await printTable(["tool", "for"], TOOLS.map((t) => [t.id, t.summary]));
      say(`Run \`${subpool()} env <tool>\` for what to set.`);
    }
    return;
  }
  const tool = findTool(name);
  if (!tool) throw new CliError(`unknown tool "${rawTool}"`, `use one of: ${TOOLS.map((t) => t.id).join(", ")} (\`${subpool()} env list\`)`);
  if (opts.write && tool.id !== "codex") throw new CliError(`--write is for codex only (it edits ~/.codex/config.toml)`, `for ${tool.id}, redirect the output: ${subpool()} env ${tool.id} > file`, 2);
  const url = opts.url ?? loadUrl();
  if (opts.write) return writeCodex(url, opts.shell, opts.json === true);

  // The key in the lines: with --show-key the saved one; else $SUBPOOL_KEY, which the lines refer to
  // (guarded). When it is not exported and the lines go to a program (eval "$(…)", a pipe, a file),
  // they carry the saved key instead: `eval "$(subpool env claude-code)"` works right after setup.
  let key = opts.showKey ? loadConfig().key : null;
  let keyFromConfig = false;
  if (!key && !opts.json && tool.kind === "env" && !keyIsExported()) {
    const saved = savedKey();
    if (saved && !process.stdout.isTTY) {
      key = saved.key;
      keyFromConfig = true;
    } else {
      const what = connectParts(tool.id, { baseUrl: url, key: null, shell: opts.shell })
        .env.filter((v) => v.isKey)
        .map((v) => v.name)
        .join(" and ");
      const problem = `${KEY_VAR} is not set in this shell, so these lines would set an empty ${what}`;
      const evalLine = `eval "$(${subpool(`env ${tool.id}`)})"`;
      if (!saved) {
        const fix = `export ${KEY_VAR}=<your gateway key> first, or save your key with \`${subpool("setup")}\``;
        if (!process.stdout.isTTY) throw new CliError(`${problem}, and no key is saved`, fix);
        warn(`${problem}: ${fix}`);
      } else {
        say(`# ${KEY_VAR} is not set in this shell: ${evalLine} sets these with your saved key (--show-key prints it here).`);
      }
    }
  }
  const parts = connectParts(tool.id, { baseUrl: url, key, shell: opts.shell });

  if (opts.json) {
    printJson({
      tool: tool.id,
      url,
      env: Object.fromEntries(parts.env.map((v) => [v.name, v.value])),
      ...(parts.file ? { file: { where: parts.file.where, format: parts.file.format, content: parts.file.content } } : {}),
      notes: parts.notes,
    });
    return;
  }
  if (keyFromConfig) say(`# ${KEY_VAR} is not set in this shell: these lines carry your saved gateway key.`);

  if (parts.file?.format === "json") {
    say(`# ${parts.name}: put this in ${parts.file.where}`);
    out(parts.file.content);
    for (const n of parts.notes) say(`# ${n}`);
    return;
  }
  process.stdout.write(connectText(tool.id, { baseUrl: url, key, shell: opts.shell }));
  if (tool.kind === "file" && !key && !keyIsExported()) say(`# ${KEY_VAR} is not set in this shell yet: ${keyVarLine(opts.shell, null)}`);
  if (tool.id === "codex") codexGitHint();
}
