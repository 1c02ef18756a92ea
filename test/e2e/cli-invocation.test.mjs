// How the CLI names itself in what it suggests (cli/invocation.ts), for each way it can be started,
// on file layouts made here the way npm makes them: npx's cache (<cache>/_npx/<hash>/package.json
// holding the spec as typed), a project's node_modules/.bin link (the checkout's `npx subpool`), a
// command on PATH (npm install -g), and a plain file run with node. No gateway, no network.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT } from "./gateway.mjs";

const BUILT = join(ROOT, "dist", "cli", "invocation.js");

describe("the CLI names itself as it was started", { skip: process.platform === "win32" && "POSIX file layouts" }, () => {
  let dir = "";
  let detect;
  const savedPath = process.env.PATH;
  before(async () => {
    execFileSync("npm", ["run", "-s", "build:cli"], { cwd: ROOT, stdio: "inherit" });
    ({ detectInvocation: detect } = await import(pathToFileURL(BUILT).href));
    dir = mkdtempSync(join(tmpdir(), "subpool-invocation-"));
  });
  after(() => {
    process.env.PATH = savedPath;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A package laid out as npm installs it under `nodeModules`, with its bin linked in .bin. */
  function install(nodeModules) {
    const pkg = join(nodeModules, "subpool-cli");
    mkdirSync(pkg, { recursive: true });
    mkdirSync(join(nodeModules, ".bin"), { recursive: true });
    writeFileSync(join(pkg, "subpool-cli.mjs"), "#!/usr/bin/env node\n");
    symlinkSync(join("..", "subpool-cli", "subpool-cli.mjs"), join(nodeModules, ".bin", "subpool"));
    return join(nodeModules, ".bin", "subpool");
  }

  it("npx <url>: `npx <url>` (the spec npm recorded), and the global install of the same spec", () => {
    const spec = "https://gw.example/cli/subpool-cli.tgz";
    const hash = join(dir, "cache", "_npx", "0123abcd");
    const bin = install(join(hash, "node_modules"));
    writeFileSync(join(hash, "package.json"), JSON.stringify({ dependencies: { "subpool-cli": spec }, _npx: { packages: [spec] } }));
    assert.deepEqual(detect(bin, dir), { command: `npx ${spec}`, how: "npx-package", spec });
  });

  it("npx ./subpool-cli.tgz: the relative spec as typed", () => {
    const hash = join(dir, "cache", "_npx", "4567efab");
    const bin = install(join(hash, "node_modules"));
    writeFileSync(join(hash, "package.json"), JSON.stringify({ dependencies: { "subpool-cli": "file:../../x.tgz" }, _npx: { packages: ["./subpool-cli.tgz"] } }));
    assert.equal(detect(bin, dir).command, "npx ./subpool-cli.tgz");
  });

  it("a project's node_modules/.bin/subpool (npx subpool in the checkout): `npx subpool`", () => {
    const bin = install(join(dir, "project", "node_modules"));
    assert.deepEqual(detect(bin, join(dir, "project")), { command: "npx subpool", how: "npx-project", spec: null });
  });

  it("a `subpool` on PATH that is this file (npm install -g): `subpool`; one that is another file does not count", () => {
    const prefix = join(dir, "global");
    const lib = join(prefix, "lib", "node_modules");
    mkdirSync(join(lib, "subpool-cli"), { recursive: true });
    mkdirSync(join(prefix, "bin"), { recursive: true });
    const file = join(lib, "subpool-cli", "subpool-cli.mjs");
    writeFileSync(file, "#!/usr/bin/env node\n");
    symlinkSync(file, join(prefix, "bin", "subpool"));
    process.env.PATH = `${join(prefix, "bin")}${delimiter}${savedPath}`;
    assert.deepEqual(detect(join(prefix, "bin", "subpool"), dir), { command: "subpool", how: "path", spec: null });
    // A copy elsewhere, run by its path, while the PATH's subpool is another file: not `subpool`.
    const copy = join(dir, "elsewhere", "subpool");
    mkdirSync(join(dir, "elsewhere"));
    copyFileSync(file, copy);
    assert.equal(detect(copy, dir).command, "node elsewhere/subpool");
  });

  it("node subpool-cli.mjs: `node <the file>`, relative to the working directory when under it, else whole", () => {
    const file = join(dir, "dl", "subpool-cli.mjs");
    mkdirSync(join(dir, "dl"));
    writeFileSync(file, "#!/usr/bin/env node\n");
    process.env.PATH = savedPath;
    assert.equal(detect(file, join(dir, "dl")).command, "node subpool-cli.mjs");
    assert.equal(detect(file, join(dir, "cache")).command, `node ${file}`);
    const spaced = join(dir, "my dir", "subpool-cli.mjs");
    mkdirSync(join(dir, "my dir"));
    writeFileSync(spaced, "");
    assert.equal(detect(spaced, ROOT).command, `node '${spaced}'`);
  });
});
