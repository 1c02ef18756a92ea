// End to end: the official Anthropic and OpenAI SDKs talk to the gateway, run exactly as the README
// says (`npm run dev -- --port ... --var ...`), which forwards to a fake provider on 127.0.0.1.
// Each account pool holds a failing key first and a good key second: the SDKs run with
// maxRetries: 0, so every recovery seen here is the gateway's own failover.
// Offline only: no request leaves 127.0.0.1.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { gzipSync } from "node:zlib";
import { setTimeout as sleep } from "node:timers/promises";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { startGateway } from "./gateway.mjs";

const TEST_TIMEOUT_MS = 20_000;

// ---------------------------------------------------------------------------------------------
// The fake provider: Anthropic /v1/messages and OpenAI /v1/chat/completions, shaped like the real
// APIs. Every request is recorded (method, path, headers, parsed body).
// ---------------------------------------------------------------------------------------------

const tag = randomBytes(6).toString("hex");
const KEYS = {
  anthropicLimited: `sk-ant-api03-e2e-limited-${tag}`,
  anthropicGood: `sk-ant-api03-e2e-good-${tag}`,
  openaiBroken: `sk-proj-e2e-broken-${tag}`,
  openaiGood: `sk-proj-e2e-good-${tag}`,
};
const ANTHROPIC_TEXT = "Hello from the fake Anthropic API.";
const ANTHROPIC_STREAM_PARTS = ["Streaming ", "through ", "subpool ", "works", "!"];
const OPENAI_TEXT = "Hello from the fake OpenAI API.";
const OPENAI_STREAM_PARTS = ["Chunks ", "arrive ", "one ", "by ", "one."];

/** @type {{method: string, path: string, headers: Record<string, string | string[] | undefined>, body: any}[]} */
const seen = [];

function sendJson(res, status, body, headers = {}, req = null) {
  const text = JSON.stringify(body);
  // Like the real APIs, compress when the client accepts it.
  if (req && /\bgzip\b/.test(req.headers["accept-encoding"] ?? "") && req.headers["x-e2e-gzip"] === "1") {
    const gz = gzipSync(text);
    res.writeHead(status, { "content-type": "application/json", "content-encoding": "gzip", "content-length": gz.length, ...headers });
    return res.end(gz);
  }
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Writes one SSE event and waits a little, so each event leaves in its own chunk. */
async function writeEvent(res, text) {
  res.write(text);
  await sleep(15);
}

function anthropicError(res, status, type, message, headers = {}) {
  sendJson(res, status, { type: "error", error: { type, message } }, { "request-id": `req_${randomBytes(8).toString("hex")}`, ...headers });
}

async function anthropicMessages(req, res, body) {
  const key = req.headers["x-api-key"];
  if (key === KEYS.anthropicLimited) {
    return anthropicError(res, 429, "rate_limit_error", "This request would exceed your organization's rate limit. Please try again later.", {
      "retry-after": "120",
      "x-should-retry": "true",
    });
  }
  if (key !== KEYS.anthropicGood) return anthropicError(res, 401, "authentication_error", "invalid x-api-key");
  if (!body || typeof body.model !== "string" || !Array.isArray(body.messages)) {
    return anthropicError(res, 400, "invalid_request_error", "messages: field required");
  }
  const id = `msg_${randomBytes(12).toString("hex")}`;
  const common = { "request-id": `req_${randomBytes(8).toString("hex")}`, "anthropic-organization-id": "org-e2e" };
  if (!body.stream) {
    return sendJson(
      res,
      200,
      {
        id,
        type: "message",
        role: "assistant",
        model: body.model,
        content: [{ type: "text", text: ANTHROPIC_TEXT }],
        stop_reason: "end_turn",
        stop_sequence: null,
        usage: { input_tokens: 12, output_tokens: 9, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, service_tier: "standard" },
      },
      common,
      req,
    );
  }
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", ...common });
  res.flushHeaders();
  const ev = (type, data) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  await writeEvent(
    res,
    ev("message_start", {
      message: {
        id,
        type: "message",
        role: "assistant",
        model: body.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 12, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, service_tier: "standard" },
      },
    }),
  );
  await writeEvent(res, ev("content_block_start", { index: 0, content_block: { type: "text", text: "" } }));
  await writeEvent(res, ev("ping", {}));
  for (const text of ANTHROPIC_STREAM_PARTS) {
    await writeEvent(res, ev("content_block_delta", { index: 0, delta: { type: "text_delta", text } }));
  }
  await writeEvent(res, ev("content_block_stop", { index: 0 }));
  await writeEvent(res, ev("message_delta", { delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: ANTHROPIC_STREAM_PARTS.length } }));
  res.end(ev("message_stop", {}));
}

function openaiError(res, status, error) {
  sendJson(res, status, { error: { param: null, code: null, ...error } }, { "x-request-id": `req_${randomBytes(8).toString("hex")}` });
}

async function openaiChat(req, res, body) {
  const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? "");
  const key = m?.[1];
  if (key === KEYS.openaiBroken) return openaiError(res, 500, { message: "server error", type: "server_error" });
  if (key !== KEYS.openaiGood) {
    return openaiError(res, 401, { message: "Incorrect API key provided.", type: "invalid_request_error", code: "invalid_api_key" });
  }
  if (!body || typeof body.model !== "string" || !Array.isArray(body.messages)) {
    return openaiError(res, 400, { message: "messages is required", type: "invalid_request_error", param: "messages" });
  }
  const id = `chatcmpl-${randomBytes(12).toString("hex")}`;
  const created = Math.floor(Date.now() / 1000);
  const common = { "x-request-id": `req_${randomBytes(8).toString("hex")}`, "openai-processing-ms": "12" };
  if (!body.stream) {
    return sendJson(
      res,
      200,
      {
        id,
        object: "chat.completion",
        created,
        model: body.model,
        choices: [{ index: 0, message: { role: "assistant", content: OPENAI_TEXT, refusal: null, annotations: [] }, logprobs: null, finish_reason: "stop" }],
        usage: { prompt_tokens: 11, completion_tokens: 8, total_tokens: 19 },
        service_tier: "default",
        system_fingerprint: "fp_e2e",
      },
      common,
    );
  }
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", ...common });
  res.flushHeaders();
  const chunk = (delta, finish_reason = null, extra = {}) =>
    `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: body.model, system_fingerprint: "fp_e2e", choices: [{ index: 0, delta, logprobs: null, finish_reason }], ...extra })}\n\n`;
  await writeEvent(res, chunk({ role: "assistant", content: "", refusal: null }));
  for (const content of OPENAI_STREAM_PARTS) await writeEvent(res, chunk({ content }));
  await writeEvent(res, chunk({}, "stop"));
  res.end("data: [DONE]\n\n");
}

function startFake() {
  const server = createServer((req, res) => {
    const parts = [];
    req.on("data", (c) => parts.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(parts).toString("utf8");
      let body = null;
      try {
        body = raw ? JSON.parse(raw) : null;
      } catch {
        body = { unparsable: raw };
      }
      const url = new URL(req.url ?? "/", "http://fake");
      seen.push({ method: req.method ?? "", path: url.pathname, headers: { ...req.headers }, body });
      const route = `${req.method} ${url.pathname}`;
      const handler = route === "POST /v1/messages" ? anthropicMessages : route === "POST /v1/chat/completions" ? openaiChat : null;
      if (!handler) return sendJson(res, 404, { error: { message: `fake provider: no route ${route}`, type: "not_found" } });
      handler(req, res, body).catch((e) => {
        if (!res.headersSent) sendJson(res, 500, { error: { message: String(e), type: "fake_bug" } });
        else res.destroy(e);
      });
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

// ---------------------------------------------------------------------------------------------
// The gateway, started the README's way (test/e2e/gateway.mjs).
// ---------------------------------------------------------------------------------------------

const state = {
  fake: null,
  fakePort: 0,
  /** @type {import("./gateway.mjs").Gateway | null} */
  gw: null,
  adminToken: "",
  userKey: "",
  accounts: { anthropic: [], openai: [] },
};

const base = () => state.gw.url;
const api = (method, path, key, body) => state.gw.api(method, path, key, body);

async function listAccounts() {
  const r = await api("GET", "/api/accounts", state.userKey);
  assert.equal(r.status, 200, r.text);
  return r.json.accounts;
}

/** GET /api/accounts until `ready` holds (at most ~2 s); notes how many reads it took. */
async function pollAccounts(t, ready) {
  let accounts = [];
  for (let i = 1; i <= 20; i++) {
    accounts = await listAccounts();
    if (ready(accounts)) {
      if (i > 1) t.diagnostic(`GET /api/accounts showed the outcome only on read ${i}`);
      return accounts;
    }
    await sleep(100);
  }
  t.diagnostic("GET /api/accounts never showed the expected outcome");
  return accounts;
}

/** Upstream requests recorded since `mark` for one path. */
const seenSince = (mark, path) => seen.slice(mark).filter((s) => s.path === path);

// ---------------------------------------------------------------------------------------------

describe("subpool end to end with the official SDKs", { timeout: 110_000 }, () => {
  /** @type {Anthropic} */ let anthropic;
  /** @type {OpenAI} */ let openai;

  before(async () => {
    state.fake = await startFake();
    state.fakePort = state.fake.address().port;
    const fakeBase = `http://127.0.0.1:${state.fakePort}`;
    state.gw = await startGateway({
      vars: { ANTHROPIC_API_BASE: fakeBase, OPENAI_API_BASE: fakeBase },
      secrets: () => [state.userKey, ...Object.values(KEYS)],
    });
    try {
      await setUp();
    } catch (e) {
      e.message += `\n--- gateway output ---\n${state.gw.log()}`;
      throw e;
    }
  });

  async function setUp() {
    // The ADMIN_TOKEN line of .dev.vars, read by startGateway once the gateway answers.
    state.adminToken = state.gw.adminToken;
    assert.ok(state.adminToken, ".dev.vars has no ADMIN_TOKEN line");

    const name = `e2e-${randomBytes(4).toString("hex")}`;
    const user = await api("POST", "/admin/users", state.adminToken, { name });
    assert.equal(user.status, 201, user.text);
    assert.equal(user.json.name, name);
    assert.equal(user.json.role, "member");
    assert.match(user.json.id, /\S/);
    assert.equal(typeof user.json.key, "string");
    state.userKey = user.json.key;

    const add = async (provider, key, label) => {
      const r = await api("POST", "/api/accounts", state.userKey, { provider, type: "api", key, label });
      assert.equal(r.status, 201, r.text);
      assert.equal(r.json.provider, provider);
      assert.equal(r.json.label, label);
      assert.ok(!r.text.includes(key), "the account answer must not echo the API key");
      return r.json;
    };
    state.accounts.anthropic.push(await add("anthropic", KEYS.anthropicLimited, "anthropic first"));
    state.accounts.anthropic.push(await add("anthropic", KEYS.anthropicGood, "anthropic second"));
    state.accounts.openai.push(await add("openai", KEYS.openaiBroken, "openai first"));
    state.accounts.openai.push(await add("openai", KEYS.openaiGood, "openai second"));

    const listed = await listAccounts();
    for (const provider of ["anthropic", "openai"]) {
      const mine = listed.filter((a) => a.provider === provider).sort((a, b) => a.position - b.position);
      assert.deepEqual(
        mine.map((a) => [a.id, a.label, a.position, a.type, a.enabled, a.status]),
        state.accounts[provider].map((a, i) => [a.id, `${provider} ${i === 0 ? "first" : "second"}`, i + 1, "api", true, "active"]),
      );
    }
    assert.ok(!JSON.stringify(listed).includes(tag), "GET /api/accounts must not show any API key");

    anthropic = new Anthropic({ baseURL: `${base()}/anthropic`, apiKey: state.userKey, maxRetries: 0, timeout: 15_000 });
    openai = new OpenAI({ baseURL: `${base()}/openai/v1`, apiKey: state.userKey, maxRetries: 0, timeout: 15_000 });
  }

  after(async () => {
    await state.gw?.stop();
    if (state.fake) {
      state.fake.closeAllConnections();
      await new Promise((r) => state.fake.close(() => r()));
    }
  });

  it("(a) Anthropic: a 429 on the first account fails over to the second and benches the first", { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const [first, second] = state.accounts.anthropic;
    const mark = seen.length;
    const before = Date.now();
    const { data, response } = await anthropic.messages
      .create({ model: "claude-sonnet-4-5", max_tokens: 64, messages: [{ role: "user", content: "Say hello." }] })
      .withResponse();
    const afterCall = Date.now();

    assert.equal(data.type, "message");
    assert.equal(data.role, "assistant");
    assert.equal(data.content[0].type, "text");
    assert.equal(data.content[0].text, ANTHROPIC_TEXT);
    assert.equal(data.stop_reason, "end_turn");
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("x-subpool-account"), second.id);
    assert.equal(response.headers.get("x-subpool-attempts"), "2");

    // Upstream: the rate-limited key, then the good key, with the same body both times.
    const up = seenSince(mark, "/v1/messages");
    assert.deepEqual(
      up.map((s) => s.headers["x-api-key"]),
      [KEYS.anthropicLimited, KEYS.anthropicGood],
    );
    assert.deepEqual(up[1].body, up[0].body, "the replayed body must equal the first attempt's");
    assert.equal(up[0].body.model, "claude-sonnet-4-5");
    assert.deepEqual(up[0].body.messages, [{ role: "user", content: "Say hello." }]);
    assert.ok(up[0].headers["anthropic-version"], "the SDK's anthropic-version header passes through");

    // The pool: the first account is benched for retry-after (120 s), the second is fine.
    // The failure is reported off the response path (waitUntil); allow it a moment to land.
    const accounts = await pollAccounts(t, (list) => list.find((a) => a.id === first.id)?.status === "cooling");
    const a1 = accounts.find((a) => a.id === first.id);
    const a2 = accounts.find((a) => a.id === second.id);
    assert.equal(a1.status, "cooling", JSON.stringify(a1));
    assert.equal(a1.lastStatus, 429);
    assert.equal(typeof a1.cooldownUntil, "number");
    assert.ok(
      a1.cooldownUntil >= before + 118_000 && a1.cooldownUntil <= afterCall + 122_000,
      `cooldownUntil ${a1.cooldownUntil} should be about now + 120 s (request sent at ${before})`,
    );
    assert.equal(a2.status, "active", JSON.stringify(a2));
    assert.equal(a2.cooldownUntil, null);
  });

  it("(b) Anthropic streaming: events pass through and the cooling account is skipped", { timeout: TEST_TIMEOUT_MS }, async () => {
    const [, second] = state.accounts.anthropic;
    const mark = seen.length;
    const stream = anthropic.messages.stream({ model: "claude-sonnet-4-5", max_tokens: 64, messages: [{ role: "user", content: "Stream please." }] });
    const { response } = await stream.withResponse();
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
    assert.equal(response.headers.get("x-subpool-account"), second.id);
    assert.equal(response.headers.get("x-subpool-attempts"), "1", "the cooling first account must not be tried");

    const types = [];
    const deltas = [];
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === "content_block_delta" && event.delta.type === "text_delta") deltas.push(event.delta.text);
    }
    const message = await stream.finalMessage();

    assert.deepEqual(types, [
      "message_start",
      "content_block_start",
      ...ANTHROPIC_STREAM_PARTS.map(() => "content_block_delta"),
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    assert.deepEqual(deltas, ANTHROPIC_STREAM_PARTS);
    assert.equal(message.content[0].text, ANTHROPIC_STREAM_PARTS.join(""));
    assert.equal(message.stop_reason, "end_turn");
    assert.equal(message.usage.output_tokens, ANTHROPIC_STREAM_PARTS.length);

    const up = seenSince(mark, "/v1/messages");
    assert.deepEqual(
      up.map((s) => s.headers["x-api-key"]),
      [KEYS.anthropicGood],
    );
    assert.equal(up[0].body.stream, true);
  });

  it("(c) OpenAI: a 500 on the first account fails over without benching it", { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const [first, second] = state.accounts.openai;
    const mark = seen.length;
    const { data, response } = await openai.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Say hello." }] })
      .withResponse();

    assert.equal(data.object, "chat.completion");
    assert.equal(data.choices[0].message.role, "assistant");
    assert.equal(data.choices[0].message.content, OPENAI_TEXT);
    assert.equal(data.choices[0].finish_reason, "stop");
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("x-subpool-account"), second.id);
    assert.equal(response.headers.get("x-subpool-attempts"), "2");

    const up = seenSince(mark, "/v1/chat/completions");
    assert.deepEqual(
      up.map((s) => s.headers.authorization),
      [`Bearer ${KEYS.openaiBroken}`, `Bearer ${KEYS.openaiGood}`],
    );
    assert.deepEqual(up[1].body, up[0].body);

    // A 5xx is the provider's trouble, not the account's: no cooldown, but the status is recorded.
    const accounts = await pollAccounts(t, (list) => list.find((a) => a.id === first.id)?.lastStatus === 500);
    const o1 = accounts.find((a) => a.id === first.id);
    const o2 = accounts.find((a) => a.id === second.id);
    assert.equal(o1.status, "active", JSON.stringify(o1));
    assert.equal(o1.cooldownUntil, null, JSON.stringify(o1));
    assert.equal(o1.lastStatus, 500, JSON.stringify(o1));
    assert.equal(o2.status, "active", JSON.stringify(o2));
  });

  it("(d) OpenAI streaming: chunks pass through and assemble into the answer", { timeout: TEST_TIMEOUT_MS }, async () => {
    const [, second] = state.accounts.openai;
    const mark = seen.length;
    const { data: stream, response } = await openai.chat.completions
      .create({ model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "Stream please." }] })
      .withResponse();
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
    assert.equal(response.headers.get("x-subpool-account"), second.id);
    // The 500 account is not benched, so it is tried again first.
    assert.equal(response.headers.get("x-subpool-attempts"), "2");

    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.equal(chunks.length, OPENAI_STREAM_PARTS.length + 2);
    assert.ok(chunks.every((c) => c.object === "chat.completion.chunk"));
    assert.equal(chunks[0].choices[0].delta.role, "assistant");
    assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? "").join(""), OPENAI_STREAM_PARTS.join(""));
    assert.equal(chunks.at(-1).choices[0].finish_reason, "stop");

    const up = seenSince(mark, "/v1/chat/completions");
    assert.deepEqual(
      up.map((s) => s.headers.authorization),
      [`Bearer ${KEYS.openaiBroken}`, `Bearer ${KEYS.openaiGood}`],
    );
    assert.equal(up[1].body.stream, true);
  });

  it("(f) a gzip-compressed upstream answer reaches the client intact", { timeout: TEST_TIMEOUT_MS }, async () => {
    const res = await fetch(`${base()}/anthropic/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": state.userKey, "anthropic-version": "2023-06-01", "content-type": "application/json", "accept-encoding": "gzip", "x-e2e-gzip": "1" },
      body: JSON.stringify({ model: "claude-sonnet-4-5", max_tokens: 16, messages: [{ role: "user", content: "hi" }] }),
    });
    assert.equal(res.status, 200);
    const msg = await res.json();
    assert.equal(msg.content[0].text, ANTHROPIC_TEXT);
  });

  it("(e) the upstream never sees the gateway key, and sees each account's key in its own header", { timeout: TEST_TIMEOUT_MS }, () => {
    assert.ok(seen.length >= 7, `expected the upstream calls of (a)-(d), saw ${seen.length}`);
    for (const s of seen) {
      for (const [name, value] of Object.entries(s.headers)) {
        const v = Array.isArray(value) ? value.join(", ") : String(value ?? "");
        assert.ok(!v.includes(state.userKey), `upstream saw the gateway key in header ${name} (${s.method} ${s.path})`);
        assert.ok(!v.includes(state.adminToken), `upstream saw the admin token in header ${name} (${s.method} ${s.path})`);
      }
      assert.ok(!JSON.stringify(s.body ?? null).includes(state.userKey), `upstream saw the gateway key in the body (${s.path})`);
      if (s.path === "/v1/messages") {
        assert.equal(s.headers.authorization, undefined, "an Anthropic API key account sends no Authorization header");
      } else if (s.path === "/v1/chat/completions") {
        assert.equal(s.headers["x-api-key"], undefined, "an OpenAI account sends no x-api-key header");
      } else if (s.path === "/v1/messages/count_tokens" || s.path === "/v1/models") {
        // Adding an account checks its key at no token cost.
      } else {
        assert.fail(`unexpected upstream request ${s.method} ${s.path}`);
      }
    }
    const anthropicKeys = new Set(seen.filter((s) => s.path === "/v1/messages").map((s) => s.headers["x-api-key"]));
    const openaiAuth = new Set(seen.filter((s) => s.path === "/v1/chat/completions").map((s) => s.headers.authorization));
    assert.deepEqual([...anthropicKeys].sort(), [KEYS.anthropicGood, KEYS.anthropicLimited].sort());
    assert.deepEqual([...openaiAuth].sort(), [`Bearer ${KEYS.openaiBroken}`, `Bearer ${KEYS.openaiGood}`].sort());
  });
});
