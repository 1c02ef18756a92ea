#!/usr/bin/env node
// `npm run build:cli-bundle`: the CLI as ONE file for machines without this checkout, and as a
// package that npx can run:
//
//   dist/subpool-cli.mjs   every dependency inside, ESM, Node 20+, `#!/usr/bin/env node`:
//                          `node subpool-cli.mjs --help`
//   dist/subpool-cli.tgz   an npm package (name subpool-cli, bin subpool) holding that file:
//                          `npx ./subpool-cli.tgz --help`, `npx https://<gateway>/<path>.tgz setup`,
//                          `npm install -g ./subpool-cli.tgz`
//
// Both are versioned with the gateway (package.json's version) and reproducible: the same sources
// give the same bytes (esbuild's output is deterministic; npm pack fixes file times; every file it
// packs gets its mode set here, as the tarball records modes and the umask would pick them). Several
// builds may run at once (wrangler.toml's [build] runs this at every `wrangler dev`, and test suites start
// gateways side by side): each builds in a directory of its own and moves finished files into place
// with rename, so a reader never sees half a file and two builds never trip over each other.
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
const out = join(dist, "subpool-cli.mjs");
const tgz = join(dist, "subpool-cli.tgz");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));

mkdirSync(dist, { recursive: true });
const work = mkdtempSync(join(dist, ".cli-build-"));
/** Moves a finished file into place in one step (rename within one file system). */
const publish = (from, to) => {
  mkdirSync(dirname(to), { recursive: true });
  const tmp = `${to}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  copyFileSync(from, tmp);
  chmodSync(tmp, statSync(from).mode & 0o777);
  renameSync(tmp, to);
};
try {
  const built = join(work, "subpool-cli.mjs");
  await build({
    entryPoints: [join(root, "cli", "index.ts")],
    outfile: built,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    minify: true,
    legalComments: "eof",
    define: { SUBPOOL_VERSION: JSON.stringify(pkg.version) },
    // CommonJS dependencies (cli-table3 and its helpers) call require(); give the ESM file one. (The
    // #!/usr/bin/env node line comes from cli/index.ts: esbuild keeps an entry point's hashbang.)
    banner: { js: `// subpool CLI ${pkg.version}, one file (npm run build:cli-bundle). Node 20 or later.\nimport { createRequire as __subpoolRequire } from "node:module";\nconst require = __subpoolRequire(import.meta.url);` },
    logLevel: "warning",
  });
  chmodSync(built, 0o755);

  // The package: a directory with package.json and the file, packed by npm itself.
  const stage = join(work, "package");
  mkdirSync(stage);
  copyFileSync(built, join(stage, "subpool-cli.mjs"));
  chmodSync(join(stage, "subpool-cli.mjs"), 0o755);
  writeFileSync(
    join(stage, "package.json"),
    `${JSON.stringify(
      {
        name: "subpool-cli",
        version: pkg.version,
        description: "The subpool gateway's command-line tool, in one file.",
        type: "module",
        bin: { subpool: "subpool-cli.mjs" },
        files: ["subpool-cli.mjs"],
        engines: { node: ">=20" },
        license: pkg.license ?? "UNLICENSED",
      },
      null,
      2,
    )}\n`,
  );
  // writeFileSync's mode passes through the umask (077 would make it 0600 and another tarball).
  chmodSync(join(stage, "package.json"), 0o644);
  const packed = execFileSync("npm", ["pack", "--silent", "--pack-destination", work], { cwd: stage, encoding: "utf8" }).trim().split("\n").pop();
  const packedPath = join(work, packed);

  publish(built, out);
  publish(packedPath, tgz);
  // What the gateway serves (wrangler.toml [assets]): GET /cli/subpool-cli.mjs, /cli/subpool-cli.tgz and
  // /cli/subpool-cli-<version>.tgz, so a teammate needs only the gateway's address and Node.
  const served = join(dist, "public", "cli");
  publish(built, join(served, "subpool-cli.mjs"));
  publish(packedPath, join(served, "subpool-cli.tgz"));
  publish(packedPath, join(served, `subpool-cli-${pkg.version}.tgz`));
  // The asset server names no type for .tgz: say it (Workers static assets read _headers).
  const headers = join(work, "_headers");
  writeFileSync(headers, ["/cli/subpool-cli.tgz", `/cli/subpool-cli-${pkg.version}.tgz`].map((p) => `${p}\n  Content-Type: application/gzip\n`).join(""));
  chmodSync(headers, 0o644);
  publish(headers, join(dist, "public", "_headers"));
} finally {
  rmSync(work, { recursive: true, force: true });
}

const sha = (p) => createHash("sha256").update(readFileSync(p)).digest("hex");
const size = (p) => `${(readFileSync(p).length / 1024).toFixed(0)} KiB`;
console.log(`dist/subpool-cli.mjs  ${size(out)}  sha256 ${sha(out)}`);
console.log(`dist/subpool-cli.tgz  ${size(tgz)}  sha256 ${sha(tgz)}`);
