import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createUser, listAccounts, messages, postJson, useGateway } from "./helpers/gateway";
import { anthropicMessage, json } from "./helpers/upstream";

const { up } = useGateway();
let n = 0;

const stubOf = (userId: string) => env.USER_POOL.get(env.USER_POOL.idFromName(userId));
/**
 * Lets the next device poll happen now: the DO enforces the interval in real time, so the test moves
 * its clock instead of sleeping, and tells the fake GitHub to ignore the interval accordingly.
 */
async function skipWait(userId: string) {
  await runInDurableObject(stubOf(userId), (_o, s) => s.storage.sql.exec("UPDATE logins SET next_poll_at = 0"));
}

describe("Claude Pro/Max login (PKCE, code#state)", () => {
  it("starts with a PKCE S256 authorize URL, keeps the verifier server-side, and finishes into one new account", async () => {
    const u = await createUser(`login${++n}`);
    const start = await postJson("/api/oauth/anthropic/start", u.key, {});
    expect(start.status).toBe(200);
    const s = start.json();
    expect(s).toMatchObject({ provider: "anthropic", method: "code", loginId: expect.stringMatching(/^login_/) });
    const url = new URL(s.url);
    expect(url.origin + url.pathname).toBe("https://claude.fake/oauth/authorize");
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      code: "true",
      client_id: "9d1c250a-e61b-44d9-88ed-5944d1962f5e",
      response_type: "code",
      redirect_uri: "https://platform.claude.com/oauth/code/callback",
      scope: "org:create_api_key user:profile user:inference",
      code_challenge_method: "S256",
    });
    expect(start.body).not.toMatch(/verifier/i);
    expect(s.expiresAt - Date.now()).toBeGreaterThan(9 * 60_000);
    expect(s.expiresAt - Date.now()).toBeLessThanOrEqual(10 * 60_000);

    const { code, state } = up().anthropicAuth.authorize(s.url, { uuid: "ant-user-1", email: "alice@example.com" });
    const fin = await postJson("/api/oauth/anthropic/finish", u.key, { loginId: s.loginId, code: `${code}#${state}` });
    expect(fin.status).toBe(201);
    expect(fin.json()).toMatchObject({ created: true, account: { provider: "anthropic", type: "oauth", label: "alice@example.com", status: "active" } });

    // The account works: its token is the one the login got.
    up().on("anthropic.fake/v1/messages", (_r, cred) => (up().anthropicAuth.validAccess.has(cred) ? json(anthropicMessage()) : json({}, 401)));
    expect((await messages(u.key)).status).toBe(200);
    // A login finishes once.
    const again = await postJson("/api/oauth/anthropic/finish", u.key, { loginId: s.loginId, code: `${code}#${state}` });
    expect(again.status).toBe(410);
    expect(await listAccounts(u.key)).toHaveLength(1);
  });

  it("refuses a code whose state does not match, and a reused code, creating nothing", async () => {
    const u = await createUser(`login${++n}`);
    const a = (await postJson("/api/oauth/anthropic/start", u.key, {})).json();
    const b = (await postJson("/api/oauth/anthropic/start", u.key, {})).json();
    const codeB = up().anthropicAuth.authorize(b.url);
    const wrong = await postJson("/api/oauth/anthropic/finish", u.key, { loginId: a.loginId, code: `${codeB.code}#${codeB.state}` });
    expect(wrong.status).toBe(400);
    expect(wrong.json().error).toMatchObject({ field: "code" });
    expect(wrong.json().error.message).toMatch(/state does not match/);
    const noState = await postJson("/api/oauth/anthropic/finish", u.key, { loginId: a.loginId, code: codeB.code });
    expect(noState.status).toBe(400);
    expect(noState.json().error.message).toMatch(/after "#"/);
    // B finishes; then a code already redeemed is refused by the token endpoint for login A.
    expect((await postJson("/api/oauth/anthropic/finish", u.key, { loginId: b.loginId, code: `${codeB.code}#${codeB.state}` })).status).toBe(201);
    const codeA = up().anthropicAuth.authorize(a.url);
    const reusedUrl = `${codeB.code}#${codeA.state}`;
    const reused = await postJson("/api/oauth/anthropic/finish", u.key, { loginId: a.loginId, code: reusedUrl });
    expect(reused.status).toBe(400);
    expect(reused.json().error.message).toMatch(/refused the code/);
    // The login is still pending: the right code now works.
    expect((await postJson("/api/oauth/anthropic/finish", u.key, { loginId: a.loginId, code: `${codeA.code}#${codeA.state}` })).status).toBe(201);
    expect(await listAccounts(u.key)).toHaveLength(2);
  });

  it("a pending login expires after 10 minutes", async () => {
    const u = await createUser(`login${++n}`);
    const s = (await postJson("/api/oauth/anthropic/start", u.key, {})).json();
    await runInDurableObject(stubOf(u.id), (_o, st) => st.storage.sql.exec("UPDATE logins SET expires_at = ?", Date.now() - 1));
    const { code, state } = up().anthropicAuth.authorize(s.url);
    const r = await postJson("/api/oauth/anthropic/finish", u.key, { loginId: s.loginId, code: `${code}#${state}` });
    expect(r.status).toBe(410);
    expect(r.json().error.message).toMatch(/10 minutes/);
    expect(up().anthropicAuth.calls).toBe(0);
    expect(await listAccounts(u.key)).toEqual([]);
  });

  it("logging in again as the same Claude account refreshes it instead of duplicating it", async () => {
    const u = await createUser(`login${++n}`);
    const ids = [];
    for (let i = 0; i < 2; i++) {
      const s = (await postJson("/api/oauth/anthropic/start", u.key, {})).json();
      const { code, state } = up().anthropicAuth.authorize(s.url, { uuid: "same-person", email: "p@example.com" });
      const r = await postJson("/api/oauth/anthropic/finish", u.key, { loginId: s.loginId, code: `${code}#${state}` });
      expect(r.status).toBe(i === 0 ? 201 : 200);
      expect(r.json().created).toBe(i === 0);
      ids.push(r.json().account.id);
    }
    expect(ids[0]).toBe(ids[1]);
    expect(await listAccounts(u.key)).toHaveLength(1);
    // A different person is a second account (never an overwrite).
    const s = (await postJson("/api/oauth/anthropic/start", u.key, { label: "second" })).json();
    const { code, state } = up().anthropicAuth.authorize(s.url, { uuid: "other-person", email: "o@example.com" });
    expect((await postJson("/api/oauth/anthropic/finish", u.key, { loginId: s.loginId, code: `${code}#${state}` })).json().account.label).toBe("second");
    expect(await listAccounts(u.key)).toHaveLength(2);
  });

  it("a login never touches another user's accounts or pending logins", async () => {
    const alice = await createUser(`login${++n}`);
    const bob = await createUser(`login${++n}`);
    const s = (await postJson("/api/oauth/anthropic/start", alice.key, {})).json();
    const { code, state } = up().anthropicAuth.authorize(s.url);
    const r = await postJson("/api/oauth/anthropic/finish", bob.key, { loginId: s.loginId, code: `${code}#${state}` });
    expect(r.status).toBe(410);
    expect(await listAccounts(bob.key)).toEqual([]);
  });

  it("validates provider and body", async () => {
    const u = await createUser(`login${++n}`);
    const bad = await postJson("/api/oauth/gemini/start", u.key, {});
    expect(bad.status).toBe(400);
    expect(bad.json().error.field).toBe("provider");
    const noId = await postJson("/api/oauth/anthropic/finish", u.key, { code: "x#y" });
    expect(noId.status).toBe(400);
    expect(noId.json().error.field).toBe("loginId");
    const s = (await postJson("/api/oauth/anthropic/start", u.key, {})).json();
    const noCode = await postJson("/api/oauth/anthropic/finish", u.key, { loginId: s.loginId });
    expect(noCode.status).toBe(400);
    expect(noCode.json().error.field).toBe("code");
  });
});

describe("ChatGPT login (PKCE, pasted redirect address)", () => {
  it("accepts the redirect address, checks its state, and reads the account id from the token", async () => {
    const u = await createUser(`login${++n}`);
    const s = (await postJson("/api/oauth/openai/start", u.key, {})).json();
    expect(s.method).toBe("redirect");
    const url = new URL(s.url);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      client_id: "app_EMoamEEZ73f0CkXaXp7hrann",
      redirect_uri: "http://localhost:1455/auth/callback",
      scope: "openid profile email offline_access",
      code_challenge_method: "S256",
      id_token_add_organizations: "true",
      codex_cli_simplified_flow: "true",
    });
    const { code, state } = up().openaiAuth.authorize(s.url, { uuid: "user-9", email: "bob@example.com" });
    const wrong = await postJson("/api/oauth/openai/finish", u.key, { loginId: s.loginId, code: `http://localhost:1455/auth/callback?code=${code}&state=nope` });
    expect(wrong.status).toBe(400);
    const fin = await postJson("/api/oauth/openai/finish", u.key, { loginId: s.loginId, code: `http://localhost:1455/auth/callback?code=${code}&state=${state}` });
    expect(fin.status).toBe(201);
    expect(fin.json().account).toMatchObject({ provider: "openai", type: "oauth", label: "bob@example.com" });
    up().on("chatgpt.fake/backend-api/codex/responses", (req) => json({ account: req.headers.get("chatgpt-account-id") }));
    const r = await postJson("/openai/v1/responses", u.key, { model: "gpt-5-codex", input: "hi" });
    expect(r.json().account).toMatch(/^chatgpt-acct-/);
  });

  it("a sign-in that came back with an error ends the login", async () => {
    const u = await createUser(`login${++n}`);
    const s = (await postJson("/api/oauth/openai/start", u.key, {})).json();
    const r = await postJson("/api/oauth/openai/finish", u.key, { loginId: s.loginId, code: "http://localhost:1455/auth/callback?error=access_denied&state=x" });
    expect(r.status).toBe(400);
    expect((await postJson("/api/oauth/openai/finish", u.key, { loginId: s.loginId, code: "abc" })).status).toBe(410);
  });
});

describe("GitHub Copilot login (device flow)", () => {
  it("shows a user code, answers pending while the person has not approved, then creates the account", async () => {
    const u = await createUser(`login${++n}`);
    up().device.interval = 1;
    up().device.enforceInterval = false;
    const start = await postJson("/api/oauth/github-copilot/start", u.key, {});
    expect(start.status).toBe(200);
    const s = start.json();
    expect(s).toMatchObject({ method: "device", verificationUri: "https://github.fake/login/device", interval: 1, userCode: expect.stringMatching(/^\w{4}-\w{4}$/) });
    expect(start.body).not.toContain("dc_");

    // Too early: the gateway does not even ask GitHub.
    const early = await postJson("/api/oauth/github-copilot/finish", u.key, { loginId: s.loginId });
    expect(early.status).toBe(202);
    expect(up().device.polls).toBe(0);

    await skipWait(u.id);
    const pending = await postJson("/api/oauth/github-copilot/finish", u.key, { loginId: s.loginId });
    expect(pending.status).toBe(202);
    expect(pending.json()).toEqual({ status: "pending", interval: 1 });
    expect(up().device.polls).toBe(1);

    up().device.approve(s.userCode, { id: 42, login: "octocat" });
    await skipWait(u.id);
    const done = await postJson("/api/oauth/github-copilot/finish", u.key, { loginId: s.loginId });
    expect(done.status).toBe(201);
    expect(done.json().account).toMatchObject({ provider: "github-copilot", type: "oauth", label: "octocat", status: "active" });
    // The Copilot token was checked at login and is used without another exchange.
    up().on("copilot.fake/chat/completions", (_r, cred) => (up().copilotTokens.has(cred) ? json({ ok: 1 }) : json({}, 401)));
    expect((await postJson("/copilot/chat/completions", u.key, { model: "gpt-4o", messages: [] })).status).toBe(200);
    expect(up().copilotExchangeCalls).toBe(1);
  });

  it("honours slow_down: the interval grows by 5 s and the gateway waits it out", async () => {
    const u = await createUser(`login${++n}`);
    up().device.interval = 1;
    up().device.enforceInterval = false;
    const s = (await postJson("/api/oauth/github-copilot/start", u.key, {})).json();
    up().device.script.push("slow_down");
    await skipWait(u.id);
    const r = await postJson("/api/oauth/github-copilot/finish", u.key, { loginId: s.loginId });
    expect(r.status).toBe(202);
    expect(r.json().interval).toBe(6);
    const polls = up().device.polls;
    const again = await postJson("/api/oauth/github-copilot/finish", u.key, { loginId: s.loginId });
    expect(again.status).toBe(202);
    expect(again.json().interval).toBeGreaterThanOrEqual(5);
    expect(up().device.polls).toBe(polls);
  });

  it("a denied or expired device code ends the login with a clear answer", async () => {
    const u = await createUser(`login${++n}`);
    up().device.interval = 1;
    up().device.enforceInterval = false;
    const a = (await postJson("/api/oauth/github-copilot/start", u.key, {})).json();
    up().device.deny(a.userCode);
    await skipWait(u.id);
    const denied = await postJson("/api/oauth/github-copilot/finish", u.key, { loginId: a.loginId });
    expect(denied.status).toBe(403);
    expect(denied.json().error.message).toMatch(/declined/);
    const b = (await postJson("/api/oauth/github-copilot/start", u.key, {})).json();
    up().device.expire(b.userCode);
    await skipWait(u.id);
    const expired = await postJson("/api/oauth/github-copilot/finish", u.key, { loginId: b.loginId });
    expect(expired.status).toBe(410);
    expect(await listAccounts(u.key)).toEqual([]);
  });

  it("the same GitHub account logging in again refreshes the existing account", async () => {
    const u = await createUser(`login${++n}`);
    up().device.interval = 1;
    up().device.enforceInterval = false;
    const ids = [];
    for (let i = 0; i < 2; i++) {
      const s = (await postJson("/api/oauth/github-copilot/start", u.key, {})).json();
      up().device.approve(s.userCode, { id: 7, login: "same" });
      await skipWait(u.id);
      ids.push((await postJson("/api/oauth/github-copilot/finish", u.key, { loginId: s.loginId })).json().account.id);
    }
    expect(ids[0]).toBe(ids[1]);
    expect(await listAccounts(u.key)).toHaveLength(1);
  });
});

it("re-login clears needs_reauth", async () => {
  const u = await createUser(`login${++n}`);
  const s = (await postJson("/api/oauth/anthropic/start", u.key, {})).json();
  const { code, state } = up().anthropicAuth.authorize(s.url, { uuid: "reauth-person", email: "r@example.com" });
  const acc = (await postJson("/api/oauth/anthropic/finish", u.key, { loginId: s.loginId, code: `${code}#${state}` })).json().account;
  await runInDurableObject(stubOf(u.id), (_o, st) => st.storage.sql.exec("UPDATE accounts SET needs_reauth = 1"));
  expect((await listAccounts(u.key))[0]!.status).toBe("needs_reauth");
  const s2 = (await postJson("/api/oauth/anthropic/start", u.key, {})).json();
  const c2 = up().anthropicAuth.authorize(s2.url, { uuid: "reauth-person", email: "r@example.com" });
  const r = await postJson("/api/oauth/anthropic/finish", u.key, { loginId: s2.loginId, code: `${c2.code}#${c2.state}` });
  expect(r.json()).toMatchObject({ created: false, account: { id: acc.id, status: "active" } });
  expect(await listAccounts(u.key)).toHaveLength(1);
});

describe("labels that come from a provider", () => {
  it("a login's email with terminal control characters becomes a label without them", async () => {
    const u = await createUser(`login${++n}`);
    const s = (await postJson("/api/oauth/anthropic/start", u.key, {})).json();
    const { code, state } = up().anthropicAuth.authorize(s.url, { uuid: crypto.randomUUID(), email: "\u001b]52;c;cHduZWQ=\u0007\u001b[31mevil@example.com" });
    const fin = await postJson("/api/oauth/anthropic/finish", u.key, { loginId: s.loginId, code: `${code}#${state}` });
    expect(fin.status).toBe(201);
    expect(fin.json().account.label).toBe("]52;c;cHduZWQ=[31mevil@example.com");
  });
});
