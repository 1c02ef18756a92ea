/**
 * Checking an account at no token cost: what each provider is asked, what is recorded, and that
 * adding an account checks it (a refused key is not kept; one that could not be checked is).
 */
import { describe, expect, it } from "vitest";
import { addAccount, call, createUser, listAccounts, messages, postJson, useGateway } from "./helpers/gateway";
import { secrets } from "./helpers/secrets";
import { anthropicMessage, chatgptJwt, json } from "./helpers/upstream";

const { up } = useGateway();
let n = 0;
const check = (key: string, id: string) => postJson(`/api/accounts/${id}/check`, key, {});
type Checked = { verdict: string; status: number; message: string; account: { id: string; lastError: string | null; quota: unknown } };

describe("POST /api/accounts/:id/check", () => {
  it("an Anthropic API key: count_tokens, nothing spent; the result is recorded", async () => {
    const u = await createUser(`chk${++n}`);
    const key = secrets.add(`sk-ant-api03-${crypto.randomUUID()}`);
    const a = await addAccount(u.key, { provider: "anthropic", type: "api", key });
    up().on("anthropic.fake/v1/messages/count_tokens", (req, cred) => (cred === key ? json({ input_tokens: 3 }) : json({ type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } }, 401)));
    const r = await check(u.key, a.id);
    expect(r.status).toBe(200);
    expect(r.json<Checked>()).toMatchObject({ verdict: "ok", status: 200, account: { id: a.id, lastError: null } });
    expect(up().calls("anthropic.fake/v1/messages")).toHaveLength(1); // only count_tokens
  });

  it("a Claude subscription: the usage endpoint, which also fills in its quota", async () => {
    const u = await createUser(`chk${++n}`);
    const g = up().anthropicAuth.grant();
    const a = await addAccount(u.key, { provider: "anthropic", type: "oauth", refresh: g.refresh, access: g.access, expires: Date.now() + 3_600_000 });
    up().on("anthropic.fake/api/oauth/usage", (_r, cred) => (up().anthropicAuth.validAccess.has(cred) ? json({ five_hour: { utilization: 40, resets_at: null }, seven_day: { utilization: 10, resets_at: null } }) : json({}, 401)));
    const r = (await check(u.key, a.id)).json<Checked>();
    expect(r.verdict).toBe("ok");
    expect(r.account.quota).toMatchObject({ windows: { "5h": { utilization: 0.4 }, "7d": { utilization: 0.1 } } });
    expect(up().anthropicAuth.calls).toBe(0); // the token was not due: no refresh
  });

  it("an OpenAI API key: GET /v1/models; a refused key is reported and recorded", async () => {
    const u = await createUser(`chk${++n}`);
    const a = await addAccount(u.key, { provider: "openai", type: "api", key: secrets.add(`sk-proj-${crypto.randomUUID()}`) });
    up().on("openai.fake/v1/models", () => json({ error: { message: "Incorrect API key provided", code: "invalid_api_key" } }, 401));
    const r = (await check(u.key, a.id)).json<Checked>();
    expect(r).toMatchObject({ verdict: "invalid", status: 401 });
    expect((await listAccounts(u.key))[0]!.lastError).toMatch(/^check: OpenAI refused the key \(401\)/);
  });

  it("a Copilot account: the free token exchange; a ChatGPT account: a refresh only when due", async () => {
    const u = await createUser(`chk${++n}`);
    const gh = up().githubToken();
    const cp = await addAccount(u.key, { provider: "github-copilot", type: "oauth", refresh: gh });
    expect((await check(u.key, cp.id)).json<Checked>().verdict).toBe("ok");
    expect(up().copilotExchangeCalls).toBe(1);

    const g = up().openaiAuth.grant();
    const fresh = await addAccount(u.key, { provider: "openai", type: "oauth", refresh: g.refresh, access: chatgptJwt("acct-1", "x"), expires: Date.now() + 3_600_000 });
    expect((await check(u.key, fresh.id)).json<Checked>().verdict).toBe("ok");
    expect(up().openaiAuth.calls).toBe(0);
    const g2 = up().openaiAuth.grant();
    const due = await addAccount(u.key, { provider: "openai", type: "oauth", refresh: g2.refresh, access: chatgptJwt("acct-2", "y", 1), expires: Date.now() - 1 });
    expect((await check(u.key, due.id)).json<Checked>().verdict).toBe("ok");
    expect(up().openaiAuth.calls).toBe(1);
  });

  it("another user's account is a 404", async () => {
    const u = await createUser(`chk${++n}`);
    const other = await createUser(`chk${++n}`);
    const a = await addAccount(other.key, { provider: "anthropic", type: "api", key: secrets.add(`sk-ant-api03-${crypto.randomUUID()}`) });
    expect((await check(u.key, a.id)).status).toBe(404);
  });
});

describe("adding an account checks it", () => {
  it("a placeholder key the provider refuses is not stored: 400 naming the key", async () => {
    const u = await createUser(`chk${++n}`);
    up().on("anthropic.fake/v1/messages/count_tokens", () => json({ type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } }, 401));
    const r = await postJson("/api/accounts", u.key, { provider: "anthropic", type: "api", key: "sk-ant-..." });
    expect(r.status).toBe(400);
    expect(r.json().error).toMatchObject({ field: "key" });
    expect(r.json().error.message).toMatch(/refused this credential.*nothing was stored/);
    expect(await listAccounts(u.key)).toEqual([]);
  });

  it("a key that cannot be checked now is kept, with the reason", async () => {
    const u = await createUser(`chk${++n}`);
    up().on("anthropic.fake/v1/messages/count_tokens", () => json({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } }, 529));
    const r = await postJson("/api/accounts", u.key, { provider: "anthropic", type: "api", key: secrets.add(`sk-ant-api03-${crypto.randomUUID()}`) });
    expect(r.status).toBe(201);
    expect(r.json<{ check: { verdict: string; message: string } }>().check).toMatchObject({ verdict: "unknown", message: "count_tokens answered 529" });
    expect((await listAccounts(u.key))[0]!.lastError).toBe("check: count_tokens answered 529");
  });

  it("a good key is stored with its check", async () => {
    const u = await createUser(`chk${++n}`);
    up().on("anthropic.fake/v1/messages/count_tokens", () => json({ input_tokens: 1 }));
    const r = await postJson("/api/accounts", u.key, { provider: "anthropic", type: "api", key: secrets.add(`sk-ant-api03-${crypto.randomUUID()}`) });
    expect(r.status).toBe(201);
    expect(r.json<{ check: { verdict: string }; status: string }>()).toMatchObject({ status: "active", check: { verdict: "ok" } });
    expect((await call("/api/accounts", { key: u.key })).json().accounts).toHaveLength(1);
  });
});

describe("a refused check takes the account out of rotation", () => {
  it("a key refused on a check needs a new key: requests skip it, until a check passes", async () => {
    const u = await createUser(`chk${++n}`);
    const bad = secrets.add(`sk-ant-api03-${crypto.randomUUID()}`);
    const good = secrets.add(`sk-ant-api03-${crypto.randomUUID()}`);
    const refused = await addAccount(u.key, { provider: "anthropic", type: "api", key: bad, label: "first" });
    await addAccount(u.key, { provider: "anthropic", type: "api", key: good, label: "second" });
    let accepted = false;
    const ok = (cred: string) => cred === good || (accepted && cred === bad);
    up().on("anthropic.fake/v1/messages/count_tokens", (_r, cred) => (ok(cred) ? json({ input_tokens: 1 }) : json({ type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } }, 401)));
    up().on("anthropic.fake/v1/messages", (_r, cred) => (ok(cred) ? json(anthropicMessage()) : json({ type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } }, 401)));

    const r = (await check(u.key, refused.id)).json<Checked & { account: { status: string } }>();
    expect(r).toMatchObject({ verdict: "invalid", status: 401, account: { status: "needs_reauth", lastError: "check: Anthropic refused the key (401)" } });
    const served = await messages(u.key);
    expect(served.status).toBe(200);
    expect(up().seen.filter((s) => s.url.endsWith("/v1/messages") && s.headers["x-api-key"] === bad)).toHaveLength(0); // not even tried
    expect((await listAccounts(u.key)).map((a) => [a.label, a.status])).toEqual([
      ["first", "needs_reauth"],
      ["second", "active"],
    ]);

    accepted = true; // the provider takes the key after all (a billing fix, a flaky refusal)
    const again = (await check(u.key, refused.id)).json<Checked & { account: { status: string } }>();
    expect(again).toMatchObject({ verdict: "ok", account: { status: "active", lastError: null } });
    expect((await messages(u.key)).headers.get("x-subpool-account")).toBe(refused.id);
  });

  it("a Claude login whose token is refused is renewed once first; refused again, it needs a new login", async () => {
    const u = await createUser(`chk${++n}`);
    const g = up().anthropicAuth.grant();
    const a = await addAccount(u.key, { provider: "anthropic", type: "oauth", refresh: g.refresh, access: g.access, expires: Date.now() + 3_600_000 });
    up().anthropicAuth.revokeAccess(g.access); // refused, but the grant is alive
    let usageRefuses = false;
    up().on("anthropic.fake/api/oauth/usage", (_r, cred) => (!usageRefuses && up().anthropicAuth.validAccess.has(cred) ? json({ five_hour: { utilization: 5, resets_at: null } }) : json({}, 401)));
    expect((await check(u.key, a.id)).json<Checked>()).toMatchObject({ verdict: "ok", account: { lastError: null } });
    expect(up().anthropicAuth.calls).toBe(1);

    usageRefuses = true;
    const r = (await check(u.key, a.id)).json<Checked & { account: { status: string } }>();
    expect(r).toMatchObject({ verdict: "invalid", account: { status: "needs_reauth" } });
    expect(up().anthropicAuth.calls).toBe(2);
  });
});

describe("checks are bounded", () => {
  it("a fourth check of one account within a minute is a 429 with Retry-After, and the provider is asked three times in all", async () => {
    const u = await createUser(`chk${++n}`);
    const a = await addAccount(u.key, { provider: "anthropic", type: "api", key: secrets.add(`sk-ant-api03-${crypto.randomUUID()}`) });
    const b = await addAccount(u.key, { provider: "anthropic", type: "api", key: secrets.add(`sk-ant-api03-${crypto.randomUUID()}`) });
    up().on("anthropic.fake/v1/messages/count_tokens", () => json({ input_tokens: 1 }));
    const answers = await Promise.all(Array.from({ length: 20 }, () => check(u.key, a.id)));
    expect(answers.filter((r) => r.status === 200)).toHaveLength(3);
    const limited = answers.filter((r) => r.status === 429);
    expect(limited).toHaveLength(17);
    expect(Number(limited[0]!.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(Number(limited[0]!.headers.get("retry-after"))).toBeLessThanOrEqual(60);
    expect(limited[0]!.json().error.message).toMatch(/checked 3 times in the last minute.*check it again in \d+ s/);
    expect(up().calls("anthropic.fake/v1/messages/count_tokens")).toHaveLength(3);
    // Another account has its own share.
    expect((await check(u.key, b.id)).status).toBe(200);
  });

  it("adding accounts checks at most ADD_CHECKS_PER_WINDOW of them a minute: a loop of new keys cannot make the gateway call the provider once per add", async () => {
    const u = await createUser(`chk${++n}`);
    up().on("anthropic.fake/v1/messages/count_tokens", () => json({ type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } }, 401));
    const answers = [];
    for (let i = 0; i < 25; i++) answers.push(await postJson("/api/accounts", u.key, { provider: "anthropic", type: "api", key: secrets.add(`sk-ant-api03-junk-${i}-${crypto.randomUUID()}`) }));
    expect(up().calls("anthropic.fake/v1/messages/count_tokens")).toHaveLength(20);
    expect(answers.slice(0, 20).every((r) => r.status === 400)).toBe(true); // refused by the provider: nothing stored
    // Past the share: kept unchecked, and the answer says so.
    for (const r of answers.slice(20)) {
      expect(r.status).toBe(201);
      expect(r.json<{ check: unknown }>().check).toMatchObject({ verdict: "unknown", message: expect.stringMatching(/not checked: 20 new accounts were checked in the last minute/) });
    }
  });
});
