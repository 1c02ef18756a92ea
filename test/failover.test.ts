import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import fixtures from "./fixtures/rate-limits.json";
import { ADMIN, addAccount, call, createUser, listAccounts, messages, postJson, sleep, useGateway } from "./helpers/gateway";
import { secrets } from "./helpers/secrets";
import { anthropicError, anthropicMessage, json } from "./helpers/upstream";

const { up } = useGateway();
let n = 0;
const apiKey = (tag: string) => secrets.add(`sk-ant-api03-${tag}-${++n}-${crypto.randomUUID()}`);

/** A user with `count` Anthropic API-key accounts, in order. */
async function userWithKeys(count: number) {
  const u = await createUser(`user${++n}`);
  const keys: string[] = [];
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const k = apiKey(`k${i}`);
    keys.push(k);
    ids.push((await addAccount(u.key, { provider: "anthropic", type: "api", key: k, label: `key ${i}` })).id);
  }
  return { ...u, keys, ids };
}

const ok = () => json(anthropicMessage(), 200, { "request-id": "req_1" });
const rateLimited = (headers: Record<string, string>) => () => json(anthropicError("rate_limit_error", "rate limited"), 429, headers);

/** Serves by credential: `plan[credential]` answers, anything else is an invalid key. */
function serve(plan: Record<string, () => Response | Promise<Response>>) {
  up().on("anthropic.fake/v1/", (_req, cred) => plan[cred]?.() ?? json(anthropicError("authentication_error", "invalid x-api-key"), 401));
}

const usedKeys = () => up().calls("anthropic.fake/v1/messages").map((s) => s.headers["x-api-key"]);

describe("failover on rate limits", () => {
  for (const [form, headers, expectS] of [
    ["seconds", { "retry-after": "120" }, 120],
    ["an HTTP date", { "retry-after": new Date(Date.now() + 90_000).toUTCString() }, 90],
    ["retry-after-ms", { "retry-after-ms": "45000" }, 45],
  ] as const) {
    it(`rotates to the next account on 429 and honours Retry-After as ${form}`, async () => {
      const u = await userWithKeys(2);
      serve({ [u.keys[0]!]: rateLimited(headers), [u.keys[1]!]: ok });
      const t0 = Date.now();
      const r = await messages(u.key);
      expect(r.status).toBe(200);
      expect(r.json()).toEqual(anthropicMessage());
      expect(r.headers.get("x-subpool-account")).toBe(u.ids[1]);
      expect(r.headers.get("x-subpool-attempts")).toBe("2");
      expect(usedKeys()).toEqual([u.keys[0], u.keys[1]]);

      const first = (await listAccounts(u.key))[0]!;
      expect(first.status).toBe("cooling");
      expect(first.lastStatus).toBe(429);
      const secs = (first.cooldownUntil! - t0) / 1000;
      expect(secs).toBeGreaterThan(expectS - 2);
      expect(secs).toBeLessThan(expectS + 2);
    });
  }

  it("remembers the cooldown for the next request, and uses the account again for new conversations once it ends", async () => {
    const u = await userWithKeys(2);
    let limited = true;
    serve({ [u.keys[0]!]: () => (limited ? rateLimited({ "retry-after-ms": "700" })() : ok()), [u.keys[1]!]: ok });
    expect((await messages(u.key)).status).toBe(200);
    limited = false;
    const second = await messages(u.key);
    expect(second.headers.get("x-subpool-account")).toBe(u.ids[1]);
    expect(second.headers.get("x-subpool-attempts")).toBe("1");
    expect(usedKeys()).toEqual([u.keys[0], u.keys[1], u.keys[1]]);
    await sleep(800);
    const third = await messages(u.key, undefined, { "x-subpool-session": "a new conversation" });
    expect(third.headers.get("x-subpool-account")).toBe(u.ids[0]);
    // The conversation that moved stays where it went (its prompt cache lives there).
    expect((await messages(u.key)).headers.get("x-subpool-account")).toBe(u.ids[1]);
  });

  it("the cooldown is shared: a new isolate (empty caches) still skips the account", async () => {
    const u = await userWithKeys(2);
    serve({ [u.keys[0]!]: rateLimited({ "retry-after": "600" }), [u.keys[1]!]: ok });
    await messages(u.key);
    await listAccounts(u.key); // flushes outcomes to the Durable Object
    const { resetIsolateCaches } = await import("./helpers/isolate");
    resetIsolateCaches();
    up().seen.length = 0;
    expect((await messages(u.key)).headers.get("x-subpool-account")).toBe(u.ids[1]);
    expect(usedKeys()).toEqual([u.keys[1]]);
  });

  it("answers 429 with the earliest Retry-After when every account is cooling, in Anthropic's format", async () => {
    const u = await userWithKeys(2);
    serve({ [u.keys[0]!]: rateLimited({ "retry-after": "300" }), [u.keys[1]!]: rateLimited({ "retry-after": "40" }) });
    const r = await messages(u.key);
    expect(r.status).toBe(429);
    expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(39);
    expect(Number(r.headers.get("retry-after"))).toBeLessThanOrEqual(40);
    expect(r.json()).toMatchObject({ type: "error", error: { type: "rate_limit_error" } });
    expect(r.json().error.message).toMatch(/rate limited/);
    expect(r.headers.get("x-subpool-attempts")).toBe("2");

    // Next request: nothing is tried upstream at all.
    up().seen.length = 0;
    const again = await messages(u.key);
    expect(again.status).toBe(429);
    expect(again.headers.get("x-subpool-attempts")).toBe("0");
    expect(usedKeys()).toEqual([]);
  });

  it("keeps the longer cooldown: a new cooldown is max(existing, new)", async () => {
    const u = await userWithKeys(1);
    const stub = env.USER_POOL.get(env.USER_POOL.idFromName(u.id));
    const long = Date.now() + 3_600_000;
    await stub.sync([{ accountId: u.ids[0]!, successes: 0, failures: 1, lastUsedAt: Date.now(), lastStatus: 429, cooldownUntil: long }]);
    await stub.sync([{ accountId: u.ids[0]!, successes: 0, failures: 1, lastUsedAt: Date.now(), lastStatus: 429, cooldownUntil: Date.now() + 1000 }]);
    expect((await listAccounts(u.key))[0]!.cooldownUntil).toBe(long);
  });
});

describe("failover on overloads and errors", () => {
  for (const status of [529, 500, 503]) {
    it(`rotates on ${status} without benching the account`, async () => {
      const u = await userWithKeys(2);
      serve({ [u.keys[0]!]: () => json(anthropicError("overloaded_error", "Overloaded"), status), [u.keys[1]!]: ok });
      const r = await messages(u.key);
      expect(r.status).toBe(200);
      expect(r.headers.get("x-subpool-account")).toBe(u.ids[1]);
      const first = (await listAccounts(u.key))[0]!;
      expect(first.status).toBe("active");
      expect(first.cooldownUntil).toBeNull();
      expect(first.lastStatus).toBe(status);
    });
  }

  it("returns the last 5xx as the provider sent it when every account fails that way", async () => {
    const u = await userWithKeys(2);
    serve({ [u.keys[0]!]: () => json(anthropicError("overloaded_error", "Overloaded"), 529), [u.keys[1]!]: () => json(anthropicError("overloaded_error", "Overloaded"), 529) });
    const r = await messages(u.key);
    expect(r.status).toBe(529);
    expect(r.json()).toEqual(anthropicError("overloaded_error", "Overloaded"));
    expect(r.headers.get("x-subpool-attempts")).toBe("2");
  });

  it("rotates past a network error", async () => {
    const u = await userWithKeys(2);
    serve({ [u.keys[0]!]: () => { throw new TypeError("fetch failed"); }, [u.keys[1]!]: ok });
    const r = await messages(u.key);
    expect(r.status).toBe(200);
    expect(r.headers.get("x-subpool-account")).toBe(u.ids[1]);
  });

  it("rotates past an upstream that does not answer within UPSTREAM_TIMEOUT_MS, and benches it briefly so the next request does not wait again", async () => {
    const u = await userWithKeys(2);
    serve({ [u.keys[0]!]: () => new Promise<Response>(() => {}), [u.keys[1]!]: ok });
    const t0 = Date.now();
    const r = await messages(u.key);
    expect(r.status).toBe(200);
    expect(r.headers.get("x-subpool-account")).toBe(u.ids[1]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    const first = (await listAccounts(u.key))[0]!;
    expect(first.status).toBe("cooling");
    expect(first.cooldownUntil! - Date.now()).toBeGreaterThan(25_000); // DEFAULT_COOLDOWN_S = 30
    expect(first.lastError).toMatch(/no answer within 1000 ms/);
    // The next request goes straight to the healthy account, without waiting.
    const t1 = Date.now();
    expect((await messages(u.key)).headers.get("x-subpool-account")).toBe(u.ids[1]);
    expect(Date.now() - t1).toBeLessThan(500);
  });

  it("returns a 400 untouched, without rotating", async () => {
    const u = await userWithKeys(2);
    const body = anthropicError("invalid_request_error", "max_tokens: field required");
    serve({ [u.keys[0]!]: () => json(body, 400, { "request-id": "req_400" }), [u.keys[1]!]: ok });
    const r = await messages(u.key);
    expect(r.status).toBe(400);
    expect(r.json()).toEqual(body);
    expect(r.headers.get("request-id")).toBe("req_400");
    expect(r.headers.get("x-subpool-attempts")).toBe("1");
    expect(usedKeys()).toEqual([u.keys[0]]);
    expect((await listAccounts(u.key))[0]!.status).toBe("active");
  });

  it("benches an API key answered with 401 for the auth cooldown and uses the next", async () => {
    const u = await userWithKeys(2);
    serve({ [u.keys[1]!]: ok });
    const t0 = Date.now();
    const r = await messages(u.key);
    expect(r.status).toBe(200);
    const first = (await listAccounts(u.key))[0]!;
    expect(first.status).toBe("cooling");
    expect((first.cooldownUntil! - t0) / 1000).toBeGreaterThan(295);
  });
});

describe("classification of real-shaped upstream answers (test/fixtures/rate-limits.json)", () => {
  const resolve = (v: string) =>
    v.replace(/iso\(now\+(\d+)\)/, (_m, s) => new Date(Date.now() + Number(s) * 1000).toISOString()).replace(/^now\+(\d+)$/, (_m, s) => String(Math.floor(Date.now() / 1000) + Number(s)));
  const prefix: Record<string, string> = { anthropic: "/anthropic/v1/messages", openai: "/openai/v1/chat/completions", "github-copilot": "/copilot/chat/completions" };
  const host: Record<string, string> = { anthropic: "anthropic.fake/v1/", openai: "openai.fake/v1/", "github-copilot": "copilot.fake/" };

  for (const c of fixtures.cases) {
    it(`${c.name}: ${c.expect.class}`, async () => {
      const u = await createUser(`fx${++n}`);
      const isCopilot = c.provider === "github-copilot";
      const accts: { id: string }[] = [];
      for (let i = 0; i < 2; i++) {
        accts.push(
          await addAccount(
            u.key,
            isCopilot ? { provider: c.provider, type: "oauth", refresh: up().githubToken() } : { provider: c.provider, type: "api", key: secrets.add(`sk-fixture-${i}-${crypto.randomUUID()}`) },
          ),
        );
      }
      let calls = 0;
      up().on(host[c.provider]!, () => {
        calls++;
        if (calls === 1) {
          const headers = Object.fromEntries(Object.entries(c.headers).map(([k, v]) => [k, resolve(v as string)]));
          return json(c.body, c.status, headers);
        }
        return json({ ok: true });
      });
      const t0 = Date.now();
      const r = await call(prefix[c.provider]!, { method: "POST", key: u.key, headers: { "content-type": "application/json" }, body: "{}" });
      const first = ((await listAccounts(u.key)).filter((a) => a.id === accts[0]!.id))[0]!;
      if (c.expect.class === "quota" || c.expect.class === "short") {
        expect(r.status).toBe(200);
        expect(r.headers.get("x-subpool-account")).toBe(accts[1]!.id);
        expect(first.status).toBe("cooling");
        const secs = (first.cooldownUntil! - t0) / 1000;
        expect(secs).toBeGreaterThan(c.expect.cooldownSeconds! - 3);
        expect(secs).toBeLessThan(c.expect.cooldownSeconds! + 3);
      } else if (c.expect.class === "not-account" || c.expect.class === "overload") {
        // rotate without benching
        expect(r.status).toBe(200);
        expect(r.headers.get("x-subpool-account")).toBe(accts[1]!.id);
        expect(first.status).toBe("active");
      } else if (c.expect.class === "auth") {
        // API key: auth cooldown, next account
        expect(r.status).toBe(200);
        expect(first.status).toBe("cooling");
      }
    });
  }
});

describe("requests the gateway refuses itself", () => {
  it("says how to add an account when the user has none for the provider, in the provider's format", async () => {
    const u = await createUser(`empty${++n}`);
    const a = await messages(u.key);
    expect(a.status).toBe(400);
    expect(a.headers.get("x-should-retry")).toBe("false");
    expect(a.json()).toMatchObject({ type: "error", error: { type: "invalid_request_error" } });
    expect(a.json().error.message).toMatch(/subpool login anthropic/);
    const o = await postJson("/openai/v1/chat/completions", u.key, { model: "gpt-5" });
    expect(o.status).toBe(400);
    expect(o.json().error).toMatchObject({ type: "invalid_request_error", code: "invalid_request" });
    expect(up().seen).toEqual([]);
  });

  it("refuses a body over MAX_BODY_BYTES with 413 before anything goes upstream", async () => {
    const u = await userWithKeys(1);
    serve({ [u.keys[0]!]: ok });
    const big = "x".repeat(1024 * 1024 + 1);
    const r = await messages(u.key, { model: "m", max_tokens: 1, messages: [{ role: "user", content: big }] });
    expect(r.status).toBe(413);
    expect(r.json().error.type).toBe("request_too_large");
    // Chunked (no Content-Length) is counted too.
    const stream = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode(big)); c.close(); } });
    const r2 = await call("/anthropic/v1/messages", { method: "POST", headers: { "x-api-key": u.key }, body: stream, duplex: "half" } as RequestInit);
    expect(r2.status).toBe(413);
    expect(up().seen).toEqual([]);
    // The account was not blamed for the client's body.
    const acc = (await listAccounts(u.key))[0]!;
    expect([acc.failureCount, acc.lastError]).toEqual([0, null]);
  });

  it("a chunked body (no Content-Length) over 64 KiB is replayed to the next account whole, never held in the isolate", async () => {
    const u = await userWithKeys(2);
    const bodies: string[] = [];
    up().on("anthropic.fake/v1/messages", async (req, cred) => {
      bodies.push(await req.text());
      return cred === u.keys[0] ? json(anthropicError("rate_limit_error", "rate limited"), 429, { "retry-after": "30" }) : ok();
    });
    const text = JSON.stringify({ model: "m", max_tokens: 1, messages: [{ role: "user", content: "y".repeat(200_000) }] });
    const bytes = new TextEncoder().encode(text);
    const stream = new ReadableStream({
      start(c) {
        for (let i = 0; i < bytes.length; i += 16_384) c.enqueue(bytes.slice(i, i + 16_384));
        c.close();
      },
    });
    const r = await call("/anthropic/v1/messages", { method: "POST", headers: { "x-api-key": u.key, "content-type": "application/json" }, body: stream, duplex: "half" } as RequestInit);
    expect(r.status).toBe(200);
    expect(r.headers.get("x-subpool-attempts")).toBe("2");
    expect(bodies).toEqual([text, text]);
  });

  it("forwards the client's request unchanged apart from credentials and hop-by-hop headers", async () => {
    const u = await userWithKeys(1);
    serve({ [u.keys[0]!]: ok });
    const body = { model: "claude-sonnet-4-5", max_tokens: 16, messages: [{ role: "user", content: "hi" }] };
    await call("/anthropic/v1/messages?beta=true", {
      method: "POST",
      headers: { "x-api-key": u.key, "anthropic-version": "2023-06-01", "anthropic-beta": "tools-2024", "user-agent": "claude-cli/2.0", "content-type": "application/json", connection: "keep-alive, x-drop", "x-drop": "1", "x-custom": "kept" },
      body: JSON.stringify(body),
    });
    const [seen] = up().calls("anthropic.fake/v1/messages");
    expect(seen!.url).toBe("https://anthropic.fake/v1/messages?beta=true");
    expect(JSON.parse(seen!.body)).toEqual(body);
    expect(seen!.headers["x-api-key"]).toBe(u.keys[0]);
    expect(seen!.headers["anthropic-version"]).toBe("2023-06-01");
    expect(seen!.headers["anthropic-beta"]).toBe("tools-2024");
    expect(seen!.headers["user-agent"]).toBe("claude-cli/2.0");
    expect(seen!.headers["x-custom"]).toBe("kept");
    expect(seen!.headers["x-drop"]).toBeUndefined();
    expect(seen!.headers.authorization).toBeUndefined();
    expect(JSON.stringify(seen!.headers)).not.toContain(u.key);
  });
});

describe("users are isolated", () => {
  it("a user's requests use only that user's accounts, and another user's accounts are invisible and untouchable", async () => {
    const alice = await userWithKeys(1);
    const bob = await createUser(`bob${++n}`);
    serve({ [alice.keys[0]!]: ok });
    expect((await messages(bob.key)).status).toBe(400); // bob has no account: alice's are not candidates
    expect(usedKeys()).toEqual([]);
    expect(await listAccounts(bob.key)).toEqual([]);
    expect((await postJson(`/api/accounts/${alice.ids[0]}`, bob.key, { enabled: false }, "PATCH")).status).toBe(404);
    expect((await call(`/api/accounts/${alice.ids[0]}`, { method: "DELETE", key: bob.key })).status).toBe(404);
    expect((await listAccounts(alice.key))[0]!.enabled).toBe(true);
    const stub = env.USER_POOL.get(env.USER_POOL.idFromName(bob.id));
    expect(await runInDurableObject(stub, (_o, s) => s.storage.sql.exec("SELECT COUNT(*) AS n FROM accounts").one().n)).toBe(0);
  });
});

describe("hot path", () => {
  it("in steady state a proxied request makes no KV or Durable Object round trip", async () => {
    const u = await createUser(`hot${++n}`);
    const k = apiKey("hot");
    await addAccount(u.key, { provider: "anthropic", type: "api", key: k });
    serve({ [k]: ok });
    await messages(u.key); // warm: key index, snapshot, data key, credential
    const before = (await call("/admin/stats", { key: ADMIN })).json().isolate;
    for (let i = 0; i < 20; i++) expect((await messages(u.key)).status).toBe(200);
    const after = (await call("/admin/stats", { key: ADMIN })).json().isolate;
    expect(after.proxied - before.proxied).toBe(20);
    expect(after.upstreamFetches - before.upstreamFetches).toBe(20);
    const kv = (o: { kv: Record<string, number> }) => Object.values(o.kv).reduce((a, b) => a + b, 0);
    expect(kv(after) - kv(before)).toBe(0);
    // The snapshot is re-read at most once a second; 20 quick requests fit in one window at most.
    expect(after.do.calls - before.do.calls).toBeLessThanOrEqual(1);
  });
});
