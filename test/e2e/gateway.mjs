// The gateway for the end-to-end suites, started exactly as the README says:
// `npm run dev -- --port <P> --persist-to <dir> --var K:V ...`, run from the project root.
//
// Contract:
// - startGateway({ vars, secrets, persistTo }) makes .dev.vars first when it is missing (exclusively,
//   flag "wx", the same format as scripts/dev.mjs, so that suites starting gateways at once cannot
//   each write their own), picks a free port, spawns `npm run dev` detached (its own process group),
//   and resolves once GET /healthz answers 200 {"ok":true} (at most 60 s). It then reads ADMIN_TOKEN
//   from .dev.vars ("" when there is no such line: the caller asserts on it).
//   If the gateway exits or never turns healthy, it is stopped and the error carries its log; a start
//   that lost its port to another process ("Address already in use") is retried on another port.
// - The handle: url, port, adminToken, persistTo, api(method, path, key, body) (a Bearer-authorised
//   fetch answering { status, headers, json, text }), log() (the gateway's console so far, with the
//   admin token, MASTER_KEY and every secret in `secrets` blanked out) and stop().
// - stop() sends SIGTERM to the whole process group (npm, dev.mjs, wrangler, workerd), SIGKILL after
//   5 s, closes the log pipes and removes the persist directory when startGateway made it. It is safe
//   to call more than once.
// Not a test file: `npm run test:e2e` runs test/e2e/*.test.mjs only.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";

/** The project root: where `npm run dev` runs and .dev.vars lives. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const DEV_VARS = join(ROOT, ".dev.vars");
const STARTUP_MS = 60_000;
const STOP_GRACE_MS = 5000;
const PORT_TRIES = 3;

/**
 * @typedef {{ status: number, headers: Headers, json: any, text: string }} ApiAnswer
 * @typedef {{
 *   url: string,
 *   port: number,
 *   adminToken: string,
 *   persistTo: string,
 *   api: (method: string, path: string, key: string, body?: unknown) => Promise<ApiAnswer>,
 *   log: () => string,
 *   stop: () => Promise<void>,
 * }} Gateway
 */

/** A TCP port on 127.0.0.1 that nothing listens on right now. @returns {Promise<number>} */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = /** @type {import("node:net").AddressInfo} */ (s.address());
      s.close(() => resolve(port));
    });
  });
}

/** dev.mjs makes .dev.vars on first run; made here first (exclusively) when missing, so that two
 *  suites starting gateways at once cannot each write their own. Same format as dev.mjs. */
function ensureDevVars() {
  if (existsSync(DEV_VARS)) return;
  const content = `# Local secrets for \`npm run dev\` (never commit). Production: wrangler secret put.\nMASTER_KEY=${randomBytes(32).toString("base64")}\nADMIN_TOKEN=sp_admin_${randomBytes(24).toString("base64url")}\n`;
  try {
    writeFileSync(DEV_VARS, content, { mode: 0o600, flag: "wx" });
  } catch (e) {
    if (/** @type {NodeJS.ErrnoException} */ (e).code !== "EEXIST") throw e;
  }
}

/**
 * Starts `npm run dev` on a free port and waits until it is healthy.
 * @param {{
 *   vars?: Record<string, string>,
 *   secrets?: Iterable<string> | (() => Iterable<string>),
 *   persistTo?: string,
 * }} [options] vars: passed as `--var K:V`; secrets: blanked out of log(), read at each call (an array
 *   the caller adds to later, or a function); persistTo: the --persist-to directory (default: a new
 *   temporary one, removed by stop()).
 * @returns {Promise<Gateway>}
 */
export async function startGateway(options = {}) {
  // freePort() only says nothing listens right now: another suite's gateway on this machine can
  // take the port before wrangler binds it. That start fails at once; try again on another port.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (e) {
      if (attempt >= PORT_TRIES || !/Address already in use/.test(String(/** @type {Error} */ (e)?.message))) throw e;
    }
  }
}

/** @param {Parameters<typeof startGateway>[0]} [options] @returns {Promise<Gateway>} */
async function startOnce({ vars = {}, secrets = [], persistTo } = {}) {
  ensureDevVars();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const ownDir = !persistTo;
  const dir = persistTo ?? mkdtempSync(join(tmpdir(), "subpool-e2e-"));
  const args = ["run", "dev", "--", "--port", String(port), "--persist-to", dir];
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}:${v}`);
  const child = spawn("npm", args, {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" },
  });
  let rawLog = "";
  child.stdout.on("data", (d) => (rawLog += d));
  child.stderr.on("data", (d) => (rawLog += d));

  let adminToken = "";
  const exited = () => child.exitCode !== null || child.signalCode !== null;

  /** The gateway's console, with every secret we know of blanked out (dev.mjs prints the admin token). */
  const log = () => {
    let text = rawLog.replace(/sp_admin_[A-Za-z0-9_-]+/g, "sp_admin_<redacted>").replace(/MASTER_KEY=\S+/g, "MASTER_KEY=<redacted>");
    const extra = typeof secrets === "function" ? secrets() : secrets;
    for (const s of [adminToken, ...extra]) if (s) text = text.split(s).join("<redacted>");
    return text;
  };

  /** SIGTERM to the process group, SIGKILL after 5 s. @returns {Promise<void>} */
  const killGroup = () => {
    if (exited()) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(killer);
        resolve();
      };
      const killer = setTimeout(() => {
        try {
          process.kill(-(/** @type {number} */ (child.pid)), "SIGKILL");
        } catch {}
        setTimeout(resolve, 500);
      }, STOP_GRACE_MS);
      child.once("exit", done);
      try {
        process.kill(-(/** @type {number} */ (child.pid)), "SIGTERM");
      } catch {
        done();
      }
    });
  };

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await killGroup();
    child.stdout.destroy();
    child.stderr.destroy();
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };

  /** @type {Gateway["api"]} */
  const api = async (method, path, key, body) => {
    const r = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await r.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {}
    return { status: r.status, headers: r.headers, json, text };
  };

  try {
    await waitForHealth(url, child, exited, log);
    // .dev.vars exists by now (made above, by dev.mjs or by a concurrent suite); wrangler runs with it.
    adminToken = /^ADMIN_TOKEN=(.*)$/m.exec(readFileSync(DEV_VARS, "utf8"))?.[1]?.trim() ?? "";
  } catch (e) {
    await stop();
    throw e;
  }
  return { url, port, adminToken, persistTo: dir, api, log, stop };
}

/**
 * Polls GET /healthz until it answers 200 {"ok":true}; throws with the (redacted) log when the
 * gateway exits first or is not healthy within STARTUP_MS.
 * @param {string} url
 * @param {import("node:child_process").ChildProcess} child
 * @param {() => boolean} exited
 * @param {() => string} log
 */
async function waitForHealth(url, child, exited, log) {
  const deadline = Date.now() + STARTUP_MS;
  let lastErr = "";
  while (Date.now() < deadline) {
    if (exited()) {
      throw new Error(`gateway exited early (code ${child.exitCode}, signal ${child.signalCode}); its output:\n${log()}`);
    }
    try {
      const r = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
      const body = await r.json().catch(() => null);
      if (r.status === 200 && body?.ok === true) return;
      lastErr = `status ${r.status} ${JSON.stringify(body)}`;
    } catch (e) {
      lastErr = String(/** @type {any} */ (e)?.cause?.code ?? e);
    }
    await sleep(250);
  }
  throw new Error(`gateway not healthy after ${STARTUP_MS / 1000} s (last: ${lastErr}); its output:\n${log()}`);
}
