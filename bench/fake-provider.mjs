/**
 * A local stand-in for a provider's API, for the benchmark (bench/run.mjs starts it as a child
 * process). Plain node:http, no framework, answers precomputed bytes, so it is never the bottleneck.
 *
 *   POST .../messages            fixed JSON answer (~300 bytes)
 *   POST .../messages  "stream": true in the body: text/event-stream of 50 Anthropic-shaped events;
 *                                the first is written with the headers, the other 49 follow one per
 *                                event-loop turn (separate chunks)
 *   POST .../chat/completions    the same two answers in OpenAI chat-completions shape
 *   ANY  .../big                 200 MB (BIG_BYTES) streamed in 64 KiB chunks, honouring backpressure
 *   ANY  .../hostile-sse         a hostile stream: one real event, then BIG_BYTES of `data:` lines that
 *                                never end an event (no blank line), in 64 KiB chunks
 *
 * Long streams with spaced events (the `long` and `turn` phases): a request with the header
 * `x-bench-events: N` is answered with a stream of N events in all, one event per network chunk, each
 * written `x-bench-gap-ms: G` (default 1) after the previous one was written (setTimeout; 0 = the next
 * event-loop turn), never two back to back. The shape follows the path:
 *   .../messages          Anthropic Messages: message_start (usage), content_block_start, N - 5
 *                         content_block_delta, content_block_stop, message_delta (cumulative usage
 *                         {output_tokens}), message_stop
 *   .../chat/completions  OpenAI Chat Completions: a role chunk, N - 4 content chunks, a finish chunk,
 *                         a chunk with `usage` (prompt_tokens, completion_tokens,
 *                         prompt_tokens_details.cached_tokens), `data: [DONE]`
 *   .../responses         OpenAI Responses: response.created, N - 2 response.output_text.delta,
 *                         response.completed (response.usage: input_tokens, output_tokens,
 *                         input_tokens_details.cached_tokens)
 * Every event's data but [DONE] ends with `"bench_t": <ms>`, the moment it was written
 * (performance.timeOrigin + performance.now() of this process), so the client can tell how long each
 * event took to reach it. The input tokens stated are ceil(request bytes / 4), 90 % of them as cache
 * reads; the output tokens are the number of delta events. GET /__now also answers `wall` (the same
 * clock) so the client can estimate the offset between the two processes' clocks.
 *
 * The answer depends on the account key (x-api-key, or Authorization: Bearer):
 *   rules set with POST /__ctl {"key", "mode": "ok" | "429" | "429-once", "retryAfterMs"?, "log"?}
 *   "429" answers 429 every time, "429-once" answers one 429 and then goes back to "ok"; with
 *   "onlyClient": C, only requests whose x-bench-client header is C get the 429.
 *   "log": true records (time, x-bench-client header, status) of every request with that key;
 *   GET /__log?key=K returns and clears it. Times are performance.now() of this process (ms).
 *   GET /__counts returns requests per key.
 * Prints "LISTENING <port>" on stdout when ready.
 */
import http from "node:http";

const port = Number(process.argv[2] ?? 0);
const BIG_BYTES = Number(process.env.BIG_BYTES ?? 200 * 1024 * 1024);
const SSE_EVENTS = 50;

const JSON_BODY = Buffer.from(
  JSON.stringify({
    id: "msg_bench_0000000000000000000000",
    type: "message",
    role: "assistant",
    model: "claude-sonnet-4-5",
    content: [{ type: "text", text: "Hello from the fake provider. This answer has a fixed size." }],
    stop_reason: "end_turn",
    stop_sequence: null,
    usage: { input_tokens: 12, output_tokens: 16 },
  }),
);

const sse = (event, data) => Buffer.from(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
const SSE_CHUNKS = [
  sse("message_start", { type: "message_start", message: { id: "msg_bench", type: "message", role: "assistant", model: "claude-sonnet-4-5", content: [], usage: { input_tokens: 12, output_tokens: 1 } } }),
  sse("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }),
];
while (SSE_CHUNKS.length < SSE_EVENTS - 3) {
  SSE_CHUNKS.push(sse("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: `token${SSE_CHUNKS.length} ` } }));
}
SSE_CHUNKS.push(sse("content_block_stop", { type: "content_block_stop", index: 0 }));
SSE_CHUNKS.push(sse("message_delta", { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: 46 } }));
SSE_CHUNKS.push(sse("message_stop", { type: "message_stop" }));

// OpenAI chat-completions shape, for the peer gateway's streaming path (see run.mjs)
const oaChunk = (delta, finish = null) => Buffer.from(`data: ${JSON.stringify({ id: "chatcmpl-bench", object: "chat.completion.chunk", created: 1, model: "gpt-bench", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`);
const OA_SSE_CHUNKS = [oaChunk({ role: "assistant", content: "" })];
while (OA_SSE_CHUNKS.length < SSE_EVENTS - 2) OA_SSE_CHUNKS.push(oaChunk({ content: `token${OA_SSE_CHUNKS.length} ` }));
OA_SSE_CHUNKS.push(oaChunk({}, "stop"));
OA_SSE_CHUNKS.push(Buffer.from("data: [DONE]\n\n"));
const OA_JSON_BODY = Buffer.from(JSON.stringify({ id: "chatcmpl-bench", object: "chat.completion", created: 1, model: "gpt-bench", choices: [{ index: 0, message: { role: "assistant", content: "Hello from the fake provider. This answer has a fixed size." }, finish_reason: "stop" }], usage: { prompt_tokens: 12, completion_tokens: 16, total_tokens: 28 } }));

const ERR_429 = Buffer.from(JSON.stringify({ type: "error", error: { type: "rate_limit_error", message: "Number of requests has exceeded your rate limit (fake provider)" } }));
const BIG_CHUNK = Buffer.alloc(64 * 1024, 0x61);

/** key -> { mode, retryAfterMs, log } */
const rules = new Map();
/** key -> [{ t, client, status }] */
const logs = new Map();
const counts = new Map();

function accountKey(req) {
  const k = req.headers["x-api-key"];
  if (k) return String(k);
  const a = req.headers.authorization;
  return a && a.startsWith("Bearer ") ? a.slice(7) : "";
}

function note(key, rule, req, status) {
  counts.set(key, (counts.get(key) ?? 0) + 1);
  if (rule?.log) {
    let l = logs.get(key);
    if (!l) logs.set(key, (l = []));
    l.push({ t: performance.now(), client: req.headers["x-bench-client"] ?? null, status });
  }
}

function sendJson(res, status, obj) {
  const b = Buffer.from(JSON.stringify(obj));
  res.writeHead(status, { "content-type": "application/json", "content-length": b.length });
  res.end(b);
}

function streamSse(res, chunks = SSE_CHUNKS) {
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
  res.write(chunks[0]);
  let i = 1;
  const next = () => {
    if (res.destroyed) return;
    if (i === chunks.length) return void res.end();
    res.write(chunks[i++]);
    setImmediate(next);
  };
  setImmediate(next);
}

// ---- long streams with spaced events (x-bench-events) ------------------------------------------------
/** One SSE event whose data object gets `"bench_t": <write time>` appended when written. */
const spaced = (event, obj) => {
  const json = JSON.stringify(obj);
  return { head: `${event ? `event: ${event}\n` : ""}data: ${json.slice(0, -1)},"bench_t":`, tail: "}\n\n" };
};
const DONE = { raw: "data: [DONE]\n\n" };
const TOKEN = (i) => `tok${i % 1000} `;

function anthropicEvents(n, inputTotal) {
  const deltas = Math.max(1, n - 5);
  const read = Math.floor(inputTotal * 0.9);
  const out = [
    spaced("message_start", { type: "message_start", message: { id: "msg_bench_long", type: "message", role: "assistant", model: "claude-sonnet-4-5", content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: inputTotal - read, cache_creation_input_tokens: 0, cache_read_input_tokens: read, output_tokens: 1 } } }),
    spaced("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }),
  ];
  for (let i = 0; i < deltas; i++) out.push(spaced("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: TOKEN(i) } }));
  out.push(spaced("content_block_stop", { type: "content_block_stop", index: 0 }));
  out.push(spaced("message_delta", { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: deltas } }));
  out.push(spaced("message_stop", { type: "message_stop" }));
  return out;
}

function chatEvents(n, inputTotal) {
  const deltas = Math.max(1, n - 4);
  const base = { id: "chatcmpl-bench-long", object: "chat.completion.chunk", created: 1, model: "gpt-bench", system_fingerprint: "fp_bench" };
  const chunk = (delta, finish = null) => spaced(null, { ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
  const out = [chunk({ role: "assistant", content: "", refusal: null })];
  for (let i = 0; i < deltas; i++) out.push(chunk({ content: TOKEN(i) }));
  out.push(chunk({}, "stop"));
  const cached = Math.floor(inputTotal * 0.9);
  out.push(spaced(null, { ...base, choices: [], usage: { prompt_tokens: inputTotal, completion_tokens: deltas, total_tokens: inputTotal + deltas, prompt_tokens_details: { cached_tokens: cached, audio_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0 } } }));
  out.push(DONE);
  return out;
}

function responsesEvents(n, inputTotal) {
  const deltas = Math.max(1, n - 2);
  const resp = { id: "resp_bench_long", object: "response", created_at: 1, status: "in_progress", model: "gpt-bench", output: [], usage: null };
  const out = [spaced("response.created", { type: "response.created", sequence_number: 0, response: resp })];
  let text = "";
  for (let i = 0; i < deltas; i++) {
    out.push(spaced("response.output_text.delta", { type: "response.output_text.delta", sequence_number: i + 1, item_id: "msg_bench_long", output_index: 0, content_index: 0, delta: TOKEN(i) }));
    text += TOKEN(i);
  }
  const cached = Math.floor(inputTotal * 0.9);
  out.push(
    spaced("response.completed", {
      type: "response.completed",
      sequence_number: deltas + 1,
      response: {
        ...resp,
        status: "completed",
        output: [{ id: "msg_bench_long", type: "message", status: "completed", role: "assistant", content: [{ type: "output_text", text, annotations: [] }] }],
        usage: { input_tokens: inputTotal, input_tokens_details: { cached_tokens: cached }, output_tokens: deltas, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: inputTotal + deltas },
      },
    }),
  );
  return out;
}

/** Writes the events one per chunk, `gapMs` apart (measured from one write to the next timer). */
function streamSpaced(res, events, gapMs) {
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "request-id": "req_bench_long" });
  let i = 0;
  let last = 0;
  const next = () => {
    if (res.destroyed) return;
    // Node may fire a 1 ms timer early (its clock is read once per loop turn): wait out the rest.
    const left = gapMs - (performance.now() - last);
    if (i > 0 && left > 0.05) return void setTimeout(next, left);
    const e = events[i++];
    last = performance.now();
    res.write(e.raw ?? `${e.head}${(performance.timeOrigin + last).toFixed(3)}${e.tail}`);
    if (i === events.length) return void res.end();
    if (gapMs > 0) setTimeout(next, gapMs);
    else setImmediate(next);
  };
  next();
}

function longStream(req, res, path, bodyBytes) {
  const n = Math.max(6, Math.min(1_000_000, Math.floor(Number(req.headers["x-bench-events"])) || 0));
  const gap = Number(req.headers["x-bench-gap-ms"] ?? 1);
  const gapMs = Number.isFinite(gap) && gap >= 0 ? gap : 1;
  const inputTotal = Math.max(1, Math.ceil(bodyBytes / 4));
  if (path.endsWith("/messages")) return streamSpaced(res, anthropicEvents(n, inputTotal), gapMs);
  if (path.endsWith("/chat/completions")) return streamSpaced(res, chatEvents(n, inputTotal), gapMs);
  if (path.endsWith("/responses")) return streamSpaced(res, responsesEvents(n, inputTotal), gapMs);
  return false;
}

function streamBig(res) {
  res.writeHead(200, { "content-type": "application/octet-stream" });
  let left = BIG_BYTES;
  const pump = () => {
    while (left > 0) {
      const n = Math.min(left, BIG_CHUNK.length);
      left -= n;
      const ok = res.write(n === BIG_CHUNK.length ? BIG_CHUNK : BIG_CHUNK.subarray(0, n));
      if (!ok) return void res.once("drain", pump);
    }
    res.end();
  };
  res.on("close", () => (left = 0));
  pump();
}

const HOSTILE_FIRST = Buffer.from(`event: message_start\ndata: ${JSON.stringify({ type: "message_start", message: { id: "msg_hostile", usage: { input_tokens: 1, output_tokens: 1 } } })}\n\n`);
const HOSTILE_CHUNK = Buffer.from(`data: ${"x".repeat(1017)}\n`.repeat(64));

function streamHostileSse(res) {
  res.writeHead(200, { "content-type": "text/event-stream" });
  res.write(HOSTILE_FIRST);
  let left = BIG_BYTES;
  const pump = () => {
    while (left > 0) {
      left -= HOSTILE_CHUNK.length;
      if (!res.write(HOSTILE_CHUNK)) return void res.once("drain", pump);
    }
    res.end();
  };
  res.on("close", () => (left = 0));
  pump();
}

function control(req, res, url, body) {
  if (url.pathname === "/__ctl" && req.method === "POST") {
    const r = JSON.parse(body || "{}");
    if (r.reset) {
      rules.clear();
      logs.clear();
      counts.clear();
    }
    if (r.key) {
      if (!r.mode || r.mode === "ok") rules.set(r.key, { mode: "ok", log: !!r.log, retryAfterMs: 0 });
      else rules.set(r.key, { mode: r.mode, retryAfterMs: r.retryAfterMs ?? 1000, log: !!r.log, onlyClient: r.onlyClient ?? null });
    }
    return sendJson(res, 200, { ok: true, now: performance.now() });
  }
  if (url.pathname === "/__log") {
    const key = url.searchParams.get("key") ?? "";
    const l = logs.get(key) ?? [];
    logs.set(key, []);
    return sendJson(res, 200, { now: performance.now(), entries: l });
  }
  if (url.pathname === "/__counts") return sendJson(res, 200, Object.fromEntries(counts));
  if (url.pathname === "/__now") return sendJson(res, 200, { now: performance.now(), wall: performance.timeOrigin + performance.now() });
  return sendJson(res, 404, { error: "no such control route" });
}

const server = http.createServer((req, res) => {
  const url = req.url ?? "/";
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const bodyBytes = chunks.reduce((n, c) => n + c.length, 0);
    const body = chunks.length === 0 ? "" : chunks.length === 1 ? chunks[0].toString() : Buffer.concat(chunks).toString();
    if (url.startsWith("/__")) return control(req, res, new URL(url, "http://x"), body);
    const key = accountKey(req);
    const rule = rules.get(key);
    if (rule && (rule.mode === "429" || rule.mode === "429-once") && (!rule.onlyClient || rule.onlyClient === req.headers["x-bench-client"])) {
      if (rule.mode === "429-once") rule.mode = "ok";
      note(key, rule, req, 429);
      res.writeHead(429, { "content-type": "application/json", "content-length": ERR_429.length, "retry-after-ms": String(rule.retryAfterMs), "retry-after": String(Math.ceil(rule.retryAfterMs / 1000)) });
      return void res.end(ERR_429);
    }
    note(key, rule, req, 200);
    const path = url.split("?")[0];
    if (path.endsWith("/big")) return streamBig(res);
    if (path.endsWith("/hostile-sse")) return streamHostileSse(res);
    if (req.headers["x-bench-events"] !== undefined && longStream(req, res, path, bodyBytes) !== false) return;
    if (path.endsWith("/messages")) {
      if (body.includes('"stream":true')) return streamSse(res);
      res.writeHead(200, { "content-type": "application/json", "content-length": JSON_BODY.length, "request-id": "req_bench" });
      return void res.end(JSON_BODY);
    }
    if (path.endsWith("/chat/completions")) {
      if (body.includes('"stream":true')) return streamSse(res, OA_SSE_CHUNKS);
      res.writeHead(200, { "content-type": "application/json", "content-length": OA_JSON_BODY.length });
      return void res.end(OA_JSON_BODY);
    }
    sendJson(res, 404, { type: "error", error: { type: "not_found_error", message: `fake provider has no ${path}` } });
  });
});
server.keepAliveTimeout = 120_000;
server.headersTimeout = 121_000;
server.requestTimeout = 0;
server.listen(port, "127.0.0.1", () => {
  process.stdout.write(`LISTENING ${server.address().port}\n`);
});
process.on("SIGTERM", () => process.exit(0));
process.on("disconnect", () => process.exit(0));
