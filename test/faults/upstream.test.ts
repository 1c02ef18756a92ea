/**
 * The fault suite, proxy side: a fake provider that fails untidily on the first account, a healthy
 * second account behind it. For each fault: what the client gets, which accounts were tried, what
 * the first account shows afterwards. (Token-endpoint faults: token.test.ts.)
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { addAccount, callRaw, createUser, listAccounts, messages, postJson, sleep, useGateway } from "../helpers/gateway";
import { JSON_HEADERS, SSE, garbage, hang, huge, resetBeforeHeaders, scripted, sseEvent, tap } from "../helpers/faults";
import { secrets } from "../helpers/secrets";
import { anthropicError, anthropicMessage, chatgptJwt, json } from "../helpers/upstream";

const { up } = useGateway();
let n = 0;

async function userWithKeys(count: number) {
  const u = await createUser(`fault${++n}`);
  const keys: string[] = [];
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const k = secrets.add(`sk-ant-api03-fault-${n}-${i}-${crypto.randomUUID()}`);
    keys.push(k);
    ids.push((await addAccount(u.key, { provider: "anthropic", type: "api", key: k, label: `key ${i}` })).id);
  }
  return { ...u, keys, ids };
}

const ok = () => json(anthropicMessage(), 200);
const okStream = () => scripted([sseEvent("message_start", { type: "message_start" }), sseEvent("message_stop", { type: "message_stop" })], "close", { headers: SSE });
const serve = (plan: Record<string, () => Response | Promise<Response>>) =>
  up().on("anthropic.fake/v1/", (_req, cred) => plan[cred]?.() ?? json(anthropicError("authentication_error", "invalid x-api-key"), 401));
const usedKeys = () => up().calls("anthropic.fake/v1/messages").map((s) => s.headers["x-api-key"]);
const streamBody = { model: "claude-sonnet-4-5", max_tokens: 16, stream: true, messages: [{ role: "user", content: "hi" }] };

/** Runs the fault on the first of two accounts; returns the answer and the first account afterwards. */
async function faultOnFirst(fault: () => Response | Promise<Response>, body?: unknown) {
  const u = await userWithKeys(2);
  serve({ [u.keys[0]!]: fault, [u.keys[1]!]: body ? okStream : ok });
  const t0 = Date.now();
  const r = await messages(u.key, body);
  const ms = Date.now() - t0;
  const first = (await listAccounts(u.key))[0]!;
  return { u, r, ms, first, tried: usedKeys() };
}

describe("the upstream fails untidily before the client has anything: the next account serves", () => {
  const table: { name: string; fault: () => Response | Promise<Response>; stream?: boolean; benched: boolean; lastError: RegExp }[] = [
    { name: "reset before headers", fault: resetBeforeHeaders, benched: false, lastError: /network error/ },
    { name: "429 headers, part of the body, then a reset", fault: () => scripted(['{"type":"error","error":{"type":"rate_'], "reset", { status: 429, headers: { ...JSON_HEADERS, "retry-after": "60" } }), benched: false, lastError: /answer 429 was cut off/ },
    { name: "503 headers, part of the body, then a reset", fault: () => scripted(['{"type":"error",'], "reset", { status: 503, headers: JSON_HEADERS }), benched: false, lastError: /answer 503 was cut off/ },
    { name: "no answer at all (UPSTREAM_TIMEOUT_MS)", fault: hang, benched: true, lastError: /no answer within 1000 ms/ },
    { name: "a 429 whose body stalls halfway", fault: () => scripted(['{"type":"error"'], "stall", { status: 429, headers: JSON_HEADERS }), benched: true, lastError: /stalled/ },
    { name: "SSE: headers and a ping, then a reset", fault: () => scripted([": ping\n\n"], "reset", { headers: SSE }), stream: true, benched: false, lastError: /stream broke before its first event/ },
    { name: "SSE: headers, then nothing (FIRST_EVENT_TIMEOUT_MS)", fault: () => scripted([], "stall", { headers: SSE }), stream: true, benched: true, lastError: /no event within 800 ms/ },
    { name: "SSE: only pings, then nothing", fault: () => scripted([": ping\n\n", ": ping\n\n"], "stall", { headers: SSE }, tap(), 50), stream: true, benched: true, lastError: /no event within 800 ms/ },
    { name: "a 500 with garbage for a body", fault: () => garbage({ status: 500 }), benched: false, lastError: /500/ },
    { name: "a 429 with garbage for a body and no Retry-After", fault: () => garbage({ status: 429 }), benched: true, lastError: /rate limited/ },
  ];
  for (const c of table) {
    it(`${c.name}: the second account answers, the first is ${c.benched ? "benched briefly" : "not benched"}`, async () => {
      const { u, r, first, tried } = await faultOnFirst(c.fault, c.stream ? streamBody : undefined);
      expect(r.status, r.body).toBe(200);
      expect(r.headers.get("x-subpool-account")).toBe(u.ids[1]);
      expect(tried).toEqual([u.keys[0], u.keys[1]]);
      expect(first.lastError).toMatch(c.lastError);
      expect(first.status).toBe(c.benched ? "cooling" : "active");
      if (c.benched) expect(first.cooldownUntil! - Date.now()).toBeLessThanOrEqual(30_000);
    });
  }

  it("a small JSON answer cut halfway (its length declared) fails over: nothing had reached the client", async () => {
    const { u, r, first } = await faultOnFirst(() => scripted(['{"id":"msg_1","type":"mess'], "reset", { headers: { ...JSON_HEADERS, "content-length": "300" } }));
    expect(r.status).toBe(200);
    expect(r.headers.get("x-subpool-account")).toBe(u.ids[1]);
    expect(first).toMatchObject({ status: "active", lastError: expect.stringMatching(/cut off/) });
  });

  it("a small JSON answer whose body stalls fails over after FIRST_EVENT_TIMEOUT_MS and is benched briefly", async () => {
    const { u, r, first } = await faultOnFirst(() => scripted(['{"id":'], "stall", { headers: { ...JSON_HEADERS, "content-length": "1000" } }));
    expect(r.status).toBe(200);
    expect(r.headers.get("x-subpool-account")).toBe(u.ids[1]);
    expect(first).toMatchObject({ status: "cooling", lastError: expect.stringMatching(/stalled/) });
  });

  it("headers later than FIRST_EVENT_TIMEOUT_MS but within UPSTREAM_TIMEOUT_MS are waited for; the body then has FIRST_EVENT_TIMEOUT_MS of its own", async () => {
    // 900 ms: past the attempt timer's first tick (800 ms), before the header deadline (1000 ms).
    const late = (answer: () => Response) => () => sleep(900).then(answer);
    const a = await faultOnFirst(late(ok));
    expect(a.r.status).toBe(200);
    expect(a.r.headers.get("x-subpool-account")).toBe(a.u.ids[0]);
    const b = await faultOnFirst(late(() => scripted(['{"id":'], "stall", { headers: { ...JSON_HEADERS, "content-length": "1000" } })));
    expect(b.r.headers.get("x-subpool-account")).toBe(b.u.ids[1]);
    expect(b.first.lastError).toMatch(/stalled/);
    expect(b.ms).toBeGreaterThanOrEqual(900 + 800 - 50);
  });

  it("a provider's error code of any length goes into lastError cut to 64 characters", async () => {
    const long = `sk-proj-${"A".repeat(5000)}`;
    const u = await createUser(`fault${++n}`);
    const k1 = secrets.add(`sk-proj-${crypto.randomUUID()}`);
    const k2 = secrets.add(`sk-proj-${crypto.randomUUID()}`);
    await addAccount(u.key, { provider: "openai", type: "api", key: k1 });
    await addAccount(u.key, { provider: "openai", type: "api", key: k2 });
    up().on("openai.fake/v1/chat/completions", (_r, cred) => (cred === k1 ? json({ error: { message: "no", code: long } }, 401) : json({ ok: true })));
    expect((await postJson("/openai/v1/chat/completions", u.key, { model: "m", messages: [] })).status).toBe(200);
    const [a] = await listAccounts(u.key);
    expect(a!.lastError!.length).toBeLessThan(100);
  });

  it("a 200 MB error body is not read whole: 64 KiB to classify, then the connection is let go", async () => {
    const t = tap();
    const { u, r } = await faultOnFirst(() => huge(200 * 1024 * 1024, { status: 429, headers: { ...JSON_HEADERS, "retry-after": "10" } }, t));
    expect(r.status).toBe(200);
    expect(r.headers.get("x-subpool-account")).toBe(u.ids[1]);
    expect(t.pulled).toBeLessThanOrEqual(128 * 1024);
    expect(t.cancelled).toBe(true);
  });

  it("a large error body of the last account still reaches the client whole", async () => {
    const u = await userWithKeys(1);
    const t = tap();
    serve({ [u.keys[0]!]: () => huge(1024 * 1024, { status: 500, headers: JSON_HEADERS }, t) });
    const r = await messages(u.key);
    expect(r.status).toBe(500);
    expect(r.body.length).toBe(1024 * 1024);
  });

  it("a 200 answer that trickles in slowly is passed through, not mistaken for a failure", async () => {
    const u = await userWithKeys(2);
    const text = JSON.stringify(anthropicMessage("slow"));
    serve({ [u.keys[0]!]: () => scripted(text.match(/.{1,20}/g)!, "close", { headers: JSON_HEADERS }, tap(), 30), [u.keys[1]!]: ok });
    const r = await messages(u.key);
    expect(r.status).toBe(200);
    expect(r.json()).toEqual(anthropicMessage("slow"));
    expect(r.headers.get("x-subpool-account")).toBe(u.ids[0]);
  });

  it("an SSE stream that stalls after its first event is passed on at once and kept open (the model may be thinking)", async () => {
    const u = await userWithKeys(2);
    const t = tap();
    serve({ [u.keys[0]!]: () => scripted([sseEvent("message_start", { type: "message_start" })], "stall", { headers: SSE }, t), [u.keys[1]!]: okStream });
    const res = await callRaw("/anthropic/v1/messages", {
      method: "POST",
      headers: { "x-api-key": u.key, "content-type": "application/json", "anthropic-version": "2023-06-01" },
      body: JSON.stringify(streamBody),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-subpool-account")).toBe(u.ids[0]);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain("message_start");
    const next = await Promise.race([reader.read(), new Promise<"open">((r) => setTimeout(() => r("open"), 1200))]);
    expect(next).toBe("open"); // no rotation, no cut: nothing can be retried once bytes went out
    expect(t.cancelled).toBe(false);
    await reader.cancel();
    // A client hanging up during a silence is noticed at the upstream's next chunk (test/faults/streams.test.ts).
  });
});

describe("Retry-After that says nothing useful", () => {
  for (const value of ["0", "-5", "soon"]) {
    it(`Retry-After: ${value} benches for DEFAULT_COOLDOWN_S, not zero`, async () => {
      const { u, r, first } = await faultOnFirst(() => json(anthropicError("rate_limit_error", "rate limited"), 429, { "retry-after": value }));
      expect(r.headers.get("x-subpool-account")).toBe(u.ids[1]);
      expect(first.status).toBe("cooling");
      const s = (first.cooldownUntil! - Date.now()) / 1000;
      expect(s).toBeGreaterThan(27);
      expect(s).toBeLessThanOrEqual(30);
    });
  }
});

describe("a Cloudflare challenge from the provider's edge", () => {
  const challenge = () => new Response("<!DOCTYPE html><html><title>Just a moment...</title></html>", { status: 403, headers: { "content-type": "text/html; charset=UTF-8", "cf-mitigated": "challenge" } });

  it("does not bench, refresh or sign out the account; the next account serves", async () => {
    const u = await createUser(`fault${++n}`);
    const g = up().anthropicAuth.grant();
    const key = secrets.add(`sk-ant-api03-${crypto.randomUUID()}`);
    await addAccount(u.key, { provider: "anthropic", type: "oauth", refresh: g.refresh, access: g.access, expires: Date.now() + 3_600_000 });
    await addAccount(u.key, { provider: "anthropic", type: "api", key });
    up().on("anthropic.fake/v1/messages", (_r, cred) => (cred === key ? ok() : challenge()));
    const r = await messages(u.key);
    expect(r.status).toBe(200);
    expect(up().anthropicAuth.calls).toBe(0); // no refresh
    const [oauth] = await listAccounts(u.key);
    expect(oauth).toMatchObject({ status: "active", cooldownUntil: null });
    expect(oauth!.lastError).toMatch(/Cloudflare challenge/);
    expect(up().anthropicAuth.isLive(g.refresh)).toBe(true);
  });

  it("when every account is challenged, answers 502 in the provider's format saying the gateway is blocked", async () => {
    const u = await userWithKeys(2);
    serve({ [u.keys[0]!]: challenge, [u.keys[1]!]: () => new Response("<html>blocked</html>", { status: 503, headers: { "content-type": "text/html" } }) });
    const r = await messages(u.key);
    expect(r.status).toBe(502);
    expect(r.json()).toMatchObject({ type: "error", error: { type: "api_error" } });
    expect(r.json().error.message).toMatch(/blocked the gateway.*Cloudflare challenge.*not your accounts/);
    for (const a of await listAccounts(u.key)) expect(a.status).toBe("active");
  });
});

describe("a stored credential that cannot be sent as a header", () => {
  it("an API key with CR/LF or non-ASCII stored behind the API's back is skipped with a lastError; the next account serves", async () => {
    const u = await createUser(`fault${++n}`);
    const stub = env.USER_POOL.get(env.USER_POOL.idFromName(u.id));
    const good = secrets.add(`sk-ant-api03-good-${crypto.randomUUID()}`);
    for (const bad of [`sk-ant-bad\r\nx-injected: 1-${crypto.randomUUID()}`, `sk-ant-bäd-${crypto.randomUUID()}`]) {
      secrets.add(bad);
      const r = await stub.addAccount({ provider: "anthropic", type: "api", key: bad });
      expect(r.ok).toBe(true);
    }
    await addAccount(u.key, { provider: "anthropic", type: "api", key: good });
    up().on("anthropic.fake/v1/messages", (_r, cred) => (cred === good ? ok() : json({}, 401)));
    const r = await messages(u.key);
    expect(r.status).toBe(200);
    expect(up().calls("anthropic.fake/v1/messages")).toHaveLength(1);
    const [a, b] = await listAccounts(u.key);
    expect(a!.lastError).toMatch(/cannot be sent as a header/);
    expect(b!.lastError).toMatch(/cannot be sent as a header/);
  });

  it("a ChatGPT token whose account-id claim holds CR/LF is skipped, not sent", async () => {
    const u = await createUser(`fault${++n}`);
    const g = up().openaiAuth.grant();
    await addAccount(u.key, { provider: "openai", type: "oauth", refresh: g.refresh, access: chatgptJwt("acct\r\nx-evil: 1", "evil"), expires: Date.now() + 3_600_000 });
    const key = secrets.add(`sk-proj-${crypto.randomUUID()}`);
    await addAccount(u.key, { provider: "openai", type: "api", key });
    up().on("openai.fake/v1/responses", () => json({ ok: true }));
    up().on("chatgpt.fake/", () => json({ reached: "codex" }));
    const r = await postJson("/openai/v1/responses", u.key, { model: "gpt-5", input: "hi" });
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({ ok: true });
    expect(up().calls("chatgpt.fake/")).toHaveLength(0);
  });
});

describe("request headers that must not reach the provider", () => {
  it("drops cookies, edge and proxy fields, x-subpool-*, the gateway key in api-key, and fields named in Connection; keeps the rest", async () => {
    const u = await userWithKeys(1);
    serve({ [u.keys[0]!]: ok });
    await messages(u.key, undefined, {
      cookie: "session=abc",
      "cf-access-client-secret": "cfsecret",
      "cf-access-jwt-assertion": "jwt",
      "cf-connecting-ip": "1.2.3.4",
      "x-forwarded-for": "1.2.3.4",
      "x-forwarded-proto": "https",
      forwarded: "for=1.2.3.4",
      "true-client-ip": "1.2.3.4",
      "x-real-ip": "1.2.3.4",
      "x-subpool-session": "s1",
      "api-key": u.key,
      connection: "x-private-hop",
      "x-private-hop": "secret-hop",
      "anthropic-beta": "prompt-caching-2024-07-31",
      "x-custom-client": "kept",
    });
    // SELF.fetch keeps the Connection header, so the field it names can be dropped here; over real
    // HTTP the runtime removes Connection before the Worker runs (see SECURITY.md).
    const seen = up().calls("anthropic.fake/v1/messages")[0]!.headers;
    for (const h of ["cookie", "cf-access-client-secret", "cf-access-jwt-assertion", "cf-connecting-ip", "x-forwarded-for", "x-forwarded-proto", "forwarded", "true-client-ip", "x-real-ip", "x-subpool-session", "api-key", "x-private-hop", "authorization"]) {
      expect(seen[h], h).toBeUndefined();
    }
    expect(seen["anthropic-beta"]).toBe("prompt-caching-2024-07-31");
    expect(seen["anthropic-version"]).toBe("2023-06-01");
    expect(seen["x-custom-client"]).toBe("kept");
    expect(seen["x-api-key"]).toBe(u.keys[0]);
  });
});
