import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { resetIsolateCaches } from "./helpers/isolate";
import type { CredentialRecord } from "../src/vault/records";
import { addAccount, call, createUser, listAccounts, messages, postJson, useGateway } from "./helpers/gateway";
import { secrets } from "./helpers/secrets";
import { anthropicError, anthropicMessage, chatgptJwt, json } from "./helpers/upstream";

const { up } = useGateway();
let n = 0;

/** Anthropic's API as the fake: valid OAuth access tokens (from the fake token server) get 200. */
function serveAnthropic() {
  up().on("anthropic.fake/v1/messages", (req, cred) => {
    if (!req.headers.get("anthropic-beta")?.split(",").includes("oauth-2025-04-20")) {
      return json(anthropicError("invalid_request_error", "OAuth authentication is currently not supported."), 401);
    }
    if (!up().anthropicAuth.validAccess.has(cred)) {
      return json(anthropicError("authentication_error", "OAuth token has expired. Please obtain a new token or refresh your existing token."), 401);
    }
    return json(anthropicMessage(`served by ${cred.slice(0, 12)}`));
  });
}

async function oauthUser(accounts: { expired?: boolean; expiresInMs?: number; revoked?: boolean }[]) {
  const u = await createUser(`oauth${++n}`);
  const grants = [];
  const ids = [];
  for (const a of accounts) {
    const g = up().anthropicAuth.grant();
    if (a.expired || a.revoked) up().anthropicAuth.revokeAccess(g.access);
    const expires = a.expired ? Date.now() - 1000 : Date.now() + (a.expiresInMs ?? 3_600_000);
    ids.push((await addAccount(u.key, { provider: "anthropic", type: "oauth", refresh: g.refresh, access: g.access, expires })).id);
    grants.push(g);
  }
  return { ...u, grants, ids };
}

const stubOf = (userId: string) => env.USER_POOL.get(env.USER_POOL.idFromName(userId));
const rowOf = (userId: string, accountId: string) =>
  runInDurableObject(stubOf(userId), (_o, s) => s.storage.sql.exec<{ cred_version: number; needs_reauth: number; cred: string }>("SELECT cred_version, needs_reauth, cred FROM accounts WHERE id = ?", accountId).one());

describe("OAuth refresh", () => {
  it("401 -> refresh -> the same account succeeds with the new token", async () => {
    serveAnthropic();
    const u = await oauthUser([{ revoked: true }]); // looks valid, upstream says expired
    const r = await messages(u.key);
    expect(r.status).toBe(200);
    expect(r.headers.get("x-subpool-account")).toBe(u.ids[0]);
    expect(r.headers.get("x-subpool-attempts")).toBe("2");
    expect(up().anthropicAuth.calls).toBe(1);
    const calls = up().calls("anthropic.fake/v1/messages");
    expect(calls[0]!.headers.authorization).toBe(`Bearer ${u.grants[0]!.access}`);
    expect(calls[1]!.headers.authorization).not.toBe(calls[0]!.headers.authorization);
    expect(calls[1]!.headers["x-api-key"]).toBeUndefined();
    // Persisted: DO row and KV copy are both at version 2.
    expect((await rowOf(u.id, u.ids[0]!)).cred_version).toBe(2);
    const kv = await env.VAULT.get<CredentialRecord>(`cred:${u.id}:${u.ids[0]}`, "json");
    expect(kv!.version).toBe(2);
  });

  it("refreshes a token that is about to expire before using it", async () => {
    serveAnthropic();
    const u = await oauthUser([{ expiresInMs: 20_000 }]);
    const r = await messages(u.key);
    expect(r.status).toBe(200);
    expect(r.headers.get("x-subpool-attempts")).toBe("1");
    expect(up().anthropicAuth.calls).toBe(1);
  });

  it("401 after a refresh -> auth cooldown and the next account", async () => {
    const u = await oauthUser([{ revoked: true }, {}]);
    // The upstream refuses every token of account 1, fresh ones included; only account 2 works.
    const good = u.grants[1]!.access;
    up().on("anthropic.fake/v1/messages", (_req, cred) => (cred === good ? json(anthropicMessage()) : json(anthropicError("authentication_error", "OAuth token has expired."), 401)));
    const t0 = Date.now();
    const r = await messages(u.key);
    expect(r.status).toBe(200);
    expect(r.headers.get("x-subpool-account")).toBe(u.ids[1]);
    expect(r.headers.get("x-subpool-attempts")).toBe("3");
    expect(up().anthropicAuth.calls).toBe(1);
    const a = (await listAccounts(u.key))[0]!;
    expect(a.status).toBe("cooling");
    expect((a.cooldownUntil! - t0) / 1000).toBeGreaterThan(295);
  });

  it("invalid_grant -> needs_reauth (kept, not deleted) and the next account serves", async () => {
    serveAnthropic();
    const u = await oauthUser([{ expired: true }, {}]);
    // Someone else used account 1's refresh token: the fake now answers invalid_grant.
    await up().anthropicAuth.exchange(u.grants[0]!.refresh);
    up().anthropicAuth.calls = 0;
    const r = await messages(u.key);
    expect(r.status).toBe(200);
    expect(r.headers.get("x-subpool-account")).toBe(u.ids[1]);
    expect(up().anthropicAuth.calls).toBe(1);
    const list = await listAccounts(u.key);
    expect(list.map((a) => a.status)).toEqual(["needs_reauth", "active"]);
    expect(list[0]!.lastError).toMatch(/invalid_grant/);
    // Never retried again until someone logs in.
    await messages(u.key);
    expect(up().anthropicAuth.calls).toBe(1);
  });

  it("50 concurrent requests with one expired token cause exactly one token-endpoint call, and all succeed", async () => {
    serveAnthropic();
    const u = await oauthUser([{ expired: true }]);
    up().anthropicAuth.delayMs = 50;
    const results = await Promise.all(Array.from({ length: 50 }, () => messages(u.key)));
    expect(results.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect(up().anthropicAuth.calls).toBe(1);
    expect((await rowOf(u.id, u.ids[0]!)).cred_version).toBe(2);
  });

  it("the same holds across isolates: concurrent refreshes meet in the Durable Object", async () => {
    serveAnthropic();
    const u = await oauthUser([{ expired: true }]);
    up().anthropicAuth.delayMs = 50;
    const stub = stubOf(u.id);
    const outs = await Promise.all(Array.from({ length: 20 }, () => stub.refresh(u.ids[0]!, 1, false)));
    expect(outs.every((o) => o.ok)).toBe(true);
    expect(up().anthropicAuth.calls).toBe(1);
  });

  it("single-use refresh tokens: the rotated token is the one used next time", async () => {
    serveAnthropic();
    const u = await oauthUser([{ expired: true }]);
    const auth = up().anthropicAuth;
    for (let round = 1; round <= 3; round++) {
      // Expire whatever access token the gateway holds now.
      for (const t of [...auth.validAccess]) auth.revokeAccess(t);
      const r = await messages(u.key);
      expect(r.status, `round ${round}`).toBe(200);
      expect(auth.calls).toBe(round);
    }
    // Every exchange presented the live token (a reuse would have answered invalid_grant).
    const used = up().calls("anthropic.fake/v1/oauth/token").map((s) => JSON.parse(s.body).refresh_token as string);
    expect(new Set(used).size).toBe(3);
    expect(used[0]).toBe(u.grants[0]!.refresh);
    expect((await listAccounts(u.key))[0]!.status).toBe("active");
  });

  it("a stale KV copy cannot break the account: the reader asks the Durable Object", async () => {
    serveAnthropic();
    const u = await oauthUser([{ expired: true }]);
    const key = `cred:${u.id}:${u.ids[0]}`;
    const v1 = await env.VAULT.get(key);
    expect((await messages(u.key)).status).toBe(200);
    expect(up().anthropicAuth.calls).toBe(1);
    // Another location still sees version 1 in KV, and has no cache.
    await env.VAULT.put(key, v1!);
    resetIsolateCaches();
    const r = await messages(u.key);
    expect(r.status).toBe(200);
    expect(r.headers.get("x-subpool-attempts")).toBe("1");
    // No second refresh: the old refresh token would have been a reuse.
    expect(up().anthropicAuth.calls).toBe(1);
  });

  it("a refresh refused while a new login was stored meanwhile does not mark the account needs_reauth", async () => {
    serveAnthropic();
    const u = await oauthUser([{ expired: true }]);
    const auth = up().anthropicAuth;
    await auth.exchange(u.grants[0]!.refresh); // the stored token is dead
    auth.calls = 0;
    auth.delayMs = 100;
    const fresh = auth.grant();
    const pending = messages(u.key);
    await new Promise((r) => setTimeout(r, 30));
    // A re-login lands while the refresh is in flight.
    // (The same provider identity imported again replaces the credential in place, as a re-login does.)
    await runInDurableObject(stubOf(u.id), (_o, s) => s.storage.sql.exec("UPDATE accounts SET identity = 'anthropic:relogin' WHERE id = ?", u.ids[0]!));
    const relogin = await stubOf(u.id).importAccount({ provider: "anthropic", type: "oauth", refresh: fresh.refresh, access: fresh.access, expires: Date.now() + 3_600_000, identity: "anthropic:relogin", fingerprint: "relogin" });
    expect(relogin.ok && relogin.value.action).toBe("updated");
    const r = await pending;
    expect(r.status).toBe(200);
    expect((await listAccounts(u.key))[0]!.status).toBe("active");
  });

  it("a transient token-endpoint failure skips the account for this request without needs_reauth", async () => {
    serveAnthropic();
    const u = await oauthUser([{ expired: true }, {}]);
    up().anthropicAuth.forced.push({ status: 503, body: { error: "temporarily_unavailable" } });
    const r = await messages(u.key);
    expect(r.headers.get("x-subpool-account")).toBe(u.ids[1]);
    const a = (await listAccounts(u.key))[0]!;
    expect(a.status).not.toBe("needs_reauth"); // benched until the next try (REFRESH_RETRY_MS), never signed out
    expect(a.lastError).toMatch(/503/);
  });
});

describe("OpenAI ChatGPT accounts (Codex backend)", () => {
  it("sends /v1/responses to the Codex backend with ChatGPT-Account-Id, and refreshes with form-encoded single-use tokens", async () => {
    const u = await createUser(`codex${++n}`);
    const g = up().openaiAuth.grant();
    up().openaiAuth.revokeAccess(g.access);
    const acc = await addAccount(u.key, { provider: "openai", type: "oauth", refresh: g.refresh, access: g.access, expires: Date.now() + 3_600_000 });
    up().on("chatgpt.fake/backend-api/codex/responses", (req, cred) => {
      if (!up().openaiAuth.validAccess.has(cred)) return json({ error: { message: "token expired", type: "invalid_request_error", code: "token_expired" } }, 401);
      if (!req.headers.get("chatgpt-account-id")?.startsWith("chatgpt-acct-")) return json({ error: { message: "missing account" } }, 400);
      return json({ id: "resp_1", object: "response", output: [] });
    });
    const r = await postJson("/openai/v1/responses", u.key, { model: "gpt-5-codex", input: "hi" });
    expect(r.status).toBe(200);
    expect(r.headers.get("x-subpool-account")).toBe(acc.id);
    expect(up().openaiAuth.calls).toBe(1);
    const tokenCall = up().calls("auth.openai.fake/oauth/token")[0]!;
    expect(tokenCall.headers["content-type"]).toContain("application/x-www-form-urlencoded");
    const calls = up().calls("chatgpt.fake/backend-api/codex/responses");
    expect(calls[0]!.headers["chatgpt-account-id"]).toBe("chatgpt-acct-1");
    expect(calls[1]!.headers["chatgpt-account-id"]).toBe("chatgpt-acct-2");
    // A reused refresh token is answered 401 refresh_token_reused: needs_reauth, not a crash.
    const reuse = await up().openaiAuth.exchange(g.refresh);
    expect(reuse.status).toBe(401);
  });

  it("refresh_token_reused marks the account needs_reauth", async () => {
    const u = await createUser(`codex${++n}`);
    const g = up().openaiAuth.grant();
    await up().openaiAuth.exchange(g.refresh);
    await addAccount(u.key, { provider: "openai", type: "oauth", refresh: g.refresh, access: chatgptJwt("acct-x", "old", 1), expires: Date.now() - 1 });
    const r = await postJson("/openai/v1/responses", u.key, { model: "gpt-5-codex", input: "hi" });
    expect(r.status).toBe(403);
    expect(r.json().error.message).toMatch(/new login/);
    const a = (await listAccounts(u.key))[0]!;
    expect(a.status).toBe("needs_reauth");
    expect(a.lastError).toMatch(/refresh_token_reused/);
  });

  it("ChatGPT accounts serve only the Responses API; API keys serve the rest", async () => {
    const u = await createUser(`codex${++n}`);
    const g = up().openaiAuth.grant();
    await addAccount(u.key, { provider: "openai", type: "oauth", refresh: g.refresh, access: g.access, expires: Date.now() + 3_600_000 });
    const r = await postJson("/openai/v1/chat/completions", u.key, { model: "gpt-5" });
    expect(r.status).toBe(400);
    expect(r.json().error.message).toMatch(/only \/v1\/responses/);
    const key = secrets.add(`sk-proj-${crypto.randomUUID()}`);
    await addAccount(u.key, { provider: "openai", type: "api", key });
    up().on("openai.fake/v1/chat/completions", (_req, cred) => (cred === key ? json({ id: "chatcmpl-1", choices: [] }) : json({ error: { message: "bad key" } }, 401)));
    expect((await postJson("/openai/v1/chat/completions", u.key, { model: "gpt-5" })).status).toBe(200);
  });
});

describe("GitHub Copilot accounts", () => {
  it("exchanges the GitHub token for a Copilot token once and reuses it", async () => {
    const u = await createUser(`copilot${++n}`);
    const gh = up().githubToken();
    const acc = await addAccount(u.key, { provider: "github-copilot", type: "oauth", refresh: gh });
    up().on("copilot.fake/chat/completions", (_req, cred) => (up().copilotTokens.has(cred) ? json({ id: "c1", choices: [] }) : json({ error: { message: "unauthorized" } }, 401)));
    for (let i = 0; i < 3; i++) {
      const r = await postJson("/copilot/chat/completions", u.key, { model: "gpt-4o", messages: [] });
      expect(r.status).toBe(200);
      expect(r.headers.get("x-subpool-account")).toBe(acc.id);
    }
    expect(up().copilotExchangeCalls).toBe(1);
    const ex = up().calls("api.github.fake/copilot_internal/v2/token")[0]!;
    expect(ex.headers.authorization).toBe(`token ${gh}`);
  });

  it("a revoked GitHub token marks the account needs_reauth", async () => {
    const u = await createUser(`copilot${++n}`);
    await addAccount(u.key, { provider: "github-copilot", type: "oauth", refresh: secrets.add(`gho_revoked_${crypto.randomUUID()}`) });
    const r = await postJson("/copilot/chat/completions", u.key, { model: "gpt-4o", messages: [] });
    expect(r.status).toBe(403);
    expect((await listAccounts(u.key))[0]!.status).toBe("needs_reauth");
  });
});

it("no secret reaches a response: the account listing of a refreshed account holds none", async () => {
  serveAnthropic();
  const u = await oauthUser([{ expired: true }]);
  await messages(u.key);
  const r = await call("/api/accounts", { key: u.key });
  expect(r.status).toBe(200);
  expect(Object.keys(r.json().accounts[0]!).sort()).toEqual(
    ["createdAt", "cooldownUntil", "enabled", "failureCount", "id", "label", "lastError", "lastErrorAt", "lastStatus", "lastUsedAt", "position", "provider", "quota", "status", "successCount", "type"].sort(),
  );
  expect(secrets.size).toBeGreaterThan(10);
});
