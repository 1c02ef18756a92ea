#!/usr/bin/env node
// `npm run dev`: runs the gateway locally with `wrangler dev` on local KV and Durable Object storage
// (under .wrangler/state, or the directory given with --persist-to). On first run it creates
// .dev.vars with a random MASTER_KEY and ADMIN_TOKEN (mode 0600, ignored by git) and prints the admin
// token and the URL. Extra arguments go to wrangler, e.g.
// `npm run dev -- --var ANTHROPIC_API_BASE:http://127.0.0.1:4000` or `npm run dev -- --port 9000`.
//
// The local state is only readable with the MASTER_KEY it was written under. This script keeps a
// SHA-256 fingerprint of that key (never the key) in <state dir>/subpool-master-key.sha256 and, at
// start, refuses to run a different key over existing state (e.g. after .dev.vars was deleted and a
// new key made): every stored account would fail to decrypt and every gateway key would be refused.
// `--reset-local-state` deletes the state directory and starts empty.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const varsFile = join(root, ".dev.vars");
const FINGERPRINT_FILE = "subpool-master-key.sha256";

/** Splits our own options from wrangler's; `--opt value` and `--opt=value` both count. */
function parseArgs(argv) {
  const rest = [];
  let port = "8787";
  let persistTo = null;
  let reset = false;
  const vars = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf("=");
    const [name, inline] = a.startsWith("--") && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    const value = () => inline ?? argv[++i];
    if (name === "--port") port = value();
    else if (name === "--reset-local-state") reset = true;
    else {
      if (name === "--persist-to") {
        persistTo = inline ?? argv[i + 1];
      } else if (name === "--var") {
        const v = inline ?? argv[i + 1];
        const colon = v?.indexOf(":") ?? -1;
        if (colon > 0) vars[v.slice(0, colon)] = v.slice(colon + 1);
      }
      rest.push(a);
    }
  }
  return { port, persistTo, reset, vars, rest };
}

const sha256 = (s) => createHash("sha256").update(s).digest("hex");

/** The secrets in .dev.vars (KEY=value lines). */
function readDevVars() {
  const out = {};
  for (const line of readFileSync(varsFile, "utf8").split(/\r?\n/)) {
    const m = /^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (m) out[m[1]] = m[2].replace(/^"(.*)"$/, "$1");
  }
  return out;
}

/** Whether wrangler has written KV or Durable Object data under `dir`. */
function hasState(dir) {
  const walk = (d, depth) => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return false;
    }
    for (const e of entries) {
      if (e.isFile() && e.name !== FINGERPRINT_FILE) return true;
      if (e.isDirectory() && depth < 6 && walk(join(d, e.name), depth + 1)) return true;
    }
    return false;
  };
  return ["kv", "do"].some((k) => walk(join(dir, "v3", k), 0));
}

const show = (p) => {
  const r = relative(root, p);
  return r && !r.startsWith("..") && !isAbsolute(r) ? r : p;
};

function stop(lines) {
  console.error(`\nsubpool: ${lines.join("\n  ")}\n`);
  process.exit(1);
}

const args = parseArgs(process.argv.slice(2));
const stateDir = args.persistTo ? resolve(root, args.persistTo) : join(root, ".wrangler", "state");
const fingerprintFile = join(stateDir, FINGERPRINT_FILE);
const resetHint = `npm run dev -- ${args.persistTo ? `--persist-to ${args.persistTo} ` : ""}--reset-local-state   (deletes ${show(stateDir)}: every local user and account)`;

if (args.reset) {
  rmSync(stateDir, { recursive: true, force: true });
  console.log(`subpool: deleted the local state in ${show(stateDir)}; starting empty.`);
}

// No .dev.vars, but state written under a key: making a new key would lock that state out.
if (!existsSync(varsFile) && !args.vars.MASTER_KEY && existsSync(fingerprintFile) && hasState(stateDir)) {
  stop([
    `.dev.vars is missing, but ${show(stateDir)} holds local state written under its MASTER_KEY.`,
    "A new MASTER_KEY cannot open it: every stored account would fail to decrypt and every gateway key would be refused.",
    "Either restore .dev.vars (the MASTER_KEY=... line is what matters), or start over:",
    `  ${resetHint}`,
  ]);
}

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

// The key wrangler will run with (--var wins over .dev.vars), and the older keys a rotation keeps readable.
const devVars = readDevVars();
const masterKey = args.vars.MASTER_KEY ?? devVars.MASTER_KEY ?? "";
const oldKeys = (args.vars.OLD_MASTER_KEYS ?? devVars.OLD_MASTER_KEYS ?? "")
  .split(",")
  .map((e) => e.trim().replace(/^\d+:/, ""))
  .filter(Boolean);
const usable = [masterKey, ...oldKeys].filter(Boolean).map(sha256);
if (existsSync(fingerprintFile) && hasState(stateDir)) {
  const recorded = readFileSync(fingerprintFile, "utf8").split(/\s+/).filter(Boolean);
  if (recorded.length && !usable.some((f) => recorded.includes(f))) {
    stop([
      `the local state in ${show(stateDir)} was written under another MASTER_KEY than the one this start would use`,
      `(from ${args.vars.MASTER_KEY ? "--var MASTER_KEY" : ".dev.vars"}; was .dev.vars deleted or replaced?).`,
      "With this key every stored account fails to decrypt and every gateway key is refused.",
      "Either put the old MASTER_KEY back in .dev.vars (keep the ADMIN_TOKEN line too), or start over:",
      `  ${resetHint}`,
      "(Rotating on purpose: the new key as MASTER_KEY, the old one in OLD_MASTER_KEYS; see the README.)",
    ]);
  }
}
if (usable.length) {
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(fingerprintFile, `${usable.join("\n")}\n`);
}

const url = `http://localhost:${args.port}`;
// The token is printed once, when it is made; afterwards it is only in .dev.vars (logs get copied).
console.log(`
subpool is starting at ${url}
  admin token: ${adminToken ?? "ADMIN_TOKEN in .dev.vars"}
  try:  curl -s ${url}/healthz
        curl -s -X POST ${url}/admin/users -H "authorization: Bearer $(grep ADMIN_TOKEN .dev.vars | cut -d= -f2)" -d '{"name":"alice"}'
`);

const wranglerArgs = ["dev", "--port", args.port, ...args.rest];
// For tests of the argument handling: print what would run, run nothing.
if (process.env.SUBPOOL_DEV_DRY_RUN === "1") {
  console.log(`wrangler ${JSON.stringify(wranglerArgs)}`);
  process.exit(0);
}
const child = spawn("wrangler", wranglerArgs, {
  cwd: root,
  stdio: "inherit",
  env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
