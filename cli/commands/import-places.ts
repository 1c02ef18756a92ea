/** Where opencode, Claude Code and Codex keep their logins: for `subpool import` and its --help (a light module). */
import { homedir } from "node:os";
import { join } from "node:path";
import { subpool } from "../invocation.js";

export interface Candidate {
  tool: string;
  path: string;
}

const envDir = (name: string): string | undefined => process.env[name]?.trim() || undefined;

/** The usual files, honouring the tools' own env overrides. */
export function usualFiles(): Candidate[] {
  const home = homedir();
  return [
    { tool: "opencode", path: join(envDir("XDG_DATA_HOME") ?? join(home, ".local", "share"), "opencode", "auth.json") },
    { tool: "Claude Code", path: join(envDir("CLAUDE_CONFIG_DIR") ?? join(home, ".claude"), ".credentials.json") },
    { tool: "Codex", path: join(envDir("CODEX_HOME") ?? join(home, ".codex"), "auth.json") },
  ];
}

export const tilde = (p: string): string => {
  const home = homedir();
  return home && p.startsWith(home + (process.platform === "win32" ? "\\" : "/")) ? `~${p.slice(home.length)}` : p;
};

/** The text after `subpool import --help`. */
export function usualPlacesHelp(): string {
  return `
The usual places (looked at when no file is given):
${usualFiles()
  .map((c) => `  ${c.tool.padEnd(12)} ${tilde(c.path)}`)
  .join("\n")}
(XDG_DATA_HOME, CLAUDE_CONFIG_DIR and CODEX_HOME move them.)
On macOS Claude Code keeps its login in the Keychain:
  security find-generic-password -s "Claude Code-credentials" -w | ${subpool("import -")}`;
}
