/**
 * The fault suite, token-endpoint side: a Claude OAuth account whose access token has expired, an
 * API key behind it. Whatever the token endpoint does, the request is served by the API key; the
 * stored refresh token stays the valid one (unless the provider used it and the answer was lost);
 * the account keeps serving later, with a lastError saying what happened.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { addAccount, createUser, listAccounts, messages, postJson, sleep, useGateway } from "../helpers/gateway";
import { JSON_HEADERS, garbage, hang, resetBeforeHeaders, scripted } from "../helpers/faults";
import { secrets } from "../helpers/secrets";
import { anthropicMessage, json } from "../helpers/upstream";

const { up } = useGateway();
let n = 0;
const TOKEN = "anthropic.fake/v1/oauth/token";

async function expiredOAuthThenKey() {
  const u = await createUser(`tok${++n}`);
  const g = up().anthropicAuth.grant();
  const key = secrets.add(`sk-ant-api03-backup-${crypto.randomUUID()}`);
  const oauth = await addAccount(u.key, { provider: "anthropic", type: "oauth", refresh: g.refresh, access: g.access, expires: Date.now() - 1000, label: "claude" });
  const api = await addAccount(u.key, { provider: "anthropic", type: "api", key, label: "backup" });
  up().on("anthropic.fake/v1/messages", (_r, cred) => (cred === key || up().anthropicAuth.validAccess.has(cred) ? json(anthropicMessage()) : json({}, 401)));
  return { u, g, key, oauth, api };
}

const storedVersion = (userId: string, accountId: string) =>
  runInDurableObject(env.USER_POOL.get(env.USER_POOL.idFromName(userId)), (_o, s) => s.storage.sql.exec<{ v: number }>("SELECT cred_version AS v FROM accounts WHERE id = ?", accountId).one().v);
const storedCooldown = (userId: string, accountId: string) =>
  runInDurableObject(env.USER_POOL.get(env.USER_POOL.idFromName(userId)), (_o, s) => s.storage.sql.exec<{ c: number | null }>("SELECT cooldown_until AS c FROM accounts WHERE id = ?", accountId).one().c);

describe("the token endpoint fails: the API key serves, the refresh token is kept, the account is benched until the next try", () => {
  const table: { name: string; answer: () => Response | Promise<Response>; reason: RegExp }[] = [
    { name: "reset before headers", answer: resetBeforeHeaders, reason: /unreachable/ },
    { name: "no answer (TOKEN_TIMEOUT_MS)", answer: hang, reason: /did not answer within 800 ms/ },
    { name: "200 headers, then the body is cut", answer: () => scripted(['{"access_token":"sk-ant-oat01-'], "reset", { headers: JSON_HEADERS }), reason: /was cut off/ },
    { name: "200 headers, then the body stalls", answer: () => scripted(['{"access_token":'], "stall", { headers: JSON_HEADERS }), reason: /stalled|did not answer/ },
    { name: "200 with garbage", answer: () => garbage({ status: 200 }), reason: /not JSON/ },
    { name: "500", answer: () => json({ error: "server_error" }, 500), reason: /answered 500/ },
    { name: "an HTML error page", answer: () => new Response("<html>oops</html>", { status: 502, headers: { "content-type": "text/html" } }), reason: /answered 502/ },
    { name: "a Cloudflare challenge page", answer: () => new Response("<html>Just a moment...</html>", { status: 403, headers: { "content-type": "text/html", "cf-mitigated": "challenge" } }), reason: /Cloudflare challenge/ },
    { name: "a 401 without an error code", answer: () => new Response("", { status: 401 }), reason: /answered 401/ },
    { name: "a redirect to another host", answer: () => new Response(null, { status: 307, headers: { location: "https://evil.fake/steal" } }), reason: /redirect \(307\), which the gateway does not follow/ },
    { name: "a token with a newline in it", answer: () => json({ access_token: "sk-ant-oat01-bad\nx-evil: 1", refresh_token: "r", expires_in: 3600 }), reason: /without access_token/ },
  ];
  for (const c of table) {
    it(`${c.name}`, async () => {
      const { u, g, oauth, api } = await expiredOAuthThenKey();
      up().override(TOKEN, c.answer);
      const sent = Date.now();
      const r = await messages(u.key);
      expect(r.status, r.body).toBe(200);
      expect(r.headers.get("x-subpool-account")).toBe(api.id);
      expect(up().anthropicAuth.isLive(g.refresh)).toBe(true); // the stored one is still the valid one
      expect(await storedVersion(u.id, oauth.id)).toBe(1); // nothing was written over it
      const [a] = await listAccounts(u.key);
      expect(a!.id).toBe(oauth.id);
      expect(a!.status).not.toBe("needs_reauth");
      expect(a!.lastError).toMatch(c.reason);
      // Benched until the next try (REFRESH_RETRY_MS), so it shows cooling meanwhile, not active.
      expect(await storedCooldown(u.id, oauth.id)).toBeGreaterThan(sent);

      // Right after, the endpoint is not asked again (it would make every request wait): the key serves.
      const calls = up().calls(TOKEN).length;
      expect((await messages(u.key, undefined, { "x-subpool-session": "soon" })).headers.get("x-subpool-account")).toBe(api.id);
      expect(up().calls(TOKEN)).toHaveLength(calls);

      // The endpoint recovers: after REFRESH_RETRY_MS the same account renews with the token it
      // kept, and serves (a new conversation: the first one stays on the key that served it).
      up().override(TOKEN, () => up().anthropicAuth.exchange(g.refresh));
      await sleep(350);
      const again = await messages(u.key, undefined, { "x-subpool-session": "next" });
      expect(again.headers.get("x-subpool-account")).toBe(oauth.id);
      expect(up().anthropicAuth.isLive(g.refresh)).toBe(false);
    });
  }

  it("the provider used the refresh token and its answer was lost: the key serves now; the next renewal is refused and the account asks for a new login", async () => {
    const { u, g, oauth, api } = await expiredOAuthThenKey();
    up().override(TOKEN, async () => {
      await up().anthropicAuth.exchange(g.refresh); // the provider rotates the grant...
      return scripted(['{"access_token":"sk-ant-oat01-lost'], "reset", { headers: JSON_HEADERS }); // ...and the answer never arrives whole
    });
    const r = await messages(u.key);
    expect(r.headers.get("x-subpool-account")).toBe(api.id);
    expect(up().anthropicAuth.isLive(g.refresh)).toBe(false);
    expect((await listAccounts(u.key))[0]).toMatchObject({ status: expect.not.stringMatching(/needs_reauth/), lastError: expect.stringMatching(/cut off/) });

    // Nothing can recover a grant whose successor was lost: the next try hears "already used".
    await sleep(350);
    up().override(TOKEN, async (req) => up().anthropicAuth.exchange((JSON.parse(await req.text()) as { refresh_token: string }).refresh_token));
    const next = await messages(u.key, undefined, { "x-subpool-session": "next" });
    expect(next.headers.get("x-subpool-account")).toBe(api.id);
    const [a] = await listAccounts(u.key);
    expect(a).toMatchObject({ id: oauth.id, status: "needs_reauth" });
    expect(a!.lastError).toMatch(/refresh refused: token endpoint answered 400 invalid_grant/);
  });
});

describe("short-lived access tokens", () => {
  it("a token that lives 30 s is renewed once and then used, not renewed on every request", async () => {
    const u = await createUser(`tok${++n}`);
    up().anthropicAuth.expiresInOverride = 30;
    const g = up().anthropicAuth.grant();
    await addAccount(u.key, { provider: "anthropic", type: "oauth", refresh: g.refresh, access: g.access, expires: Date.now() - 1 });
    up().on("anthropic.fake/v1/messages", (_r, cred) => (up().anthropicAuth.validAccess.has(cred) ? json(anthropicMessage()) : json({}, 401)));
    for (let i = 0; i < 6; i++) expect((await messages(u.key)).status).toBe(200);
    expect(up().anthropicAuth.calls).toBe(1);
  });
});

describe("the wait after a failed renewal is shown, and a person can end it", () => {
  it("shows cooling until the next try; a check waits it out without a token call; enabling tries at once", async () => {
    const { u, g, oauth, api } = await expiredOAuthThenKey();
    up().override(TOKEN, () => json({ error: "server_error" }, 500));
    // Three failures in a row: the wait doubles (REFRESH_RETRY_MS 300 ms, then 600, then 1.2 s).
    for (const [i, pause] of [350, 650, 0].entries()) {
      expect((await messages(u.key, undefined, { "x-subpool-session": `s${i}` })).headers.get("x-subpool-account")).toBe(api.id);
      await sleep(pause);
    }
    const [a] = await listAccounts(u.key);
    expect(a).toMatchObject({ id: oauth.id, status: "cooling", lastError: "refresh failed: token endpoint answered 500 server_error" });
    expect(a!.cooldownUntil! - Date.now()).toBeGreaterThan(500);
    expect(a!.cooldownUntil! - Date.now()).toBeLessThanOrEqual(1200);

    const calls = up().calls(TOKEN).length;
    const checked = await postJson(`/api/accounts/${oauth.id}/check`, u.key, {});
    expect(checked.json<{ verdict: string; message: string }>()).toMatchObject({ verdict: "unknown", message: expect.stringMatching(/next try is in \d+ s, or at once when you enable the account/) });
    expect(up().calls(TOKEN)).toHaveLength(calls);

    // Disabling and enabling again ends the wait: the next request renews at once and is served.
    await postJson(`/api/accounts/${oauth.id}`, u.key, { enabled: false }, "PATCH");
    const on = await postJson(`/api/accounts/${oauth.id}`, u.key, { enabled: true }, "PATCH");
    expect(on.json()).toMatchObject({ status: "active", cooldownUntil: null });
    up().override(TOKEN, () => up().anthropicAuth.exchange(g.refresh));
    const served = await messages(u.key, undefined, { "x-subpool-session": "after" });
    expect(served.headers.get("x-subpool-account")).toBe(oauth.id);
  });

  it("a passing check ends the wait and the bench of a refused token", async () => {
    const u = await createUser(`tok${++n}`);
    const g = up().anthropicAuth.grant();
    const oauth = await addAccount(u.key, { provider: "anthropic", type: "oauth", refresh: g.refresh, access: g.access, expires: Date.now() + 3_600_000 });
    let refusals = 1;
    up().on("anthropic.fake/v1/messages", () => (refusals-- > 0 ? json({ type: "error", error: { type: "authentication_error", message: "invalid bearer token" } }, 401) : json(anthropicMessage())));
    up().on("anthropic.fake/api/oauth/usage", () => json({ five_hour: { utilization: 10, resets_at: null } }));
    up().override(TOKEN, () => json({ error: "server_error" }, 500));
    // 401, the forced renewal fails: benched (AUTH_COOLDOWN_S) and waiting for the next renewal.
    expect((await messages(u.key)).status).toBe(429);
    expect((await listAccounts(u.key))[0]).toMatchObject({ status: "cooling", lastStatus: 401 });
    // The provider takes the token after all: the check says so, and the account is back.
    const checked = await postJson(`/api/accounts/${oauth.id}/check`, u.key, {});
    expect(checked.json<{ verdict: string; account: { status: string; cooldownUntil: number | null } }>()).toMatchObject({ verdict: "ok", account: { status: "active", cooldownUntil: null } });
    expect((await messages(u.key)).status).toBe(200);
  });
});
