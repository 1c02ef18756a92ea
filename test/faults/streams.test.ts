/**
 * Streams that cannot hurt (DESIGN §11): a 200 stream with no event is a failed attempt; a stream
 * silent for STREAM_IDLE_TIMEOUT_MS (2 s here) ends with the provider's error event and the upstream
 * is cancelled; a client that goes away mid-stream lets go of the upstream; usage totals of long
 * streams equal what the provider stated, in both providers' shapes; an event that never ends is
 * not held in memory.
 */
import { describe, expect, it } from "vitest";
import { ADMIN, addAccount, call, callRaw, createUser, listAccounts, sleep, useGateway } from "../helpers/gateway";
import { SSE, scripted, sseEvent, tap } from "../helpers/faults";
import { secrets } from "../helpers/secrets";
import { SseUsage } from "../../src/proxy/usage";
import { findProvider } from "../../src/providers";

const { up } = useGateway();
let n = 0;
const enc = new TextEncoder();
const dec = new TextDecoder();

async function userWith(provider: "anthropic" | "openai", count: number) {
  const u = await createUser(`streams${++n}`);
  const keys: string[] = [];
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const k = secrets.add(provider === "anthropic" ? `sk-ant-api03-streams-${n}-${i}-${crypto.randomUUID()}` : `sk-proj-streams-${n}-${i}-${crypto.randomUUID()}`);
    keys.push(k);
    ids.push((await addAccount(u.key, { provider, type: "api", key: k, label: `key ${i}` })).id);
  }
  return { ...u, keys, ids };
}

const anthropicStream = (key: string) =>
  callRaw("/anthropic/v1/messages", {
    method: "POST",
    headers: { "x-api-key": key, "content-type": "application/json", "anthropic-version": "2023-06-01" },
    body: JSON.stringify({ model: "claude-sonnet-4-5", max_tokens: 16, stream: true, messages: [{ role: "user", content: "hi" }] }),
  });
const openaiStream = (key: string, path: string, body: unknown) =>
  callRaw(`/openai${path}`, { method: "POST", key, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

const messageStart = (input: number) => sseEvent("message_start", { type: "message_start", message: { id: "msg_1", type: "message", role: "assistant", content: [], usage: { input_tokens: input, output_tokens: 1, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 } } });
const delta = (text: string) => sseEvent("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text } });

/** An endless stream of events, one every `everyMs`, counting what the gateway pulled. */
function endless(first: string, everyMs: number, t = tap()): Response {
  let i = 0;
  let stopped = false;
  return new Response(
    new ReadableStream<Uint8Array>(
      {
        async pull(c) {
          if (i > 0) await sleep(everyMs);
          if (stopped) return;
          const chunk = enc.encode(i++ === 0 ? first : delta(`t${i} `));
          t.pulled += chunk.byteLength;
          c.enqueue(chunk);
        },
        cancel() {
          stopped = true;
          t.cancelled = true;
        },
      },
      { highWaterMark: 0 },
    ),
    { headers: SSE },
  );
}

async function usageOfToday(key: string, accountId: string) {
  await sleep(1200); // successes are batched once a second
  await listAccounts(key); // flushes this isolate's outcomes
  const r = await call(`/api/accounts/${accountId}/usage?days=1`, { key });
  return r.json<{ days: Record<string, unknown>[] }>().days[0];
}

describe("a 200 stream with no event is a failed attempt", () => {
  const cases: { name: string; parts: string[] }[] = [
    { name: "an empty stream", parts: [] },
    { name: "only comments and pings", parts: [": ping\n\n", ":keep-alive\n\n"] },
    { name: "bytes that are no event", parts: ["<html>\n<body>oops</body>\n", "\u0000\u00ff garbage\n\n"] },
  ];
  for (const c of cases) {
    it(`${c.name}: the next account serves, and the first counts a failure, not a success`, async () => {
      const u = await userWith("anthropic", 2);
      up().on("anthropic.fake/v1/messages", (_req, cred) =>
        cred === u.keys[0] ? scripted(c.parts, "close", { headers: SSE }) : scripted([messageStart(3), delta("from two"), sseEvent("message_stop", { type: "message_stop" })], "close", { headers: SSE }),
      );
      const res = await anthropicStream(u.key);
      expect(res.status).toBe(200);
      expect(res.headers.get("x-subpool-account")).toBe(u.ids[1]);
      expect(res.headers.get("x-subpool-attempts")).toBe("2");
      expect(await res.text()).toContain("from two");
      const first = (await listAccounts(u.key))[0]!;
      expect(first.lastError).toMatch(/without an event/);
      expect(first.status).toBe("active"); // not the account's quota: no bench
      expect(first.successCount).toBe(0);
      expect(first.failureCount).toBe(1);
    });
  }

  it("64 KiB of bytes with no event in them is no stream either", async () => {
    const u = await userWith("anthropic", 2);
    const junk = "x".repeat(16 * 1024) + "\n";
    up().on("anthropic.fake/v1/messages", (_req, cred) =>
      cred === u.keys[0] ? scripted([junk, junk, junk, junk, junk], "stall", { headers: SSE }) : scripted([messageStart(3), sseEvent("message_stop", { type: "message_stop" })], "close", { headers: SSE }),
    );
    const res = await anthropicStream(u.key);
    expect(res.headers.get("x-subpool-account")).toBe(u.ids[1]);
    await res.text();
    expect((await listAccounts(u.key))[0]!.lastError).toMatch(/bytes without an event/);
  });
});

describe("the first event that says something", () => {
  const twoAccounts = async (first: () => Response) => {
    const u = await userWith("anthropic", 2);
    up().on("anthropic.fake/v1/messages", (_req, cred) => (cred === u.keys[0] ? first() : scripted([messageStart(3), delta("from two"), sseEvent("message_stop", { type: "message_stop" })], "close", { headers: SSE })));
    const res = await anthropicStream(u.key);
    return { u, res, text: await res.text() };
  };

  it("an `event: ping` is not an event: pings then nothing is no stream, the next account serves", async () => {
    const { u, res, text } = await twoAccounts(() => scripted([sseEvent("ping", { type: "ping" }), sseEvent("ping", { type: "ping" })], "close", { headers: SSE }));
    expect(res.headers.get("x-subpool-account")).toBe(u.ids[1]);
    expect(text).toContain("from two");
  });

  it("an overloaded_error right after message_start fails over: the opening was held back", async () => {
    const { u, res, text } = await twoAccounts(() =>
      scripted([messageStart(1), sseEvent("ping", { type: "ping" }), sseEvent("error", { type: "error", error: { type: "overloaded_error", message: "Overloaded" } })], "close", { headers: SSE }),
    );
    expect(res.headers.get("x-subpool-account")).toBe(u.ids[1]);
    expect(text).not.toContain("overloaded_error");
    expect(text.match(/event: message_start/g)).toHaveLength(1); // the first account's opening never reached the client
  });

  it("a Responses stream's usage limit after response.created fails over (Codex)", async () => {
    const u = await createUser(`streams${++n}`);
    const ids: string[] = [];
    const keys = [secrets.add(`sk-proj-a-${crypto.randomUUID()}`), secrets.add(`sk-proj-b-${crypto.randomUUID()}`)];
    for (const k of keys) ids.push((await addAccount(u.key, { provider: "openai", type: "api", key: k })).id);
    up().on("openai.fake/v1/responses", (_req, cred) =>
      cred === keys[0]
        ? scripted([sseEvent("response.created", { type: "response.created", response: { id: "r1", error: null } }), sseEvent("response.failed", { type: "response.failed", response: { error: { code: "rate_limit_exceeded", message: "slow down" } } })], "close", { headers: SSE })
        : scripted([sseEvent("response.created", { type: "response.created", response: { id: "r2", error: null } }), sseEvent("response.output_text.delta", { type: "response.output_text.delta", delta: "hi" }), sseEvent("response.completed", { type: "response.completed", response: { id: "r2", usage: { input_tokens: 3, output_tokens: 1 } } })], "close", { headers: SSE }),
    );
    const res = await openaiStream(u.key, "/v1/responses", { model: "gpt-5", stream: true, input: "hi" });
    expect(res.headers.get("x-subpool-account")).toBe(ids[1]);
    expect(await res.text()).not.toContain("rate_limit_exceeded");
    expect((await listAccounts(u.key))[0]!.status).toBe("cooling");
  });

  it("a stream that opened and then thinks quietly past FIRST_EVENT_TIMEOUT_MS is passed on, not failed over", async () => {
    const u = await userWith("anthropic", 2);
    up().on("anthropic.fake/v1/messages", (_req, cred) =>
      cred === u.keys[0] ? scripted([messageStart(4), delta("after a long think")], "close", { headers: SSE }, tap(), 600) : scripted([messageStart(3), delta("from two")], "close", { headers: SSE }),
    );
    const res = await anthropicStream(u.key);
    expect(res.headers.get("x-subpool-account")).toBe(u.ids[0]);
    expect(await res.text()).toContain("after a long think");
  });

  it("thousands of tiny chunks before any event cost bounded work (each is searched once)", async () => {
    const u = await userWith("anthropic", 2);
    const parts = Array.from({ length: 20_000 }, (_, i) => (i % 2 ? ":\n\n" : "\r\n"));
    const t0 = Date.now();
    const { res } = await twoAccounts(() => scripted(parts, "close", { headers: SSE }));
    void u;
    expect(res.status).toBe(200);
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

describe("a stream that goes silent after its first event", () => {
  it("ends after STREAM_IDLE_TIMEOUT_MS with Anthropic's error event; the upstream is cancelled; the account is not benched", async () => {
    const u = await userWith("anthropic", 2);
    const t = tap();
    up().on("anthropic.fake/v1/messages", () => scripted([messageStart(4), delta("thinking")], "stall", { headers: SSE }, t));
    const t0 = Date.now();
    const res = await anthropicStream(u.key);
    const text = await res.text();
    const ms = Date.now() - t0;
    expect(ms).toBeGreaterThanOrEqual(1900);
    expect(ms).toBeLessThan(6000);
    expect(text).toContain("thinking");
    const tail = text.slice(text.indexOf("event: error"));
    const data = JSON.parse(/data: (.*)\n/.exec(tail)![1]!);
    expect(data).toMatchObject({ type: "error", error: { type: "api_error" } });
    expect(data.error.message).toMatch(/sent nothing for 2 s.*STREAM_IDLE_TIMEOUT_MS/);
    await sleep(50);
    expect(t.cancelled).toBe(true);
    await sleep(1200);
    const first = (await listAccounts(u.key))[0]!;
    expect(first.status).toBe("active");
    expect(first.failureCount).toBe(1);
    expect(first.lastError).toMatch(/went silent/);
    // No rotation once bytes reached the client.
    expect(up().calls("anthropic.fake/v1/messages")).toHaveLength(1);
  });

  it("ends an OpenAI stream with the error event OpenAI's SDKs recognise", async () => {
    const u = await userWith("openai", 1);
    const t = tap();
    up().on("openai.fake/v1/chat/completions", () => scripted([`data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: "Hi" } }] })}\n\n`], "stall", { headers: SSE }, t));
    const res = await openaiStream(u.key, "/v1/chat/completions", { model: "gpt-5", stream: true, messages: [] });
    const text = await res.text();
    expect(text).toContain('"Hi"');
    expect(JSON.parse(/event: error\ndata: (.*)\n/.exec(text)![1]!).error.code).toBe("upstream_disconnected");
    await sleep(50);
    expect(t.cancelled).toBe(true);
  });

  it("ends a silent GET stream too (a Responses resume: no body says it streams)", async () => {
    const u = await userWith("openai", 1);
    const t = tap();
    up().on("openai.fake/v1/responses/resp_1", () => scripted([sseEvent("response.output_text.delta", { type: "response.output_text.delta", delta: "again" })], "stall", { headers: SSE }, t));
    const res = await callRaw("/openai/v1/responses/resp_1?stream=true", { key: u.key });
    const text = await res.text();
    expect(text).toContain("again");
    expect(text).toContain("upstream_disconnected");
    await sleep(50);
    expect(t.cancelled).toBe(true);
  });

  it("a stream that keeps sending is never cut, however long it runs", async () => {
    const u = await userWith("anthropic", 1);
    up().on("anthropic.fake/v1/messages", () => {
      const parts = [messageStart(1)];
      for (let i = 0; i < 30; i++) parts.push(delta(`w${i} `));
      parts.push(sseEvent("message_stop", { type: "message_stop" }));
      return scripted(parts, "close", { headers: SSE }, tap(), 100); // 3 s in all, never 2 s silent
    });
    const text = await (await anthropicStream(u.key)).text();
    expect(text).toContain("w29");
    expect(text).toContain("message_stop");
    expect(text).not.toContain("event: error");
  });
});

describe("a client that goes away mid-stream", () => {
  it("lets go of the upstream while the copy for usage is still read, and the usage seen is recorded", async () => {
    const u = await userWith("anthropic", 1);
    const t = tap();
    up().on("anthropic.fake/v1/messages", () => endless(messageStart(42), 10, t));
    const res = await anthropicStream(u.key);
    const reader = res.body!.getReader();
    let text = "";
    while (!text.includes("t3 ")) text += dec.decode((await reader.read()).value);
    await reader.cancel();
    const t0 = Date.now();
    while (!t.cancelled && Date.now() - t0 < 2000) await sleep(10);
    expect(t.cancelled).toBe(true);
    expect(Date.now() - t0).toBeLessThan(1000);
    const pulled = t.pulled;
    await sleep(100);
    expect(t.pulled).toBe(pulled); // nothing more is generated for nobody
    const day = await usageOfToday(u.key, u.ids[0]!);
    expect(day).toMatchObject({ requests: 1, inputTokens: 42 });
  });
});

describe("usage totals of long streams equal what the provider stated", () => {
  it("Anthropic: 2,000 events, input from message_start, cumulative output from the last message_delta", async () => {
    const u = await userWith("anthropic", 1);
    up().on("anthropic.fake/v1/messages", () => {
      const parts = [sseEvent("message_start", { type: "message_start", message: { usage: { input_tokens: 1234, output_tokens: 1, cache_read_input_tokens: 5000, cache_creation_input_tokens: 70 } } })];
      for (let i = 0; i < 2000; i++) parts.push(delta(`tok${i} `));
      parts.push(sseEvent("message_delta", { type: "message_delta", delta: { stop_reason: "end_turn" }, usage: { output_tokens: 1000 } }));
      parts.push(sseEvent("message_delta", { type: "message_delta", delta: { stop_reason: "end_turn" }, usage: { output_tokens: 2001 } }));
      parts.push(sseEvent("message_stop", { type: "message_stop" }));
      return scripted(parts, "close", { headers: SSE });
    });
    const text = await (await anthropicStream(u.key)).text();
    expect(text.match(/event: content_block_delta/g)).toHaveLength(2000);
    expect(await usageOfToday(u.key, u.ids[0]!)).toMatchObject({ requests: 1, inputTokens: 1234, outputTokens: 2001, cacheReadTokens: 5000, cacheWriteTokens: 70 });
  });

  it("OpenAI Chat Completions: 2,000 chunks, the total from the last chunk's usage", async () => {
    const u = await userWith("openai", 1);
    up().on("openai.fake/v1/chat/completions", () => {
      const chunk = (o: unknown) => `data: ${JSON.stringify(o)}\n\n`;
      const parts: string[] = [];
      for (let i = 0; i < 2000; i++) parts.push(chunk({ id: "c", object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: `t${i}` } }], usage: null }));
      parts.push(chunk({ id: "c", object: "chat.completion.chunk", choices: [], usage: { prompt_tokens: 900, completion_tokens: 2000, prompt_tokens_details: { cached_tokens: 300 } } }));
      parts.push("data: [DONE]\n\n");
      return scripted(parts, "close", { headers: SSE });
    });
    await (await openaiStream(u.key, "/v1/chat/completions", { model: "gpt-5", stream: true, stream_options: { include_usage: true }, messages: [] })).text();
    expect(await usageOfToday(u.key, u.ids[0]!)).toMatchObject({ requests: 1, inputTokens: 600, outputTokens: 2000, cacheReadTokens: 300 });
  });

  it("OpenAI Responses: 2,000 deltas, the total from response.completed", async () => {
    const u = await userWith("openai", 1);
    up().on("openai.fake/v1/responses", () => {
      const parts = [sseEvent("response.created", { type: "response.created", response: { id: "r", status: "in_progress", usage: null } })];
      for (let i = 0; i < 2000; i++) parts.push(sseEvent("response.output_text.delta", { type: "response.output_text.delta", delta: `t${i}` }));
      parts.push(sseEvent("response.completed", { type: "response.completed", response: { id: "r", status: "completed", usage: { input_tokens: 700, output_tokens: 2000, input_tokens_details: { cached_tokens: 100 } } } }));
      return scripted(parts, "close", { headers: SSE });
    });
    await (await openaiStream(u.key, "/v1/responses", { model: "gpt-5", stream: true, input: "hi" })).text();
    expect(await usageOfToday(u.key, u.ids[0]!)).toMatchObject({ requests: 1, inputTokens: 600, outputTokens: 2000, cacheReadTokens: 100 });
  });
});

describe("memory per stream is bounded whatever arrives", () => {
  // A memory bound, not a speed test (the bench times the scan): 300 MB take a few seconds of CPU,
  // more on a loaded machine.
  it("300 MB of data: lines that never end an event are dropped as they grow, not held; usage after them still counts", { timeout: 60_000 }, () => {
    const counted = new SseUsage(findProvider("anthropic")!);
    const line = enc.encode(`data: ${"x".repeat(1017)}\n`); // 1 KiB
    const chunk = new Uint8Array(64 * 1024);
    for (let i = 0; i < 64; i++) chunk.set(line, i * 1024);
    let peak = 0;
    for (let sent = 0; sent < 300 * 1024 * 1024; sent += chunk.byteLength) {
      counted.observe(chunk);
      peak = Math.max(peak, counted.heldChars());
    }
    expect(peak).toBeLessThanOrEqual(1024 * 1024 + chunk.byteLength);
    counted.observe(enc.encode(`\n\n${sseEvent("message_delta", { type: "message_delta", usage: { input_tokens: 9, output_tokens: 77 } })}`));
    expect(counted.end()).toMatchObject({ inputTokens: 9, outputTokens: 77 });
  });

  it("reads the same usage however the stream is cut into batches (events and CR LF line ends split anywhere)", () => {
    const anthropic = findProvider("anthropic")!;
    const text =
      sseEvent("message_start", { type: "message_start", message: { usage: { input_tokens: 11, output_tokens: 1, cache_read_input_tokens: 7, cache_creation_input_tokens: 3 } } }) +
      delta("a") +
      ": ping\n\n" +
      sseEvent("message_delta", { type: "message_delta", usage: { output_tokens: 5 } }) +
      delta("b").replace(/\n/g, "\r\n") +
      sseEvent("message_delta", { type: "message_delta", usage: { output_tokens: 9 } });
    const bytes = enc.encode(text);
    const expected = { inputTokens: 11, outputTokens: 9, cacheReadTokens: 7, cacheWriteTokens: 3 };
    for (let a = 1; a < bytes.length; a += 3) {
      for (const b of [a + 1, a + 17, a + 160]) {
        const counted = new SseUsage(anthropic);
        counted.observe(bytes.subarray(0, a));
        counted.observe(bytes.subarray(a, Math.min(b, bytes.length)));
        counted.observe(bytes.subarray(Math.min(b, bytes.length)));
        expect(counted.end(), `cut at ${a} and ${b}`).toEqual(expected);
      }
    }
  });

  it("a stream that outruns the reading of its copy (16 MiB behind) is passed on whole, and the copy is let go", async () => {
    const u = await userWith("anthropic", 1);
    const big = `data: ${"y".repeat(1017)}\n`.repeat(256); // 256 KiB of an event that never ends
    up().on("anthropic.fake/v1/messages", () => scripted([messageStart(2), ...Array.from({ length: 80 }, () => big)], "close", { headers: SSE }));
    const reads = async () => (await call("/admin/stats", { key: ADMIN })).json<{ isolate: { streams: { copyReads: number } } }>().isolate.streams.copyReads;
    const before = await reads();
    const text = await (await anthropicStream(u.key)).text();
    expect(text.length).toBe(messageStart(2).length + 80 * big.length);
    expect((await reads()) - before).toBeLessThan(80); // let go after 64 full reads, not read to the end
  });

  it("a legitimate burst after a pause (3 MiB of deltas at once) keeps its usage", async () => {
    const u = await userWith("anthropic", 1);
    const burst = delta("z".repeat(900)).repeat(256);
    up().on("anthropic.fake/v1/messages", () =>
      scripted([messageStart(5), ...Array.from({ length: 12 }, () => burst), sseEvent("message_delta", { type: "message_delta", usage: { output_tokens: 999 } }), sseEvent("message_stop", { type: "message_stop" })], "close", { headers: SSE }, tap(), 0),
    );
    await (await anthropicStream(u.key)).text();
    expect(await usageOfToday(u.key, u.ids[0]!)).toMatchObject({ requests: 1, inputTokens: 5, outputTokens: 999 });
  });

  it("an error event after the stream began counts as a failure of the account", async () => {
    const u = await userWith("anthropic", 1);
    up().on("anthropic.fake/v1/messages", () =>
      scripted([messageStart(5), delta("half"), sseEvent("error", { type: "error", error: { type: "overloaded_error", message: "Overloaded" } })], "close", { headers: SSE }),
    );
    const text = await (await anthropicStream(u.key)).text();
    expect(text).toContain("overloaded_error"); // the provider's own event reaches the client as sent
    await sleep(1200);
    const acc = (await listAccounts(u.key))[0]!;
    expect(acc.failureCount).toBe(1);
    expect(acc.lastError).toMatch(/error event after it began/);
  });

  it("after an event too large to hold, a CR-only stream's later usage still counts", () => {
    const counted = new SseUsage(findProvider("anthropic")!);
    counted.observe(enc.encode("event: message_delta\r"));
    for (let i = 0; i < 1100; i++) counted.observe(enc.encode(`data: ${"q".repeat(1017)}\r`));
    counted.observe(enc.encode(`\r${sseEvent("message_delta", { type: "message_delta", usage: { output_tokens: 31 } }).replace(/\n/g, "\r")}`));
    expect(counted.end()).toMatchObject({ outputTokens: 31 });
  });
});
