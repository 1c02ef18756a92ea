/**
 * `subpool env <tool>`: exactly what to set so a tool uses the gateway. stdout holds only what to
 * paste (shell lines, or the config file snippet), so `eval "$(subpool env claude-code)"` and
 * `subpool env opencode > opencode.json` work; explanations go to stderr. The key itself is printed
 * only with --show-key; otherwise the output refers to $SUBPOOL_KEY.
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { loadConfig, loadUrl, normalizeUrl } from "../config.js";
import { CliError } from "../errors.js";
import { out, printJson, printTable, say } from "../ui.js";

type Shell = "sh" | "fish" | "powershell";
const SHELLS: readonly Shell[] = ["sh", "fish", "powershell"];
const KEY_VAR = "SUBPOOL_KEY";

/** A value: a literal, or the gateway key (the real one with --show-key, else $SUBPOOL_KEY). */
type Value = string | { key: true };

interface Setup {
  tool: string;
  title: string;
  /** Environment variables to set. */
  env: [string, Value][];
  /** A config file snippet, when the tool is configured by file. */
  file?: { where: string; format: "json" | "toml"; render(key: string | null): string };
  /** Whether the tool reads SUBPOOL_KEY itself (from a config file), so it must be exported. */
  needsKeyVar: boolean;
  notes: string[];
}

const TOOLS: Record<string, { title: string; build(url: string): Setup }> = {
  "claude-code": {
    title: "Claude Code (Anthropic API)",
    build: (url) => ({
      tool: "claude-code",
      title: "Claude Code",
      env: [
        ["ANTHROPIC_BASE_URL", `${url}/anthropic`],
        ["ANTHROPIC_API_KEY", { key: true }],
      ],
      needsKeyVar: false,
      notes: [
        "Set these in the shell that starts `claude` (or in your shell profile).",
        "Claude Code asks once whether to use this API key: answer yes. Requests then go to your anthropic accounts in the gateway.",
      ],
    }),
  },
  opencode: {
    title: "opencode (anthropic and openai providers)",
    build: (url) => ({
      tool: "opencode",
      title: "opencode",
      env: [],
      file: {
        where: "opencode.json in your project, or merged into ~/.config/opencode/opencode.json",
        format: "json",
        render: (key) => {
          const apiKey = key ?? `{env:${KEY_VAR}}`;
          return JSON.stringify(
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
        },
      },
      needsKeyVar: true,
      notes: ["opencode's anthropic and openai models then go through the gateway; other providers are unchanged."],
    }),
  },
  codex: {
    title: "Codex CLI (OpenAI Responses API)",
    build: (url) => ({
      tool: "codex",
      title: "Codex CLI",
      env: [],
      file: {
        where: "~/.codex/config.toml (the model_provider line goes above the first [table] in the file)",
        format: "toml",
        render: () =>
          [
            `model_provider = "subpool"`,
            ``,
            `[model_providers.subpool]`,
            `name = "subpool"`,
            `base_url = ${JSON.stringify(`${url}/openai/v1`)}`,
            `env_key = "${KEY_VAR}"`,
            `wire_api = "responses"`,
          ].join("\n"),
      },
      needsKeyVar: true,
      notes: ["Codex then uses your openai accounts in the gateway: ChatGPT logins and API keys."],
    }),
  },
  "anthropic-sdk": {
    title: "Anthropic SDKs (TypeScript, Python, …)",
    build: (url) => ({
      tool: "anthropic-sdk",
      title: "the Anthropic SDK",
      env: [
        ["ANTHROPIC_BASE_URL", `${url}/anthropic`],
        ["ANTHROPIC_API_KEY", { key: true }],
      ],
      needsKeyVar: false,
      notes: [
        "The SDKs read these variables. Or in code:",
        `  TypeScript: new Anthropic({ baseURL: "${url}/anthropic", apiKey: process.env.${KEY_VAR} })`,
        `  Python:     Anthropic(base_url="${url}/anthropic", api_key=os.environ["${KEY_VAR}"])`,
      ],
    }),
  },
  "openai-sdk": {
    title: "OpenAI SDKs (TypeScript, Python, …)",
    build: (url) => ({
      tool: "openai-sdk",
      title: "the OpenAI SDK",
      env: [
        ["OPENAI_BASE_URL", `${url}/openai/v1`],
        ["OPENAI_API_KEY", { key: true }],
      ],
      needsKeyVar: false,
      notes: [
        "The SDKs read these variables. Or in code:",
        `  TypeScript: new OpenAI({ baseURL: "${url}/openai/v1", apiKey: process.env.${KEY_VAR} })`,
        `  Python:     OpenAI(base_url="${url}/openai/v1", api_key=os.environ["${KEY_VAR}"])`,
        "ChatGPT logins serve the Responses API (client.responses.create); other endpoints need an OpenAI API key account.",
      ],
    }),
  },
};

const TOOL_ALIASES: Record<string, string> = { claude: "claude-code", anthropic: "anthropic-sdk", openai: "openai-sdk", "codex-cli": "codex" };

function defaultShell(): Shell {
  if (process.platform === "win32") return "powershell";
  return /fish$/.test(process.env.SHELL ?? "") ? "fish" : "sh";
}

const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const dq = (s: string) => `"${s.replace(/["\\$`]/g, (c) => `\\${c}`)}"`;

function assign(shell: Shell, name: string, value: Value, key: string | null): string {
  if (shell === "powershell") {
    const v = typeof value === "string" ? `"${value.replace(/["`$]/g, (c) => `\`${c}`)}"` : key ? `'${key.replace(/'/g, "''")}'` : `$env:${KEY_VAR}`;
    return `$env:${name} = ${v}`;
  }
  const v = typeof value === "string" ? dq(value) : key ? sq(key) : shell === "fish" ? `$${KEY_VAR}` : `"$${KEY_VAR}"`;
  return shell === "fish" ? `set -gx ${name} ${v}` : `export ${name}=${v}`;
}

function howToExportKey(shell: Shell, tool: string): string {
  const line = assign(shell, KEY_VAR, "<your gateway key>", null).replace(`"<your gateway key>"`, "<your gateway key>");
  return `${KEY_VAR} must hold your gateway key first: ${line}   (\`subpool env ${tool} --show-key\` prints it filled in)`;
}

export function registerEnv(program: Command): void {
  program
    .command("env")
    .description("print exactly what to set so a tool uses the gateway: claude-code, opencode, codex, anthropic-sdk, openai-sdk")
    .argument("[tool]", `${Object.keys(TOOLS).join(" | ")} | list`, "list")
    .option("--show-key", "print your real gateway key instead of $SUBPOOL_KEY")
    .addOption(new Option("--shell <shell>", "syntax for the variables").choices(SHELLS).default(defaultShell(), "from $SHELL / the platform"))
    .option("--url <url>", "the gateway URL to use (default: the configured one)", (v) => {
      try {
        return normalizeUrl(v);
      } catch (e) {
        throw new InvalidArgumentError((e as Error).message);
      }
    })
    .option("--json", "print the settings as JSON")
    .addHelpText("after", '\nExamples:\n  eval "$(subpool env claude-code)"\n  subpool env opencode > opencode.json\n  subpool env codex >> ~/.codex/config.toml')
    .action((rawTool: string, opts: { showKey?: boolean; shell: Shell; url?: string; json?: boolean }) => {
      const name = TOOL_ALIASES[rawTool] ?? rawTool;
      if (name === "list") {
        if (opts.json) printJson({ tools: Object.entries(TOOLS).map(([tool, t]) => ({ tool, title: t.title })) });
        else {
          printTable(["tool", "for"], Object.entries(TOOLS).map(([tool, t]) => [tool, t.title]));
          say("Run `subpool env <tool>` for what to set.");
        }
        return;
      }
      const spec = TOOLS[name];
      if (!spec) throw new CliError(`unknown tool "${rawTool}"`, `use one of: ${Object.keys(TOOLS).join(", ")} (\`subpool env list\`)`);
      const url = opts.url ?? loadUrl();
      const key = opts.showKey ? loadConfig().key : null;
      const s = spec.build(url);

      if (opts.json) {
        const envOut = Object.fromEntries(s.env.map(([n, v]) => [n, typeof v === "string" ? v : (key ?? `$${KEY_VAR}`)]));
        printJson({
          tool: s.tool,
          url,
          env: s.needsKeyVar ? { [KEY_VAR]: key ?? `$${KEY_VAR}`, ...envOut } : envOut,
          ...(s.file ? { file: { where: s.file.where, format: s.file.format, content: s.file.render(key) } } : {}),
          notes: s.notes,
        });
        return;
      }

      const shell = opts.shell;
      const comment = (t: string) => say(`# ${t}`);
      if (s.file) {
        comment(`${s.title}: put this in ${s.file.where}`);
        out(s.file.render(s.file.format === "json" ? key : null));
        if (s.needsKeyVar && !(s.file.format === "json" && key)) {
          comment(key ? `and set ${KEY_VAR} in the shell that starts it:` : howToExportKey(shell, s.tool));
          if (key) say(assign(shell, KEY_VAR, { key: true }, key));
        }
        if (s.file.format === "json" && key) comment("this snippet holds your key: keep the file out of git");
      } else {
        comment(`${s.title}: set these`);
        for (const [n, v] of s.env) out(assign(shell, n, v, key));
        if (!key) comment(howToExportKey(shell, s.tool));
      }
      for (const n of s.notes) comment(n);
    });
}
