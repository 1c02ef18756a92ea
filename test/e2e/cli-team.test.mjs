// End to end: the team lead's commands of the `subpool` CLI (dist/cli) against the gateway started
// as the README says (test/e2e/gateway.mjs), with a fake Anthropic API on 127.0.0.1 and a local
// webhook receiver that checks each delivery's x-subpool-signature itself:
//   subpool users [--days N]        usage columns after real requests through the gateway; a member
//                                   whose account needs a new login is flagged
//   subpool limits <user> …          set, shown, refused (the gateway's 400 named by its option); a
//                                   request over a limit gets the 429 and `subpool me` shows it
//   subpool me                       the member's limits, what is left, when each frees
//   subpool alerts [set|test|rm] [--team]
// Offline only: nothing leaves 127.0.0.1.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CLI, NODE, ensureBuilt } from "./cli-binary.mjs";
import { ROOT, startGateway } from "./gateway.mjs";

const T = { timeout: 60_000 };

// ---- the fake Anthropic API ---------------------------------------------------------------------

const tag = randomBytes(5).toString("hex");
const GOOD_KEY = `sk-ant-api03-team-good-${tag}`;
const DEAD_KEY = `sk-ant-api03-team-dead-${tag}`;
/** What one answer costs: 1,000 input + 200 output + 300 cache read = 1,500 tokens. */
const TOKENS_PER_ANSWER = 1500;

function sendJson(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

function startFake() {
  const server = createServer(async (req, res) => {
    for await (const _ of req);
    const key = req.headers["x-api-key"];
    const refused = () => sendJson(res, 401, { type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } });
    switch (`${req.method} ${new URL(req.url, "http://x").pathname}`) {
      case "POST /v1/messages":
        if (key !== GOOD_KEY) return refused();
        return sendJson(res, 200, {
          id: "msg_team",
          type: "message",
          role: "assistant",
          model: "claude-sonnet-e2e",
          content: [{ type: "text", text: "hi" }],
          stop_reason: "end_turn",
          usage: { input_tokens: 1000, output_tokens: 200, cache_read_input_tokens: 300, cache_creation_input_tokens: 0 },
        });
      case "POST /v1/messages/count_tokens":
        return key === GOOD_KEY ? sendJson(res, 200, { input_tokens: 3 }) : refused();
      default:
        return sendJson(res, 404, { error: "fake: no such route" });
    }
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

// ---- the webhook receiver: verifies every delivery's signature with the secrets it was given --------

const receiver = {
  server: /** @type {import("node:http").Server | null} */ (null),
  /** Secrets by path ("/team", "/mine"): what `alerts set` printed. */
  secrets: new Map(),
  /** The status to answer with when the signature is good (500: a broken receiver). */
  answer: 204,
  /** Every delivery: path, event, whether its signature verified, the body as received. */
  got: [],
  url: "",
};

/** The receiver's check, as a team's receiver would do it: HMAC-SHA256 of the raw body, compared in constant time. */
function signatureOk(secret, body, header) {
  if (!secret || typeof header !== "string") return false;
  const want = Buffer.from(`sha256=${createHmac("sha256", secret).update(body).digest("hex")}`);
  const got = Buffer.from(header);
  return got.length === want.length && timingSafeEqual(got, want);
}

function startReceiver() {
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    const path = new URL(req.url, "http://x").pathname;
    const verified = signatureOk(receiver.secrets.get(path), body, req.headers["x-subpool-signature"]);
    let json = null;
    try {
      json = JSON.parse(body.toString("utf8"));
    } catch {}
    receiver.got.push({ path, verified, event: json?.event ?? null, json, text: body.toString("utf8") });
    res.writeHead(verified ? receiver.answer : 401).end();
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

// ---- running the CLI ----------------------------------------------------------------------------

const state = { gw: /** @type {import("./gateway.mjs").Gateway | null} */ (null), fake: null, dir: "", home: "", url: "", adminToken: "", member: { name: "", key: "", id: "" } };

const binDir = () => join(state.dir, "bin");

function cliEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith("SUBPOOL_") || ["XDG_CONFIG_HOME", "XDG_DATA_HOME", "CODEX_HOME", "CLAUDE_CONFIG_DIR", "FORCE_COLOR", "CI", "COLUMNS"].includes(k)) continue;
    env[k] = v;
  }
  return { ...env, HOME: state.home, USERPROFILE: state.home, XDG_CONFIG_HOME: join(state.home, ".config"), SUBPOOL_NO_BROWSER: "1", NO_COLOR: "1", PATH: `${binDir()}${delimiter}${env.PATH ?? ""}`, ...extra };
}

/** Runs `subpool …` to the end (stdin closed). */
function cli(args, { env = {} } = {}) {
  const child = spawn(NODE, [join(binDir(), "subpool"), ...args], { cwd: state.dir, env: cliEnv(env), stdio: ["ignore", "pipe", "pipe"] });
  const out = { stdout: "", stderr: "" };
  child.stdout.on("data", (d) => (out.stdout += d));
  child.stderr.on("data", (d) => (out.stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`subpool ${args.join(" ")} did not finish\n${out.stdout}\n${out.stderr}`));
    }, 25_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, ...out });
    });
  });
}

const show = (r) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

function ok(r) {
  assert.equal(r.code, 0, show(r));
  return r;
}

function fails(r, code, ...patterns) {
  assert.equal(r.code, code, `expected exit ${code}\n${show(r)}`);
  for (const p of patterns) assert.match(r.stderr, p, show(r));
  return r;
}

const configFor = (name) => ({ SUBPOOL_CONFIG: join(state.dir, "configs", name, "config.json") });
const ADMIN = () => configFor("admin");
const MEMBER = () => configFor("member");
const api = (method, path, key, body) => state.gw.api(method, path, key, body);

/** Rows of a cli-table3 table: the cells of each body line. */
function tableRows(stdout) {
  return stdout
    .split("\n")
    .filter((l) => l.startsWith("│"))
    .map((l) => l.split("│").slice(1, -1).map((c) => c.trim()))
    .slice(1);
}

function tableHead(stdout) {
  const line = stdout.split("\n").find((l) => l.startsWith("│"));
  return line ? line.split("│").slice(1, -1).map((c) => c.trim()) : [];
}

/** One message through the gateway, as Claude Code sends it. */
async function message(key, model = "claude-sonnet-4-5") {
  const r = await fetch(`${state.url}/anthropic/v1/messages`, {
    method: "POST",
    headers: { "x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json" },
    body: JSON.stringify({ model, max_tokens: 8, messages: [{ role: "user", content: "hi" }] }),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await r.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, headers: r.headers, json, text };
}

/** Polls `fn` until it returns a truthy value (limits and counts reach the gateway within about a second). */
async function eventually(fn, what, ms = 20_000) {
  const until = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (last && (typeof last !== "object" || last.done !== false)) return last;
    if (Date.now() > until) assert.fail(`${what}: not within ${ms / 1000} s; last: ${JSON.stringify(last, null, 1)?.slice(0, 2000)}`);
    await sleep(250);
  }
}

/** A new member (through the CLI) with one account, added without a check. */
async function newMember(prefix, accountKey) {
  const name = `${prefix}-${tag}`;
  const m = JSON.parse(ok(await cli(["users", "add", name, "--json"], { env: ADMIN() })).stdout);
  const add = await api("POST", "/api/accounts?check=false", m.key, { provider: "anthropic", type: "api", key: accountKey, label: `${prefix} key` });
  assert.equal(add.status, 201, add.text);
  return { name, key: m.key, id: m.id, account: add.json };
}

describe("subpool CLI: the team lead's commands", { timeout: 300_000 }, () => {
  before(async () => {
    ensureBuilt();
    state.dir = mkdtempSync(join(tmpdir(), "subpool-cli-team-"));
    state.home = join(state.dir, "home");
    mkdirSync(state.home);
    mkdirSync(binDir());
    symlinkSync(CLI, join(binDir(), "subpool"));
    state.fake = await startFake();
    receiver.server = await startReceiver();
    receiver.url = `http://127.0.0.1:${receiver.server.address().port}`;
    state.gw = await startGateway({
      vars: { ANTHROPIC_API_BASE: `http://127.0.0.1:${state.fake.address().port}` },
      persistTo: join(state.dir, "state"),
      secrets: () => [state.member.key, GOOD_KEY, DEAD_KEY, ...receiver.secrets.values()],
    });
    state.url = state.gw.url;
    state.adminToken = state.gw.adminToken;
    ok(await cli(["setup", "--url", state.url, "--key", state.adminToken], { env: ADMIN() }));
  });

  after(async () => {
    await state.gw?.stop();
    await new Promise((r) => (state.fake ? state.fake.close(r) : r()));
    await new Promise((r) => (receiver.server ? receiver.server.close(r) : r()));
    if (state.dir) rmSync(state.dir, { recursive: true, force: true });
  });

  // ---- users with usage ---------------------------------------------------------------------

  it("users: usage columns after real requests through the gateway; --json is GET /admin/usage as is", T, async () => {
    const m = await newMember("una", GOOD_KEY);
    state.member = m;
    ok(await cli(["setup", "--url", state.url, "--key", m.key], { env: MEMBER() }));
    const before = tableRows(ok(await cli(["users"], { env: ADMIN() })).stdout).find((c) => c[0] === m.name);
    assert.deepEqual(before.slice(1, 9), ["member", "never", "1/1", "0", "0", "0", "0", "-"]);

    for (let i = 0; i < 3; i++) assert.equal((await message(m.key)).status, 200);

    const r = await eventually(async () => {
      const r = ok(await cli(["users"], { env: ADMIN() }));
      const row = tableRows(r.stdout).find((c) => c[0] === m.name);
      return row?.[4] === "3" ? r : { done: false, row };
    }, "the three requests in `subpool users`");
    assert.deepEqual(tableHead(r.stdout), ["name", "role", "last seen", "accounts", "req today", "tokens today", "req 7d", "tokens 7d", "limits", "added", "id"]);
    const row = tableRows(r.stdout).find((c) => c[0] === m.name);
    assert.match(row[2], /^(just now|\d+s ago)$/, row[2]);
    // 3 × 1,500 tokens (input, output and cache read, as limits count them).
    assert.deepEqual([row[3], row[4], row[5], row[6], row[7], row[8], row[10]], ["1/1", "3", "4.5k", "3", "4.5k", "-", m.id]);
    // Never a member's credential, account label or account id.
    for (const secret of [GOOD_KEY, m.key, m.account.id, m.account.label]) assert.ok(!r.stdout.includes(secret), `users shows ${secret}`);

    const json = JSON.parse(ok(await cli(["users", "--json"], { env: ADMIN() })).stdout);
    const direct = (await api("GET", "/admin/usage?days=7", state.adminToken)).json;
    assert.deepEqual(json.users.map((u) => u.id), direct.users.map((u) => u.id));
    const mine = json.users.find((u) => u.id === m.id);
    assert.deepEqual(Object.keys(mine).sort(), ["accounts", "createdAt", "days", "id", "lastSeenAt", "limits", "name", "role"]);
    assert.equal(mine.days.length, 7);
    // The added column: the day the member was created, UTC.
    assert.equal(row[9], new Date(mine.createdAt).toISOString().slice(0, 10));
    assert.equal(mine.days.at(-1).requests, 3);
    const month = JSON.parse(ok(await cli(["users", "list", "--days", "30", "--json"], { env: ADMIN() })).stdout);
    assert.equal(month.users.find((u) => u.id === m.id).days.length, 30);
    assert.deepEqual(tableHead(ok(await cli(["users", "--days", "30"], { env: ADMIN() })).stdout).slice(6, 8), ["req 30d", "tokens 30d"]);
    fails(await cli(["users", "--days", "91"], { env: ADMIN() }), 2, /1 to 90/);
    // A narrow terminal leaves the added date out, then the id.
    const wide = r.stdout.split("\n").find((l) => l.startsWith("│")).length;
    const lessWide = ok(await cli(["users"], { env: { ...ADMIN(), COLUMNS: String(wide - 1) } }));
    assert.deepEqual(tableHead(lessWide.stdout).slice(-2), ["limits", "id"]);
    const narrow = ok(await cli(["users"], { env: { ...ADMIN(), COLUMNS: "100" } }));
    assert.equal(tableHead(narrow.stdout).at(-1), "limits");
    // Members are not shown the team.
    fails(await cli(["users"], { env: MEMBER() }), 1, /admin/);
  });

  it("users: a member whose account needs a new login is flagged", T, async () => {
    const d = await newMember("dex", DEAD_KEY);
    const check = await api("POST", `/api/accounts/${d.account.id}/check`, d.key);
    assert.equal(check.json.verdict, "invalid", check.text);
    assert.equal(check.json.account.status, "needs_reauth");
    const r = ok(await cli(["users"], { env: ADMIN() }));
    const row = tableRows(r.stdout).find((c) => c[0] === d.name);
    assert.equal(row[3], "0/1, 1 needs login");
    assert.match(r.stderr, new RegExp(`${d.name} has an account that needs a new login`));
    assert.ok(!r.stdout.includes(d.account.label) && !r.stderr.includes(d.account.label), "no account label in the team view");
    assert.ok(!tableRows(r.stdout).find((c) => c[0] === state.member.name)[3].includes("login"));
  });

  // ---- limits ---------------------------------------------------------------------------------

  it("limits: set with human numbers, shown after and in users; refusals name the option; admins only", T, async () => {
    const m = state.member;
    const set = ok(await cli(["limits", m.name, "--rpm", "60", "--tokens-per-day", "2M", "--tokens-per-month", "500k", "--models", "claude-sonnet-*,claude-haiku-*"], { env: ADMIN() }));
    assert.match(set.stdout, /requests per minute\s+60\n/);
    assert.match(set.stdout, /tokens per UTC day\s+2,000,000 \(2M\)/);
    assert.match(set.stdout, /tokens per UTC month\s+500,000 \(500k\)/);
    assert.match(set.stdout, /models\s+claude-sonnet-\*, claude-haiku-\*/);
    const listed = (await api("GET", "/admin/users", state.adminToken)).json.users.find((u) => u.id === m.id);
    assert.deepEqual(listed.limits, { requestsPerMinute: 60, tokensPerDay: 2_000_000, tokensPerMonth: 500_000, models: ["claude-sonnet-*", "claude-haiku-*"] });

    // Shown without options (by id prefix too), and in short in `users`.
    assert.match(ok(await cli(["limits", m.id.slice(0, 8)], { env: ADMIN() })).stdout, /tokens per UTC day\s+2,000,000/);
    const row = tableRows(ok(await cli(["users"], { env: ADMIN() })).stdout).find((c) => c[0] === m.name);
    assert.equal(row[8], "60 rpm · 2M/day · 500k/month · claude-sonnet-*,claude-haiku-*");

    // One field changed, the others kept; none lifts one.
    const json = JSON.parse(ok(await cli(["limits", m.name, "--tokens-per-month", "none", "--json"], { env: ADMIN() })).stdout);
    assert.deepEqual(json.limits, { requestsPerMinute: 60, tokensPerDay: 2_000_000, tokensPerMonth: null, models: ["claude-sonnet-*", "claude-haiku-*"] });

    // The gateway's 400, named by the option; nothing changed.
    fails(await cli(["limits", m.name, "--rpm", "-1"], { env: ADMIN() }), 1, /refused --rpm \(requests per minute\): must be 0 or more/, /nothing was changed/);
    fails(await cli(["limits", m.name, "--models", "claude sonnet!"], { env: ADMIN() }), 1, /refused --models/, /a model name or glob/);
    // Split on commas only: a name with a space is sent as typed and refused, not saved as two names nobody typed.
    fails(await cli(["limits", m.name, "--models", "claude opus"], { env: ADMIN() }), 1, /refused --models \(models\): a model name or glob/, /nothing was changed/);
    fails(await cli(["limits", m.name, "--tokens-per-day", "1e99"], { env: ADMIN() }), 2, /not a number/);
    fails(await cli(["limits", m.name, "--rpm", "lots"], { env: ADMIN() }), 2, /--rpm/, /not a number/);
    assert.deepEqual((await api("GET", "/admin/users", state.adminToken)).json.users.find((u) => u.id === m.id).limits, json.limits);
    fails(await cli(["limits", `nobody-${tag}`, "--rpm", "1"], { env: ADMIN() }), 1, /no user matches/);
    // A member runs an admin command: the hint says what to do, not the error again.
    const member = fails(await cli(["limits", m.name, "--rpm", "1"], { env: MEMBER() }), 1, /admin/);
    const hint = member.stderr.split("\n").find((l) => l.includes("→"));
    assert.ok(hint, member.stderr);
    assert.doesNotMatch(hint, /this needs an admin's key/);
    assert.match(hint, /your saved key is a member's: ask your team's admin, or run it with an admin's key: save it with `.*subpool setup --profile admin`, then add --profile admin, or SUBPOOL_KEY=<an admin's key>/);
    // With an admin's profile saved beside the member's key, the hint names it.
    const both = { SUBPOOL_CONFIG: join(state.dir, "configs", "both", "config.json") };
    ok(await cli(["setup", "--url", state.url, "--key", m.key], { env: both }));
    ok(await cli(["setup", "--profile", "lead", "--url", state.url, "--key", state.adminToken], { env: both }));
    assert.match(fails(await cli(["users"], { env: both }), 1, /needs an admin/).stderr, /→ your saved key is a member's: ask your team's admin, or run it with an admin's key: --profile lead, or SUBPOOL_KEY=<an admin's key>/);
    assert.match(fails(await cli(["users"], { env: { ...both, SUBPOOL_KEY: m.key } }), 1).stderr, /→ the key in SUBPOOL_KEY is a member's: .*--profile lead, or put an admin's key in SUBPOOL_KEY/);
    ok(await cli(["--profile", "lead", "users"], { env: both }));
    // The models globs, each trimmed.
    const trimmed = JSON.parse(ok(await cli(["limits", m.name, "--models", " claude-sonnet-* , claude-haiku-* ", "--json"], { env: ADMIN() })).stdout);
    assert.deepEqual(trimmed.limits.models, ["claude-sonnet-*", "claude-haiku-*"]);
  });

  it("me: the limits and what is left; over a limit the request gets the 429 and `me` shows it", T, async () => {
    const m = state.member;
    const mine = ok(await cli(["me"], { env: MEMBER() }));
    assert.match(mine.stdout, new RegExp(`^${m.name} \\(member, ${m.id}\\)`));
    assert.deepEqual(tableHead(mine.stdout), ["limit", "set to", "left now", "window resets"]);
    const rows = Object.fromEntries(tableRows(mine.stdout).map((c) => [c[0], c]));
    assert.equal(rows["requests per minute"][1], "60");
    assert.equal(rows["requests per minute"][2], "60 of 60 left this minute");
    assert.match(rows["requests per minute"][3], /^in \d+s$/);
    assert.match(rows["tokens per UTC day"][2], /^1,99\d,\d{3} of 2,000,000 left today \(UTC\)$/, "2M less what the member used today");
    assert.match(rows["tokens per UTC day"][3], /^in \d+(h|m|s).* \(00:00 UTC\)$/);
    assert.match(mine.stdout, /Models: claude-sonnet-\*, claude-haiku-\*/);

    // A model outside the allow-list: 403 with x-subpool-limit: models.
    const other = await message(m.key, "claude-opus-4-1");
    assert.equal(other.status, 403, other.text);
    assert.equal(other.headers.get("x-subpool-limit"), "models");

    // The member already used 4,500 tokens today: a day's limit of 1,000 is crossed.
    ok(await cli(["limits", m.name, "--tokens-per-day", "1000"], { env: ADMIN() }));
    const refused = await eventually(async () => {
      const r = await message(m.key);
      return r.status === 429 ? r : { done: false, status: r.status };
    }, "the 429 over the day's limit");
    assert.equal(refused.headers.get("x-subpool-limit"), "tokensPerDay");
    assert.ok(Number(refused.headers.get("retry-after")) > 0);
    assert.equal(refused.json.type, "error");
    assert.equal(refused.json.error.type, "rate_limit_error");
    assert.match(refused.json.error.message, /team's limit of 1,000 tokens per day/);

    // The README quotes this message as Claude Code shows it: the words must be the gateway's.
    const quoted = readmeLimitMessage();
    const pattern = new RegExp(`^${quoted.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/\d[\d,]*/g, "\\d[\\d,]*").replace(/It frees in .*$/, "It frees in [^.]+\\.")}$`);
    assert.match(refused.json.error.message, pattern, `README, "For the team lead": ${quoted}`);

    const over = ok(await cli(["me"], { env: MEMBER() }));
    const day = tableRows(over.stdout).find((c) => c[0] === "tokens per UTC day");
    assert.deepEqual(day.slice(1, 3), ["1,000", "0 of 1,000 left today (UTC): refused until it resets"]);
    assert.match(over.stderr, /Over the limit: requests get 429/);

    // A limit of 0: the admin paused the member; it does not free with a window. `users` says stopped, not "0 rpm".
    ok(await cli(["limits", m.name, "--rpm", "0", "--tokens-per-day", "0"], { env: ADMIN() }));
    const paused = ok(await cli(["me"], { env: MEMBER() }));
    const pausedRows = Object.fromEntries(tableRows(paused.stdout).map((c) => [c[0], c]));
    assert.deepEqual(pausedRows["requests per minute"].slice(1), ["0", "paused by your admin", "when your admin lifts it"]);
    assert.deepEqual(pausedRows["tokens per UTC day"].slice(1), ["0", "paused by your admin", "when your admin lifts it"]);
    assert.doesNotMatch(paused.stdout, /refused until it/);
    assert.match(paused.stderr, /Paused by your admin: requests per minute and tokens per UTC day set to 0/);
    const stoppedRow = tableRows(ok(await cli(["users"], { env: { ...ADMIN(), COLUMNS: "250" } })).stdout).find((c) => c[0] === m.name);
    assert.ok(stoppedRow[8].startsWith("stopped (0 requests/minute) · no tokens allowed (0/day) · "), stoppedRow[8]);
    assert.match(ok(await cli(["limits", m.name], { env: ADMIN() })).stdout, /requests per minute\s+0: stopped \(0 requests\/minute\)\n\s+tokens per UTC day\s+0: no tokens allowed \(0\/day\)/);
    assert.equal(JSON.parse(ok(await cli(["me", "--json"], { env: MEMBER() })).stdout).left.tokensPerDay, 0);

    // Lifted: served again, and `me` says there is nothing.
    ok(await cli(["limits", m.name, "--rpm", "none", "--tokens-per-day", "none", "--models", "none"], { env: ADMIN() }));
    await eventually(async () => (await message(m.key, "claude-opus-4-1")).status === 200, "a request once the limits are lifted");
    assert.match(ok(await cli(["me"], { env: MEMBER() })).stdout, /No team limits/);
    assert.match(ok(await cli(["me"], { env: ADMIN() })).stdout, /ADMIN_TOKEN[\s\S]*No limits apply/);
  });

  // ---- alerts ---------------------------------------------------------------------------------

  it("alerts --team: set prints the secret once, test delivers a signed body, show has the last delivery, rm", T, async () => {
    const none = ok(await cli(["alerts", "--team"], { env: ADMIN() }));
    assert.match(none.stdout, /No team alert target is set/);
    fails(await cli(["alerts", "test", "--team"], { env: ADMIN() }), 1, /no team alert target is set/, /alerts set <url> --team/);

    const set = ok(await cli(["alerts", "set", `${receiver.url}/team`, "--team"], { env: ADMIN() }));
    const secret = /^\s+(whsec_\S+)$/m.exec(set.stdout)?.[1];
    assert.ok(secret, set.stdout);
    assert.match(set.stdout, /shown this once/);
    assert.match(set.stdout, /x-subpool-signature: sha256=<hex HMAC-SHA256 of the raw\s+request body, keyed with this secret>/);
    receiver.secrets.set("/team", secret);

    const shown = ok(await cli(["alerts", "--team"], { env: ADMIN() }));
    assert.match(shown.stdout, new RegExp(`go to ${receiver.url}/team`));
    assert.match(shown.stdout, /last delivery\s+none yet/);
    assert.ok(!shown.stdout.includes(secret), "the secret is shown once only");

    const test = ok(await cli(["alerts", "test", "--team"], { env: ADMIN() }));
    assert.match(test.stdout, /Test delivered: the receiver answered 204/);
    const got = receiver.got.filter((g) => g.path === "/team");
    assert.equal(got.length, 1);
    assert.equal(got[0].verified, true, "the signature verifies with the secret `alerts set` printed");
    assert.equal(got[0].event, "test");
    assert.ok(!got[0].text.includes(secret));
    assert.match(ok(await cli(["alerts", "--team"], { env: ADMIN() })).stdout, /last delivery\s+(just now|\d+s ago): delivered \(204\)/);

    // A real event: a member's key refused by a check reaches the team's target, signed.
    const v = await newMember("vic", DEAD_KEY);
    assert.equal((await api("POST", `/api/accounts/${v.account.id}/check`, v.key)).json.verdict, "invalid");
    const refused = await eventually(() => receiver.got.find((g) => g.path === "/team" && g.event === "account.refused" && g.json?.user?.name === v.name), "account.refused at the team's receiver", 30_000);
    assert.equal(refused.verified, true);

    // A receiver that fails: exit 1, and the failure is what `alerts` shows.
    receiver.answer = 500;
    try {
      fails(await cli(["alerts", "test", "--team"], { env: ADMIN() }), 1, /not delivered: 127\.0\.0\.1:\d+ answered 500/);
      const json = await cli(["alerts", "test", "--team", "--json"], { env: ADMIN() });
      assert.equal(json.code, 1);
      assert.deepEqual((({ ok: o, status }) => ({ ok: o, status }))(JSON.parse(json.stdout)), { ok: false, status: 500 });
    } finally {
      receiver.answer = 204;
    }
    assert.match(ok(await cli(["alerts", "--team"], { env: ADMIN() })).stdout, /last delivery\s+.*failed: 127\.0\.0\.1:\d+ answered 500/);

    // Members cannot touch the team's target; the ADMIN_TOKEN has none of its own.
    fails(await cli(["alerts", "--team"], { env: MEMBER() }), 1, /for admins/, /your own alerts: .*\(without --team\); .*ask your team's admin/);
    fails(await cli(["alerts"], { env: ADMIN() }), 1, /ADMIN_TOKEN has no alert target of its own/, /--team/);

    // Setting it again would change the secret, and removing stops the alerts: both ask first; without a terminal, --yes.
    fails(await cli(["alerts", "set", `${receiver.url}/team`, "--team"], { env: ADMIN() }), 1, /replacing the team's alert target \(its signing secret changes\) needs a confirmation/, /--yes/);
    fails(await cli(["alerts", "rm", "--team"], { env: ADMIN() }), 1, /removing the team's alert target needs a confirmation/, /add --yes/);
    assert.equal((await api("GET", "/admin/alerts", state.adminToken)).status, 200, "nothing removed without --yes");
    assert.equal(ok(await cli(["alerts", "test", "--team"], { env: ADMIN() })).code, 0, "the secret did not change either");
    const rm = ok(await cli(["alerts", "rm", "--team", "--yes"], { env: ADMIN() }));
    assert.match(rm.stdout, /Removed: no more team alerts go to 127\.0\.0\.1/);
    assert.match(ok(await cli(["alerts", "--team"], { env: ADMIN() })).stdout, /No team alert target is set/);
    assert.equal((await api("GET", "/admin/alerts", state.adminToken)).status, 404);
  });

  it("alerts (a member's own): --events, refusals of the URL and event names, test, rm", T, async () => {
    assert.match(ok(await cli(["alerts"], { env: MEMBER() })).stdout, /You have no alert target set/);
    fails(await cli(["alerts", "set", "http://example.com/hook"], { env: MEMBER() }), 1, /refused the URL: http: is taken only to a loopback address/);
    fails(await cli(["alerts", "set", `${receiver.url}/mine`, "--events", "limit.reached,nope"], { env: MEMBER() }), 1, /refused --events: unknown event "nope"/);
    assert.equal((await api("GET", "/api/alerts", state.member.key)).status, 404, "a refused target is not stored");

    const set = JSON.parse(ok(await cli(["alerts", "set", `${receiver.url}/mine`, "--events", "limit.reached, account.needs_reauth", "--json"], { env: MEMBER() })).stdout);
    assert.deepEqual(set.events, ["account.needs_reauth", "limit.reached"]);
    assert.match(set.secret, /^whsec_/);
    receiver.secrets.set("/mine", set.secret);

    ok(await cli(["alerts", "test"], { env: MEMBER() }));
    const got = receiver.got.filter((g) => g.path === "/mine");
    assert.equal(got.length, 1);
    assert.equal(got[0].verified, true);
    assert.equal(got[0].json.user.name, state.member.name);

    const shown = ok(await cli(["alerts"], { env: MEMBER() }));
    assert.match(shown.stdout, /^Your alerts go to/m);
    assert.match(shown.stdout, /events\s+account\.needs_reauth, limit\.reached/);
    assert.match(shown.stdout, /last delivery\s+(just now|\d+s ago): delivered \(204\)/);
    assert.equal(JSON.parse(ok(await cli(["alerts", "--json"], { env: MEMBER() })).stdout).lastDelivery.status, 204);

    // Setting it again rotates the secret (asks first; --yes): the old one no longer verifies.
    fails(await cli(["alerts", "set", `${receiver.url}/mine`, "--json"], { env: MEMBER() }), 1, /needs a confirmation/, /--yes/);
    const again = JSON.parse(ok(await cli(["alerts", "set", `${receiver.url}/mine`, "--json", "--yes"], { env: MEMBER() })).stdout);
    assert.notEqual(again.secret, set.secret);
    assert.equal(again.events, null);
    fails(await cli(["alerts", "test"], { env: MEMBER() }), 1, /answered 401/);

    fails(await cli(["alerts", "rm"], { env: MEMBER() }), 1, /removing the alert target needs a confirmation/, /--yes/);
    ok(await cli(["alerts", "rm", "-y"], { env: MEMBER() }));
    assert.match(ok(await cli(["alerts", "rm"], { env: MEMBER() })).stdout, /nothing to remove/);
    fails(await cli(["alerts", "test"], { env: MEMBER() }), 1, /you have no alert target set/);
  });
});

/** The 429's message as the README's "For the team lead" quotes it (the text after Claude Code's "API Error: … ·"). */
function readmeLimitMessage() {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = readme.split(/^## /m).find((s) => s.startsWith("For the team lead"));
  assert.ok(section, 'README has a "## For the team lead" section');
  const line = section.split("\n").find((l) => l.includes("subpool: you reached your team's limit"));
  assert.ok(line, "the section quotes the message a member gets over a limit");
  return line.slice(line.indexOf("subpool: you reached")).trim();
}
