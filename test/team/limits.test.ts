/**
 * The team's limits for a member (DESIGN §12): set by an admin, validated at the edge, enforced in
 * the provider's own error format from the snapshot (no KV or Durable Object round trip per
 * request), reconciled across isolates through the member's object, and shown to the member.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { topLevelModels, modelAllowed } from "../../src/limits/models";
import { ADMIN, addAccount, call, createUser, listAccounts, messages, postJson, useGateway } from "../helpers/gateway";
import { resetIsolateCaches } from "../helpers/isolate";
import { secrets } from "../helpers/secrets";
import { anthropicMessage, json } from "../helpers/upstream";

const { up } = useGateway();
let n = 0;
const stubOf = (userId: string) => env.USER_POOL.get(env.USER_POOL.idFromName(userId));

/** A member with one Anthropic key; every answer uses 5 + 2 = 7 tokens. */
async function member(limits?: Record<string, unknown>) {
  const u = await createUser(`lim${++n}`);
  const key = secrets.add(`sk-ant-api03-lim-${crypto.randomUUID()}`);
  const acc = await addAccount(u.key, { provider: "anthropic", type: "api", key, label: `key ${n}` });
  up().on("anthropic.fake/v1/messages", () => json(anthropicMessage()));
  if (limits) expect((await setLimits(u.id, limits)).status).toBe(200);
  return { ...u, acc };
}

const setLimits = (id: string, limits: Record<string, unknown>, key = ADMIN) => postJson(`/admin/users/${id}`, key, { limits }, "PATCH");
const upstreamCalls = () => up().seen.filter((s) => s.url.includes("/v1/messages")).length;
const sonnet = (model = "claude-sonnet-4-5") => ({ model, max_tokens: 16, messages: [{ role: "user", content: "hi" }] });

describe("setting limits (PATCH /admin/users/:id)", () => {
  it("stores them, shows them in GET /admin/users, and null removes one", async () => {
    const u = await member();
    const r = await setLimits(u.id, { requestsPerMinute: 60, tokensPerDay: 2_000_000, models: ["claude-sonnet-*"] });
    expect(r.status, r.body).toBe(200);
    expect(r.json<{ limits: unknown }>().limits).toEqual({ requestsPerMinute: 60, tokensPerDay: 2_000_000, tokensPerMonth: null, models: ["claude-sonnet-*"] });
    // A field left out stays; null removes it.
    await setLimits(u.id, { tokensPerDay: null });
    const listed = (await call("/admin/users", { key: ADMIN })).json<{ users: { id: string; limits: unknown }[] }>().users.find((x) => x.id === u.id);
    expect(listed?.limits).toEqual({ requestsPerMinute: 60, tokensPerDay: null, tokensPerMonth: null, models: ["claude-sonnet-*"] });
  });

  it.each([
    [{ requestsPerMinute: -1 }, "limits.requestsPerMinute"],
    [{ tokensPerDay: 1.5 }, "limits.tokensPerDay"],
    [{ tokensPerMonth: "lots" }, "limits.tokensPerMonth"],
    [{ models: "claude-*" }, "limits.models"],
    [{ models: ["claude sonnet"] }, "limits.models.0"],
    [{ models: Array.from({ length: 17 }, (_, i) => `m${i}`) }, "limits.models"],
    [{ rpm: 5 }, "rpm"],
  ])("refuses %j with a 400 naming %s, and changes nothing", async (limits, field) => {
    const u = await member({ requestsPerMinute: 7 });
    const r = await setLimits(u.id, limits);
    expect(r.status, r.body).toBe(400);
    expect(r.json().error.field).toBe(field);
    const listed = (await call("/admin/users", { key: ADMIN })).json<{ users: { id: string; limits: { requestsPerMinute: number } }[] }>().users.find((x) => x.id === u.id);
    expect(listed?.limits.requestsPerMinute).toBe(7);
  });

  it("is the admin's: a member gets 403, an unknown user 404, a body without limits 400", async () => {
    const u = await member();
    expect((await setLimits(u.id, { requestsPerMinute: 1000 }, u.key)).status).toBe(403);
    expect((await setLimits("u_AAAAAAAAAAAAAAAA", { requestsPerMinute: 1 })).status).toBe(404);
    const r = await postJson(`/admin/users/${u.id}`, ADMIN, { requestsPerMinute: 1 }, "PATCH");
    expect(r.status).toBe(400);
    expect(r.json().error.field).toBe("limits");
    expect(r.json().error.message).toMatch(/limits: must be an object of limits/);
  });
});

describe("enforcing limits at the edge", () => {
  it("over requestsPerMinute: 429 in Anthropic's format with retry-after and x-subpool-limit, the upstream not called", async () => {
    const u = await member({ requestsPerMinute: 2 });
    expect((await messages(u.key)).status).toBe(200);
    expect((await messages(u.key)).status).toBe(200);
    const r = await messages(u.key);
    expect(r.status).toBe(429);
    expect(r.headers.get("x-subpool-limit")).toBe("requestsPerMinute");
    const retry = Number(r.headers.get("retry-after"));
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(60);
    // A per-minute limit is worth retrying; the SDK may.
    expect(r.headers.get("x-should-retry")).toBeNull();
    const body = r.json<{ type: string; error: { type: string; message: string } }>();
    expect(body.type).toBe("error");
    expect(body.error.type).toBe("rate_limit_error");
    expect(body.error.message).toMatch(/team's limit of 2 requests per minute/);
    expect(body.error.message).toMatch(/not Anthropic's rate limit/);
    expect(upstreamCalls()).toBe(2);
  });

  it("over requestsPerMinute on an OpenAI route: the refusal in OpenAI's error format", async () => {
    const u = await createUser(`limo${++n}`);
    await addAccount(u.key, { provider: "openai", type: "api", key: secrets.add(`sk-proj-lim-${crypto.randomUUID()}`) });
    up().on("openai.fake/v1/chat/completions", () => json({ id: "c1", object: "chat.completion", choices: [], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }));
    await setLimits(u.id, { requestsPerMinute: 0 });
    const r = await postJson("/openai/v1/chat/completions", u.key, { model: "gpt-5", messages: [] });
    expect(r.status).toBe(429);
    expect(r.headers.get("x-subpool-limit")).toBe("requestsPerMinute");
    expect(r.json<{ error: { message: string; type: string } }>().error.message).toMatch(/team's admin has paused/);
  });

  it("over tokensPerDay: the request that crosses the line finishes, the next gets 429 until the UTC day ends", async () => {
    const u = await member({ tokensPerDay: 10 });
    expect((await messages(u.key)).status).toBe(200); // 7
    expect((await messages(u.key)).status).toBe(200); // 14: it was admitted at 7 (a request in flight may cross)
    const r = await messages(u.key);
    expect(r.status).toBe(429);
    expect(r.headers.get("x-subpool-limit")).toBe("tokensPerDay");
    const now = Date.now();
    const midnight = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), new Date(now).getUTCDate() + 1);
    expect(Math.abs(Number(r.headers.get("retry-after")) - (midnight - now) / 1000)).toBeLessThan(5);
    // Retrying a day's limit only spins: the SDKs are told not to.
    expect(r.headers.get("x-should-retry")).toBe("false");
    expect(r.json<{ error: { message: string } }>().error.message).toMatch(/10 tokens per day \(UTC\).*set by your team's admin/);
    expect(upstreamCalls()).toBe(2);
  });

  it("over tokensPerMonth: 429 naming the month", async () => {
    const u = await member({ tokensPerMonth: 5 });
    expect((await messages(u.key)).status).toBe(200);
    const r = await messages(u.key);
    expect(r.status).toBe(429);
    expect(r.headers.get("x-subpool-limit")).toBe("tokensPerMonth");
  });

  it("a model outside the allow-list: 403 in the provider's format, the upstream not called; an allowed one passes", async () => {
    const u = await member({ models: ["claude-haiku-*", "claude-opus-4-1"] });
    const r = await messages(u.key, sonnet());
    expect(r.status).toBe(403);
    expect(r.headers.get("x-subpool-limit")).toBe("models");
    const e = r.json<{ type: string; error: { type: string; message: string } }>();
    expect(e.error.type).toBe("permission_error");
    expect(e.error.message).toMatch(/claude-haiku-\*, claude-opus-4-1.*not "claude-sonnet-4-5"/);
    expect(upstreamCalls()).toBe(0);
    expect((await messages(u.key, sonnet("claude-haiku-4-5"))).status).toBe(200);
    expect((await messages(u.key, sonnet("CLAUDE-OPUS-4-1"))).status).toBe(200);
  });

  it("reads the model from the body's top level only, and refuses a body that names it twice", async () => {
    const u = await member({ models: ["claude-haiku-*"] });
    // A "model" inside metadata or a message does not decide.
    const nested = { metadata: { model: "claude-haiku-4-5" }, model: "claude-sonnet-4-5", messages: [{ role: "user", content: '"model":"claude-haiku-4-5"' }] };
    expect((await messages(u.key, nested)).status).toBe(403);
    const raw = '{"model":"claude-haiku-4-5","max_tokens":5,"messages":[],"model":"claude-opus-4-1"}';
    const r = await call("/anthropic/v1/messages", { method: "POST", headers: { "x-api-key": u.key, "content-type": "application/json" }, body: raw });
    expect(r.status).toBe(400);
    expect(r.json<{ error: { message: string } }>().error.message).toMatch(/names "model" 2 times/);
    expect(upstreamCalls()).toBe(0);
  });

  it("finds the model at the end of a large body (never read for members without a model list)", async () => {
    const u = await member({ models: ["claude-haiku-*"] });
    const big = JSON.stringify({ messages: [{ role: "user", content: "x".repeat(300_000) }], max_tokens: 5, model: "claude-sonnet-4-5" });
    const r = await call("/anthropic/v1/messages", { method: "POST", headers: { "x-api-key": u.key, "content-type": "application/json", "content-length": String(big.length) }, body: big });
    expect(r.status).toBe(403);
    const ok = big.replace('"model":"claude-sonnet-4-5"', '"model":"claude-haiku-4-5"');
    const r2 = await call("/anthropic/v1/messages", { method: "POST", headers: { "x-api-key": u.key, "content-type": "application/json", "content-length": String(ok.length) }, body: ok });
    expect(r2.status).toBe(200);
    // The upstream got the whole body, unchanged.
    expect(up().seen.find((s) => s.url.includes("/v1/messages"))?.body.length).toBe(ok.length);
  });

  it("refused requests make no KV or Durable Object round trip (a member hammering a limit costs the object nothing)", async () => {
    const u = await member({ requestsPerMinute: 1 });
    expect((await messages(u.key)).status).toBe(200);
    expect((await messages(u.key)).status).toBe(429); // the limit.reached event's one flush
    const before = (await call("/admin/stats", { key: ADMIN })).json().isolate;
    for (let i = 0; i < 20; i++) expect((await messages(u.key)).status).toBe(429);
    const after = (await call("/admin/stats", { key: ADMIN })).json().isolate;
    const kv = (o: { kv: Record<string, number> }) => Object.values(o.kv).reduce((a, b) => a + b, 0);
    expect(kv(after) - kv(before)).toBe(0);
    // The snapshot is re-read at most once a second in the background; no call per request.
    expect(after.do.calls - before.do.calls).toBeLessThanOrEqual(2);
    expect(upstreamCalls()).toBe(1);
  });

  it("another isolate learns what this one spent through the member's object", async () => {
    const u = await member({ tokensPerDay: 10, requestsPerMinute: 3 });
    expect((await messages(u.key)).status).toBe(200);
    expect((await messages(u.key)).status).toBe(200);
    // Let the batch reach the object (successes are flushed within a second).
    await new Promise((r) => setTimeout(r, 1_300));
    resetIsolateCaches(); // a fresh isolate: nothing counted locally
    const r = await messages(u.key);
    expect(r.status).toBe(429);
    expect(r.headers.get("x-subpool-limit")).toBe("tokensPerDay");
    const spent = await runInDurableObject(stubOf(u.id), (_o, s) =>
      s.storage.sql.exec<{ t: number }>("SELECT input_tokens + output_tokens AS t FROM member_usage_daily").one().t,
    );
    expect(spent).toBe(14);
  });

  it("admitted requests of the minute reach the object too: a fresh isolate refuses the one over requestsPerMinute", { timeout: 20_000 }, async () => {
    const u = await member({ requestsPerMinute: 2 });
    // Run close to a minute's start, so both isolates count the same minute.
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 50_000) await new Promise((r) => setTimeout(r, 60_500 - intoMinute));
    expect((await messages(u.key)).status).toBe(200);
    expect((await messages(u.key)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1_300));
    resetIsolateCaches();
    const r = await messages(u.key);
    expect(r.status).toBe(429);
    expect(r.headers.get("x-subpool-limit")).toBe("requestsPerMinute");
  });

  it("deleting an account does not give the day's tokens back", async () => {
    const u = await member({ tokensPerDay: 10 });
    await messages(u.key);
    await messages(u.key);
    await new Promise((r) => setTimeout(r, 1_300));
    expect((await call(`/api/accounts/${u.acc.id}`, { method: "DELETE", key: u.key })).status).toBe(204);
    await addAccount(u.key, { provider: "anthropic", type: "api", key: secrets.add(`sk-ant-api03-lim2-${crypto.randomUUID()}`) });
    resetIsolateCaches();
    const r = await messages(u.key);
    expect(r.status).toBe(429);
    expect(r.headers.get("x-subpool-limit")).toBe("tokensPerDay");
  });

  it("a new limit reaches requests at once in the isolate that set it", async () => {
    const u = await member();
    expect((await messages(u.key)).status).toBe(200);
    await setLimits(u.id, { requestsPerMinute: 0 });
    expect((await messages(u.key)).status).toBe(429);
    await setLimits(u.id, { requestsPerMinute: null });
    expect((await messages(u.key)).status).toBe(200);
  });
});

describe("what a reviewer tried against the limits", () => {
  it("an escaped key is the same key: \"mod\\u0065l\" is checked, and counts as a second name", async () => {
    const u = await member({ models: ["claude-haiku-*"] });
    const send = (raw: string) => call("/anthropic/v1/messages", { method: "POST", headers: { "x-api-key": u.key, "content-type": "application/json" }, body: raw });
    const alone = await send('{"mod\\u0065l":"claude-opus-4-1","max_tokens":5,"messages":[]}');
    expect(alone.status).toBe(403);
    expect(alone.headers.get("x-subpool-limit")).toBe("models");
    const twice = await send('{"model":"claude-haiku-4-5","max_tokens":5,"m\\u006fdel":"claude-opus-4-1"}');
    expect(twice.status).toBe(400);
    expect(upstreamCalls()).toBe(0);
  });

  it("paths whose model and tokens the gateway cannot see (batches, files) are closed to members with a model list or a token limit", async () => {
    const u = await member({ models: ["claude-*"] });
    up().on("anthropic.fake/v1/messages/batches", () => json({ id: "batch_1", type: "message_batch" }));
    up().on("anthropic.fake/v1/models", () => json({ data: [] }));
    const batch = await postJson("/anthropic/v1/messages/batches", u.key, { requests: [{ custom_id: "a", params: { model: "claude-opus-4-1", max_tokens: 5, messages: [] } }] });
    expect(batch.status).toBe(403);
    expect(batch.headers.get("x-subpool-limit")).toBe("models");
    expect(batch.json<{ error: { message: string } }>().error.message).toMatch(/POST \/anthropic\/v1\/messages\/batches is closed to you/);
    expect(up().seen.filter((x) => x.url.includes("/batches"))).toHaveLength(0);
    // The model list and token counting stay open.
    expect((await call("/anthropic/v1/models", { key: u.key })).status).toBe(200);
    // A token limit closes them too; a requests-per-minute limit alone does not (a batch is one request).
    const t = await member({ tokensPerDay: 1_000_000 });
    const b2 = await postJson("/anthropic/v1/messages/batches", t.key, { requests: [] });
    expect(b2.status).toBe(403);
    expect(b2.headers.get("x-subpool-limit")).toBe("tokensPerDay");
    const r = await member({ requestsPerMinute: 100 });
    up().on("anthropic.fake/v1/messages/batches", () => json({ id: "batch_2", type: "message_batch" }));
    expect((await postJson("/anthropic/v1/messages/batches", r.key, { requests: [] })).status).toBe(200);
  });

  it("a model name a member makes long is refused at once and quoted short (no glob backtracking)", async () => {
    const u = await member({ models: ["claude-*-*-*"] });
    const name = `claude-${"-".repeat(12_000)}\n`;
    const t0 = Date.now();
    const r = await messages(u.key, sonnet(name));
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(r.status).toBe(403);
    expect(r.body.length).toBeLessThan(1_000);
    // And within the length a name may have, the worst case is still quick.
    const t1 = performance.now();
    expect(modelAllowed(`claude-${"-".repeat(240)}x`, ["claude-*-*-*-*-*-y"])).toBe(false);
    expect(performance.now() - t1).toBeLessThan(50);
  });

  it("a limit of 0 is a pause: the message says so and clients are told not to retry", async () => {
    const u = await member({ requestsPerMinute: 0 });
    const r = await messages(u.key);
    expect(r.status).toBe(429);
    expect(r.headers.get("x-should-retry")).toBe("false");
    expect(r.json<{ error: { message: string } }>().error.message).toMatch(/admin has paused your use of this gateway \(a limit of 0 requests per minute/);
    const d = await member({ tokensPerDay: 0 });
    expect((await messages(d.key)).json<{ error: { message: string } }>().error.message).toMatch(/paused.*0 tokens per day/);
  });
});

describe("what a member sees (GET /api/me)", () => {
  it("their limits and what is left, with when each window frees", async () => {
    const u = await member({ tokensPerDay: 100, requestsPerMinute: 10 });
    await messages(u.key);
    const me = (await call("/api/me", { key: u.key })).json<{ limits: Record<string, unknown>; left: { tokensPerDay: number; tokensPerMonth: number | null; requestsPerMinute: number; resets: { day: number; minute: number } } }>();
    expect(me.limits).toEqual({ requestsPerMinute: 10, tokensPerDay: 100, tokensPerMonth: null, models: null });
    expect(me.left.tokensPerDay).toBe(93);
    expect(me.left.requestsPerMinute).toBe(9);
    expect(me.left.tokensPerMonth).toBeNull();
    expect(me.left.resets.day).toBeGreaterThan(Date.now());
    expect(me.left.resets.minute - Date.now()).toBeLessThanOrEqual(60_000);
  });

  it("no limits: every field null", async () => {
    const u = await member();
    const me = (await call("/api/me", { key: u.key })).json<{ limits: Record<string, unknown>; left: Record<string, unknown> }>();
    expect(me.limits).toEqual({ requestsPerMinute: null, tokensPerDay: null, tokensPerMonth: null, models: null });
    expect(me.left.tokensPerDay).toBeNull();
  });
});

describe("the model scan", () => {
  it.each([
    ['{"model":"a"}', ["a"]],
    ['  {"messages":[{"model":"x"}],"model":"b"}', ["b"]],
    ['{"a":{"model":"x"},"b":["model","y"],"model":"c\\u002dd"}', ["c-d"]],
    ['{"model":null}', [""]],
    ['{"model":"a","model":"b"}', ["a", "b"]],
    ['{"mod\\u0065l":"x"}', ["x"]],
    ['{"a":"\\\\","model":"m1"}', ["m1"]],
    ['{"a":"x\\\\\\"model\\":\\"no","model":"m2"}', ["m2"]],
    ['{"\\u006d\\u006f\\u0064\\u0065\\u006c":"y","modelx":"z"}', ["y"]],
    ['{"text":"\\"model\\":\\"x\\""}', []],
    ['["model","x"]', []],
    ['{"model":"unterminated', []],
    ["not json", []],
  ])("%s -> %j", (body, expected) => {
    expect(topLevelModels(new TextEncoder().encode(body))).toEqual(expected);
  });

  it("globs match whole names, case-insensitively, with * and ?", () => {
    expect(modelAllowed("claude-sonnet-4-5", ["claude-sonnet-*"])).toBe(true);
    expect(modelAllowed("claude-sonnet-4-5-evil", ["claude-sonnet-4-?"])).toBe(false);
    expect(modelAllowed("xclaude-sonnet", ["claude-*"])).toBe(false);
    expect(modelAllowed("gpt-5.1", ["gpt-5?1"])).toBe(true);
    expect(modelAllowed("anything", [])).toBe(false);
  });
});

describe("listing accounts is untouched by limits", () => {
  it("a member over a limit still manages their accounts", async () => {
    const u = await member({ requestsPerMinute: 0 });
    expect((await listAccounts(u.key)).length).toBe(1);
  });
});
