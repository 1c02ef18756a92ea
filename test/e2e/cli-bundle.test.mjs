// The CLI bundle the gateway serves (scripts/build-cli-bundle.mjs, wrangler.toml [assets]):
// - the package is the same bytes whoever builds it, whatever their umask (npm pack records each
//   file's mode: a package.json written 0600 under `umask 077` made another tarball);
// - GET /cli/subpool-cli.tgz (and the versioned name) says what it is: application/gzip.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, startGateway } from "./gateway.mjs";

const version = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version;
const sha256 = (b) => createHash("sha256").update(b).digest("hex");

/** Builds the bundle under `umask`; the package's sha256 as the build prints it. */
function buildUnder(umask) {
  const r = spawnSync("sh", ["-c", `umask ${umask} && node scripts/build-cli-bundle.mjs`], { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  const m = /dist\/subpool-cli\.tgz\s.*sha256 ([0-9a-f]{64})/.exec(r.stdout);
  assert.ok(m, r.stdout);
  return m[1];
}

describe("the CLI bundle", { timeout: 240_000 }, () => {
  it("is the same package whatever the builder's umask", () => {
    const strict = buildUnder("077");
    const usual = buildUnder("022"); // last, so the files left in dist/ are the usual ones
    assert.equal(strict, usual);
  });

  describe("served by the gateway", () => {
    let gw;
    before(async () => {
      gw = await startGateway();
    });
    after(async () => {
      await gw?.stop();
    });

    it("as application/gzip, under both names", async () => {
      for (const name of ["subpool-cli.tgz", `subpool-cli-${version}.tgz`]) {
        const res = await fetch(`${gw.url}/cli/${name}`);
        assert.equal(res.status, 200, name);
        assert.equal(res.headers.get("content-type"), "application/gzip", name);
        const bytes = Buffer.from(await res.arrayBuffer());
        assert.equal(sha256(bytes), sha256(readFileSync(join(ROOT, "dist", "public", "cli", name))), name);
      }
    });
  });
});
