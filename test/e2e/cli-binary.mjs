// The `subpool` CLI as the end-to-end tests run it: dist/cli, built by `npm install`/`npm ci`
// (prepare) and rebuilt here when cli/ or what it compiles in from src/ is newer; run on the
// machine's own Node (20 here), not the Node 22 that npm puts first on PATH for wrangler.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import { ROOT } from "./gateway.mjs";

export const CLI = join(ROOT, "dist", "cli", "index.js");

function newestMtime(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** What the CLI's build compiles in from src/ (cli/tsconfig.json "include"). */
const SHARED = ["wire.ts", "connect.ts", join("providers", "catalogue.ts")].map((f) => join(ROOT, "src", f));

export function ensureBuilt() {
  const newest = Math.max(newestMtime(join(ROOT, "cli")), ...SHARED.map((f) => statSync(f).mtimeMs));
  if (existsSync(CLI) && statSync(CLI).mtimeMs >= newest) return;
  execFileSync("npm", ["run", "-s", "build:cli"], { cwd: ROOT, stdio: "inherit" });
}

/** The machine's own node (npm puts node_modules/.bin, with Node 22, first on PATH). */
function systemNode() {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir || dir.includes(`node_modules${"/"}.bin`) || dir.includes("node_modules\\.bin")) continue;
    const p = join(dir, process.platform === "win32" ? "node.exe" : "node");
    if (existsSync(p)) return p;
  }
  return process.execPath;
}
export const NODE = systemNode();
