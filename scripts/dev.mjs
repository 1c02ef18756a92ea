#!/usr/bin/env node
// `npm run dev`: runs the gateway locally with `wrangler dev` on local KV and Durable Object storage
// (under .wrangler/). On first run it creates .dev.vars with a random MASTER_KEY and ADMIN_TOKEN
// (mode 0600, ignored by git) and prints the admin token and the URL. Extra arguments go to
// wrangler, e.g. `npm run dev -- --port 9000 --var ANTHROPIC_API_BASE:http://127.0.0.1:4000`.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const varsFile = join(root, ".dev.vars");
const args = process.argv.slice(2);
const portArg = args.indexOf("--port");
const port = portArg >= 0 ? args[portArg + 1] : "8787";
const url = `http://localhost:${port}`;

let adminToken;
if (!existsSync(varsFile)) {
  const token = `sp_admin_${randomBytes(24).toString("base64url")}`;
  const masterKey = randomBytes(32).toString("base64");
  try {
    // "wx": if two first runs race, one writes and the other keeps what it wrote.
    writeFileSync(varsFile, `# Local secrets for \`npm run dev\` (never commit). Production: wrangler secret put.\nMASTER_KEY=${masterKey}\nADMIN_TOKEN=${token}\n`, { mode: 0o600, flag: "wx" });
    adminToken = token;
    console.log(`\nsubpool: created .dev.vars with a new MASTER_KEY and ADMIN_TOKEN.`);
  } catch (e) {
    if (e.code !== "EEXIST") throw e;
  }
}

// The token is printed once, when it is made; afterwards it is only in .dev.vars (logs get copied).
console.log(`
subpool is starting at ${url}
  admin token: ${adminToken ?? "ADMIN_TOKEN in .dev.vars"}
  try:  curl -s ${url}/healthz
        curl -s -X POST ${url}/admin/users -H "authorization: Bearer $(grep ADMIN_TOKEN .dev.vars | cut -d= -f2)" -d '{"name":"alice"}'
`);

const child = spawn("wrangler", ["dev", "--port", port, ...args.filter((_, i) => i !== portArg && i !== portArg + 1)], {
  cwd: root,
  stdio: "inherit",
  env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
