// End to end: rotating MASTER_KEY, the way the README says, across three starts of the gateway on
// the same local state (`npm run dev -- --persist-to <dir> --var ...`):
//   1. key A (version 1): two users, their accounts (API keys against a fake provider on 127.0.0.1);
//   2. key B as version 2, OLD_MASTER_KEYS="1:A": every account still serves; POST /admin/rewrap
//      answers {users, rewrapped, keyVersion: 2}; a member who makes a request has the gateway key
//      re-indexed under version 2;
//   3. key B only: that member's key still authenticates and every account still serves. A member
//      who made no request during the rotation needs a new key (as the README says), which an admin
//      can issue, and then every account of theirs serves too.
// Offline only: no request leaves 127.0.0.1.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startGateway } from "./gateway.mjs";

const TEST_TIMEOUT_MS = 120_000;
const tag = randomBytes(6).toString("hex");
const A = randomBytes(32).toString("base64");
const B = randomBytes(32).toString("base64");
const KEYS = {
  ant1: `sk-ant-api03-rot1-${tag}`,
  ant2: `sk-ant-api03-rot2-${tag}`,
  oai1: `sk-proj-rot1-${tag}`,
  antImported: `sk-ant-api03-rotimp-${tag}`,
  bob1: `sk-ant-api03-rotbob-${tag}`,
};
const known = new Set(Object.values(KEYS));

/**
 * The fake provider: Anthropic Messages (and its free count_tokens, which a gateway may use to check
 * a key) and OpenAI Chat Completions. Records the key each completion request carried.
 */
function startFake() {
  const seen = [];
  /** Alert deliveries to /hook: the signature and the exact body. */
  const hooks = [];
  const server = createServer((req, res) => {
    if (req.url === "/hook") {
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        hooks.push({ signature: req.headers["x-subpool-signature"], body: Buffer.concat(chunks) });
        res.writeHead(204).end();
      });
      return;
    }
    req.resume();
    req.on("end", () => {
      const anthropic = req.url?.startsWith("/v1/messages");
      const key = anthropic ? req.headers["x-api-key"] : /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
      if (req.url === "/v1/messages" || req.url === "/v1/chat/completions") seen.push({ path: req.url, key });
      const ok = known.has(key);
      const body = !ok
        ? anthropic
          ? { type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } }
          : { error: { message: "Incorrect API key provided", type: "invalid_request_error", code: "invalid_api_key" } }
        : req.url === "/v1/messages/count_tokens"
          ? { input_tokens: 1 }
          : anthropic
            ? { id: "msg_rot", type: "message", role: "assistant", model: "claude-sonnet-4-5", content: [{ type: "text", text: "ok" }], stop_reason: "end_turn", usage: { input_tokens: 1, output_tokens: 1 } }
            : { id: "chatcmpl-rot", object: "chat.completion", created: 0, model: "gpt-5", choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }] };
      const text = JSON.stringify(body);
      res.writeHead(ok ? 200 : 401, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
      res.end(text);
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, seen, hooks, base: `http://127.0.0.1:${server.address().port}` })));
}

const state = {
  /** @type {string} */ dir: "",
  /** @type {any} */ fake: null,
  /** @type {import("./gateway.mjs").Gateway | null} */ gw: null,
  adminToken: "",
  /** The team alert's signing secret, shown once when it was set (with key A). */
  alertSecret: "",
  alice: { id: "", key: "", accounts: /** @type {{id: string, provider: string, secret: string}[]} */ ([]) },
  bob: { id: "", key: "", accounts: /** @type {{id: string, provider: string, secret: string}[]} */ ([]) },
  /** Every secret of this suite, for the gateway log's redaction and the leak check. */
  secrets: () => [A, B, ...Object.values(KEYS), state.alice.key, state.bob.key, state.alertSecret].filter(Boolean),
};

const opencodeFile = () => ({ anthropic: { type: "api", key: KEYS.antImported } });
const bobFile = () => ({ anthropic: { type: "api", key: KEYS.bob1 } });

/** (Re)starts the gateway on the suite's state directory with these master-key settings. */
async function start(master) {
  await state.gw?.stop();
  state.gw = await startGateway({
    vars: { ANTHROPIC_API_BASE: state.fake.base, OPENAI_API_BASE: state.fake.base, ...master },
    persistTo: state.dir,
    secrets: state.secrets,
  });
  state.adminToken = state.gw.adminToken;
  assert.ok(state.adminToken, ".dev.vars has no ADMIN_TOKEN line");
}

const api = (method, path, key, body) => /** @type {import("./gateway.mjs").Gateway} */ (state.gw).api(method, path, key, body);

/** One proxied request; answers which account served it and which key the fake provider saw. */
async function proxied(provider, key) {
  const before = state.fake.seen.length;
  const path = provider === "anthropic" ? "/anthropic/v1/messages" : "/openai/v1/chat/completions";
  const body = provider === "anthropic" ? { model: "claude-sonnet-4-5", max_tokens: 8, messages: [{ role: "user", content: "hi" }] } : { model: "gpt-5", messages: [{ role: "user", content: "hi" }] };
  const r = await fetch(`${state.gw.url}${path}`, {
    method: "POST",
    // Each request its own conversation: session affinity must not keep it on the account before.
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", "anthropic-version": "2023-06-01", "x-subpool-session": randomBytes(8).toString("hex") },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await r.text();
  return { status: r.status, text, account: r.headers.get("x-subpool-account"), sent: state.fake.seen.slice(before).map((s) => s.key) };
}

/** Every account of the user serves: each in turn is put first and answers a request with its own key. */
async function everyAccountServes(user) {
  for (const acc of user.accounts) {
    const moved = await api("PATCH", `/api/accounts/${acc.id}`, user.key, { position: 1 });
    assert.equal(moved.status, 200, moved.text);
    const r = await proxied(acc.provider, user.key);
    assert.equal(r.status, 200, `account ${acc.id} (${acc.provider}) did not serve: ${r.status} ${r.text}`);
    assert.equal(r.account, acc.id);
    assert.equal(r.sent.length, 1, "one upstream call, no failover");
    assert.ok(r.sent[0] === acc.secret, `account ${acc.id} sent another key`);
  }
  const list = await api("GET", "/api/accounts", user.key);
  assert.equal(list.status, 200);
  for (const a of list.json.accounts) assert.equal(a.status, "active", `${a.id}: ${a.lastError}`);
}

describe("MASTER_KEY rotation, end to end", { timeout: TEST_TIMEOUT_MS * 4 }, () => {
  before(async () => {
    state.dir = mkdtempSync(join(tmpdir(), "subpool-rotation-"));
    state.fake = await startFake();
  });

  after(async () => {
    try {
      if (state.gw) {
        const log = state.gw.log();
        await state.gw.stop();
        // gateway.mjs blanks out the secrets it was given (the npm command line shows the --var
        // values); none of the gateway's own lines should have had one to blank.
        const leaked = log.split("\n").filter((l) => /subpool[:\]]/.test(l) && l.includes("<redacted>"));
        assert.deepEqual(leaked, [], "a gateway log line carried a secret");
      }
    } finally {
      await new Promise((r) => state.fake?.server.close(r) ?? r());
      if (state.dir) rmSync(state.dir, { recursive: true, force: true });
    }
  });

  it("1. with key A (version 1): two users and their accounts", { timeout: TEST_TIMEOUT_MS }, async () => {
    await start({ MASTER_KEY: A, MASTER_KEY_VERSION: "1" });
    for (const [who, name] of [["alice", `rot-alice-${tag}`], ["bob", `rot-bob-${tag}`]]) {
      const u = await api("POST", "/admin/users", state.adminToken, { name });
      assert.equal(u.status, 201, u.text);
      state[who].id = u.json.id;
      state[who].key = u.json.key;
    }
    const add = async (user, provider, secret) => {
      const r = await api("POST", "/api/accounts", user.key, { provider, type: "api", key: secret });
      assert.equal(r.status, 201, r.text);
      user.accounts.push({ id: r.json.id, provider, secret });
    };
    await add(state.alice, "anthropic", KEYS.ant1);
    await add(state.alice, "anthropic", KEYS.ant2);
    await add(state.alice, "openai", KEYS.oai1);
    const imp = await api("POST", "/api/import", state.alice.key, opencodeFile());
    assert.equal(imp.status, 200, imp.text);
    assert.deepEqual(imp.json.imported.map((i) => i.action), ["created"]);
    state.alice.accounts.push({ id: imp.json.imported[0].account.id, provider: "anthropic", secret: KEYS.antImported });
    // Bob's account comes from a file too: its fingerprint is re-taken by /admin/rewrap, not by a re-import.
    const bobImp = await api("POST", "/api/import", state.bob.key, bobFile());
    assert.deepEqual(bobImp.json.imported.map((i) => i.action), ["created"], bobImp.text);
    state.bob.accounts.push({ id: bobImp.json.imported[0].account.id, provider: "anthropic", secret: KEYS.bob1 });
    await everyAccountServes(state.alice);
    await everyAccountServes(state.bob);
    // The team alert's signing secret is sealed under the master keyring too.
    const hook = await api("PUT", "/admin/alerts", state.adminToken, { url: `${state.fake.base}/hook` });
    assert.equal(hook.status, 200, hook.text);
    state.alertSecret = hook.json.secret;
  });

  it("2. key B as version 2 with OLD_MASTER_KEYS=1:A: everything serves; /admin/rewrap re-wraps every user", { timeout: TEST_TIMEOUT_MS }, async () => {
    await start({ MASTER_KEY: B, MASTER_KEY_VERSION: "2", OLD_MASTER_KEYS: `1:${A}` });
    // Alice uses her key (hashed under version 1): found through the old key and re-indexed.
    const me = await api("GET", "/api/me", state.alice.key);
    assert.equal(me.status, 200, me.text);
    assert.equal(me.json.id, state.alice.id);
    await everyAccountServes(state.alice);
    // Re-importing the same file is still recognised (its fingerprint was taken under version 1).
    const again = await api("POST", "/api/import", state.alice.key, opencodeFile());
    assert.deepEqual(again.json.imported.map((i) => i.action), ["unchanged"], again.text);

    const rewrap = await api("POST", "/admin/rewrap", state.adminToken);
    assert.equal(rewrap.status, 200, rewrap.text);
    assert.deepEqual(rewrap.json, { users: 2, rewrapped: 2, teamAlertsResealed: true, keyVersion: 2 });
    // Nothing left under version 1.
    const twice = await api("POST", "/admin/rewrap", state.adminToken);
    assert.deepEqual(twice.json, { users: 2, rewrapped: 0, teamAlertsResealed: false, keyVersion: 2 });
    await everyAccountServes(state.alice);
    // Bob makes no request while the old key is configured.
  });

  it("3. key B only: the re-indexed gateway key authenticates and every account serves", { timeout: TEST_TIMEOUT_MS }, async () => {
    await start({ MASTER_KEY: B, MASTER_KEY_VERSION: "2" });
    const me = await api("GET", "/api/me", state.alice.key);
    assert.equal(me.status, 200, me.text);
    assert.equal(me.json.id, state.alice.id);
    await everyAccountServes(state.alice);
    const again = await api("POST", "/api/import", state.alice.key, opencodeFile());
    assert.deepEqual(again.json.imported.map((i) => i.action), ["unchanged"], again.text);
    assert.equal((await api("GET", "/api/accounts", state.alice.key)).json.accounts.length, 4);

    // Bob's key was hashed under version 1 and never used while version 1 was configured: it is
    // refused now. An admin issues a new one; his accounts were re-wrapped and serve.
    const stale = await api("GET", "/api/me", state.bob.key);
    assert.equal(stale.status, 401, stale.text);
    const reset = await api("POST", `/admin/users/${state.bob.id}/key`, state.adminToken);
    assert.equal(reset.status, 200, reset.text);
    state.bob.key = reset.json.key;
    const bobMe = await api("GET", "/api/me", state.bob.key);
    assert.equal(bobMe.status, 200, bobMe.text);
    assert.deepEqual(bobMe.json.keyResets.map((r) => r.by), [{ id: null, name: "ADMIN_TOKEN" }]);
    await everyAccountServes(state.bob);
    const bobAgain = await api("POST", "/api/import", state.bob.key, bobFile());
    assert.deepEqual(bobAgain.json.imported.map((i) => i.action), ["unchanged"], bobAgain.text);
    assert.equal((await api("GET", "/api/accounts", state.bob.key)).json.accounts.length, 1);

    // Nothing to re-wrap any more.
    assert.deepEqual((await api("POST", "/admin/rewrap", state.adminToken)).json, { users: 2, rewrapped: 0, teamAlertsResealed: false, keyVersion: 2 });
    // The team alert still signs with the secret shown under key A: it was resealed, not lost.
    const test = await api("POST", "/admin/alerts/test", state.adminToken);
    assert.equal(test.status, 200, test.text);
    assert.equal(test.json.ok, true, test.text);
    const got = state.fake.hooks.at(-1);
    assert.ok(got, "the receiver got the test alert");
    assert.equal(got.signature, `sha256=${createHmac("sha256", state.alertSecret).update(got.body).digest("hex")}`);
  });
});
