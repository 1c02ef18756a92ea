/**
 * Real coding-tool traffic for the `long`, `bigreq` and `turn` phases (run.mjs, lib/traffic-phases.mjs):
 *
 *   claudeCodeRequest(bytes, { stream })  a Claude-Code-shaped POST /v1/messages (body keys in Claude
 *                                         Code's order, a long system prompt, 20 tools, 41 messages with
 *                                         tool_use / tool_result blocks, metadata.user_id as a JSON
 *                                         string naming the session, the session header), generated
 *                                         deterministically to about `bytes` (PROVIDERS.md, "What the
 *                                         real clients send")
 *   streamBody(shape)                     a small streaming request body per shape
 *   streamRequest(url, ...)               one request whose SSE answer is read as it comes: events
 *                                         counted, each event's delay (arrival − the fake's `bench_t`
 *                                         write time, clocks aligned by clockOffset), the usage the
 *                                         stream stated
 *   clockOffset(fake)                     the fake's clock minus ours (GET /__now, least round trip)
 */
import http from "node:http";
import { StringDecoder } from "node:string_decoder";

export const SHAPES = ["anthropic", "chat", "responses"];
/** Which gateway provider (account) serves a shape. */
export const PROVIDER_OF = { anthropic: "anthropic", chat: "openai", responses: "openai" };
/** Request path of a shape at the provider (the null Worker forwards it as is; subpool adds its prefix). */
export const PATH_OF = { anthropic: "/v1/messages", chat: "/v1/chat/completions", responses: "/v1/responses" };

// ---- deterministic text -------------------------------------------------------------------------------
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function uuidOf(r) {
  const h = () => Math.floor(r() * 16).toString(16);
  const s = (n) => Array.from({ length: n }, h).join("");
  return `${s(8)}-${s(4)}-4${s(3)}-${"89ab"[Math.floor(r() * 4)]}${s(3)}-${s(12)}`;
}

const WORDS = "const let return if else for while await async function import export from new this null true false map filter reduce request response headers body stream event account pool provider token usage session error retry cooldown deadline reader writer chunk buffer decoder encoder status json parse stringify config value key label".split(" ");
const IDENT = "accountId sessionId userId requestId attempt upstream answer budget window quota limit remaining reset header payload result outcome plan relay".split(" ");

/** Code-like lines, `bytes` long (ASCII, so characters = bytes); one line in 400 mentions user_id. */
function codeText(r, bytes) {
  const lines = [];
  let n = 0;
  let i = 0;
  while (n < bytes) {
    let line;
    if (i % 400 === 7) line = `    const user_id = metadata.user_id ?? request.headers.get("x-user-id"); // user_id ${i}`;
    else {
      const indent = " ".repeat(2 * Math.floor(r() * 4));
      const words = Array.from({ length: 3 + Math.floor(r() * 9) }, () => {
        const pool = r() < 0.3 ? IDENT : WORDS;
        return pool[Math.floor(r() * pool.length)];
      });
      line = `${indent}${words.join(" ")};`;
    }
    lines.push(line);
    n += line.length + 1;
    i++;
  }
  return lines.join("\n").slice(0, Math.max(0, bytes));
}

const TOOL_NAMES = ["Task", "Bash", "Glob", "Grep", "ExitPlanMode", "Read", "Edit", "MultiEdit", "Write", "NotebookEdit", "WebFetch", "TodoWrite", "WebSearch", "BashOutput", "KillShell", "SlashCommand", "AskUserQuestion", "Skill", "ListMcpResources", "ReadMcpResource"];

function toolsOf(r) {
  return TOOL_NAMES.map((name, i) => ({
    name,
    description: `${name}: ${codeText(r, 700 + (i % 5) * 150).replace(/\n/g, " ")}`,
    input_schema: {
      type: "object",
      properties: {
        file_path: { type: "string", description: "The absolute path to the file to operate on" },
        command: { type: "string", description: "The command to execute" },
        pattern: { type: "string", description: "The regular expression pattern to search for in file contents" },
        limit: { type: "number", description: "The number of lines to read. Only provide if the file is too large to read at once." },
        options: { type: "object", properties: { recursive: { type: "boolean" }, glob: { type: "string" } }, additionalProperties: false },
      },
      required: i % 2 ? ["file_path"] : ["command"],
      additionalProperties: false,
      $schema: "http://json-schema.org/draft-07/schema#",
    },
  }));
}

const cache = new Map();

/**
 * A Claude-Code-shaped request of about `bytes` bytes (at least the size of its fixed parts, ~62 KB,
 * unless bytes < 1000: then the tiny request, a one-line question with the same metadata and
 * headers). Deterministic for (bytes, stream, seed). Returns { body: Buffer, headers, sessionId }.
 * The headers carry no credential: the caller adds x-api-key.
 */
export function claudeCodeRequest(bytes, { stream = false, seed = 1 } = {}) {
  const k = `${bytes}|${stream}|${seed}`;
  if (cache.has(k)) return cache.get(k);
  const r = rng(seed);
  const sessionId = uuidOf(r);
  const metadata = { user_id: JSON.stringify({ device_id: Array.from({ length: 64 }, () => Math.floor(r() * 16).toString(16)).join(""), account_uuid: uuidOf(r), session_id: sessionId }) };
  const headers = {
    "content-type": "application/json",
    accept: "application/json",
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,fine-grained-tool-streaming-2025-05-14",
    "anthropic-dangerous-direct-browser-access": "true",
    "x-app": "cli",
    "x-claude-code-session-id": sessionId,
    "user-agent": "claude-cli/2.1.332 (external, cli)",
    "x-stainless-lang": "js",
    "x-stainless-package-version": "0.70.0",
    "x-stainless-os": "Linux",
    "x-stainless-arch": "x64",
    "x-stainless-runtime": "node",
    "x-stainless-runtime-version": "v22.23.3",
    "x-stainless-retry-count": "0",
    "x-stainless-timeout": "600",
  };
  let text;
  if (bytes < 1000) {
    text = JSON.stringify({ model: "claude-sonnet-4-5", messages: [{ role: "user", content: "Say hi." }], metadata, max_tokens: 64, stream });
  } else {
    const system = [
      { type: "text", text: "You are Claude Code, Anthropic's official CLI for Claude.", cache_control: { type: "ephemeral" } },
      { type: "text", text: codeText(r, 14_000), cache_control: { type: "ephemeral" } },
    ];
    const tools = toolsOf(r);
    const build = (filler) => {
      const fr = rng(seed + 1000);
      const messages = [{ role: "user", content: [{ type: "text", text: `<system-reminder>\n${codeText(fr, 1500)}\n</system-reminder>` }, { type: "text", text: "Find where user_id is read from the request and make it come from metadata.user_id instead." }] }];
      for (let t = 0; t < 20; t++) {
        const id = `toolu_${String(t).padStart(2, "0")}${uuidOf(fr).replace(/-/g, "").slice(0, 20)}`;
        const name = TOOL_NAMES[(t * 7) % TOOL_NAMES.length];
        const input = t % 5 === 3 ? { file_path: `/work/app/src/file${t}.ts`, old_string: "const user_id = req.user_id;", new_string: "const user_id = metadata.user_id;" } : { command: `grep -rn "user_id" src/ | head -${20 + t}`, description: "Find user_id" };
        messages.push({ role: "assistant", content: [{ type: "text", text: `Looking at step ${t}: ${codeText(fr, 200).replace(/\n/g, " ")}` }, { type: "tool_use", id, name, input }] });
        messages.push({ role: "user", content: [{ type: "tool_result", tool_use_id: id, content: codeText(fr, filler) }] });
      }
      return JSON.stringify({
        model: "claude-opus-4-5-20251101",
        messages,
        system,
        tools,
        metadata,
        max_tokens: 32000,
        thinking: { type: "enabled", budget_tokens: 31999 },
        context_management: { edits: [{ type: "clear_thinking_20251015", keep: "all" }] },
        output_config: { effort: "high" },
        stream,
      });
    };
    // JSON escaping makes the text grow by more than its length: one correction step gets within ~0.1 %.
    const fixed = build(0).length;
    const first = Math.max(0, Math.floor((bytes - fixed) / 20));
    text = build(first);
    if (first > 0 && text.length !== bytes) text = build(Math.max(0, Math.floor((first * (bytes - fixed)) / (text.length - fixed))));
  }
  const out = { body: Buffer.from(text), headers, sessionId };
  cache.set(k, out);
  return out;
}

/** A small streaming request per shape (the stream itself is asked for with x-bench-events). */
export function streamBody(shape) {
  if (shape === "anthropic") return JSON.stringify({ model: "claude-sonnet-4-5", max_tokens: 4096, stream: true, messages: [{ role: "user", content: "Write a long answer." }] });
  if (shape === "chat") return JSON.stringify({ model: "gpt-bench", stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "Write a long answer." }] });
  return JSON.stringify({ model: "gpt-bench", stream: true, input: [{ role: "user", content: [{ type: "input_text", text: "Write a long answer." }] }], store: false });
}

export function baseHeadersOf(shape) {
  return shape === "anthropic" ? { "content-type": "application/json", "anthropic-version": "2023-06-01" } : { "content-type": "application/json" };
}

// ---- usage ----------------------------------------------------------------------------------------------
const count = (v) => (typeof v === "number" && Number.isFinite(v) ? v : 0);

/** The usage an answer stated, as totals: all input tokens (cache reads and writes included) and output. */
export function statedUsage(provider, events) {
  // events: parsed data objects that mention usage, in order
  let input = null;
  let output = null;
  for (const d of events) {
    if (provider === "anthropic") {
      const u = d?.type === "message_start" ? d.message?.usage : d?.type === "message_delta" ? d.usage : d?.usage;
      if (!u) continue;
      if (d?.type !== "message_delta" || u.input_tokens !== undefined) input = count(u.input_tokens) + count(u.cache_read_input_tokens) + count(u.cache_creation_input_tokens);
      if (u.output_tokens !== undefined) output = count(u.output_tokens);
    } else {
      const u = d?.response?.usage ?? d?.usage;
      if (!u) continue;
      input = count(u.input_tokens ?? u.prompt_tokens);
      output = count(u.output_tokens ?? u.completion_tokens);
    }
  }
  return input === null && output === null ? null : { input: input ?? 0, output: output ?? 0 };
}

/** Totals of GET /api/accounts/:id/usage in the same terms as statedUsage, plus requests. */
export function recordedTotals(days) {
  const t = { requests: 0, input: 0, output: 0 };
  for (const d of days ?? []) {
    t.requests += count(d.requests);
    t.input += count(d.inputTokens) + count(d.cacheReadTokens) + count(d.cacheWriteTokens);
    t.output += count(d.outputTokens);
  }
  return t;
}

// ---- the stream client --------------------------------------------------------------------------------
const wall = () => performance.timeOrigin + performance.now();

/**
 * The fake's clock minus ours, in ms (both are performance.timeOrigin + performance.now() of their
 * process): of 15 round trips to GET /__now, the one with the least round-trip time, its midpoint.
 */
export async function clockOffset(fake, tries = 15) {
  let best = { rtt: Infinity, offset: 0 };
  const ag = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (let i = 0; i < tries; i++) {
      const t0 = wall();
      const body = await new Promise((resolve, reject) => {
        http.get(`${fake}/__now`, { agent: ag }, (res) => {
          let s = "";
          res.on("data", (c) => (s += c));
          res.on("end", () => resolve(JSON.parse(s)));
          res.on("error", reject);
        }).on("error", reject);
      });
      const t1 = wall();
      if (Number.isFinite(body.wall) && t1 - t0 < best.rtt) best = { rtt: t1 - t0, offset: body.wall - (t0 + t1) / 2 };
    }
  } finally {
    ag.destroy();
  }
  return best;
}

/**
 * One request whose answer is an SSE stream, read as it arrives. Resolves with
 * { status, headers, events, timedEvents, delays: number[] (ms, one per event carrying bench_t),
 *   usageEvents: parsed data of events mentioning "usage", bytes, tEnd (ms), text (first 2 KB when the
 *   status is not 200) }.
 * offsetMs: the fake's clock minus ours (clockOffset).
 */
export function streamRequest(url, { headers = {}, body, agent, offsetMs = 0 }) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const payload = Buffer.isBuffer(body) ? body : Buffer.from(body ?? "");
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: "POST", headers: { ...headers, "content-length": String(payload.length) }, agent }, (res) => {
      const dec = new StringDecoder("utf8");
      let buf = "";
      let events = 0;
      let bytes = 0;
      const delays = [];
      const usageEvents = [];
      let head = "";
      const block = (b, now) => {
        if (!b.trim()) return;
        events++;
        const at = b.lastIndexOf('"bench_t":');
        if (at >= 0) delays.push(now - (parseFloat(b.slice(at + 10)) - offsetMs));
        if (b.includes('"usage"')) {
          const line = b.split("\n").find((l) => l.startsWith("data:"));
          try {
            usageEvents.push(JSON.parse(line.slice(5)));
          } catch {}
        }
      };
      res.on("data", (c) => {
        const now = wall();
        bytes += c.length;
        if (res.statusCode !== 200 && head.length < 2048) head += c.toString();
        buf += dec.write(c);
        if (buf.includes("\r")) buf = buf.replace(/\r\n/g, "\n");
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          block(buf.slice(0, i), now);
          buf = buf.slice(i + 2);
        }
      });
      res.on("end", () => {
        block(buf + dec.end(), wall());
        resolve({ status: res.statusCode, headers: res.headers, events, timedEvents: delays.length, delays, usageEvents, bytes, tEnd: performance.now() - t0, text: res.statusCode === 200 ? undefined : head.slice(0, 2048) });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    const t0 = performance.now();
    req.end(payload);
  });
}
