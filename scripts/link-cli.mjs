#!/usr/bin/env node
// Makes `npx subpool` in this checkout run the built CLI (dist/cli/index.js) directly: a link in
// node_modules/.bin, made after every build (`npm install` runs build:cli through "prepare").
//
// Why not package.json "bin": for a package's own bin, `npx` first loads the whole installed tree
// (npm's Arborist over ~200 packages) before it runs anything; measured here, that made
// `npx subpool --help` take 1-2 s more than running the CLI. With no "bin" and a link in
// node_modules/.bin, npx finds the command there and runs it at once. The CLI for other machines is
// the packed single-file build (`npm run build:cli-bundle`), whose own package.json has the bin.
import { chmodSync, existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const target = join(root, "dist", "cli", "index.js");
const binDir = join(root, "node_modules", ".bin");
if (!existsSync(target)) {
  console.error("link-cli: dist/cli/index.js is missing: run `npm run build:cli` first");
  process.exit(1);
}
mkdirSync(binDir, { recursive: true });
chmodSync(target, 0o755);
if (process.platform === "win32") {
  // What npm itself writes for a bin on Windows: a .cmd and a PowerShell shim.
  writeFileSync(join(binDir, "subpool.cmd"), `@ECHO off\r\nnode "%~dp0\\..\\..\\dist\\cli\\index.js" %*\r\n`);
  writeFileSync(join(binDir, "subpool.ps1"), `#!/usr/bin/env pwsh\n& node "$PSScriptRoot/../../dist/cli/index.js" $args\nexit $LASTEXITCODE\n`);
} else {
  const link = join(binDir, "subpool");
  rmSync(link, { force: true });
  symlinkSync("../../dist/cli/index.js", link);
}
