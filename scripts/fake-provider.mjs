#!/usr/bin/env node
// A stand-in for the Anthropic API and the OpenAI API on 127.0.0.1, for `npm run demo` and for trying
// the gateway without provider keys. Answers are shaped like the real ones, so Claude Code, Codex
// CLI and the official SDKs can talk to it through the gateway:
//   Anthropic  POST /v1/messages (JSON, or an SSE stream with "stream": true), /v1/messages/count_tokens,
//              GET /v1/models, errors as {"type":"error","error":{...}}
//   OpenAI     POST /v1/chat/completions (JSON, or chunks ending in data: [DONE]), POST /v1/responses
//              (JSON, or the Responses event stream Codex CLI reads), GET /v1/models, errors as {"error":{...}}
//
//   node scripts/fake-provider.mjs [port]     listens (default: a free port) and prints its URL and keys
//   npm run dev -- --var ANTHROPIC_API_BASE:http://127.0.0.1:<port> --var OPENAI_API_BASE:http://127.0.0.1:<port>
//
// Keys (what an account in the gateway holds):
//   sk-ant-demo-limited     Anthropic: every message answers 429 rate_limit_error with retry-after (RETRY_AFTER_S)
//   sk-ant-demo-ok          Anthropic: answers every message
//   sk-demo-openai-limited  OpenAI: every completion or response answers 429 rate_limit_exceeded with retry-after
//   sk-demo-openai-ok       OpenAI: answers
//   anything else           401 in the API's own error format (also one provider's key on the other's API)
// count_tokens and models answer for the provider's keys (checking a key costs nothing, even while limited).
import { createServer } from "node:http";
import { pathToFileURL } from "node:url";

/** The Anthropic keys. */
export const DEMO_KEYS = { limited: "sk-ant-demo-limited", ok: "sk-ant-demo-ok" };
/** The OpenAI keys. */
export const OPENAI_DEMO_KEYS = { limited: "sk-demo-openai-limited", ok: "sk-demo-openai-ok" };
const RETRY_AFTER_S = 120;
const OPENAI_MODEL = "gpt-5-demo";

const KEYS = new Map([
  [DEMO_KEYS.limited, { provider: "anthropic", key: "limited" }],
  [DEMO_KEYS.ok, { provider: "anthropic", key: "ok" }],
  [OPENAI_DEMO_KEYS.limited, { provider: "openai", key: "limited" }],
  [OPENAI_DEMO_KEYS.ok, { provider: "openai", key: "ok" }],
]);

const requestId = () => `req_demo_${Date.now().toString(36)}`;
const json = (res, status, body, headers = {}) => {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), "request-id": requestId(), "x-request-id": requestId(), ...headers });
  res.end(text);
};
const anthropicError = (res, status, type, message, headers) => json(res, status, { type: "error", error: { type, message } }, headers);
const openaiError = (res, status, type, code, message, headers) => json(res, status, { error: { message, type, param: null, code } }, headers);

const tokens = (s) => Math.max(1, Math.ceil(s.length / 4));
const said = (text) => `Hello from subpool's demo provider (a fake API on your machine). You said: "${text.slice(0, 200)}".`;

/** The text of a message's content: a string, or parts with `text` (Anthropic, Chat Completions, Responses input_text). */
const textOf = (content) => (typeof content === "string" ? content : Array.isArray(content) ? content.map((c) => (typeof c?.text === "string" ? c.text : "")).join(" ") : "");

/** The last user turn of an Anthropic or Chat Completions `messages`, or of a Responses `input`. */
function lastUserText(body) {
  if (typeof body.input === "string") return body.input;
  const turns = Array.isArray(body.messages) ? body.messages : Array.isArray(body.input) ? body.input : [];
  const last = [...turns].reverse().find((m) => m?.role === "user");
  return textOf(last?.content);
}

const pieces = (text) => text.match(/.{1,24}/gs) ?? [];

// ---- Anthropic ---------------------------------------------------------------------------------

function anthropicStream(res, msg) {
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "request-id": requestId() });
  const ev = (event, data) => res.write(`event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`);
  const text = msg.content[0].text;
  ev("message_start", { message: { ...msg, content: [], stop_reason: null, usage: { ...msg.usage, output_tokens: 1 } } });
  ev("content_block_start", { index: 0, content_block: { type: "text", text: "" } });
  for (const piece of pieces(text)) ev("content_block_delta", { index: 0, delta: { type: "text_delta", text: piece } });
  ev("content_block_stop", { index: 0 });
  ev("message_delta", { delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: msg.usage.output_tokens } });
  ev("message_stop", {});
  res.end();
}

// ---- OpenAI ------------------------------------------------------------------------------------

function chatCompletion(res, body, id) {
  const text = said(lastUserText(body));
  const model = typeof body.model === "string" ? body.model : OPENAI_MODEL;
  const created = Math.floor(Date.now() / 1000);
  const prompt = tokens(JSON.stringify(body.messages ?? []));
  const usage = { prompt_tokens: prompt, completion_tokens: tokens(text), total_tokens: prompt + tokens(text), prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } };
  const chatId = `chatcmpl-demo${id}`;
  if (body.stream !== true) {
    return json(res, 200, {
      id: chatId,
      object: "chat.completion",
      created,
      model,
      choices: [{ index: 0, message: { role: "assistant", content: text, refusal: null }, logprobs: null, finish_reason: "stop" }],
      usage,
      system_fingerprint: null,
    });
  }
  const withUsage = body.stream_options?.include_usage === true;
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-request-id": requestId() });
  const chunk = (choices, extra = {}) =>
    res.write(`data: ${JSON.stringify({ id: chatId, object: "chat.completion.chunk", created, model, system_fingerprint: null, choices, ...(withUsage ? { usage: null } : {}), ...extra })}\n\n`);
  chunk([{ index: 0, delta: { role: "assistant", content: "", refusal: null }, logprobs: null, finish_reason: null }]);
  for (const piece of pieces(text)) chunk([{ index: 0, delta: { content: piece }, logprobs: null, finish_reason: null }]);
  chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }]);
  if (withUsage) chunk([], { usage });
  res.write("data: [DONE]\n\n");
  res.end();
}

function response(res, body, id) {
  const text = said(lastUserText(body));
  const input = tokens(JSON.stringify(body.input ?? ""));
  const usage = { input_tokens: input, input_tokens_details: { cached_tokens: 0 }, output_tokens: tokens(text), output_tokens_details: { reasoning_tokens: 0 }, total_tokens: input + tokens(text) };
  const respId = `resp_demo${id}`;
  const msgId = `msg_demo${id}`;
  const base = {
    id: respId,
    object: "response",
    created_at: Math.floor(Date.now() / 1000),
    error: null,
    incomplete_details: null,
    instructions: typeof body.instructions === "string" ? body.instructions : null,
    max_output_tokens: null,
    model: typeof body.model === "string" ? body.model : OPENAI_MODEL,
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: body.store !== false,
    temperature: 1,
    text: { format: { type: "text" } },
    tool_choice: "auto",
    tools: [],
    top_p: 1,
    truncation: "disabled",
    user: null,
    metadata: {},
  };
  const part = { type: "output_text", text, annotations: [] };
  const item = { id: msgId, type: "message", status: "completed", role: "assistant", content: [part] };
  const done = { ...base, status: "completed", output: [item], usage };
  if (body.stream !== true) return json(res, 200, { ...done, output_text: text });

  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-request-id": requestId() });
  let seq = 0;
  const ev = (type, data) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...data })}\n\n`);
  const pending = { ...base, status: "in_progress", output: [], usage: null };
  ev("response.created", { response: pending });
  ev("response.in_progress", { response: pending });
  ev("response.output_item.added", { output_index: 0, item: { ...item, status: "in_progress", content: [] } });
  ev("response.content_part.added", { item_id: msgId, output_index: 0, content_index: 0, part: { ...part, text: "" } });
  for (const delta of pieces(text)) ev("response.output_text.delta", { item_id: msgId, output_index: 0, content_index: 0, delta, logprobs: [] });
  ev("response.output_text.done", { item_id: msgId, output_index: 0, content_index: 0, text, logprobs: [] });
  ev("response.content_part.done", { item_id: msgId, output_index: 0, content_index: 0, part });
  ev("response.output_item.done", { output_index: 0, item });
  ev("response.completed", { response: done });
  res.end();
}

const OPENAI_PATHS = new Set(["/v1/chat/completions", "/v1/responses"]);

/**
 * Starts the fake. `log` lists every request:
 * { at, provider: "anthropic" | "openai", key: "limited" | "ok" | "unknown", path, status }.
 * @param {{ port?: number, host?: string }} [opts]
 * @returns {Promise<{ url: string, port: number, log: object[], close: () => Promise<void> }>}
 */
export function startFakeProvider({ port = 0, host = "127.0.0.1" } = {}) {
  const log = [];
  let n = 0;
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const path = new URL(req.url ?? "/", "http://x").pathname;
      const auth = req.headers["x-api-key"] ?? /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1] ?? "";
      const known = KEYS.get(auth);
      // Which API the request speaks: OpenAI's paths, /v1/models by the key, everything else Anthropic's.
      const api = OPENAI_PATHS.has(path) || (path === "/v1/models" && known?.provider === "openai") ? "openai" : "anthropic";
      const who = known?.provider === api ? known.key : "unknown";
      const done = (status) => log.push({ at: Date.now(), provider: api, key: who, path, status });
      let body = {};
      try {
        body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : {};
      } catch {
        done(400);
        return api === "openai" ? openaiError(res, 400, "invalid_request_error", null, "We could not parse the JSON body of your request.") : anthropicError(res, 400, "invalid_request_error", "the body is not JSON");
      }
      if (who === "unknown") {
        done(401);
        return api === "openai"
          ? openaiError(res, 401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided. (The demo provider knows sk-demo-openai-ok and sk-demo-openai-limited.)")
          : anthropicError(res, 401, "authentication_error", "invalid x-api-key");
      }
      if (api === "openai") {
        if (req.method === "GET" && path === "/v1/models") {
          done(200);
          return json(res, 200, { object: "list", data: [{ id: OPENAI_MODEL, object: "model", created: 1754006400, owned_by: "subpool-demo" }] });
        }
        if (req.method === "POST" && OPENAI_PATHS.has(path)) {
          if (who === "limited") {
            done(429);
            return openaiError(res, 429, "requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later.", { "retry-after": String(RETRY_AFTER_S) });
          }
          done(200);
          const id = (++n).toString().padStart(4, "0");
          return path === "/v1/chat/completions" ? chatCompletion(res, body, id) : response(res, body, id);
        }
        done(404);
        return openaiError(res, 404, "invalid_request_error", null, `the demo provider has no ${req.method} ${path}`);
      }
      if (req.method === "GET" && path === "/v1/models") {
        done(200);
        const data = [{ type: "model", id: "claude-sonnet-4-5", display_name: "Claude Sonnet 4.5 (demo)", created_at: "2025-09-29T00:00:00Z" }];
        return json(res, 200, { data, has_more: false, first_id: data[0].id, last_id: data[0].id });
      }
      if (req.method === "POST" && path === "/v1/messages/count_tokens") {
        done(200);
        return json(res, 200, { input_tokens: tokens(JSON.stringify(body.messages ?? [])) });
      }
      if (req.method === "POST" && path === "/v1/messages") {
        if (who === "limited") {
          done(429);
          return anthropicError(res, 429, "rate_limit_error", "This request would exceed your account's rate limit. Please try again later.", { "retry-after": String(RETRY_AFTER_S) });
        }
        const text = said(lastUserText(body));
        const msg = {
          id: `msg_demo_${(++n).toString().padStart(4, "0")}`,
          type: "message",
          role: "assistant",
          model: typeof body.model === "string" ? body.model : "claude-sonnet-4-5",
          content: [{ type: "text", text }],
          stop_reason: "end_turn",
          stop_sequence: null,
          usage: { input_tokens: tokens(JSON.stringify(body.messages ?? [])), output_tokens: tokens(text) },
        };
        done(200);
        return body.stream === true ? anthropicStream(res, msg) : json(res, 200, msg);
      }
      done(404);
      return anthropicError(res, 404, "not_found_error", `the demo provider has no ${req.method} ${path}`);
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      const p = server.address().port;
      resolve({
        url: `http://${host}:${p}`,
        port: p,
        log,
        close: () =>
          new Promise((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const fake = await startFakeProvider({ port: Number(process.argv[2] ?? 0) });
  console.log(`demo provider (a fake Anthropic API and OpenAI API) at ${fake.url}
  Anthropic keys: ${DEMO_KEYS.limited} (always 429, retry-after ${RETRY_AFTER_S} s), ${DEMO_KEYS.ok} (answers)
  OpenAI keys:    ${OPENAI_DEMO_KEYS.limited} (always 429, retry-after ${RETRY_AFTER_S} s), ${OPENAI_DEMO_KEYS.ok} (answers)
  use it: npm run dev -- --var ANTHROPIC_API_BASE:${fake.url} --var OPENAI_API_BASE:${fake.url}`);
  for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => fake.close().then(() => process.exit(0)));
}
