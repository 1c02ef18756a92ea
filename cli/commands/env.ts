/**
 * `subpool env <tool>`: exactly what to set so a tool uses the gateway. The texts come from
 * src/connect.ts (the dashboard shows the same). stdout holds only what to paste, so
 * `eval "$(subpool env claude-code)"`, `subpool env opencode > opencode.json` and
 * `subpool env codex >> ~/.codex/config.toml` work; shell and TOML output carry their notes as #
 * comments, JSON output has its notes on stderr. The key itself is printed only with --show-key;
 * otherwise the lines refer to $SUBPOOL_KEY, and the command refuses to feed `eval` lines that
 * would set an empty key. `subpool env codex --write` edits Codex's config.toml in place.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { connectParts, connectText, findTool, KEY_VAR, keyVarLine, TOOLS, type Shell, type ToolId } from "../../src/connect.js";
import { useGatewayInCodexConfig } from "../codex-config.js";
import { loadConfig, loadUrl } from "../config.js";
import { CliError } from "../errors.js";
import { out, printJson, printTable, say, warn } from "../ui.js";

interface EnvOptions {
  showKey?: boolean;
  shell: Shell;
  url?: string;
  json?: boolean;
  write?: boolean;
}

/** Other names people type. */
const TOOL_ALIASES: Record<string, ToolId> = {
  claude: "claude-code",
  anthropic: "anthropic-sdk",
  openai: "openai-sdk",
  "codex-cli": "codex",
  "github-copilot": "copilot",
};

const keyIsExported = (): boolean => Boolean(process.env[KEY_VAR]?.trim());

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
    throw new CliError(`${path} was left as it was: ${(e as Error).message}`, "or append the snippet of `subpool env codex` and run `codex --profile subpool`");
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
}

export async function env(rawTool: string, opts: EnvOptions): Promise<void> {
  const name = TOOL_ALIASES[rawTool.toLowerCase()] ?? rawTool.toLowerCase();
  if (name === "list") {
    if (opts.json) printJson({ tools: TOOLS.map((t) => ({ tool: t.id, title: t.summary })) });
    else {
      await printTable(["tool", "for"], TOOLS.map((t) => [t.id, t.summary]));
      say("Run `subpool env <tool>` for what to set.");
    }
    return;
  }
  const tool = findTool(name);
  if (!tool) throw new CliError(`unknown tool "${rawTool}"`, `use one of: ${TOOLS.map((t) => t.id).join(", ")} (\`subpool env list\`)`);
  if (opts.write && tool.id !== "codex") throw new CliError(`--write is for codex only (it edits ~/.codex/config.toml)`, `for ${tool.id}, redirect the output: subpool env ${tool.id} > file`, 2);
  const url = opts.url ?? loadUrl();
  if (opts.write) return writeCodex(url, opts.shell, opts.json === true);

  const key = opts.showKey ? loadConfig().key : null;
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

  if (tool.kind === "env" && !key && !keyIsExported()) {
    const what = parts.env.filter((v) => v.isKey).map((v) => v.name).join(" and ");
    const problem = `${KEY_VAR} is not set in this shell, so these lines would set an empty ${what}`;
    if (!process.stdout.isTTY) {
      throw new CliError(problem, `export ${KEY_VAR}=<your gateway key> first, or put your saved key into the lines: eval "$(subpool env ${tool.id} --show-key)"`);
    }
    warn(`${problem}: export it first, or use --show-key`);
  }

  if (parts.file?.format === "json") {
    say(`# ${parts.name}: put this in ${parts.file.where}`);
    out(parts.file.content);
    for (const n of parts.notes) say(`# ${n}`);
    return;
  }
  process.stdout.write(connectText(tool.id, { baseUrl: url, key, shell: opts.shell }));
  if (tool.kind === "file" && !key && !keyIsExported()) say(`# ${KEY_VAR} is not set in this shell yet: ${keyVarLine(opts.shell, null)}`);
}
