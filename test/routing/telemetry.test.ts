/**
 * Quota telemetry and token usage as each provider states them, read by the provider modules over
 * real-shaped header sets (test/fixtures/telemetry.json) and real-shaped bodies and streams.
 */
import { describe, expect, it } from "vitest";
import { bodyConversation, headerConversation } from "../../src/proxy/conversation";
import { findProvider } from "../../src/providers";
import { usageWindows } from "../../src/providers/anthropic";
import { mostUsed } from "../../src/providers/telemetry";
import { usageOf } from "../../src/proxy/usage";
import fixtures from "../fixtures/telemetry.json";

const NOW = 1_780_000_000_000;
const at = (v: string) =>
  v
    .replace(/^epoch\(now\+(\d+)\)$/, (_, n) => String(Math.floor(NOW / 1000) + Number(n)))
    .replace(/^iso\(now\+(\d+)\)$/, (_, n) => new Date(NOW + Number(n) * 1000).toISOString());

describe("quota telemetry over real-shaped header sets", () => {
  for (const c of fixtures.cases) {
    it(`${c.provider}: ${c.name}`, () => {
      const p = findProvider(c.provider)!;
      const headers = new Headers(Object.entries(c.headers).map(([k, v]) => [k, at(v)]));
      const q = p.quotaOf(headers, NOW);
      if (c.expect === null) return expect(q).toBeNull();
      expect(q!.status).toBe(c.expect.status);
      expect(Object.keys(q!.windows).sort()).toEqual(Object.keys(c.expect.windows).sort());
      for (const [name, w] of Object.entries(c.expect.windows)) {
        expect(q!.windows[name]!.utilization, name).toBeCloseTo(w.utilization, 5);
        expect((q!.windows[name]!.resetsAt! - NOW) / 1000, name).toBeCloseTo(w.resetsIn, 0);
      }
      if ("expectCooldownSeconds" in c) {
        const cls = p.classify(c.status, headers, null, NOW);
        expect(cls.class).toBe("quota");
        expect(cls.cooldownS).toBeCloseTo(c.expectCooldownSeconds as number, 0);
      }
    });
  }
});

describe("ChatGPT credits", () => {
  it("are read from x-codex-credits-* beside the windows, and alone", () => {
    const openai = findProvider("openai")!;
    const q = openai.quotaOf(new Headers({ "x-codex-primary-used-percent": "10", "x-codex-credits-has-credits": "true", "x-codex-credits-unlimited": "false", "x-codex-credits-balance": "5.39" }), NOW)!;
    expect(q.credits).toEqual({ hasCredits: true, unlimited: false, balance: 5.39 });
    expect(q.windows.primary!.utilization).toBeCloseTo(0.1, 5);
    expect(openai.quotaOf(new Headers({ "x-codex-credits-has-credits": "false" }), NOW)).toEqual({ status: null, windows: {}, credits: { hasCredits: false, unlimited: false, balance: null } });
    expect(openai.quotaOf(new Headers({ "x-codex-credits-has-credits": "maybe" }), NOW)).toBeNull();
  });
});

describe("Claude's usage endpoint, in both of its shapes", () => {
  const iso = (s: number) => new Date(NOW + s * 1000).toISOString();
  it("reads the flat five_hour / seven_day objects and the newer limits[] (session, weekly_all, weekly_scoped per model)", () => {
    const flat = usageWindows({ five_hour: { utilization: 61, resets_at: iso(3600) }, seven_day: { utilization: 12.5, resets_at: null } })!;
    expect(flat.windows).toEqual({ "5h": { utilization: 0.61, resetsAt: NOW + 3_600_000 }, "7d": { utilization: 0.125, resetsAt: null } });
    const limits = usageWindows({
      limits: [
        { kind: "session", percent: 20, severity: "normal", resets_at: iso(1800) },
        { kind: "weekly_all", percent: 45, severity: "normal", resets_at: iso(500_000) },
        { kind: "weekly_scoped", percent: 92, severity: "warning", resets_at: iso(300_000), scope: { model: "claude-opus-4-5" } },
        { kind: "weekly_scoped", percent: 10, scope: {} },
        { kind: "something_new", percent: 50 },
        "garbage",
      ],
    })!;
    expect(limits.windows).toEqual({
      "5h": { utilization: 0.2, resetsAt: NOW + 1_800_000 },
      "7d": { utilization: 0.45, resetsAt: NOW + 500_000_000 },
      "7d_opus-4-5": { utilization: 0.92, resetsAt: NOW + 300_000_000 },
    });
    expect(usageWindows({ extra_usage: {} })).toBeNull();
    // A window of one model does not make the account "most used" for every request.
    expect(mostUsed(limits, NOW)).toBe(0.45);
  });
});

describe("token usage", () => {
  const anthropic = findProvider("anthropic")!;
  const openai = findProvider("openai")!;

  it("Anthropic JSON: input, output, cache reads and writes", () => {
    expect(anthropic.usage.fromJson({ usage: { input_tokens: 12, output_tokens: 34, cache_read_input_tokens: 1000, cache_creation_input_tokens: 200 } })).toEqual({
      inputTokens: 12,
      outputTokens: 34,
      cacheReadTokens: 1000,
      cacheWriteTokens: 200,
    });
  });

  it("Anthropic SSE: message_start, then cumulative message_delta figures (set, not added)", () => {
    let u = anthropic.usage.fromSse(null, "message_start", { type: "message_start", message: { usage: { input_tokens: 25, output_tokens: 1, cache_read_input_tokens: 500, cache_creation_input_tokens: 0 } } });
    u = anthropic.usage.fromSse(u, "message_delta", { type: "message_delta", usage: { output_tokens: 15 } });
    u = anthropic.usage.fromSse(u, "message_delta", { type: "message_delta", usage: { output_tokens: 40 } });
    expect(u).toEqual({ inputTokens: 25, outputTokens: 40, cacheReadTokens: 500, cacheWriteTokens: 0 });
  });

  it("OpenAI Chat Completions and Responses, cached tokens counted apart from input", () => {
    expect(openai.usage.fromJson({ usage: { prompt_tokens: 100, completion_tokens: 20, prompt_tokens_details: { cached_tokens: 64 } } })).toEqual({ inputTokens: 36, outputTokens: 20, cacheReadTokens: 64, cacheWriteTokens: 0 });
    expect(openai.usage.fromSse(null, "response.completed", { type: "response.completed", response: { usage: { input_tokens: 50, output_tokens: 7, input_tokens_details: { cached_tokens: 10 } } } })).toEqual({
      inputTokens: 40,
      outputTokens: 7,
      cacheReadTokens: 10,
      cacheWriteTokens: 0,
    });
  });
});

describe("token usage of whole JSON answers (read from the end first)", () => {
  const anthropic = findProvider("anthropic")!;
  const openai = findProvider("openai")!;
  const bytes = (v: unknown) => new TextEncoder().encode(typeof v === "string" ? v : JSON.stringify(v)).buffer as ArrayBuffer;
  const top = { input_tokens: 12, output_tokens: 34, cache_read_input_tokens: 5, cache_creation_input_tokens: 6, cache_creation: { ephemeral_5m_input_tokens: 6 }, service_tier: "standard" };
  const want = { inputTokens: 12, outputTokens: 34, cacheReadTokens: 5, cacheWriteTokens: 6 };
  const message = (content: unknown[], extra: Record<string, unknown> = {}) => ({ id: "msg_1", type: "message", role: "assistant", content, stop_reason: "end_turn", usage: top, ...extra });
  const long = "é🙂 ".repeat(3000); // multi-byte text, so the end's first byte may fall inside a character
  const cases: { name: string; body: ArrayBuffer; want: unknown }[] = [
    { name: "a small answer", body: bytes(message([{ type: "text", text: "hi" }])), want },
    { name: "a 40 KB answer with multi-byte text", body: bytes(message([{ type: "text", text: long + long }])), want },
    {
      name: "a tool input and a text mentioning usage before the real one",
      body: bytes(message([{ type: "tool_use", id: "t", name: "x", input: { usage: { input_tokens: 999, output_tokens: 999 } } }, { type: "text", text: '"usage": {"input_tokens": 7}' + long }])),
      want,
    },
    { name: "a small answer whose tool input has a usage of its own", body: bytes(message([{ type: "tool_use", id: "t", name: "x", input: { usage: { input_tokens: 999 } } }])), want },
    { name: "a field after usage that is called usage too (not an object): the whole answer is parsed", body: bytes(message([{ type: "text", text: long }], { metadata: { usage: "x" } })), want },
    { name: "usage far from the end: the whole answer is parsed", body: bytes({ usage: top, content: [{ type: "text", text: long }] }), want },
    { name: "pretty-printed", body: bytes(JSON.stringify(message([{ type: "text", text: long }]), null, 2)), want },
    { name: "no usage at all", body: bytes({ id: "msg_1", content: [{ type: "text", text: long }] }), want: null },
    { name: "a listing whose items have usage (none of its own)", body: bytes({ object: "list", data: [{ id: "a", usage: { input_tokens: 13 } }, { id: "b", usage: { input_tokens: 18 } }], has_more: false }), want: null },
    { name: "a listing, large", body: bytes({ data: [{ text: long, usage: top }], last_id: "b" }), want: null },
    { name: "JSON Lines", body: bytes(`${JSON.stringify({ result: { message: { usage: top } } })}\n${JSON.stringify({ result: { message: { usage: top } } })}\n`), want: null },
    { name: "usage nested in a field after the content", body: bytes({ content: [{ type: "text", text: long }], meta: { usage: top } }), want: null },
    { name: "not JSON", body: bytes('{"usage": {"input_tokens": 1, "output'), want: null },
  ];
  for (const c of cases) it(`Anthropic: ${c.name}`, () => expect(usageOf(anthropic, c.body)).toEqual(c.want));

  it("OpenAI: Chat Completions and Responses answers", () => {
    const chat = { id: "c", object: "chat.completion", choices: [{ message: { role: "assistant", content: long } }], usage: { prompt_tokens: 100, completion_tokens: 20, prompt_tokens_details: { cached_tokens: 64 } }, system_fingerprint: "fp" };
    expect(usageOf(openai, bytes(chat))).toEqual({ inputTokens: 36, outputTokens: 20, cacheReadTokens: 64, cacheWriteTokens: 0 });
    const responses = { id: "r", object: "response", output: [{ type: "message", content: [{ type: "output_text", text: long }] }], usage: { input_tokens: 50, output_tokens: 7, input_tokens_details: { cached_tokens: 10 } }, user: null, metadata: {} };
    expect(usageOf(openai, bytes(responses))).toEqual({ inputTokens: 40, outputTokens: 7, cacheReadTokens: 10, cacheWriteTokens: 0 });
  });
});

describe("conversation ids", () => {
  const anthropic = findProvider("anthropic")!;
  const openai = findProvider("openai")!;
  const h = (o: Record<string, string> = {}) => new Headers(o);
  const buf = (o: unknown) => new TextEncoder().encode(typeof o === "string" ? o : JSON.stringify(o)).buffer as ArrayBuffer;
  /** A Claude-Code-shaped body of about `kb` KB: key order as Claude Code sends it, metadata after the big parts. */
  const claudeCode = (kb: number, userId: string, turns = 40) => {
    const filler = "x".repeat(Math.max(0, (kb * 1024) / (turns * 2)));
    const messages = Array.from({ length: turns }, (_, i) =>
      i % 2
        ? { role: "assistant", content: [{ type: "tool_use", id: `t${i}`, name: "db", input: { user_id: `db-user-${i}`, note: filler } }] }
        : { role: "user", content: [{ type: "tool_result", tool_use_id: `t${i}`, content: `{"user_id":"row-${i}"} ${filler}` }] },
    );
    const tools = [{ name: "db", input_schema: { type: "object", properties: { metadata: { type: "object" }, user_id: { type: "string" } } } }];
    return { model: "claude-sonnet-4-5", messages, system: [{ type: "text", text: "You are Claude Code." }], tools, metadata: { user_id: userId }, max_tokens: 32000, stream: true };
  };

  it("Claude Code's metadata.user_id, also when a tool input carries a user_id of its own", () => {
    const body = { messages: [{ role: "user", content: [{ type: "tool_result", content: '{"user_id":"x"}' }] }], metadata: { user_id: "user_abc_account_1_session_2" } };
    expect(bodyConversation(anthropic, buf(body))).toBe("anthropic|u:user_abc_account_1_session_2");
    const twice = { messages: [{ role: "assistant", content: [{ type: "tool_use", input: { user_id: "db-user-9" } }] }], metadata: { user_id: "sess-1" } };
    expect(bodyConversation(anthropic, buf(twice))).toBe("anthropic|u:sess-1");
    // No metadata: the digest of the opening, the same for every later turn of the conversation.
    const opening = bodyConversation(anthropic, buf({ system: "s", messages: [{ role: "user", content: "hi" }] }));
    expect(opening).toMatch(/^anthropic\|d:/);
    expect(bodyConversation(anthropic, buf({ system: "s", messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "yo" }] }))).toBe(opening);
    expect(bodyConversation(anthropic, buf({ messages: [] }))).toBeNull();
  });

  it("Claude Code's session header names the conversation without the body", () => {
    expect(headerConversation(anthropic, h({ "x-claude-code-session-id": "4f1c-uuid" }))).toBe("anthropic|c:4f1c-uuid");
    expect(headerConversation(anthropic, h({ "x-subpool-session": "mine" }))).toBe("anthropic|h:mine");
    expect(headerConversation(anthropic, h())).toBeNull();
  });

  it("finds metadata.user_id (a JSON-encoded string, as Claude Code 2.1 sends it) at the end of a 1 MB body full of other user_ids", () => {
    const id = JSON.stringify({ device_id: "d1", account_uuid: "a1", session_id: "s-42" });
    const big = claudeCode(1024, id);
    expect(bodyConversation(anthropic, buf(big))).toBe(`anthropic|u:${JSON.stringify(id).slice(1, -1)}`);
    // SDK callers may put metadata first: the body's beginning is looked at too.
    const { metadata: _, ...rest } = claudeCode(300, "ignored");
    const sdk = { metadata: { user_id: "early" }, ...rest };
    expect(bodyConversation(anthropic, buf(sdk))).toBe("anthropic|u:early");
  });

  it("a large body without any session field is named by its beginning, stable as the conversation grows", () => {
    const turn1 = claudeCode(300, "x", 40) as { metadata?: unknown; messages: unknown[] };
    delete turn1.metadata;
    const turn2 = { ...turn1, messages: [...turn1.messages, { role: "user", content: "next" }] };
    const a = bodyConversation(anthropic, buf(turn1));
    expect(a).toMatch(/^anthropic\|b:/);
    expect(bodyConversation(anthropic, buf(turn2))).toBe(a);
  });

  it("Codex's session headers (session-id since 0.16x, session_id before), else prompt_cache_key", () => {
    expect(headerConversation(openai, h({ "session-id": "0199-new" }))).toBe("openai|s:0199-new");
    expect(headerConversation(openai, h({ session_id: "0199-abc" }))).toBe("openai|s:0199-abc");
    expect(headerConversation(openai, h())).toBeNull();
    expect(bodyConversation(openai, buf({ prompt_cache_key: "conv-7", input: [] }))).toBe("openai|p:conv-7");
    expect(bodyConversation(openai, buf("{}"))).toBeNull();
  });
});
