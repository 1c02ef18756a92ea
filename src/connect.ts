/**
 * "Connect your tools": what a person sets so that a tool sends its requests through the gateway.
 * One definition for every place that shows it: `subpool env <tool>` (the CLI compiles this file
 * in, as it does src/wire.ts) and the dashboard. Pure functions of (base URL, key or placeholder,
 * shell) -> text; no imports, no I/O, nothing of the Worker.
 *
 * Stable exports (the dashboard and the CLI rely on them): TOOLS, SHELLS, KEY_VAR, KEY_PLACEHOLDER,
 * findTool(), connectParts(), connectText(), setupCommand().
 *
 * Facts the texts rest on (docs/ARCHITECTURE.md, "HTTP API"): the gateway takes its key as
 * `x-api-key` or `Authorization: Bearer`; the proxies are `/anthropic/*` (the Anthropic API as is),
 * `/openai/*` (`/openai/v1/...`, ChatGPT logins serve `/openai/v1/responses`) and `/copilot/*`
 * (GitHub Copilot's API, which expects the client's own `Editor-Version` and
 * `Copilot-Integration-Id` headers: the gateway passes them through and adds none).
 */

export type ToolId = "claude-code" | "opencode" | "codex" | "anthropic-sdk" | "openai-sdk" | "copilot";

export interface Tool {
  id: ToolId;
  /** A short display name. */
  name: string;
  /** One line: what it is and which of the member's accounts it uses. */
  summary: string;
  /** "env": shell variables; "file": a config file snippet. */
  kind: "env" | "file";
}

export const TOOLS: readonly Tool[] = [
  { id: "claude-code", name: "Claude Code", summary: "Claude Code (Anthropic API): your anthropic accounts", kind: "env" },
  { id: "opencode", name: "opencode", summary: "opencode (its anthropic and openai providers)", kind: "file" },
  { id: "codex", name: "Codex CLI", summary: "Codex CLI (OpenAI Responses API): ChatGPT logins and OpenAI API keys", kind: "file" },
  { id: "anthropic-sdk", name: "Anthropic SDK", summary: "the Anthropic SDKs (TypeScript, Python, ...)", kind: "env" },
  { id: "openai-sdk", name: "OpenAI SDK", summary: "the OpenAI SDKs (TypeScript, Python, ...)", kind: "env" },
  { id: "copilot", name: "GitHub Copilot API", summary: "OpenAI-compatible clients that speak GitHub Copilot's API: your Copilot accounts", kind: "env" },
];

export type Shell = "sh" | "bash" | "zsh" | "fish" | "powershell";
export const SHELLS: readonly Shell[] = ["sh", "bash", "zsh", "fish", "powershell"];

/** The variable that holds the gateway key when the text does not carry the key itself. */
export const KEY_VAR = "SUBPOOL_KEY";
/** What stands for the key where no variable can (e.g. a line to type). */
export const KEY_PLACEHOLDER = "<your gateway key>";

/**
 * The one command a new member runs with only Node and the gateway's address: the CLI the gateway
 * serves sets itself up (it asks for the key). `subpool users add` prints it, the dashboard's Admin
 * view shows it with a new key, and GET /cli leads with it.
 */
export function setupCommand(baseUrl: string): string {
  return `npx ${baseUrl}/cli/subpool-cli.tgz setup --url ${baseUrl}`;
}

export interface ConnectOptions {
  /** The gateway's address without a trailing slash, e.g. "https://subpool.example.workers.dev". */
  baseUrl: string;
  /** The gateway key to write into the text; null or absent: the text refers to $SUBPOOL_KEY. */
  key?: string | null;
  /** Syntax of shell lines; default "sh" (bash and zsh read the same lines). */
  shell?: Shell;
}

export interface EnvVar {
  name: string;
  /** The value as the tool sees it: the key itself, or "$SUBPOOL_KEY" when no key was given. */
  value: string;
  /** True when the value is the gateway key. */
  isKey: boolean;
}

export interface ConnectParts {
  tool: ToolId;
  name: string;
  baseUrl: string;
  /** Environment variables to set (env tools; file tools may need KEY_VAR set where they run). */
  env: EnvVar[];
  /** Shell lines that set `env`, in the chosen shell's syntax ("" when there is nothing to set). */
  shellLines: string;
  /** A config file snippet, for tools configured by file. */
  file?: {
    /** Where it goes, in words. */
    where: string;
    /** The usual path, with ~ for the home directory. */
    path: string;
    format: "json" | "toml";
    content: string;
  };
  /** Whether the tool reads $SUBPOOL_KEY itself when it runs (so it must be exported there). */
  readsKeyVar: boolean;
  /** Explanations, one sentence or command each, in the order to read them. */
  notes: string[];
}

/** The tool with this id; undefined for anything else. */
export function findTool(id: string): Tool | undefined {
  return TOOLS.find((t) => t.id === id);
}

const trimUrl = (u: string): string => u.replace(/\/+$/, "");

// ---- shell syntax ----------------------------------------------------------------------------------

const sq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
const dq = (s: string): string => `"${s.replace(/["\\$`]/g, (c) => `\\${c}`)}"`;
const psq = (s: string): string => `'${s.replace(/'/g, "''")}'`;
/** fish: inside single quotes only \\ and \' are escapes. */
const fsq = (s: string): string => `'${s.replace(/[\\']/g, (c) => `\\${c}`)}'`;

/** `export NAME=value` in the shell's syntax. A key-valued variable without a key refers to $SUBPOOL_KEY. */
export function assignLine(shell: Shell, v: EnvVar, key: string | null): string {
  if (shell === "powershell") {
    const val = v.isKey ? (key ? psq(key) : `$env:${KEY_VAR}`) : psq(v.value);
    return `$env:${v.name} = ${val}`;
  }
  if (shell === "fish") {
    const val = v.isKey ? (key ? fsq(key) : `$${KEY_VAR}`) : dq(v.value);
    return `set -gx ${v.name} ${val}`;
  }
  // sh, bash, zsh. Without a key, an unset or empty SUBPOOL_KEY stops the line with a message
  // instead of silently setting an empty key.
  const val = v.isKey ? (key ? sq(key) : `"\${${KEY_VAR}:?set ${KEY_VAR} to your gateway key first}"`) : dq(v.value);
  return `export ${v.name}=${val}`;
}

/** The line that puts the key in $SUBPOOL_KEY, with the placeholder (or the key) as its value. */
export function keyVarLine(shell: Shell, key: string | null): string {
  if (key) return assignLine(shell, { name: KEY_VAR, value: key, isKey: true }, key);
  if (shell === "powershell") return `$env:${KEY_VAR} = '${KEY_PLACEHOLDER}'`;
  if (shell === "fish") return `set -gx ${KEY_VAR} '${KEY_PLACEHOLDER}'`;
  return `export ${KEY_VAR}='${KEY_PLACEHOLDER}'`;
}

const comment = (lines: string[]): string[] => lines.map((l) => (l ? `# ${l}` : "#"));

// ---- the tools ---------------------------------------------------------------------------------------

function codexToml(url: string): string {
  return [
    `[model_providers.subpool]`,
    `name = "subpool"`,
    `base_url = ${JSON.stringify(`${url}/openai/v1`)}`,
    `env_key = "${KEY_VAR}"`,
    `wire_api = "responses"`,
    ``,
    `[profiles.subpool]`,
    `model_provider = "subpool"`,
  ].join("\n");
}

/** The settings for `tool`: variables, file snippet and notes, as data. */
export function connectParts(tool: ToolId, opts: ConnectOptions): ConnectParts {
  const url = trimUrl(opts.baseUrl);
  const key = opts.key ? opts.key : null;
  const shell = opts.shell ?? "sh";
  const keyValue = key ?? `$${KEY_VAR}`;
  const envVar = (name: string, value: string | null): EnvVar => (value === null ? { name, value: keyValue, isKey: true } : { name, value, isKey: false });
  const meta = TOOLS.find((t) => t.id === tool);
  if (!meta) throw new Error(`unknown tool: ${String(tool).slice(0, 40)}`);
  const base = { tool, name: meta.name, baseUrl: url };
  const lines = (env: EnvVar[]) => env.map((v) => assignLine(shell, v, key)).join("\n");
  const exportKey = keyVarLine(shell, null);

  switch (tool) {
    case "claude-code": {
      const env = [envVar("ANTHROPIC_BASE_URL", `${url}/anthropic`), envVar("ANTHROPIC_API_KEY", null)];
      return {
        ...base,
        env,
        shellLines: lines(env),
        readsKeyVar: false,
        notes: [
          "Set these in the shell that starts `claude` (or in your shell profile).",
          'First run: Claude Code asks "Do you want to use this API key?" and preselects No: choose Yes (answering No leaves it "Not logged in").',
          "Requests then go to your anthropic accounts in the gateway.",
        ],
      };
    }
    case "anthropic-sdk": {
      const env = [envVar("ANTHROPIC_BASE_URL", `${url}/anthropic`), envVar("ANTHROPIC_API_KEY", null)];
      return {
        ...base,
        env,
        shellLines: lines(env),
        readsKeyVar: false,
        notes: [
          "The SDKs read these variables. Or in code:",
          `  TypeScript: new Anthropic({ baseURL: "${url}/anthropic", apiKey: process.env.${KEY_VAR} })`,
          `  Python:     Anthropic(base_url="${url}/anthropic", api_key=os.environ["${KEY_VAR}"])`,
        ],
      };
    }
    case "openai-sdk": {
      const env = [envVar("OPENAI_BASE_URL", `${url}/openai/v1`), envVar("OPENAI_API_KEY", null)];
      return {
        ...base,
        env,
        shellLines: lines(env),
        readsKeyVar: false,
        notes: [
          "The SDKs read these variables. Or in code:",
          `  TypeScript: new OpenAI({ baseURL: "${url}/openai/v1", apiKey: process.env.${KEY_VAR} })`,
          `  Python:     OpenAI(base_url="${url}/openai/v1", api_key=os.environ["${KEY_VAR}"])`,
          "ChatGPT logins serve the Responses API (client.responses.create); other endpoints need an OpenAI API key account.",
        ],
      };
    }
    case "copilot": {
      const env = [envVar("OPENAI_BASE_URL", `${url}/copilot`), envVar("OPENAI_API_KEY", null)];
      return {
        ...base,
        env,
        shellLines: lines(env),
        readsKeyVar: false,
        notes: [
          `GitHub Copilot's API is OpenAI-compatible: ${url}/copilot/chat/completions, ${url}/copilot/models.`,
          "Any OpenAI-compatible client works with this base URL and your gateway key; subpool swaps in a Copilot token from your Copilot accounts.",
          "Copilot also wants the client to name itself: Editor-Version (e.g. my-tool/1.0) and Copilot-Integration-Id headers. Without them it answers 400 \"missing Editor-Version header for IDE auth\".",
          "subpool passes those headers through as the client sent them and adds none: set them in your client (OpenAI SDK: defaultHeaders).",
          `Try it: curl -s ${url}/copilot/models -H "authorization: Bearer $${KEY_VAR}" -H "editor-version: my-tool/1.0"`,
          "These are the OpenAI SDK's variables: where the same shell also uses `subpool env openai-sdk`, set them per command instead.",
        ],
      };
    }
    case "opencode": {
      const apiKey = key ?? `{env:${KEY_VAR}}`;
      const content = JSON.stringify(
        {
          $schema: "https://opencode.ai/config.json",
          provider: {
            anthropic: { options: { baseURL: `${url}/anthropic/v1`, apiKey } },
            openai: { options: { baseURL: `${url}/openai/v1`, apiKey } },
          },
        },
        null,
        2,
      );
      return {
        ...base,
        env: key ? [] : [{ name: KEY_VAR, value: KEY_PLACEHOLDER, isKey: true }],
        shellLines: key ? "" : exportKey,
        file: { where: "opencode.json in your project, or merged into ~/.config/opencode/opencode.json", path: "opencode.json", format: "json", content },
        readsKeyVar: !key,
        notes: [
          ...(key ? ["This file holds your gateway key: keep it out of git."] : [`opencode reads the key from ${KEY_VAR} when it starts: ${exportKey}`]),
          "opencode's anthropic and openai models then go through the gateway; its other providers are unchanged.",
        ],
      };
    }
    case "codex": {
      return {
        ...base,
        env: [{ name: KEY_VAR, value: key ?? KEY_PLACEHOLDER, isKey: true }],
        shellLines: keyVarLine(shell, key),
        file: { where: "~/.codex/config.toml (or $CODEX_HOME/config.toml)", path: "~/.codex/config.toml", format: "toml", content: codexToml(url) },
        readsKeyVar: true,
        notes: [
          "Appended to ~/.codex/config.toml these two tables add a provider and a profile: `codex --profile subpool` uses the gateway.",
          'For every run: model_provider = "subpool" as a top-level key, ABOVE the first [table] of the file (TOML puts a key after a [table] line inside that table).',
          "`subpool env codex --write` makes both changes in ~/.codex/config.toml for you.",
          `Codex reads the key from ${KEY_VAR}: ${key ? "export it in the shell that starts codex" : keyVarLine(shell, null)}`,
          "Codex then uses your openai accounts in the gateway: ChatGPT logins and API keys.",
        ],
      };
    }
  }
}

/**
 * The text to paste for `tool`: for env tools, shell lines with the notes as # comments; for Codex,
 * the TOML snippet with its notes as # comments (appendable to config.toml); for opencode, the JSON
 * file alone (JSON has no comments: show `connectParts().notes` beside it).
 */
export function connectText(tool: ToolId, opts: ConnectOptions): string {
  const p = connectParts(tool, opts);
  if (p.file?.format === "json") return `${p.file.content}\n`;
  if (p.file) return `${[...comment([`${p.name}: ${p.file.where}`, ...p.notes]), p.file.content].join("\n")}\n`;
  const head = comment([`${p.name}: through ${p.baseUrl}`]);
  const keyHint = opts.key ? [] : comment([`${KEY_VAR} must hold your gateway key: ${keyVarLine(opts.shell ?? "sh", null)}`]);
  return `${[...head, ...keyHint, p.shellLines, ...comment(p.notes)].join("\n")}\n`;
}
