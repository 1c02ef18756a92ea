/**
 * Smarter routing, end to end through the Worker: strategies over scripted quota headers, session
 * affinity, usage per account and day, settings validation, and quota probes from the Durable
 * Object's alarm (never on a request).
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { orderCandidates } from "../../src/pool/strategies";
import type { AccountState } from "../../src/pool/types";
import { addAccount, call, callRaw, createUser, listAccounts, messages, postJson, sleep, useGateway } from "../helpers/gateway";
import { SSE, scripted, sseEvent } from "../helpers/faults";
import { secrets } from "../helpers/secrets";
import { anthropicError, anthropicMessage, chatgptJwt, json } from "../helpers/upstream";

const { up } = useGateway();
let n = 0;
const stubOf = (userId: string) => env.USER_POOL.get(env.USER_POOL.idFromName(userId));

async function userWithKeys(count: number) {
  const u = await createUser(`route${++n}`);
  const keys: string[] = [];
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const k = secrets.add(`sk-ant-api03-route-${n}-${i}-${crypto.randomUUID()}`);
    keys.push(k);
    ids.push((await addAccount(u.key, { provider: "anthropic", type: "api", key: k, label: `key ${i}` })).id);
  }
  return { ...u, keys, ids };
}

const setStrategy = (key: string, body: Record<string, unknown>) => postJson("/api/settings", key, body, "PATCH");
const conv = (id: string) => ({ "x-subpool-session": id });
const servedBy = async (key: string, headers: Record<string, string> = {}) => (await messages(key, undefined, headers)).headers.get("x-subpool-account");

/** Unified headers saying how much of the 5-hour window an account has used. */
const used = (u: number) => ({
  "anthropic-ratelimit-unified-status": u >= 1 ? "rejected" : "allowed",
  "anthropic-ratelimit-unified-5h-utilization": String(u),
  "anthropic-ratelimit-unified-5h-reset": String(Math.floor(Date.now() / 1000) + 3600),
});

describe("settings", () => {
  it("defaults, then a change, read back", async () => {
    const u = await createUser(`route${++n}`);
    expect((await call("/api/settings", { key: u.key })).json<Record<string, unknown>>()).toEqual({ strategy: "failover", quotaThreshold: 0.95, affinityTtlS: 3600 });
    const r = await setStrategy(u.key, { strategy: "quota-aware", quotaThreshold: 0.8 });
    expect(r.status).toBe(200);
    expect((await call("/api/settings", { key: u.key })).json<Record<string, unknown>>()).toEqual({ strategy: "quota-aware", quotaThreshold: 0.8, affinityTtlS: 3600 });
  });

  for (const [body, field] of [
    [{ strategy: "random" }, "strategy"],
    [{ quotaThreshold: 1.5 }, "quotaThreshold"],
    [{ quotaThreshold: "high" }, "quotaThreshold"],
    [{ affinityTtlS: -1 }, "affinityTtlS"],
    [{ affinityTtlS: 1.5 }, "affinityTtlS"],
    [{ colour: "blue" }, undefined],
    [{}, undefined],
  ] as const) {
    it(`refuses ${JSON.stringify(body)} with a 400${field ? ` naming ${field}` : ""}, and changes nothing`, async () => {
      const u = await createUser(`route${++n}`);
      const r = await setStrategy(u.key, body);
      expect(r.status).toBe(400);
      if (field) expect(r.json().error.field).toBe(field);
      expect((await call("/api/settings", { key: u.key })).json<{ strategy: string }>().strategy).toBe("failover");
    });
  }
});

describe("strategies", () => {
  it("failover: every new conversation goes to the first healthy account", async () => {
    const u = await userWithKeys(3);
    up().on("anthropic.fake/v1/messages", () => json(anthropicMessage()));
    for (let i = 0; i < 6; i++) expect(await servedBy(u.key, conv(`c${i}`))).toBe(u.ids[0]);
  });

  it("round-robin: new conversations take the accounts in turn, and a conversation keeps its account across 20 requests", async () => {
    const u = await userWithKeys(3);
    await setStrategy(u.key, { strategy: "round-robin" });
    up().on("anthropic.fake/v1/messages", () => json(anthropicMessage()));
    const firsts = [];
    for (let i = 0; i < 6; i++) firsts.push(await servedBy(u.key, conv(`rr${i}`)));
    expect(new Set(firsts)).toEqual(new Set(u.ids));
    expect(firsts.filter((a) => a === u.ids[0])).toHaveLength(2);
    const home = await servedBy(u.key, conv("long"));
    for (let i = 0; i < 20; i++) {
      expect(await servedBy(u.key, conv("long"))).toBe(home);
      await servedBy(u.key, conv(`other${i}`)); // others keep being spread meanwhile
    }
  });

  it("quota-aware: most headroom first; an account at the threshold is set aside while another is below it", async () => {
    const u = await userWithKeys(3);
    await setStrategy(u.key, { strategy: "quota-aware", quotaThreshold: 0.9 });
    const utilization = new Map([[u.keys[0]!, 0.5], [u.keys[1]!, 0.2], [u.keys[2]!, 0.95]]);
    up().on("anthropic.fake/v1/messages", (_r, cred) => json(anthropicMessage(), 200, used(utilization.get(cred)!)));
    // No telemetry yet: all count as 0, position decides; the answers teach the gateway.
    await servedBy(u.key, conv("warm-0"));
    await stubOf(u.id).sync(u.ids.map((id, i) => ({ accountId: id, successes: 0, failures: 0, lastUsedAt: 0, lastStatus: 0, quota: { status: "allowed" as const, windows: { "5h": { utilization: [0.5, 0.2, 0.95][i]!, resetsAt: Date.now() + 3_600_000 } }, updatedAt: Date.now() } })));
    await sleep(1100); // the isolate's snapshot expires
    expect(await servedBy(u.key, conv("q1"))).toBe(u.ids[1]);
    // The second account's answers now say it is at 93 %: over the threshold, set aside.
    utilization.set(u.keys[1]!, 0.93);
    expect(await servedBy(u.key, conv("q2"))).toBe(u.ids[1]); // the answer that tells
    expect(await servedBy(u.key, conv("q3"))).toBe(u.ids[0]);
    const accounts = await listAccounts(u.key);
    expect(accounts[1]!.quota).toMatchObject({ status: "allowed", windows: { "5h": { utilization: 0.93 } } });
  });

  it("quota-aware: a conversation bound to an account that crosses the threshold moves to one below it, and stays", async () => {
    const u = await userWithKeys(2);
    await setStrategy(u.key, { strategy: "quota-aware", quotaThreshold: 0.9 });
    const utilization = new Map([[u.keys[0]!, 0.1], [u.keys[1]!, 0.5]]);
    up().on("anthropic.fake/v1/messages", (_r, cred) => json(anthropicMessage(), 200, used(utilization.get(cred)!)));
    expect(await servedBy(u.key, conv("long"))).toBe(u.ids[0]);
    expect(await servedBy(u.key, conv("long"))).toBe(u.ids[0]);
    utilization.set(u.keys[0]!, 0.92); // this answer tells the gateway the first account is at 92 %
    expect(await servedBy(u.key, conv("long"))).toBe(u.ids[0]);
    for (let i = 0; i < 3; i++) expect(await servedBy(u.key, conv("long"))).toBe(u.ids[1]);
    utilization.set(u.keys[0]!, 0.1); // its window reset: the conversation does not move back
    expect(await servedBy(u.key, conv("long"))).toBe(u.ids[1]);
  });

  it("a stored strategy this code does not know (a rollback) reads as the default, and requests still work", async () => {
    const u = await userWithKeys(2);
    await runInDurableObject(stubOf(u.id), (_o, s) => s.storage.sql.exec("INSERT INTO meta (k, v) VALUES ('settings', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", JSON.stringify({ strategy: "weighted-random", quotaThreshold: 7 })));
    up().on("anthropic.fake/v1/messages", () => json(anthropicMessage()));
    expect((await call("/api/settings", { key: u.key })).json<Record<string, unknown>>()).toEqual({ strategy: "failover", quotaThreshold: 0.95, affinityTtlS: 3600 });
    expect(await servedBy(u.key, conv("x"))).toBe(u.ids[0]);
  });

  it("orders by headroom; no telemetry counts as 0; over the threshold goes last (unit)", () => {
    const now = Date.now();
    const acc = (id: string, position: number, u: number | null, cooling = false): AccountState => ({
      id, provider: "anthropic", type: "api", label: id, position, enabled: true, needsReauth: false, cooldownUntil: cooling ? now + 60_000 : null,
      lastStatus: null, lastError: null, lastErrorAt: null, lastUsedAt: null, successCount: 0, failureCount: 0, createdAt: position, credVersion: 1, expires: null, extras: {},
      quota: u === null ? null : { status: null, windows: { "5h": { utilization: u, resetsAt: now + 1000 } }, updatedAt: now },
    });
    const list = [acc("a", 1, 0.7), acc("b", 2, null), acc("c", 3, 0.97), acc("d", 4, 0.3)];
    const order = (l: AccountState[], stickyId: string | null = null) =>
      orderCandidates(l, { strategy: "quota-aware", quotaThreshold: 0.95, affinityTtlS: 60 }, { now, turn: 0, stickyId, quotaThreshold: 0.95 }).map((a) => a.id);
    expect(order(list)).toEqual(["b", "d", "a", "c"]);
    expect(order(list, "a")).toEqual(["a", "b", "d", "c"]); // a conversation stays on its account
    expect(order([acc("a", 1, 0.7, true), acc("b", 2, null)], "a")).toEqual(["b", "a"]); // ...unless it is cooling
  });
});

describe("session affinity", () => {
  it("yields to a 429, and the conversation does not move back when the old account recovers", async () => {
    const u = await userWithKeys(2);
    let limited = false;
    up().on("anthropic.fake/v1/messages", (_r, cred) =>
      cred === u.keys[0] && limited ? json(anthropicError("rate_limit_error", "rate limited"), 429, { "retry-after-ms": "600" }) : json(anthropicMessage()),
    );
    expect(await servedBy(u.key, conv("chat"))).toBe(u.ids[0]);
    limited = true;
    expect(await servedBy(u.key, conv("chat"))).toBe(u.ids[1]);
    limited = false;
    await sleep(700);
    for (let i = 0; i < 5; i++) expect(await servedBy(u.key, conv("chat"))).toBe(u.ids[1]);
    expect(await servedBy(u.key, conv("a new chat"))).toBe(u.ids[0]);
  });

  it("a Claude Code session (x-claude-code-session-id) keeps its account with 300 KB bodies; the bodies reach the upstream whole", async () => {
    const u = await userWithKeys(3);
    await setStrategy(u.key, { strategy: "round-robin" });
    const seen: number[] = [];
    up().on("anthropic.fake/v1/messages", async (req) => {
      seen.push((await req.arrayBuffer()).byteLength);
      return json(anthropicMessage());
    });
    const big = (turn: number) => ({ model: "m", max_tokens: 8, messages: [{ role: "user", content: "x".repeat(300_000) }, { role: "user", content: `turn ${turn}` }] });
    const session = (id: string) => ({ "x-claude-code-session-id": id });
    const a = (await messages(u.key, big(0), session("cc-1"))).headers.get("x-subpool-account");
    const b = (await messages(u.key, big(0), session("cc-2"))).headers.get("x-subpool-account");
    expect(b).not.toBe(a); // round-robin places a new conversation elsewhere
    for (let i = 1; i < 4; i++) {
      expect((await messages(u.key, big(i), session("cc-1"))).headers.get("x-subpool-account")).toBe(a);
      expect((await messages(u.key, big(i), session("cc-2"))).headers.get("x-subpool-account")).toBe(b);
    }
    expect(new Set(seen)).toEqual(new Set([JSON.stringify(big(0)).length]));
  });

  it("a 1 MB body fails over to the next accounts byte for byte (never read by the gateway, replayed from the kept copy)", async () => {
    const u = await userWithKeys(3);
    const bodies: string[] = [];
    up().on("anthropic.fake/v1/messages", async (req, cred) => {
      bodies.push(await req.text());
      return cred === u.keys[2] ? json(anthropicMessage()) : json(anthropicError("rate_limit_error", "rate limited"), 429, { "retry-after": "30" });
    });
    const body = { model: "m", max_tokens: 8, metadata: { user_id: "s" }, messages: [{ role: "user", content: "é€😀".repeat(80_000) }] };
    const r = await messages(u.key, body);
    expect(r.status).toBe(200);
    expect(r.headers.get("x-subpool-attempts")).toBe("3");
    expect(bodies).toHaveLength(3);
    for (const b of bodies) expect(b).toBe(JSON.stringify(body));
  });

  it("is named by Claude Code's metadata.user_id without any header", async () => {
    const u = await userWithKeys(2);
    await setStrategy(u.key, { strategy: "round-robin" });
    up().on("anthropic.fake/v1/messages", () => json(anthropicMessage()));
    const body = (s: string, text: string) => ({ model: "m", max_tokens: 8, metadata: { user_id: `user_x_account_y_session_${s}` }, messages: [{ role: "user", content: text }] });
    const first = (await messages(u.key, body("s1", "hello"))).headers.get("x-subpool-account");
    for (let i = 0; i < 4; i++) expect((await messages(u.key, body("s1", `turn ${i}`))).headers.get("x-subpool-account")).toBe(first);
  });

  it("ends after affinityTtlS without requests", async () => {
    const u = await userWithKeys(2);
    await setStrategy(u.key, { strategy: "round-robin", affinityTtlS: 1 });
    up().on("anthropic.fake/v1/messages", () => json(anthropicMessage()));
    const a = await servedBy(u.key, conv("short"));
    expect(await servedBy(u.key, conv("short"))).toBe(a);
    await sleep(1100);
    expect(await servedBy(u.key, conv("short"))).not.toBe(a); // a new turn of the round-robin
  });

  it("is bounded: the object keeps at most the cap, and forgets expired bindings", async () => {
    const u = await userWithKeys(2);
    const { AFFINITY_CAP } = await import("../../src/pool/telemetry-store");
    const now = Date.now();
    const many = Array.from({ length: AFFINITY_CAP + 50 }, (_, i) => ({ key: `anthropic|h:${i}`, accountId: u.ids[0]!, at: now - i }));
    await stubOf(u.id).sync([], { affinity: [...many, { key: "anthropic|h:old", accountId: u.ids[0]!, at: now - 7_200_000 }] });
    const count = await runInDurableObject(stubOf(u.id), (_o, s) => s.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM affinity").one().n);
    expect(count).toBe(AFFINITY_CAP);
    const old = await runInDurableObject(stubOf(u.id), (_o, s) => s.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM affinity WHERE key = 'anthropic|h:old'").one().n);
    expect(old).toBe(0);
  });
});

describe("usage per account and day", () => {
  it("counts requests and tokens of JSON answers and of streams (cumulative message_delta), as the fake sent them", async () => {
    const u = await userWithKeys(1);
    up().on("anthropic.fake/v1/messages", async (req) => {
      const stream = ((await req.json()) as { stream?: boolean }).stream;
      if (!stream) return json({ ...anthropicMessage(), usage: { input_tokens: 10, output_tokens: 20, cache_read_input_tokens: 300, cache_creation_input_tokens: 40 } });
      return scripted(
        [
          sseEvent("message_start", { type: "message_start", message: { usage: { input_tokens: 5, output_tokens: 1, cache_read_input_tokens: 100, cache_creation_input_tokens: 0 } } }),
          sseEvent("content_block_delta", { type: "content_block_delta", delta: { type: "text_delta", text: "usage is great" } }),
          sseEvent("message_delta", { type: "message_delta", usage: { output_tokens: 7 } }),
          sseEvent("message_delta", { type: "message_delta", usage: { output_tokens: 12 } }),
          sseEvent("message_stop", { type: "message_stop" }),
        ],
        "close",
        { headers: SSE },
      );
    });
    await messages(u.key);
    await messages(u.key);
    const res = await callRaw("/anthropic/v1/messages", {
      method: "POST",
      headers: { "x-api-key": u.key, "content-type": "application/json" },
      body: JSON.stringify({ model: "m", max_tokens: 8, stream: true, messages: [{ role: "user", content: "hi" }] }),
    });
    await res.text();
    await sleep(1200); // successes are batched once a second
    await listAccounts(u.key); // flushes this isolate's outcomes
    const r = await call(`/api/accounts/${u.ids[0]}/usage?days=7`, { key: u.key });
    expect(r.status).toBe(200);
    expect(r.json<{ days: unknown[] }>().days).toEqual([
      { date: new Date().toISOString().slice(0, 10), requests: 3, inputTokens: 25, outputTokens: 52, cacheReadTokens: 700, cacheWriteTokens: 80 },
    ]);
  });

  it("keeps a year at most, for every user", async () => {
    const u = await userWithKeys(1);
    await runInDurableObject(stubOf(u.id), (_o, s) => {
      s.storage.sql.exec("INSERT INTO usage_daily (account_id, date, requests) VALUES (?, '2020-01-01', 5)", u.ids[0]!);
      s.storage.sql.exec("DELETE FROM meta WHERE k = 'purged_on'"); // as on the first sync of a new day
    });
    await stubOf(u.id).sync([]);
    const left = await runInDurableObject(stubOf(u.id), (_o, s) => s.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM usage_daily").one().n);
    expect(left).toBe(0);
  });

  it("refuses a bad days value with a 400 naming it, and another user's account with a 404", async () => {
    const u = await userWithKeys(1);
    const other = await userWithKeys(1);
    expect((await call(`/api/accounts/${u.ids[0]}/usage?days=0`, { key: u.key })).json().error.field).toBe("days");
    expect((await call(`/api/accounts/${u.ids[0]}/usage?days=abc`, { key: u.key })).status).toBe(400);
    expect((await call(`/api/accounts/${other.ids[0]}/usage`, { key: u.key })).status).toBe(404);
  });
});

describe("quota probes", () => {
  it("a Claude OAuth account that has not served is read from the usage endpoint by the alarm, never on a request", async () => {
    const u = await createUser(`route${++n}`);
    const g = up().anthropicAuth.grant();
    const key = secrets.add(`sk-ant-api03-probe-${crypto.randomUUID()}`);
    await addAccount(u.key, { provider: "anthropic", type: "api", key });
    const oauth = await addAccount(u.key, { provider: "anthropic", type: "oauth", refresh: g.refresh, access: g.access, expires: Date.now() + 3_600_000 });
    up().on("anthropic.fake/v1/messages", () => json(anthropicMessage()));
    up().on("anthropic.fake/api/oauth/usage", (req, cred) => {
      expect(req.headers.get("anthropic-beta")).toContain("oauth-2025-04-20");
      return up().anthropicAuth.validAccess.has(cred)
        ? json({ five_hour: { utilization: 61.0, resets_at: new Date(Date.now() + 3_600_000).toISOString() }, seven_day: { utilization: 12.5, resets_at: null } })
        : json({}, 401);
    });
    for (let i = 0; i < 5; i++) await messages(u.key, undefined, conv(`p${i}`)); // the user is active; the API key serves
    expect(up().calls("anthropic.fake/api/oauth/usage")).toHaveLength(0); // never on a request
    expect(await runInDurableObject(stubOf(u.id), (_o, s) => s.storage.getAlarm())).not.toBeNull();
    expect(await runDurableObjectAlarm(stubOf(u.id))).toBe(true);
    expect(up().calls("anthropic.fake/api/oauth/usage")).toHaveLength(1);
    const probed = (await listAccounts(u.key)).find((a) => a.id === oauth.id)!;
    expect(probed.quota!.windows["5h"]!.utilization).toBeCloseTo(0.61, 5);
    expect(probed.quota!.windows["7d"]).toEqual({ utilization: 0.125, resetsAt: null });
    // Heard lately: the next alarm leaves it alone.
    await runDurableObjectAlarm(stubOf(u.id));
    expect(up().calls("anthropic.fake/api/oauth/usage")).toHaveLength(1);
  });

  it("an idle ChatGPT account is read from the usage endpoint Codex reads (wham/usage), with its account id, by the alarm", async () => {
    const u = await createUser(`route${++n}`);
    const g = up().openaiAuth.grant();
    const access = chatgptJwt("acct-wham", `wham-${crypto.randomUUID()}`);
    const acc = await addAccount(u.key, { provider: "openai", type: "oauth", refresh: g.refresh, access, expires: Date.now() + 3_600_000 }, { check: false });
    const reset = Math.floor(Date.now() / 1000) + 7200;
    up().on("chatgpt.fake/backend-api/wham/usage", (req) => {
      expect(req.headers.get("chatgpt-account-id")).toBe("acct-wham");
      return json({ plan_type: "plus", rate_limit: { primary_window: { used_percent: 37, reset_at: reset, limit_window_seconds: 18000 }, secondary_window: { used_percent: 8, reset_at: reset + 86400, limit_window_seconds: 604800 } }, credits: { has_credits: false } });
    });
    await listAccounts(u.key); // the user is active
    expect(await runDurableObjectAlarm(stubOf(u.id))).toBe(true);
    expect(up().calls("chatgpt.fake/backend-api/wham/usage")).toHaveLength(1);
    const probed = (await listAccounts(u.key)).find((a) => a.id === acc.id)!;
    expect(probed.quota!.windows).toEqual({ primary: { utilization: 0.37, resetsAt: reset * 1000 }, secondary: { utilization: 0.08, resetsAt: (reset + 86400) * 1000 } });
    expect(probed.quota!.credits).toEqual({ hasCredits: false, unlimited: false, balance: null });
  });

  it("one alarm run makes at most PROBE_CALLS_PER_RUN calls for its user; the stalest accounts go first, so each gets its turn", async () => {
    const u = await createUser(`route${++n}`);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const g = up().anthropicAuth.grant();
      ids.push((await addAccount(u.key, { provider: "anthropic", type: "oauth", refresh: g.refresh, access: g.access, expires: Date.now() + 3_600_000 })).id);
    }
    up().on("anthropic.fake/api/oauth/usage", () => json({ five_hour: { utilization: 3, resets_at: null } }));
    const probed = async () => (await listAccounts(u.key)).filter((a) => a.quota !== null).map((a) => a.id);
    for (const [run, total] of [8, 16, 20].entries()) {
      expect(await runDurableObjectAlarm(stubOf(u.id)), `alarm run ${run + 1}`).toBe(true);
      expect(up().calls("anthropic.fake/api/oauth/usage")).toHaveLength(total);
      expect(up().anthropicAuth.calls).toBe(0);
    }
    expect((await probed()).sort()).toEqual([...ids].sort());
    // Everyone was heard lately: the next run asks nobody.
    await runDurableObjectAlarm(stubOf(u.id));
    expect(up().calls("anthropic.fake/api/oauth/usage")).toHaveLength(20);
  });

  it("waits out a failed renewal: the alarm does not call the token endpoint again meanwhile", async () => {
    const u = await createUser(`route${++n}`);
    const key = secrets.add(`sk-ant-api03-probe-${crypto.randomUUID()}`);
    const g = up().anthropicAuth.grant();
    await addAccount(u.key, { provider: "anthropic", type: "oauth", refresh: g.refresh, access: g.access, expires: Date.now() - 1000 });
    await addAccount(u.key, { provider: "anthropic", type: "api", key });
    up().on("anthropic.fake/v1/messages", () => json(anthropicMessage()));
    up().on("anthropic.fake/api/oauth/usage", () => json({ five_hour: { utilization: 3, resets_at: null } }));
    up().override("anthropic.fake/v1/oauth/token", () => json({ error: "server_error" }, 500));
    await messages(u.key); // the renewal fails: the next try is REFRESH_RETRY_MS away
    expect(up().calls("anthropic.fake/v1/oauth/token")).toHaveLength(1);
    expect(await runDurableObjectAlarm(stubOf(u.id))).toBe(true);
    expect(up().calls("anthropic.fake/v1/oauth/token")).toHaveLength(1);
    expect(up().calls("anthropic.fake/api/oauth/usage")).toHaveLength(0);
  });

  it("does not probe for a user who has not been active in the last hour", async () => {
    const u = await createUser(`route${++n}`);
    const g = up().anthropicAuth.grant();
    await addAccount(u.key, { provider: "anthropic", type: "oauth", refresh: g.refresh, access: g.access, expires: Date.now() + 3_600_000 });
    up().on("anthropic.fake/api/oauth/usage", () => json({ five_hour: { utilization: 1, resets_at: null } }));
    await runInDurableObject(stubOf(u.id), async (_o, s) => {
      s.storage.sql.exec("INSERT INTO meta (k, v) VALUES ('active_at', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", String(Date.now() - 2 * 3_600_000));
      await s.storage.setAlarm(Date.now() + 1000);
    });
    await runDurableObjectAlarm(stubOf(u.id));
    expect(up().calls("anthropic.fake/api/oauth/usage")).toHaveLength(0);
  });
});
