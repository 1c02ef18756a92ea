import { describe, expect, it } from "vitest";
import { addAccount, callRaw, createUser, listAccounts, useGateway } from "./helpers/gateway";
import { assertNoSecrets, secrets } from "./helpers/secrets";

const { up } = useGateway();
let n = 0;
const enc = new TextEncoder();
const dec = new TextDecoder();

const ev = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
const messageStart = ev("message_start", { type: "message_start", message: { id: "msg_1", type: "message", role: "assistant", content: [], model: "claude-sonnet-4-5" } });
const delta = (text: string) => ev("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text } });
const stop = ev("message_stop", { type: "message_stop" });

/**
 * A stream the test feeds by hand. workerd forbids sharing I/O objects between the test's context
 * and the Worker's, so the stream is made inside the fake upstream's handler (`stream()`) and polls
 * a plain queue that the test fills.
 */
function controlled() {
  const queue: (string | "close" | "cut")[] = [];
  const stream = () =>
    new ReadableStream<Uint8Array>(
      {
        async pull(c) {
          while (queue.length === 0) await new Promise((r) => setTimeout(r, 2));
          const item = queue.shift()!;
          if (item === "close") c.close();
          else if (item === "cut") c.error(new Error("connection reset"));
          else c.enqueue(enc.encode(item));
        },
      },
      { highWaterMark: 0 },
    );
  return { stream, send: (s: string) => queue.push(s), close: () => queue.push("close"), cut: () => queue.push("cut") };
}

const sse = (body: ReadableStream<Uint8Array> | string) => new Response(body, { headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" } });

async function userWith(count: number) {
  const u = await createUser(`sse${++n}`);
  const keys: string[] = [];
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const k = secrets.add(`sk-ant-sse-${n}-${i}-${crypto.randomUUID()}`);
    keys.push(k);
    ids.push((await addAccount(u.key, { provider: "anthropic", type: "api", key: k })).id);
  }
  return { ...u, keys, ids };
}

const streamRequest = (key: string) =>
  callRaw("/anthropic/v1/messages", {
    method: "POST",
    headers: { "x-api-key": key, "content-type": "application/json", "anthropic-version": "2023-06-01" },
    body: JSON.stringify({ model: "claude-sonnet-4-5", max_tokens: 16, stream: true, messages: [{ role: "user", content: "hi" }] }),
  });

/** Reads until `needle` shows up, or fails after `ms` (a gateway that buffers would never deliver). */
async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, needle: string, ms = 2000): Promise<string> {
  let text = "";
  const deadline = Date.now() + ms;
  while (!text.includes(needle)) {
    const left = deadline - Date.now();
    const r = await Promise.race([reader.read(), new Promise<"timeout">((res) => setTimeout(() => res("timeout"), Math.max(left, 0)))]);
    if (r === "timeout") throw new Error(`"${needle}" did not arrive within ${ms} ms; got ${JSON.stringify(text)}`);
    if (r.done) break;
    text += dec.decode(r.value, { stream: true });
  }
  return text;
}

async function readAll(res: Response): Promise<string> {
  const text = await res.text();
  assertNoSecrets("stream body", text);
  return text;
}

describe("streaming", () => {
  it("passes SSE through event by event: the client reads the first event before the second exists", async () => {
    const u = await userWith(1);
    const s = controlled();
    up().on("anthropic.fake/v1/messages", () => sse(s.stream()));
    s.send(messageStart);
    const res = await streamRequest(u.key);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    expect(res.headers.get("x-subpool-account")).toBe(u.ids[0]);
    const reader = res.body!.getReader();
    const first = await readUntil(reader, "message_start");
    expect(first).not.toContain("content_block_delta");
    s.send(delta("Hel"));
    expect(await readUntil(reader, "Hel")).toContain("content_block_delta");
    s.send(delta("lo"));
    expect(await readUntil(reader, '"lo"')).toContain("content_block_delta");
    s.send(stop);
    s.close();
    expect(await readUntil(reader, "message_stop")).toContain("message_stop");
    expect((await reader.read()).done).toBe(true);
  });

  it("fails over when the stream's first event is a rate_limit_error, benching that account", async () => {
    const u = await userWith(2);
    up().on("anthropic.fake/v1/messages", (_req, cred) =>
      cred === u.keys[0]
        ? sse(ev("error", { type: "error", error: { type: "rate_limit_error", message: "rate limited" } }))
        : sse(messageStart + delta("from two") + stop),
    );
    const res = await streamRequest(u.key);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-subpool-account")).toBe(u.ids[1]);
    expect(res.headers.get("x-subpool-attempts")).toBe("2");
    const text = await readAll(res);
    expect(text).toContain("from two");
    expect(text).not.toContain("rate_limit_error");
    const first = (await listAccounts(u.key))[0]!;
    expect(first.status).toBe("cooling");
  });

  it("fails over when the first event is overloaded_error, without benching", async () => {
    const u = await userWith(2);
    up().on("anthropic.fake/v1/messages", (_req, cred) =>
      cred === u.keys[0] ? sse(": ping\n\n" + ev("error", { type: "error", error: { type: "overloaded_error", message: "Overloaded" } })) : sse(messageStart + stop),
    );
    const res = await streamRequest(u.key);
    expect(res.headers.get("x-subpool-account")).toBe(u.ids[1]);
    await readAll(res);
    expect((await listAccounts(u.key))[0]!.status).toBe("active");
  });

  it("ends a stream the upstream cuts with an error event, never a silent truncation", async () => {
    const u = await userWith(2);
    const s = controlled();
    up().on("anthropic.fake/v1/messages", () => sse(s.stream()));
    s.send(messageStart);
    const res = await streamRequest(u.key);
    const reader = res.body!.getReader();
    await readUntil(reader, "message_start");
    s.send(delta("partial"));
    await readUntil(reader, "partial");
    s.cut();
    const tail = await readUntil(reader, "event: error");
    const data = JSON.parse(/data: (.*)\n/.exec(tail.slice(tail.indexOf("event: error")))![1]!);
    expect(data).toMatchObject({ type: "error", error: { type: "api_error" } });
    expect(data.error.message).toMatch(/incomplete/);
    expect((await reader.read()).done).toBe(true);
    // Only one account was used: no rotation once bytes reached the client.
    expect(up().calls("anthropic.fake/v1/messages")).toHaveLength(1);
  });

  it("streams OpenAI chat completions and ends a cut stream with an error the SDK recognises", async () => {
    const u = await createUser(`sse${++n}`);
    const key = secrets.add(`sk-proj-sse-${crypto.randomUUID()}`);
    await addAccount(u.key, { provider: "openai", type: "api", key });
    const s = controlled();
    up().on("openai.fake/v1/chat/completions", () => sse(s.stream()));
    s.send(`data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: "Hi" } }] })}\n\n`);
    const res = await callRaw("/openai/v1/chat/completions", { method: "POST", key: u.key, headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "gpt-5", stream: true, messages: [] }) });
    const reader = res.body!.getReader();
    await readUntil(reader, '"Hi"');
    s.cut();
    const tail = await readUntil(reader, "upstream_disconnected");
    expect(JSON.parse(/data: (.*)\n/.exec(tail)![1]!).error.code).toBe("upstream_disconnected");
  });
});
