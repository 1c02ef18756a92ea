#!/usr/bin/env node
// A stand-in for the Anthropic API on 127.0.0.1, for `npm run demo` and for trying the gateway
// without provider keys. Answers are shaped like Anthropic's (Messages JSON and SSE streams,
// count_tokens, models, errors), so Claude Code and the SDKs can talk to it through the gateway.
//
//   node scripts/fake-provider.mjs [port]     listens (default: a free port) and prints its URL and keys
//   npm run dev -- --var ANTHROPIC_API_BASE:http://127.0.0.1:<port>
//
// Keys (what an account in the gateway holds):
//   sk-ant-demo-limited   every message answers 429 rate_limit_error with retry-after (RETRY_AFTER_S)
//   sk-ant-demo-ok        answers every message
//   anything else         401 authentication_error
// count_tokens and models answer for both keys (checking a key costs nothing, even while limited).
import { createServer } from "node:http";
import { pathToFileURL } from "node:url";

export const DEMO_KEYS = { limited: "sk-ant-demo-limited", ok: "sk-ant-demo-ok" };
const RETRY_AFTER_S = 120;

const json = (res, status, body, headers = {}) => {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), "request-id": `req_demo_${Date.now().toString(36)}`, ...headers });
  res.end(text);
};
const error = (res, status, type, message, headers) => json(res, status, { type: "error", error: { type, message } }, headers);

/** Words for the answer: the last user message, echoed back in a sentence. */
function reply(body) {
  const last = [...(body.messages ?? [])].reverse().find((m) => m.role === "user");
  const text = typeof last?.content === "string" ? last.content : Array.isArray(last?.content) ? last.content.map((c) => c.text ?? "").join(" ") : "";
  return `Hello from subpool's demo provider (a fake Anthropic API on your machine). You said: "${text.slice(0, 200)}".`;
}

const tokens = (s) => Math.max(1, Math.ceil(s.length / 4));

function sse(res, msg) {
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "request-id": `req_demo_${Date.now().toString(36)}` });
  const ev = (event, data) => res.write(`event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`);
  const text = msg.content[0].text;
  ev("message_start", { message: { ...msg, content: [], stop_reason: null, usage: { ...msg.usage, output_tokens: 1 } } });
  ev("content_block_start", { index: 0, content_block: { type: "text", text: "" } });
  for (const piece of text.match(/.{1,24}/gs) ?? []) ev("content_block_delta", { index: 0, delta: { type: "text_delta", text: piece } });
  ev("content_block_stop", { index: 0 });
  ev("message_delta", { delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: msg.usage.output_tokens } });
  ev("message_stop", {});
  res.end();
}

/**
 * Starts the fake. `log` lists every request: { at, key: "limited" | "ok" | "unknown", path, status }.
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
      const who = auth === DEMO_KEYS.limited ? "limited" : auth === DEMO_KEYS.ok ? "ok" : "unknown";
      const done = (status) => log.push({ at: Date.now(), key: who, path, status });
      let body = {};
      try {
        body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : {};
      } catch {
        done(400);
        return error(res, 400, "invalid_request_error", "the body is not JSON");
      }
      if (who === "unknown") {
        done(401);
        return error(res, 401, "authentication_error", "invalid x-api-key");
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
          return error(res, 429, "rate_limit_error", "This request would exceed your account's rate limit. Please try again later.", { "retry-after": String(RETRY_AFTER_S) });
        }
        const text = reply(body);
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
        return body.stream === true ? sse(res, msg) : json(res, 200, msg);
      }
      done(404);
      return error(res, 404, "not_found_error", `the demo provider has no ${req.method} ${path}`);
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
        close: () => new Promise((r) => {
          server.close(() => r());
          server.closeAllConnections();
        }),
      });
    });
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const fake = await startFakeProvider({ port: Number(process.argv[2] ?? 0) });
  console.log(`demo provider (a fake Anthropic API) at ${fake.url}
  keys: ${DEMO_KEYS.limited} (always 429, retry-after ${RETRY_AFTER_S} s), ${DEMO_KEYS.ok} (answers)
  use it: npm run dev -- --var ANTHROPIC_API_BASE:${fake.url}`);
  for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => fake.close().then(() => process.exit(0)));
}
