// `npm install` in a fresh clone must leave `git status` clean: the committed package-lock.json has to
// say about the project itself exactly what package.json says, or npm rewrites it (as it once did
// for a `bin` entry the lockfile lacked). This checks the fields npm copies from package.json into
// the lockfile's root entry, without running an install. (By hand: `git clone <repo> /tmp/x && cd
// /tmp/x && npm install && git status`.)
import { it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./gateway.mjs";

it("package-lock.json's root entry matches package.json (npm install does not rewrite it)", () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8"));
  const rootEntry = lock.packages[""];
  assert.equal(lock.name, pkg.name);
  assert.equal(lock.version, pkg.version);
  for (const field of ["name", "version", "bin", "license", "engines", "dependencies", "devDependencies", "optionalDependencies", "peerDependencies", "workspaces"]) {
    assert.deepEqual(rootEntry[field], pkg[field], `package-lock.json packages[""].${field} differs from package.json: run npm install and commit package-lock.json`);
  }
  // Every dependency the lockfile pins for the root is installed at the version package.json names.
  for (const [name, version] of Object.entries({ ...pkg.dependencies, ...pkg.devDependencies })) {
    const entry = lock.packages[`node_modules/${name}`];
    assert.ok(entry, `${name} is missing from package-lock.json`);
    if (/^\d+\.\d+\.\d+/.test(version)) assert.equal(entry.version, version, `${name}: package.json says ${version}, the lockfile ${entry.version}`);
  }
});
