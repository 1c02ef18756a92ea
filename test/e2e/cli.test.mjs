// End to end: the `subpool` command-line tool (dist/cli, built by `npm install`'s prepare script),
// run as a subprocess the way a person runs it, against the gateway started exactly as the README
// says (`npm run dev -- --port … --persist-to …`). A fake provider on 127.0.0.1 stands in for the
// Anthropic API and for the Anthropic, OpenAI and GitHub sign-in endpoints, so `subpool login` runs
// its real flows. The CLI runs on the machine's own Node (20 here), not the Node 22 that npm puts
// on PATH for wrangler. Offline only: nothing leaves 127.0.0.1.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CLI, NODE, ensureBuilt } from "./cli-binary.mjs";
import { ROOT, freePort, startGateway } from "./gateway.mjs";

const T = { timeout: 30_000 };

// ---------------------------------------------------------------------------------------------
// The fake provider: Anthropic's API, and the sign-in endpoints of Anthropic, OpenAI and GitHub.
// ---------------------------------------------------------------------------------------------

const tag = randomBytes(5).toString("hex");
const b64url = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
const jwt = (claims) => `${b64url({ alg: "none", typ: "JWT" })}.${b64url(claims)}.sig`;

const FAKE = {
  anthropicLimitedKey: `sk-ant-api03-cli-limited-${tag}`,
  anthropicGoodKey: `sk-ant-api03-cli-good-${tag}`,
  anthropicFlakyKey: `sk-ant-api03-cli-flaky-${tag}`,
  anthropicQuotaKey: `sk-ant-api03-cli-quota-${tag}`,
  anthropicCode: `ac-code-${tag}`,
  anthropicRefresh: `sk-ant-ort01-cli-${tag}`,
  anthropicAccess: `sk-ant-oat01-cli-${tag}`,
  openaiCode: `oa-code-${tag}`,
  openaiRefresh: `oa-refresh-${tag}`,
  openaiAccess: jwt({ exp: Math.floor(Date.now() / 1000) + 3600, "https://api.openai.com/auth": { chatgpt_account_id: `acct-${tag}`, chatgpt_user_id: `user-${tag}` } }),
  openaiIdToken: jwt({ email: `dev-${tag}@example.com`, "https://api.openai.com/auth": { chatgpt_account_id: `acct-${tag}`, chatgpt_user_id: `user-${tag}` } }),
  githubDeviceCode: `dc-${tag}`,
  githubUserCode: "WDJB-MJHT",
  githubToken: `gho_cli${tag}`,
  copilotToken: `tid=cli-${tag};exp=9`,
};

/** How many more requests with FAKE.anthropicFlakyKey answer 500 (then it works). */
let flakyFailures = 0;

/** How many polls the device flow answers "authorization_pending" to before granting. */
let devicePendingPolls = 1;

function sendJson(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

function startFake() {
  const server = createServer(async (req, res) => {
    let raw = "";
    for await (const chunk of req) raw += chunk;
    const url = new URL(req.url, "http://127.0.0.1");
    const form = () => Object.fromEntries(new URLSearchParams(raw));
    const json = () => (raw ? JSON.parse(raw) : {});
    switch (`${req.method} ${url.pathname}`) {
      // Anthropic API: one key rate limited for two hours, one good.
      case "POST /anthropic-api/v1/messages": {
        if (req.headers["x-api-key"] === FAKE.anthropicLimitedKey) {
          return sendJson(res, 429, { type: "error", error: { type: "rate_limit_error", message: "rate limited" } }, { "retry-after": "7200" });
        }
        if (req.headers["x-api-key"] === FAKE.anthropicFlakyKey && flakyFailures-- > 0) {
          return sendJson(res, 500, { type: "error", error: { type: "api_error", message: "internal server error" } });
        }
        // A subscription's telemetry: the unified 5-hour and weekly windows, and the tokens the answer cost.
        if (req.headers["x-api-key"] === FAKE.anthropicQuotaKey) {
          const s = Math.floor(Date.now() / 1000);
          return sendJson(
            res,
            200,
            { id: "msg_quota", type: "message", role: "assistant", model: "claude-e2e", content: [{ type: "text", text: "hi" }], stop_reason: "end_turn", usage: { input_tokens: 1200, output_tokens: 340, cache_read_input_tokens: 5000, cache_creation_input_tokens: 700 } },
            {
              "anthropic-ratelimit-unified-status": "allowed",
              "anthropic-ratelimit-unified-5h-utilization": "0.42",
              "anthropic-ratelimit-unified-5h-reset": String(s + 2 * 3600 + 600),
              "anthropic-ratelimit-unified-7d-utilization": "0.07",
              "anthropic-ratelimit-unified-7d-reset": String(s + 3 * 86400 + 4 * 3600 + 600),
            },
          );
        }
        if (req.headers["x-api-key"] !== FAKE.anthropicGoodKey && req.headers["x-api-key"] !== FAKE.anthropicFlakyKey) return sendJson(res, 401, { type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } });
        return sendJson(res, 200, { id: "msg_cli", type: "message", role: "assistant", model: "claude-e2e", content: [{ type: "text", text: "hi" }], stop_reason: "end_turn", usage: { input_tokens: 1, output_tokens: 1 } });
      }
      // Checking a key costs nothing: count_tokens answers for the keys this fake knows, 401 otherwise.
      case "POST /anthropic-api/v1/messages/count_tokens": {
        const k = req.headers["x-api-key"];
        if ([FAKE.anthropicGoodKey, FAKE.anthropicLimitedKey, FAKE.anthropicFlakyKey].includes(k)) return sendJson(res, 200, { input_tokens: 3 });
        return sendJson(res, 401, { type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } });
      }
      // Anthropic sign-in: the token endpoint takes JSON.
      case "POST /anthropic-oauth/token": {
        const b = json();
        // Two people's codes: FAKE.anthropicCode, and the same with "-2" (another Claude account).
        const who = b.code === FAKE.anthropicCode ? "" : b.code === `${FAKE.anthropicCode}-2` ? "-2" : null;
        if (b.grant_type !== "authorization_code" || who === null || !b.code_verifier) return sendJson(res, 400, { error: "invalid_grant", error_description: "bad code" });
        return sendJson(res, 200, {
          access_token: FAKE.anthropicAccess,
          refresh_token: FAKE.anthropicRefresh,
          expires_in: 28800,
          token_type: "Bearer",
          account: { uuid: `uuid-${tag}${who}`, email_address: `claude-${tag}${who}@example.com` },
        });
      }
      // OpenAI sign-in: the token endpoint takes a form.
      case "POST /openai-oauth/token": {
        const b = form();
        if (b.grant_type !== "authorization_code" || b.code !== FAKE.openaiCode || !b.code_verifier) return sendJson(res, 400, { error: "invalid_grant" });
        return sendJson(res, 200, { access_token: FAKE.openaiAccess, refresh_token: FAKE.openaiRefresh, id_token: FAKE.openaiIdToken, expires_in: 3600 });
      }
      // GitHub device flow.
      case "POST /github/login/device/code":
        return sendJson(res, 200, { device_code: FAKE.githubDeviceCode, user_code: FAKE.githubUserCode, verification_uri: "https://github.com/login/device", expires_in: 900, interval: 1 });
      case "POST /github/login/oauth/access_token": {
        if (json().device_code !== FAKE.githubDeviceCode) return sendJson(res, 200, { error: "bad_verification_code" });
        if (devicePendingPolls > 0) {
          devicePendingPolls--;
          return sendJson(res, 200, { error: "authorization_pending" });
        }
        return sendJson(res, 200, { access_token: FAKE.githubToken, token_type: "bearer", scope: "read:user" });
      }
      case "GET /github-api/user":
        return req.headers.authorization === `token ${FAKE.githubToken}` ? sendJson(res, 200, { id: 4242, login: `octo-${tag}` }) : sendJson(res, 401, { message: "Bad credentials" });
      case "GET /github-api/copilot_internal/v2/token":
        return req.headers.authorization === `token ${FAKE.githubToken}`
          ? sendJson(res, 200, { token: FAKE.copilotToken, expires_at: Math.floor(Date.now() / 1000) + 1800, refresh_in: 1500 })
          : sendJson(res, 401, { message: "Bad credentials" });
      default:
        return sendJson(res, 404, { error: `fake: no ${req.method} ${url.pathname}` });
    }
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

function portIsFree(port) {
  return new Promise((resolve) => {
    const s = createNetServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

// ---------------------------------------------------------------------------------------------
// Running the CLI.
// ---------------------------------------------------------------------------------------------

/** gw: the gateway (test/e2e/gateway.mjs). */
const state = { gw: /** @type {import("./gateway.mjs").Gateway | null} */ (null), fake: null, url: "", adminToken: "", dir: "", home: "", memberKey: "", memberName: "", quota: null };

/**
 * The CLI as a person runs it once installed (`npm install -g`): a `subpool` command on PATH, here a
 * link in <tmp>/bin, so the commands it suggests read `subpool …` (run through npx they read
 * `npx <spec> …`: test/e2e/cli-from-gateway.test.mjs).
 */
const binDir = () => join(state.dir, "bin");
const BIN = () => join(binDir(), "subpool");

/** A clean environment: no SUBPOOL_* from the developer's shell, a fake HOME, no browser, no colour, `subpool` on PATH. */
function cliEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith("SUBPOOL_") || ["XDG_CONFIG_HOME", "XDG_DATA_HOME", "CODEX_HOME", "CLAUDE_CONFIG_DIR", "FORCE_COLOR", "CI"].includes(k)) continue;
    env[k] = v;
  }
  return {
    ...env,
    HOME: state.home,
    USERPROFILE: state.home,
    XDG_CONFIG_HOME: join(state.home, ".config"),
    XDG_DATA_HOME: join(state.home, ".local", "share"),
    SUBPOOL_NO_BROWSER: "1",
    NO_COLOR: "1",
    PATH: `${binDir()}${delimiter}${env.PATH ?? ""}`,
    ...extra,
  };
}

/** Spawns `subpool …`; returns a handle to talk to it and a promise of its end. */
function spawnCli(args, extraEnv = {}) {
  const child = spawn(NODE, [BIN(), ...args], { cwd: state.dir, env: cliEnv(extraEnv), stdio: ["pipe", "pipe", "pipe"] });
  const out = { stdout: "", stderr: "" };
  child.stdout.on("data", (d) => (out.stdout += d));
  child.stderr.on("data", (d) => (out.stderr += d));
  const done = new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`subpool ${args.join(" ")} did not finish\n--- stdout ---\n${out.stdout}\n--- stderr ---\n${out.stderr}`));
    }, 25_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, ...out });
    });
  });
  /** Resolves with the first match of `re` in stderr, once it shows up. */
  const waitFor = async (re, ms = 15_000) => {
    const until = Date.now() + ms;
    for (;;) {
      const m = re.exec(out.stderr);
      if (m) return m;
      if (Date.now() > until || child.exitCode !== null) throw new Error(`no ${re} in the output of subpool ${args.join(" ")}\n--- stderr ---\n${out.stderr}\n--- stdout ---\n${out.stdout}`);
      await sleep(50);
    }
  };
  return { child, out, done, waitFor };
}

/** Runs `subpool …` to the end, stdin = `input` (or nothing). */
async function cli(args, { env = {}, input } = {}) {
  const p = spawnCli(args, env);
  p.child.stdin.end(input ?? "");
  return p.done;
}

const show = (r) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

function ok(r) {
  assert.equal(r.code, 0, show(r));
  return r;
}

function fails(r, ...patterns) {
  assert.notEqual(r.code, 0, `expected a failure\n${show(r)}`);
  for (const p of patterns) assert.match(r.stderr, p, show(r));
  return r;
}

/** A config file of its own for each identity. */
const configFor = (name) => ({ SUBPOOL_CONFIG: join(state.dir, "configs", name, "config.json") });

const api = (method, path, key, body) => state.gw.api(method, path, key, body);

const accountsOf = async (key) => (await api("GET", "/api/accounts", key)).json.accounts;

/** Rows of a cli-table3 table: the cells of each line that has a body row. */
function tableRows(stdout) {
  return stdout
    .split("\n")
    .filter((l) => l.startsWith("│"))
    .map((l) => l.split("│").slice(1, -1).map((c) => c.trim()))
    .slice(1);
}

describe("subpool CLI against `npm run dev`", { timeout: 300_000 }, () => {
  before(async () => {
    ensureBuilt();
    state.dir = mkdtempSync(join(tmpdir(), "subpool-cli-e2e-"));
    state.home = join(state.dir, "home");
    mkdirSync(state.home);
    mkdirSync(binDir());
    symlinkSync(CLI, BIN());
    state.fake = await startFake();
    const fake = `http://127.0.0.1:${state.fake.address().port}`;
    const vars = {
      ANTHROPIC_API_BASE: `${fake}/anthropic-api`,
      ANTHROPIC_TOKEN_URL: `${fake}/anthropic-oauth/token`,
      ANTHROPIC_AUTHORIZE_URL: `${fake}/anthropic-oauth/authorize`,
      OPENAI_TOKEN_URL: `${fake}/openai-oauth/token`,
      OPENAI_AUTHORIZE_URL: `${fake}/openai-oauth/authorize`,
      GITHUB_BASE: `${fake}/github`,
      GITHUB_API_BASE: `${fake}/github-api`,
    };
    state.gw = await startGateway({
      vars,
      persistTo: join(state.dir, "state"),
      secrets: () => [state.memberKey, ...Object.values(FAKE)],
    });
    state.url = state.gw.url;
    state.adminToken = state.gw.adminToken;
    const me = await api("GET", "/api/me", state.adminToken);
    assert.equal(me.status, 200, `the ADMIN_TOKEN in .dev.vars does not work on the started gateway: ${me.text}`);
  });

  after(async () => {
    await state.gw?.stop();
    await new Promise((r) => (state.fake ? state.fake.close(r) : r()));
    if (state.dir) rmSync(state.dir, { recursive: true, force: true });
  });

  // ---- setup ---------------------------------------------------------------------------------

  it("says to run `subpool setup` when nothing is configured", T, async () => {
    const r = fails(await cli(["accounts"], { env: configFor("nobody") }), /no gateway configured/, /run `subpool setup` first/);
    assert.equal(r.code, 1);
  });

  it("setup refuses a wrong key, says what to do, and saves nothing", T, async () => {
    const env = configFor("wrong");
    fails(await cli(["setup", "--url", state.url, "--key", `sp_wrong_${tag}`], { env }), /the key was refused/, /nothing was saved/, /subpool users (add|rotate)/);
    assert.equal(existsSync(env.SUBPOOL_CONFIG), false);
  });

  it("setup checks the key and saves URL and key readable by the owner only (0600, dir 0700)", T, async () => {
    const env = configFor("admin");
    const r = ok(await cli(["setup", "--url", `${state.url}/`, "--key", state.adminToken], { env }));
    assert.match(r.stdout, /ADMIN_TOKEN/);
    assert.ok(!r.stdout.includes(state.adminToken) && !r.stderr.includes(state.adminToken), "setup must not print the key");
    assert.deepEqual(JSON.parse(readFileSync(env.SUBPOOL_CONFIG, "utf8")), { url: state.url, key: state.adminToken });
    if (process.platform !== "win32") {
      assert.equal(statSync(env.SUBPOOL_CONFIG).mode & 0o777, 0o600);
      assert.equal(statSync(dirname(env.SUBPOOL_CONFIG)).mode & 0o777, 0o700);
    }
    const who = ok(await cli(["whoami", "--json"], { env }));
    const { id, name, role } = JSON.parse(who.stdout).user;
    assert.deepEqual({ id, name, role }, { id: null, name: "admin-token", role: "admin" });
  });

  it("setup writes the default config dir ($XDG_CONFIG_HOME/subpool) when SUBPOOL_CONFIG is unset", T, async () => {
    const xdg = join(state.dir, "xdg-config");
    ok(await cli(["setup", "--url", state.url, "--key", "-"], { env: { XDG_CONFIG_HOME: xdg }, input: `${state.adminToken}\n` }));
    const file = join(xdg, "subpool", "config.json");
    assert.equal(JSON.parse(readFileSync(file, "utf8")).key, state.adminToken);
    if (process.platform !== "win32") {
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.equal(statSync(dirname(file)).mode & 0o777, 0o700);
    }
  });

  it("SUBPOOL_URL and SUBPOOL_KEY work without a config file", T, async () => {
    const r = ok(await cli(["whoami", "--json"], { env: { ...configFor("none"), SUBPOOL_URL: state.url, SUBPOOL_KEY: state.adminToken } }));
    assert.equal(JSON.parse(r.stdout).keyFrom, "env");
  });

  // ---- users (admin) -------------------------------------------------------------------------

  it("users add | list | rotate | rm, as admin; the new key is shown once and works", T, async () => {
    const env = configFor("admin");
    const name = `ann-${tag}`;
    const added = ok(await cli(["users", "add", name], { env }));
    const key = /^\s+(sp_\S+)$/m.exec(added.stdout)?.[1];
    assert.ok(key, `no key in:\n${added.stdout}`);
    assert.match(added.stdout, new RegExp(`${name} \\(member, u_`));
    assert.equal((await api("GET", "/api/me", key)).json.name, name);

    const list = ok(await cli(["users", "list"], { env }));
    const row = tableRows(list.stdout).find((c) => c[0] === name);
    assert.ok(row, list.stdout);
    assert.equal(row[1], "member");
    assert.ok(!list.stdout.includes(key), "users list must not show keys");
    const listed = JSON.parse(ok(await cli(["users", "--json"], { env })).stdout);
    const user = listed.users.find((u) => u.name === name);
    // GET /admin/usage as is (test/e2e/cli-team.test.mjs): no key, credential or account id in it.
    assert.deepEqual(Object.keys(user).sort(), ["accounts", "createdAt", "days", "id", "lastSeenAt", "limits", "name", "role"]);
    assert.ok(!JSON.stringify(listed).includes(key));

    // Rotating needs a confirmation; without a terminal, --yes.
    fails(await cli(["users", "rotate", name], { env }), /--yes/);
    assert.equal((await api("GET", "/api/me", key)).status, 200, "an unconfirmed rotate must change nothing");
    const rotated = JSON.parse(ok(await cli(["users", "rotate", name, "--yes", "--json"], { env })).stdout);
    assert.equal(rotated.id, user.id);
    assert.notEqual(rotated.key, key);
    assert.equal((await api("GET", "/api/me", key)).status, 401, "the old key stops working");
    assert.equal((await api("GET", "/api/me", rotated.key)).status, 200);

    // The old key, still saved somewhere, is refused with advice.
    const stale = configFor("stale");
    mkdirSync(dirname(stale.SUBPOOL_CONFIG), { recursive: true });
    writeFileSync(stale.SUBPOOL_CONFIG, JSON.stringify({ url: state.url, key }), { mode: 0o600 });
    fails(await cli(["accounts"], { env: stale }), /the key was refused/, /run `subpool setup`/);

    // An admin user, by id prefix, then removal by name.
    const admin2 = JSON.parse(ok(await cli(["users", "add", `adm-${tag}`, "--admin", "--json"], { env })).stdout);
    assert.equal(admin2.role, "admin");
    ok(await cli(["users", "rm", admin2.id.slice(0, 8), "--yes"], { env }));
    fails(await cli(["users", "rm", name], { env }), /--yes/);
    const rm = ok(await cli(["users", "rm", name, "--yes"], { env }));
    assert.match(rm.stdout, new RegExp(`Deleted ${name}`));
    const after = JSON.parse(ok(await cli(["users", "list", "--json"], { env })).stdout);
    assert.ok(!after.users.some((u) => u.name === name || u.id === admin2.id));
    assert.equal((await api("GET", "/api/me", rotated.key)).status, 401);
  });

  it("users commands need an admin key, and say so", T, async () => {
    const env = configFor("admin");
    const member = JSON.parse(ok(await cli(["users", "add", `mem-${tag}`, "--json"], { env })).stdout);
    const r = fails(await cli(["users", "list"], { env: { ...configFor("none"), SUBPOOL_URL: state.url, SUBPOOL_KEY: member.key } }), /admin/);
    assert.equal(r.code, 1);
    // The bootstrap token owns no accounts: the CLI says what to do instead.
    fails(await cli(["accounts"], { env }), /owns no accounts/, /users add/);
  });

  // ---- accounts ------------------------------------------------------------------------------

  it("a member sets up with the key on stdin and sees an empty pool", T, async () => {
    const admin = configFor("admin");
    state.memberName = `mia-${tag}`;
    state.memberKey = JSON.parse(ok(await cli(["users", "add", state.memberName, "--json"], { env: admin })).stdout).key;
    const env = configFor("member");
    const r = ok(await cli(["setup", "--url", state.url, "--key", "-"], { env, input: `${state.memberKey}\n` }));
    assert.match(r.stdout, new RegExp(`Signed in as ${state.memberName} \\(member\\)`));
    assert.ok(!r.stdout.includes(state.memberKey));
    const empty = ok(await cli(["accounts"], { env }));
    assert.match(empty.stdout, /No accounts yet/);
    assert.match(empty.stderr, /subpool login/);
    assert.deepEqual(JSON.parse(ok(await cli(["accounts", "--json"], { env })).stdout), { accounts: [] });
  });

  it("accounts: a table with status and cooldown countdown, and --json as the gateway answers", T, async () => {
    const env = configFor("member");
    const add = async (body) => {
      const r = await api("POST", "/api/accounts", state.memberKey, body);
      assert.equal(r.status, 201, r.text);
      return r.json;
    };
    const limited = await add({ provider: "anthropic", type: "api", key: FAKE.anthropicLimitedKey, label: "limited" });
    const good = await add({ provider: "anthropic", type: "api", key: FAKE.anthropicGoodKey, label: "good" });
    const oa = await add({ provider: "openai", type: "api", key: `sk-proj-cli-${tag}`, label: "oa key" });
    // One request: the first account answers 429 (retry-after 2 h) and is benched; the second serves.
    const res = await fetch(`${state.url}/anthropic/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": state.memberKey, "anthropic-version": "2023-06-01", "content-type": "application/json" },
      body: JSON.stringify({ model: "claude-e2e", max_tokens: 8, messages: [{ role: "user", content: "hi" }] }),
    });
    assert.equal(res.status, 200, await res.text());

    const r = ok(await cli(["accounts"], { env }));
    const header = r.stdout.split("\n").find((l) => l.startsWith("│"));
    assert.deepEqual(
      header.split("│").slice(1, -1).map((c) => c.trim()),
      ["#", "provider", "label", "type", "status", "cooldown", "last used", "last status", "ok/fail", "5h used", "week used", "id"],
    );
    const rows = tableRows(r.stdout);
    assert.deepEqual(
      rows.map((c) => [c[0], c[1], c[2], c[3], c[4], c[11]]),
      [
        ["1", "anthropic", "limited", "api key", "cooling", limited.id],
        ["2", "anthropic", "good", "api key", "active", good.id],
        ["1", "openai", "oa key", "api key", "active", oa.id],
      ],
    );
    assert.match(rows[0][5], /^(1h 5\dm|2h)$/, `cooldown countdown: ${rows[0][5]}`);
    assert.match(rows[0][6], /^(just now|\d+s ago)$/, `last used: ${rows[0][6]}`);
    assert.match(rows[0][7], /^429\b/);
    assert.equal(rows[1][5], "-");
    assert.equal(rows[1][7], "200");
    assert.equal(rows[2][6], "never");
    assert.match(rows[0][8], /^0\/1$/);
    // The 429's reason, beside it, as current.
    assert.match(rows[0][7], /^429 \S/, "the reason of a current error is shown");
    assert.ok(!r.stdout.includes(FAKE.anthropicGoodKey) && !r.stdout.includes(state.memberKey));

    const json = JSON.parse(ok(await cli(["accounts", "--json"], { env })).stdout);
    const direct = await accountsOf(state.memberKey);
    assert.deepEqual(
      json.accounts.map((a) => [a.id, a.provider, a.label, a.position, a.status, a.cooldownUntil]),
      direct.map((a) => [a.id, a.provider, a.label, a.position, a.status, a.cooldownUntil]),
    );
    const only = JSON.parse(ok(await cli(["accounts", "list", "--provider", "openai", "--json"], { env })).stdout);
    assert.deepEqual(only.accounts.map((a) => a.id), [oa.id]);
  });

  // ---- quota, usage, settings ---------------------------------------------------------------

  /** A user of its own with one account whose answers carry quota headers and token usage, after two requests. */
  async function quotaUser() {
    if (state.quota) return state.quota;
    const user = (await api("POST", "/admin/users", state.adminToken, { name: `quota-${tag}` })).json;
    const env = { ...configFor("none"), SUBPOOL_URL: state.url, SUBPOOL_KEY: user.key };
    const add = await api("POST", "/api/accounts?check=false", user.key, { provider: "anthropic", type: "api", key: FAKE.anthropicQuotaKey, label: "max plan" });
    assert.equal(add.status, 201, add.text);
    const idle = await api("POST", "/api/accounts?check=false", user.key, { provider: "anthropic", type: "api", key: `sk-ant-api03-idle-${tag}`, label: "idle one" });
    assert.equal(idle.status, 201, idle.text);
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${state.url}/anthropic/v1/messages`, {
        method: "POST",
        headers: { "x-api-key": user.key, "anthropic-version": "2023-06-01", "content-type": "application/json" },
        body: JSON.stringify({ model: "claude-e2e", max_tokens: 8, messages: [{ role: "user", content: `hi ${i}` }] }),
      });
      assert.equal(res.status, 200, await res.text());
    }
    // Outcomes travel in batches: wait until the gateway shows both requests.
    const until = Date.now() + 15_000;
    for (;;) {
      const u = await api("GET", `/api/accounts/${add.json.id}/usage?days=2`, user.key);
      const q = (await accountsOf(user.key)).find((a) => a.id === add.json.id)?.quota;
      if (u.json?.days?.[0]?.requests === 2 && q) break;
      if (Date.now() > until) assert.fail(`no usage or quota yet: ${u.text} ${JSON.stringify(q)}`);
      await sleep(200);
    }
    state.quota = { user, env, account: add.json, idle: idle.json };
    return state.quota;
  }

  it("accounts: the 5h and week columns show the share used and when it resets; `-` without telemetry; 100 columns stay readable", T, async () => {
    const { env, account, idle } = await quotaUser();
    const r = ok(await cli(["accounts"], { env }));
    const rows = tableRows(r.stdout);
    const row = rows.find((c) => c[11] === account.id);
    assert.ok(row, r.stdout);
    assert.match(row[9], /^42% \(2h\d+m\)$/, `5h used: ${row[9]}\n${r.stdout}`);
    assert.match(row[10], /^7% \(3d4h\)$/, `week used: ${row[10]}\n${r.stdout}`);
    const none = rows.find((c) => c[11] === idle.id);
    assert.deepEqual([none[9], none[10]], ["-", "-"]);
    // --json is the gateway's answer, quota included.
    const json = JSON.parse(ok(await cli(["accounts", "--json"], { env })).stdout).accounts.find((a) => a.id === account.id);
    assert.equal(json.quota.windows["5h"].utilization, 0.42);
    assert.equal(typeof json.quota.windows["7d"].resetsAt, "number");

    // A 100-column terminal: a compact table that fits, the quota columns kept.
    const narrow = ok(await cli(["accounts"], { env: { ...env, COLUMNS: "100" } }));
    for (const line of narrow.stdout.split("\n")) if (line.startsWith("│") || line.startsWith("┌")) assert.ok(line.length <= 100, `${line.length} columns:\n${narrow.stdout}`);
    const header = narrow.stdout.split("\n").find((l) => l.startsWith("│")).split("│").slice(1, -1).map((c) => c.trim());
    assert.ok(header.includes("5h used") && header.includes("week used") && header.includes("label"), narrow.stdout);
    const compactRow = tableRows(narrow.stdout).find((c) => c[2] === "max plan");
    assert.match(compactRow[header.indexOf("5h used")], /^42% \(/);
    assert.match(narrow.stdout, /id, type and counts left out/);
  });

  it("usage: requests and tokens per day from the provider's answers, by label, provider:position or for every account; --json as the gateway answers", T, async () => {
    const { env, account } = await quotaUser();
    const today = new Date().toISOString().slice(0, 10);
    for (const ref of ["max plan", "max", "anthropic:1", account.id]) {
      const r = ok(await cli(["usage", ref], { env }));
      assert.match(r.stdout, /anthropic:1 "max plan"/);
      const rows = tableRows(r.stdout);
      const day = rows.find((c) => c[0] === today);
      assert.deepEqual(day, [today, "2", "2,400", "680", "10,000", "1,400"], r.stdout);
      assert.deepEqual(rows.at(-1), ["total", "2", "2,400", "680", "10,000", "1,400"], r.stdout);
    }
    const json = JSON.parse(ok(await cli(["usage", "max plan", "--days", "3", "--json"], { env })).stdout);
    assert.deepEqual(json, (await api("GET", `/api/accounts/${account.id}/usage?days=3`, state.quota.user.key)).json);
    assert.deepEqual(json.days.find((d) => d.date === today), { date: today, requests: 2, inputTokens: 2400, outputTokens: 680, cacheReadTokens: 10000, cacheWriteTokens: 1400 });

    // Every account: a table for the one with usage, the idle one named as such.
    const all = ok(await cli(["usage"], { env }));
    assert.match(all.stdout, /anthropic:1 "max plan":/);
    assert.match(all.stdout, /No requests in the last 14 days: anthropic:2 "idle one"/);
    const everyJson = JSON.parse(ok(await cli(["usage", "--json"], { env })).stdout);
    assert.deepEqual(everyJson.accounts.map((a) => [a.label, a.days.length]), [["max plan", 1], ["idle one", 0]]);

    fails(await cli(["usage", "nope-nothing"], { env }), /no account matches "nope-nothing"/);
    const bad = await cli(["usage", "--days", "0"], { env });
    assert.equal(bad.code, 2, show(bad));
    assert.match(bad.stderr, /--days/);
  });

  it("settings: shows the routing settings, changes them, and refuses a bad value naming the field", T, async () => {
    const { env, user } = await quotaUser();
    const shown = ok(await cli(["settings"], { env }));
    assert.match(shown.stdout, /strategy\s+failover/);
    assert.match(shown.stdout, /quota threshold\s+0\.95/);
    assert.match(shown.stdout, /affinity TTL\s+3600s/);
    assert.deepEqual(JSON.parse(ok(await cli(["settings", "--json"], { env })).stdout), { strategy: "failover", quotaThreshold: 0.95, affinityTtlS: 3600 });

    const set = ok(await cli(["settings", "--strategy", "quota-aware", "--quota-threshold", "90%", "--affinity-ttl", "30m"], { env }));
    assert.match(set.stdout, /strategy\s+quota-aware/);
    assert.deepEqual((await api("GET", "/api/settings", user.key)).json, { strategy: "quota-aware", quotaThreshold: 0.9, affinityTtlS: 1800 });
    assert.deepEqual(JSON.parse(ok(await cli(["settings", "--quota-threshold", "0.8", "--json"], { env })).stdout), { strategy: "quota-aware", quotaThreshold: 0.8, affinityTtlS: 1800 });

    // The gateway's refusals name the field (and the option); nothing changes.
    let r = fails(await cli(["settings", "--quota-threshold", "2"], { env }), /quotaThreshold \(--quota-threshold\): must be at most 1/, /nothing was changed/);
    assert.equal(r.code, 1);
    r = fails(await cli(["settings", "--strategy", "fastest", "--affinity-ttl", "60"], { env }), /strategy \(--strategy\): must be one of/);
    fails(await cli(["settings", "--affinity-ttl", "30d"], { env }), /affinityTtlS \(--affinity-ttl\)/);
    r = await cli(["settings", "--quota-threshold", "lots"], { env });
    assert.equal(r.code, 2, show(r));
    assert.match(r.stderr, /--quota-threshold/);
    assert.deepEqual((await api("GET", "/api/settings", user.key)).json, { strategy: "quota-aware", quotaThreshold: 0.8, affinityTtlS: 1800 });
  });

  it("accounts disable | enable | move | rename | rm, by label, id prefix or provider:position", T, async () => {
    const env = configFor("member");
    const byLabel = async (label) => (await accountsOf(state.memberKey)).find((a) => a.label === label);
    const good = await byLabel("good");
    const limited = await byLabel("limited");

    let r = ok(await cli(["accounts", "disable", "good"], { env }));
    assert.match(r.stdout, /Disabled anthropic #2 "good"/);
    assert.equal((await byLabel("good")).status, "disabled");
    r = ok(await cli(["accounts", "enable", good.id.slice(0, 9)], { env }));
    assert.match(r.stdout, /Enabled anthropic #2 "good"/);
    assert.equal((await byLabel("good")).enabled, true);

    // Re-enabling clears a cooldown ("try it again now").
    ok(await cli(["accounts", "disable", "limited"], { env }));
    ok(await cli(["accounts", "enable", "limited", "--json"], { env }));
    assert.equal((await byLabel("limited")).status, "active");

    r = ok(await cli(["accounts", "move", "good", "1"], { env }));
    assert.match(r.stdout, /Moved anthropic "good" from #2 to #1/);
    assert.deepEqual(tableRows(r.stdout).map((c) => c[2]), ["good", "limited"]);
    assert.deepEqual(
      (await accountsOf(state.memberKey)).filter((a) => a.provider === "anthropic").sort((a, b) => a.position - b.position).map((a) => a.id),
      [good.id, limited.id],
    );
    fails(await cli(["accounts", "move", "good", "0"], { env }), /position/);

    ok(await cli(["accounts", "rename", "anthropic:2", "spare"], { env }));
    assert.equal((await byLabel("spare"))?.id, limited.id);

    fails(await cli(["accounts", "rm", "spare"], { env }), /--yes/);
    assert.ok(await byLabel("spare"), "an unconfirmed rm must delete nothing");
    fails(await cli(["accounts", "disable", "nope-nothing"], { env }), /no account matches "nope-nothing"/, /subpool accounts/);
    r = ok(await cli(["accounts", "rm", "spare", "--yes"], { env }));
    assert.match(r.stdout, /Removed anthropic #2 "spare"/);
    assert.equal(await byLabel("spare"), undefined);
  });

  it("a label or prefix that fits several accounts is refused with every match and its id", T, async () => {
    const env = configFor("member");
    const twins = [];
    for (const provider of ["anthropic", "openai"]) {
      const r = await api("POST", "/api/accounts?check=false", state.memberKey, { provider, type: "api", key: `sk-twin-${provider}-${tag}`, label: "twin" });
      assert.equal(r.status, 201, r.text);
      twins.push(r.json);
    }
    // The gateway keeps labels unique ("twin", "twin 2"): the exact label names one account.
    const exact = twins.find((a) => a.label === "twin");
    assert.match(ok(await cli(["accounts", "disable", "twin"], { env })).stdout, new RegExp(`Disabled ${exact.provider} #${exact.position} "twin"`));
    ok(await cli(["accounts", "enable", exact.id], { env }));
    // A first part of both is refused, listing each match with provider:position and id; nothing changes.
    const r = fails(await cli(["accounts", "disable", "tw"], { env }), /"tw" matches 2 accounts:/, /by its id or <provider>:<position>/);
    for (const a of twins) assert.match(r.stderr, new RegExp(`${a.provider}:${a.position}\\s+"${a.label}"\\s+${a.id}`));
    for (const a of (await accountsOf(state.memberKey)).filter((x) => x.label.startsWith("twin"))) assert.equal(a.enabled, true);
    for (const a of twins) ok(await cli(["accounts", "rm", a.id, "--yes"], { env }));
  });

  it("accounts: a unique first part of a label names the account (`accounts move work 1` for \"work key\")", T, async () => {
    const user = (await api("POST", "/admin/users", state.adminToken, { name: `labels-${tag}` })).json;
    const env = { ...configFor("none"), SUBPOOL_URL: state.url, SUBPOOL_KEY: user.key };
    for (const label of ["personal", "work key"]) assert.equal((await api("POST", "/api/accounts?check=false", user.key, { provider: "anthropic", type: "api", key: `sk-ant-api03-${label.replace(" ", "-")}-${tag}`, label })).status, 201);
    const r = ok(await cli(["accounts", "move", "work", "1"], { env }));
    assert.match(r.stdout, /Moved anthropic "work key" from #2 to #1/);
    assert.equal((await api("POST", "/api/accounts?check=false", user.key, { provider: "openai", type: "api", key: `sk-proj-workshop-${tag}`, label: "workshop" })).status, 201);
    const amb = fails(await cli(["accounts", "disable", "work"], { env }), /"work" matches 2 accounts:/);
    assert.match(amb.stderr, /anthropic:1\s+"work key"/);
    assert.match(amb.stderr, /openai:1\s+"workshop"/);
    ok(await cli(["accounts", "disable", "openai:1"], { env }));
    fails(await cli(["accounts", "disable", "anthropic:7"], { env }), /no anthropic account at position 7/);
  });

  it("accounts: the table shows an old error as old, a failed refresh's reason, and last use", T, async () => {
    const user = (await api("POST", "/admin/users", state.adminToken, { name: `errors-${tag}` })).json;
    const env = { ...configFor("none"), SUBPOOL_URL: state.url, SUBPOOL_KEY: user.key };
    const add = async (body) => {
      const r = await api("POST", "/api/accounts?check=false", user.key, body);
      assert.equal(r.status, 201, r.text);
      return r.json;
    };
    // A login whose access token the provider refuses and whose refresh token is dead (invalid_grant).
    const expired = await add({ provider: "anthropic", type: "oauth", refresh: `sk-ant-ort01-dead-${tag}`, access: `sk-ant-oat01-dead-${tag}`, expires: Date.now() + 3_600_000, label: "dead login" });
    const flaky = await add({ provider: "anthropic", type: "api", key: FAKE.anthropicFlakyKey, label: "flaky" });
    await add({ provider: "anthropic", type: "api", key: FAKE.anthropicGoodKey, label: "good" });
    // Two conversations (session affinity would keep one conversation on the account that served it).
    const send = (n) =>
      fetch(`${state.url}/anthropic/v1/messages`, {
        method: "POST",
        headers: { "x-api-key": user.key, "anthropic-version": "2023-06-01", "content-type": "application/json" },
        body: JSON.stringify({ model: "claude-e2e", max_tokens: 8, messages: [{ role: "user", content: `conversation ${n}` }] }),
        signal: AbortSignal.timeout(20_000),
      }).then(async (res) => ({ status: res.status, account: res.headers.get("x-subpool-account"), text: await res.text() }));
    // 1: the dead login's token is refused and so is its refresh (needs_reauth), "flaky" answers 500, "good" serves.
    flakyFailures = 1;
    const first = await send(1);
    assert.equal(first.status, 200, first.text);
    // 2: "flaky" works now.
    const second = await send(2);
    assert.equal(second.account, flaky.id, second.text);

    const r = ok(await cli(["accounts"], { env }));
    const rows = Object.fromEntries(tableRows(r.stdout).map((c) => [c[2], c]));
    assert.equal(rows["dead login"][4], "needs_reauth");
    assert.equal(rows.flaky[7], "200", "the last status stands alone: the 500 came before it");
    assert.match(rows.flaky[6], /^(just now|\d+s ago)$/);
    assert.equal(rows.good[7], "200");
    assert.match(r.stdout, /anthropic:1 "dead login" needs a new login: .*(refus|invalid_grant).*subpool login anthropic/);
    assert.match(r.stdout, /anthropic:2 "flaky": earlier error, before its last success.*: .*500/);
    assert.ok(!r.stdout.includes(FAKE.anthropicFlakyKey));
    assert.ok(expired.id);
  });

  it("accounts check: the provider's verdict for each account; a refused key exits 1 and says what to do", T, async () => {
    const user = (await api("POST", "/admin/users", state.adminToken, { name: `checks-${tag}` })).json;
    const env = { ...configFor("none"), SUBPOOL_URL: state.url, SUBPOOL_KEY: user.key };
    for (const [label, key] of [["fine", FAKE.anthropicGoodKey], ["revoked", `sk-ant-api03-revoked-${tag}`]]) {
      const r = await api("POST", "/api/accounts?check=false", user.key, { provider: "anthropic", type: "api", key, label });
      assert.equal(r.status, 201, r.text);
    }
    const all = await cli(["accounts", "check"], { env });
    assert.equal(all.code, 1, show(all));
    const rows = Object.fromEntries(tableRows(all.stdout).map((c) => [c[0], c]));
    assert.equal(rows['anthropic:1 "fine"']?.[2], "ok", all.stdout);
    assert.equal(rows['anthropic:2 "revoked"']?.[2], "refused", all.stdout);
    assert.match(all.stderr, /anthropic:2 "revoked": a new key is needed/);
    const one = JSON.parse(ok(await cli(["accounts", "check", "fine", "--json"], { env })).stdout);
    assert.deepEqual(one.checks.map((c) => [c.label, c.verdict]), [["fine", "ok"]]);
    assert.ok(!all.stdout.includes(FAKE.anthropicGoodKey));
    // The refused key is out of rotation: `accounts` says a new key is needed, not a login.
    const list = ok(await cli(["accounts"], { env }));
    assert.match(list.stdout + list.stderr, /anthropic:2 "revoked" needs a new key: .*accounts rm/);
    assert.doesNotMatch(list.stdout + list.stderr, /"revoked" needs a new login/);
    // The gateway allows three checks of one account a minute: past that the account says so, the others are still checked.
    for (let i = 0; i < 2; i++) await cli(["accounts", "check", "fine"], { env });
    const limited = await cli(["accounts", "check"], { env });
    assert.notEqual(limited.code, 2, show(limited));
    const after = Object.fromEntries(tableRows(limited.stdout).map((c) => [c[0], c]));
    assert.equal(after['anthropic:1 "fine"']?.[2], "could not tell", limited.stdout);
    assert.ok(after['anthropic:2 "revoked"'], limited.stdout);
  });

  it("accounts add stores an API key read from stdin", T, async () => {
    // A user of its own: the member holds this key already, and one key is one account (409).
    const user = (await api("POST", "/admin/users", state.adminToken, { name: `stdin-${tag}` })).json;
    const env = { ...configFor("none"), SUBPOOL_URL: state.url, SUBPOOL_KEY: user.key };
    const key = FAKE.anthropicGoodKey;
    const r = ok(await cli(["accounts", "add", "claude", "--key", "-", "--label", "from cli", "--json"], { env, input: `${key}\n` }));
    const a = JSON.parse(r.stdout);
    assert.equal(a.provider, "anthropic");
    assert.equal(a.label, "from cli");
    assert.equal(a.check?.verdict, "ok");
    assert.ok(!r.stdout.includes(key));
    ok(await cli(["accounts", "rm", a.id, "--yes"], { env }));
    const plain = ok(await cli(["accounts", "add", "claude", "--key", "-", "--label", "again"], { env, input: `${key}\n` }));
    assert.match(plain.stdout, /Added anthropic #\d "again"/);
    assert.match(plain.stderr, /The provider accepted the key/);
    ok(await cli(["accounts", "rm", "again", "--yes"], { env }));
    // A key the provider refuses is not kept (the gateway checks it first).
    const before = (await accountsOf(user.key)).length;
    fails(await cli(["accounts", "add", "claude", "--key", "-"], { env, input: `sk-ant-api03-wrong-${tag}\n` }), /refused this credential/, /nothing was stored/);
    assert.equal((await accountsOf(user.key)).length, before);
    fails(await cli(["accounts", "add", "copilot", "--key", "-"], { env, input: "x\n" }), /subpool login github-copilot/);
  });

  // ---- env -----------------------------------------------------------------------------------

  it("env prints exactly what to set for each tool; the key is $SUBPOOL_KEY (guarded) unless --show-key", T, async () => {
    // The member's shell, with SUBPOOL_KEY exported as `subpool env` asks.
    const env = { ...configFor("member"), SUBPOOL_KEY: "k-from-shell" };
    const u = state.url;
    const guarded = '"${SUBPOOL_KEY:?set SUBPOOL_KEY to your gateway key first}"';
    const expected = {
      "claude-code": [`export ANTHROPIC_BASE_URL="${u}/anthropic"`, `export ANTHROPIC_API_KEY=${guarded}`],
      "anthropic-sdk": [`export ANTHROPIC_BASE_URL="${u}/anthropic"`, `export ANTHROPIC_API_KEY=${guarded}`],
      "openai-sdk": [`export OPENAI_BASE_URL="${u}/openai/v1"`, `export OPENAI_API_KEY=${guarded}`],
      copilot: [`export OPENAI_BASE_URL="${u}/copilot"`, `export OPENAI_API_KEY=${guarded}`],
    };
    const code = (stdout) => stdout.split("\n").filter((l) => l && !l.startsWith("#"));
    for (const [tool, lines] of Object.entries(expected)) {
      const r = ok(await cli(["env", tool, "--shell", "sh"], { env }));
      assert.deepEqual(code(r.stdout), lines, `subpool env ${tool}`);
      assert.match(r.stdout, /^# SUBPOOL_KEY must hold your gateway key: export SUBPOOL_KEY='<your gateway key>'$/m, `subpool env ${tool} says how to export the key`);
      assert.ok(!r.stdout.includes(state.memberKey) && !r.stderr.includes(state.memberKey), `subpool env ${tool} must not print the key`);
      // bash and zsh read the same lines.
      for (const shell of ["bash", "zsh"]) assert.equal(ok(await cli(["env", tool, "--shell", shell], { env })).stdout, r.stdout, `--shell ${shell}`);
      // The lines really set what they say, and refuse to set an empty key.
      const sh = execFileSync("sh", ["-c", `${r.stdout}\nprintf '%s|%s' "$${lines[0].split("=")[0].split(" ")[1]}" "$${lines[1].split("=")[0].split(" ")[1]}"`], { env: { ...process.env, SUBPOOL_KEY: "k1" } }).toString();
      assert.equal(sh, `${lines[0].split('"')[1]}|k1`);
      const noKey = spawnSync("sh", ["-c", `${r.stdout}\necho reached`], { env: { ...process.env, SUBPOOL_KEY: "" } });
      assert.notEqual(noKey.status, 0);
      assert.match(noKey.stderr.toString(), /set SUBPOOL_KEY to your gateway key first/);
      assert.doesNotMatch(noKey.stdout.toString(), /reached/);
    }
    // Claude Code's first-run question is answered in the output itself (a comment), not only on stderr.
    const claude = ok(await cli(["env", "claude-code", "--shell", "sh"], { env }));
    assert.match(claude.stdout, /^# First run: Claude Code asks "Do you want to use this API key\?" and preselects No: choose Yes/m);
    // Copilot: what the client must send itself.
    const copilot = ok(await cli(["env", "copilot"], { env }));
    assert.match(copilot.stdout, /^# .*Editor-Version.*Copilot-Integration-Id/m);
    assert.match(copilot.stdout, new RegExp(`^# .*${u.replace(/[.]/g, "\\.")}/copilot/chat/completions`, "m"));

    const oc = ok(await cli(["env", "opencode"], { env }));
    assert.deepEqual(JSON.parse(oc.stdout).provider, {
      anthropic: { options: { baseURL: `${u}/anthropic/v1`, apiKey: "{env:SUBPOOL_KEY}" } },
      openai: { options: { baseURL: `${u}/openai/v1`, apiKey: "{env:SUBPOOL_KEY}" } },
    });
    assert.match(oc.stderr, /opencode\.json/);

    const fish = ok(await cli(["env", "openai-sdk", "--shell", "fish"], { env }));
    assert.deepEqual(code(fish.stdout), [`set -gx OPENAI_BASE_URL "${u}/openai/v1"`, "set -gx OPENAI_API_KEY $SUBPOOL_KEY"]);
    const ps = ok(await cli(["env", "claude-code", "--shell", "powershell"], { env }));
    assert.deepEqual(code(ps.stdout), [`$env:ANTHROPIC_BASE_URL = '${u}/anthropic'`, "$env:ANTHROPIC_API_KEY = $env:SUBPOOL_KEY"]);

    const list = JSON.parse(ok(await cli(["env", "list", "--json"], { env })).stdout);
    assert.deepEqual(list.tools.map((t) => t.tool), ["claude-code", "opencode", "codex", "anthropic-sdk", "openai-sdk", "copilot"]);
    fails(await cli(["env", "vim"], { env }), /unknown tool "vim"/, /claude-code, opencode, codex, anthropic-sdk, openai-sdk, copilot/);
    fails(await cli(["env", "claude-code", "--shell", "tcsh"], { env }), /Allowed choices are sh, bash, zsh, fish, powershell/);
  });

  it("env without SUBPOOL_KEY exported: eval \"$(subpool env claude-code)\" sets the saved key; on a terminal it says so; with no saved key it refuses", T, async () => {
    const env = configFor("member"); // cliEnv() drops SUBPOOL_* from the environment
    // For eval (stdout is not a terminal): the lines carry the key `subpool setup` saved.
    const piped = ok(await cli(["env", "claude-code", "--shell", "sh"], { env }));
    assert.deepEqual(piped.stdout.split("\n").filter((l) => l && !l.startsWith("#")), [`export ANTHROPIC_BASE_URL="${state.url}/anthropic"`, `export ANTHROPIC_API_KEY='${state.memberKey}'`]);
    assert.match(piped.stderr, /SUBPOOL_KEY is not set in this shell: these lines carry your saved gateway key/);
    assert.ok(!piped.stderr.includes(state.memberKey), "the key goes to stdout only");
    const evaluated = execFileSync("sh", ["-c", `eval "$("${NODE}" "${BIN()}" env claude-code --shell sh)"\nprintf '%s|%s' "$ANTHROPIC_BASE_URL" "$ANTHROPIC_API_KEY"`], { env: cliEnv(env), encoding: "utf8" });
    assert.equal(evaluated, `${state.url}/anthropic|${state.memberKey}`);
    // The key works: the lines point a client at the gateway as this member.
    const me = await api("GET", "/api/me", evaluated.split("|")[1]);
    assert.equal(me.status, 200);
    // On a terminal the key is not printed: the lines refer to $SUBPOOL_KEY and a note says what eval does.
    const tty = spawnSync("script", ["-qec", `"${NODE}" "${BIN()}" env claude-code --shell sh`, "/dev/null"], { env: cliEnv(env), encoding: "utf8" });
    assert.equal(tty.status, 0, tty.stdout);
    assert.ok(!tty.stdout.includes(state.memberKey), `a terminal does not get the key:\n${tty.stdout}`);
    assert.match(tty.stdout, /export ANTHROPIC_API_KEY="\$\{SUBPOOL_KEY:\?/);
    assert.match(tty.stdout, /SUBPOOL_KEY is not set in this shell: eval "\$\(subpool env claude-code\)" sets these with your saved key/);
    // No saved key (only a URL): nothing for eval to run, and it says what to do.
    const r = fails(await cli(["env", "claude-code", "--url", state.url], { env: configFor("nobody") }), /SUBPOOL_KEY is not set in this shell, so these lines would set an empty ANTHROPIC_API_KEY, and no key is saved/, /subpool setup/);
    assert.equal(r.stdout, "", "nothing for eval to run");
    assert.equal(r.code, 1);
    const shown = ok(await cli(["env", "claude-code", "--show-key", "--shell", "sh"], { env }));
    const lines = shown.stdout.split("\n").filter((l) => l && !l.startsWith("#"));
    assert.deepEqual(lines, [`export ANTHROPIC_BASE_URL="${state.url}/anthropic"`, `export ANTHROPIC_API_KEY='${state.memberKey}'`]);
    const sh = execFileSync("sh", ["-c", `${shown.stdout}\nprintf '%s' "$ANTHROPIC_API_KEY"`], { env: { ...process.env, SUBPOOL_KEY: "" } }).toString();
    assert.equal(sh, state.memberKey);
    // File-based tools read SUBPOOL_KEY when they start: printing their file is fine, with a reminder.
    const codex = ok(await cli(["env", "codex"], { env }));
    assert.match(codex.stderr, /SUBPOOL_KEY is not set in this shell yet/);
  });

  it("env codex: appending to a config.toml that ends in a table keeps it valid (a provider and a profile)", T, async () => {
    const { parse: parseToml } = await import("smol-toml");
    const parse = (t) => JSON.parse(JSON.stringify(parseToml(t)));
    const env = { ...configFor("member"), SUBPOOL_KEY: "k" };
    const original = 'model = "gpt-5"\n\n[mcp_servers.docs]\ncommand = "npx"\nargs = ["-y", "docs-mcp"]\n';
    const r = ok(await cli(["env", "codex"], { env }));
    const conf = parse(original + r.stdout); // what `subpool env codex >> ~/.codex/config.toml` leaves
    assert.equal(conf.model, "gpt-5");
    assert.deepEqual(conf.mcp_servers, { docs: { command: "npx", args: ["-y", "docs-mcp"] } }, "nothing lands inside the last table");
    assert.deepEqual(conf.model_providers, { subpool: { name: "subpool", base_url: `${state.url}/openai/v1`, env_key: "SUBPOOL_KEY", wire_api: "responses" } });
    assert.deepEqual(conf.profiles, { subpool: { model_provider: "subpool" } });
    assert.equal(conf.model_provider, undefined, "a top-level key cannot be appended");
    assert.match(r.stdout, /codex --profile subpool/);
    assert.match(r.stdout, /subpool env codex --write/);
  });

  it("env codex --write: model_provider goes above the first table; the provider table is added once; a .bak keeps the old file", T, async () => {
    const { parse: parseToml } = await import("smol-toml");
    const parse = (t) => JSON.parse(JSON.stringify(parseToml(t)));
    const home = join(state.dir, "codex-home");
    mkdirSync(home, { recursive: true });
    const file = join(home, "config.toml");
    const env = { ...configFor("member"), SUBPOOL_KEY: "k", CODEX_HOME: home };
    const original = [
      "# my codex settings",
      'model = "gpt-5"',
      'model_provider = "openai"',
      "notify = [",
      '  "notify-send",',
      '  "[codex]",',
      "]",
      "tags = [",
      '  ["a", "b"],',
      "]",
      "",
      "# docs server",
      "[mcp_servers.docs]",
      'command = "npx"',
      'args = ["-y", "docs-mcp"]',
      "",
    ].join("\n");
    writeFileSync(file, original);
    const w = ok(await cli(["env", "codex", "--write"], { env }));
    assert.match(w.stdout, /model_provider = "subpool" \(was "openai"\)/);
    assert.match(w.stdout, /\[model_providers\.subpool\] added/);
    const text = readFileSync(file, "utf8");
    const conf = parse(text);
    assert.equal(conf.model_provider, "subpool");
    assert.equal(conf.model, "gpt-5");
    assert.deepEqual(conf.notify, ["notify-send", "[codex]"]);
    assert.deepEqual(conf.tags, [["a", "b"]], "a value line that starts with [ is not a table");
    assert.deepEqual(conf.mcp_servers, { docs: { command: "npx", args: ["-y", "docs-mcp"] } });
    assert.deepEqual(conf.model_providers.subpool, { name: "subpool", base_url: `${state.url}/openai/v1`, env_key: "SUBPOOL_KEY", wire_api: "responses" });
    assert.ok(text.startsWith("# my codex settings\n"), "comments and order stay");
    assert.equal(readFileSync(`${file}.bak`, "utf8"), original);
    // Again: nothing to change.
    const again = ok(await cli(["env", "codex", "--write"], { env }));
    assert.match(again.stdout, /already uses the gateway/);
    assert.equal(readFileSync(file, "utf8"), text);
    // A file that has none of it, ending in a table: the key goes above the first table.
    writeFileSync(file, '[projects."/work"]\ntrust_level = "trusted"\n');
    ok(await cli(["env", "codex", "--write", "--url", "http://gw.example:9"], { env }));
    const fresh = parse(readFileSync(file, "utf8"));
    assert.equal(fresh.model_provider, "subpool");
    assert.deepEqual(fresh.projects, { "/work": { trust_level: "trusted" } });
    assert.equal(fresh.model_providers.subpool.base_url, "http://gw.example:9/openai/v1");
    // No file yet: it is created.
    rmSync(file);
    ok(await cli(["env", "codex", "--write"], { env }));
    assert.equal(parse(readFileSync(file, "utf8")).model_provider, "subpool");
    fails(await cli(["env", "claude-code", "--write"], { env }), /--write is for codex only/);
  });

  // ---- errors --------------------------------------------------------------------------------

  it("a gateway that is down: says so and how to start it", T, async () => {
    const port = await freePort();
    const r = fails(
      await cli(["accounts"], { env: { ...configFor("none"), SUBPOOL_URL: `http://127.0.0.1:${port}`, SUBPOOL_KEY: "sp_x" } }),
      new RegExp(`cannot reach the gateway at http://127\\.0\\.0\\.1:${port}: is it running\\? \\(npm run dev\\)`),
    );
    assert.equal(r.code, 1);
    fails(await cli(["setup", "--url", `http://127.0.0.1:${port}`, "--key", "sp_x"], { env: configFor("down") }), /cannot reach the gateway/, /nothing was saved/);
    assert.equal(existsSync(configFor("down").SUBPOOL_CONFIG), false);
  });

  it("usage errors exit 2 with a suggestion", T, async () => {
    const r = await cli(["acounts"], { env: configFor("member") });
    assert.equal(r.code, 2, show(r));
    assert.match(r.stderr, /Did you mean accounts\?/);
    const help = ok(await cli(["--help"]));
    assert.match(help.stdout, /subpool setup/);
  });

  it("an unknown subcommand is named as such; the default list takes no operands", T, async () => {
    const env = configFor("member");
    for (const [args, re] of [
      [["accounts", "frob"], /unknown command 'frob'/],
      [["users", "frob"], /unknown command 'frob'/],
      [["accounts", "lst"], /unknown command 'lst'[\s\S]*Did you mean/],
    ]) {
      const r = await cli(args, { env });
      assert.equal(r.code, 2, show(r));
      assert.match(r.stderr, re, show(r));
      assert.doesNotMatch(r.stderr, /too many arguments/, show(r));
    }
    const r = await cli(["accounts", "list", "frob"], { env });
    assert.equal(r.code, 2, show(r));
    assert.match(r.stderr, /too many arguments for 'list'/);
  });

  it("help: every command that takes an account or a user explains it; piping help into head does not crash", T, async () => {
    for (const cmd of [["accounts", "rm"], ["accounts", "disable"], ["accounts", "enable"], ["accounts", "rename"], ["accounts", "move"], ["users", "rm"], ["users", "rotate"]]) {
      const r = ok(await cli([...cmd, "--help"]));
      assert.match(r.stdout, /^Arguments:\n {2}(account|user) +\S/m, `${cmd.join(" ")} --help:\n${r.stdout}`);
    }
    // `subpool help login | head -3`: the reader closes the pipe early.
    const out = execFileSync("sh", ["-c", `"${NODE}" "${CLI}" help login | head -1; "${NODE}" "${CLI}" --help | head -c 10 >/dev/null; echo "exit=$?"`], { env: cliEnv() }).toString();
    assert.match(out, /^Usage: subpool login/);
    const err = spawnSync("sh", ["-c", `"${NODE}" "${CLI}" help accounts | head -1 >/dev/null`], { env: cliEnv() });
    assert.doesNotMatch(err.stderr.toString(), /EPIPE|Error/, err.stderr.toString());
    // Many lines into a pipe that closes at once: still no crash report.
    const big = spawnSync("sh", ["-c", `for i in 1 2 3 4 5 6 7 8; do "${NODE}" "${CLI}" env list --json; done | head -c 1 >/dev/null`], { env: cliEnv() });
    assert.equal(big.stderr.toString(), "");
  });

  // ---- profiles ------------------------------------------------------------------------------

  it("profiles: --profile admin keeps the admin token beside the member's own key; SUBPOOL_PROFILE does the same", T, async () => {
    const env = configFor("profiles");
    ok(await cli(["setup", "--url", state.url, "--key", "-"], { env, input: `${state.memberKey}\n` }));
    const saved = ok(await cli(["setup", "--profile", "admin", "--url", state.url, "--key", "-"], { env, input: `${state.adminToken}\n` }));
    assert.match(saved.stdout, /as the profile "admin"/);
    const file = JSON.parse(readFileSync(env.SUBPOOL_CONFIG, "utf8"));
    assert.deepEqual(file, { url: state.url, key: state.memberKey, profiles: { admin: { url: state.url, key: state.adminToken } } });
    if (process.platform !== "win32") assert.equal(statSync(env.SUBPOOL_CONFIG).mode & 0o777, 0o600);

    assert.equal(JSON.parse(ok(await cli(["whoami", "--json"], { env })).stdout).user.name, state.memberName);
    for (const args of [["--profile", "admin", "whoami", "--json"], ["whoami", "--json", "--profile", "admin"]]) {
      const who = JSON.parse(ok(await cli(args, { env })).stdout);
      assert.equal(who.user.name, "admin-token");
      assert.equal(who.profile, "admin");
    }
    assert.equal(JSON.parse(ok(await cli(["whoami", "--json"], { env: { ...env, SUBPOOL_PROFILE: "admin" } })).stdout).user.name, "admin-token");
    // A chosen profile is not overridden by a SUBPOOL_KEY exported for the tools.
    assert.equal(JSON.parse(ok(await cli(["--profile", "admin", "whoami", "--json"], { env: { ...env, SUBPOOL_KEY: state.memberKey } })).stdout).user.name, "admin-token");
    ok(await cli(["--profile", "admin", "users", "list"], { env }));
    fails(await cli(["users", "list"], { env }), /admin/);

    const list = JSON.parse(ok(await cli(["profiles", "--json"], { env })).stdout);
    assert.deepEqual(list.profiles.map((p) => [p.name, p.url]), [["default", state.url], ["admin", state.url]]);
    const table = ok(await cli(["profiles"], { env }));
    assert.ok(!table.stdout.includes(state.adminToken) && !table.stdout.includes(state.memberKey), "profiles never shows keys");
    fails(await cli(["--profile", "nope", "accounts"], { env }), /there is no profile "nope"/, /subpool setup --profile nope/);
    fails(await cli(["--profile", "a/b", "accounts"], { env }), /not a profile name/);
    // Setting up the default again keeps the admin profile.
    ok(await cli(["setup", "--url", state.url, "--key", "-"], { env, input: `${state.memberKey}\n` }));
    assert.equal(JSON.parse(readFileSync(env.SUBPOOL_CONFIG, "utf8")).profiles.admin.key, state.adminToken);
  });

  // ---- login (the gateway's OAuth flows against the fake provider) ---------------------------

  it("login anthropic: prints the address, takes the pasted code#state, adds the account", T, async () => {
    const env = configFor("member");
    const p = spawnCli(["login", "anthropic"], env);
    const m = await p.waitFor(/(http:\/\/127\.0\.0\.1:\d+\/anthropic-oauth\/authorize\?\S+)/);
    const auth = new URL(m[1]);
    assert.equal(auth.searchParams.get("code_challenge_method"), "S256");
    const st = auth.searchParams.get("state");
    await p.waitFor(/Paste the code/);
    p.child.stdin.end(`${FAKE.anthropicCode}#${st}\n`);
    const r = ok(await p.done);
    assert.match(r.stdout, new RegExp(`Added anthropic #\\d "claude-${tag}@example\\.com"`));
    const all = `${r.stdout}${r.stderr}`;
    assert.ok(!all.includes(FAKE.anthropicRefresh) && !all.includes(FAKE.anthropicAccess));
    const a = (await accountsOf(state.memberKey)).find((x) => x.label === `claude-${tag}@example.com`);
    assert.equal(a?.type, "oauth");
  });

  it("login anthropic: a wrong code is refused with the gateway's reason", T, async () => {
    const env = configFor("member");
    const p = spawnCli(["login", "anthropic"], env);
    const m = await p.waitFor(/(http:\/\/\S+\/anthropic-oauth\/authorize\?\S+)/);
    const st = new URL(m[1]).searchParams.get("state");
    await p.waitFor(/Paste the code/);
    p.child.stdin.end(`wrong-code#${st}\n`);
    fails(await p.done, /refused the code/);
  });

  it("login openai: takes the pasted localhost:1455 address (--no-callback)", T, async () => {
    const env = configFor("member");
    const p = spawnCli(["login", "chatgpt", "--no-callback", "--label", "chatgpt via paste", "--json"], env);
    const m = await p.waitFor(/(http:\/\/\S+\/openai-oauth\/authorize\?\S+)/);
    const auth = new URL(m[1]);
    assert.equal(auth.searchParams.get("redirect_uri"), "http://localhost:1455/auth/callback");
    await p.waitFor(/Paste the address/);
    p.child.stdin.end(`http://localhost:1455/auth/callback?code=${FAKE.openaiCode}&scope=openid&state=${auth.searchParams.get("state")}\n`);
    const r = ok(await p.done);
    const done = JSON.parse(r.stdout);
    assert.equal(done.created, true);
    assert.equal(done.account.provider, "openai");
    assert.equal(done.account.type, "oauth");
    assert.equal(done.account.label, "chatgpt via paste");
  });

  it("login openai: catches the browser's redirect on localhost:1455; signing in again refreshes the account", T, async (t) => {
    if (!(await portIsFree(1455))) return t.skip("port 1455 is in use on this machine");
    const env = configFor("member");
    const p = spawnCli(["login", "openai", "--json"], env);
    const m = await p.waitFor(/(http:\/\/\S+\/openai-oauth\/authorize\?\S+)/);
    await p.waitFor(/Waiting for the browser/);
    const st = new URL(m[1]).searchParams.get("state");
    // What the browser does after sign-in: a stranger's state is turned away, ours is taken.
    const stray = await fetch(`http://127.0.0.1:1455/auth/callback?code=x&state=not-${st}`);
    assert.equal(stray.status, 400);
    const page = await fetch(`http://127.0.0.1:1455/auth/callback?code=${FAKE.openaiCode}&state=${st}`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /close this tab/);
    const r = ok(await p.done);
    const done = JSON.parse(r.stdout);
    // Same ChatGPT identity as the pasted login above: that account is refreshed, not duplicated.
    assert.equal(done.created, false);
    assert.equal(done.account.label, "chatgpt via paste");
    assert.equal((await accountsOf(state.memberKey)).filter((a) => a.provider === "openai" && a.type === "oauth").length, 1);
    assert.equal(await portIsFree(1455), true, "the listener is closed afterwards");
  });

  it("login openai: the browser's page says \"Signed in\" only when the gateway did, and says so when it did not", T, async (t) => {
    if (!(await portIsFree(1455))) return t.skip("port 1455 is in use on this machine");
    const env = configFor("member");
    const p = spawnCli(["login", "openai", "--json"], env);
    const m = await p.waitFor(/(http:\/\/\S+\/openai-oauth\/authorize\?\S+)/);
    await p.waitFor(/Waiting for the browser/);
    const st = new URL(m[1]).searchParams.get("state");
    // A code the token endpoint refuses (expired, used): the page must not claim success.
    const page = await fetch(`http://127.0.0.1:1455/auth/callback?code=not-${FAKE.openaiCode}&state=${st}`);
    assert.equal(page.status, 502);
    const text = await page.text();
    assert.match(text, /Not signed in/);
    assert.doesNotMatch(text, /<h2>Signed in/);
    fails(await p.done, /refused the code/);
  });

  it("login github-copilot: shows the device code and polls until it is entered", T, async () => {
    const env = configFor("member");
    devicePendingPolls = 2;
    const p = spawnCli(["login", "copilot"], env);
    p.child.stdin.end();
    await p.waitFor(new RegExp(FAKE.githubUserCode));
    await p.waitFor(/https:\/\/github\.com\/login\/device/);
    const r = ok(await p.done);
    assert.equal(devicePendingPolls, 0, "the CLI polled through the pending answers");
    assert.match(r.stdout, new RegExp(`Added github-copilot #1 "octo-${tag}"`));
    const all = `${r.stdout}${r.stderr}`;
    assert.ok(!all.includes(FAKE.githubToken) && !all.includes(FAKE.copilotToken));
  });

  // ---- import --------------------------------------------------------------------------------

  it("import: finds the usual files of opencode, Claude Code and Codex, asks, then uploads", T, async () => {
    const env = configFor("member");
    const home = join(state.dir, "import-home");
    const files = {
      opencode: join(home, ".local", "share", "opencode", "auth.json"),
      claude: join(home, ".claude", ".credentials.json"),
      codex: join(home, ".codex", "auth.json"),
    };
    const secrets = {
      opencodeKey: `sk-ant-api03-opencode-${tag}`,
      claudeRefresh: `sk-ant-ort01-claude-${tag}`,
      codexRefresh: `codex-refresh-${tag}`,
    };
    const write = (p, v) => {
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, JSON.stringify(v), { mode: 0o600 });
    };
    write(files.opencode, { anthropic: { type: "api", key: secrets.opencodeKey }, mistral: { type: "api", key: "m-key" } });
    write(files.claude, { claudeAiOauth: { accessToken: `sk-ant-oat01-claude-${tag}`, refreshToken: secrets.claudeRefresh, expiresAt: Date.now() + 3600_000, subscriptionType: "max" } });
    write(files.codex, {
      OPENAI_API_KEY: null,
      tokens: {
        id_token: jwt({ email: `codex-${tag}@example.com`, "https://api.openai.com/auth": { chatgpt_account_id: `acct-codex-${tag}`, chatgpt_user_id: "u1" } }),
        access_token: jwt({ exp: Math.floor(Date.now() / 1000) + 3600, "https://api.openai.com/auth": { chatgpt_account_id: `acct-codex-${tag}`, chatgpt_user_id: "u1" } }),
        refresh_token: secrets.codexRefresh,
        account_id: `acct-codex-${tag}`,
      },
    });
    const homeEnv = { ...env, HOME: home, USERPROFILE: home, XDG_DATA_HOME: join(home, ".local", "share") };
    const before = (await accountsOf(state.memberKey)).length;

    // Without a terminal to ask in, nothing is uploaded unless --yes says so.
    const asked = fails(await cli(["import"], { env: homeEnv }), /--yes/);
    assert.match(asked.stderr, /opencode ~\/\.local\/share\/opencode\/auth\.json: anthropic \(api\), mistral \(api\)/);
    assert.match(asked.stderr, /Claude Code ~\/\.claude\/\.credentials\.json: Claude login \(anthropic, oauth\)/);
    assert.match(asked.stderr, /Codex ~\/\.codex\/auth\.json: ChatGPT login \(openai, oauth\)/);
    assert.match(asked.stderr, /refresh tokens work once/);
    assert.equal((await accountsOf(state.memberKey)).length, before);

    const r = ok(await cli(["import", "--yes"], { env: homeEnv }));
    const rows = tableRows(r.stdout);
    assert.deepEqual(
      rows.map((c) => [c[1], c[2], c[3], c[4]]).sort(),
      [
        ["anthropic", "anthropic", "api key", "created"],
        ["claudeAiOauth", "anthropic", "oauth", "created"],
        ["tokens", "openai", "oauth", "created"],
      ].sort(),
    );
    assert.match(r.stdout, /refused mistral: provider "mistral" is not one subpool serves/);
    assert.match(r.stdout, /3 accounts added, 0 updated, 0 already there/);
    const all = `${r.stdout}${r.stderr}${asked.stderr}`;
    for (const s of Object.values(secrets)) assert.ok(!all.includes(s), "import must not print a credential");
    assert.equal((await accountsOf(state.memberKey)).length, before + 3);

    // An explicit file, again: nothing changes; --json for scripts.
    const again = JSON.parse(ok(await cli(["import", files.claude, "--yes", "--json"], { env: homeEnv })).stdout);
    assert.equal(again.results[0].result.format, "claude-code");
    assert.deepEqual(again.results[0].result.imported.map((i) => i.action), ["unchanged"]);
  });

  it("import: clear errors for a missing file, a non-JSON file, and no usual files", T, async () => {
    const env = configFor("member");
    fails(await cli(["import", join(state.dir, "nope.json"), "--yes"], { env }), /nope\.json does not exist/);
    const bad = join(state.dir, "bad.json");
    writeFileSync(bad, "not json");
    fails(await cli(["import", bad, "--yes"], { env }), /is not JSON/);
    const empty = join(state.dir, "empty-home");
    mkdirSync(empty);
    fails(await cli(["import"], { env: { ...env, HOME: empty, USERPROFILE: empty, XDG_DATA_HOME: join(empty, "share") } }), /found no credential files/, /subpool import <file>/);
  });
  // ---- the README's journey ------------------------------------------------------------------

  it("from nothing to two Claude accounts, one Copilot account and an imported opencode file, as the README walks it", T, async () => {
    const admin = configFor("admin");
    const name = `newcomer-${tag}`;
    const key = JSON.parse(ok(await cli(["users", "add", name, "--json"], { env: admin })).stdout).key;
    const env = configFor("newcomer");
    ok(await cli(["setup", "--url", state.url, "--key", "-"], { env, input: `${key}\n` }));

    for (const [code, extra] of [[FAKE.anthropicCode, []], [`${FAKE.anthropicCode}-2`, ["--label", "second"]]]) {
      const p = spawnCli(["login", "anthropic", ...extra], env);
      const m = await p.waitFor(/(http:\/\/\S+\/anthropic-oauth\/authorize\?\S+)/);
      await p.waitFor(/Paste the code/);
      p.child.stdin.end(`${code}#${new URL(m[1]).searchParams.get("state")}\n`);
      ok(await p.done);
    }
    devicePendingPolls = 1;
    const copilot = spawnCli(["login", "github-copilot"], env);
    copilot.child.stdin.end();
    ok(await copilot.done);

    const file = join(state.dir, "newcomer-opencode-auth.json");
    writeFileSync(file, JSON.stringify({ openai: { type: "api", key: `sk-proj-newcomer-${tag}` }, anthropic: { type: "api", key: `sk-ant-api03-newcomer-${tag}` } }), { mode: 0o600 });
    ok(await cli(["import", file, "--yes"], { env }));

    const listed = JSON.parse(ok(await cli(["accounts", "--json"], { env })).stdout).accounts;
    // Labels are unique per user: the second "opencode API key" gets a number.
    const kinds = listed.map((a) => `${a.provider}/${a.type}/${a.label.replace(/ \d+$/, "")}`).sort();
    assert.deepEqual(kinds, [
      `anthropic/api/opencode API key`,
      `anthropic/oauth/claude-${tag}@example.com`,
      `anthropic/oauth/second`,
      `github-copilot/oauth/octo-${tag}`,
      `openai/api/opencode API key`,
    ]);
    assert.ok(listed.every((a) => a.status === "active"));
    const table = ok(await cli(["accounts"], { env })).stdout;
    assert.equal(tableRows(table).length, 5);
  });
});
