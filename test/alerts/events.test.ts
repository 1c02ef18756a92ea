/**
 * Alerts raised by the Durable Object's real transitions and delivered by its alarm: a refresh
 * token the token endpoint refuses (account.needs_reauth), a key a check or an upstream refuses
 * (account.refused), a quota header crossing the member's threshold (quota.high); one alert an hour
 * per event and account; the team's target hears every member, a member's only their own; and no
 * secret in any delivery.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { ADMIN, addAccount, call, createUser, listAccounts, messages, postJson, sleep, useGateway } from "../helpers/gateway";
import { assertNoSecrets, secrets } from "../helpers/secrets";
import { anthropicMessage, json } from "../helpers/upstream";
import { type Delivery, WebhookReceiver, signatureHolds } from "../helpers/webhook";

const { up } = useGateway();
let n = 0;
const stubOf = (userId: string) => env.USER_POOL.get(env.USER_POOL.idFromName(userId));
const put = (path: string, key: string, body: unknown) => postJson(path, key, body, "PUT");

afterEach(async () => {
  await call("/admin/alerts", { method: "DELETE", key: ADMIN });
});

/** Waits for the object's alarm (set to now when an alert is raised) to have delivered `count`. */
async function delivered(rx: WebhookReceiver, count: number, userIds: string[] = []): Promise<Delivery[]> {
  for (let i = 0; i < 60 && rx.got.length < count; i++) {
    for (const id of userIds) await runDurableObjectAlarm(stubOf(id)).catch(() => false);
    await sleep(50);
  }
  expect(rx.got.length, `deliveries to ${rx.hostPath}`).toBe(count);
  return rx.got;
}

/** A member with their own target; the secret is registered so that no answer or delivery may show it. */
async function memberWithTarget(events: string[] | null = null) {
  const name = `alert${++n}`;
  const u = await createUser(name);
  const rx = new WebhookReceiver(up(), `hooks.receiver.test/member-${n}`);
  const r = await put("/api/alerts", u.key, { url: rx.url(), events });
  expect(r.status).toBe(200);
  const secret = secrets.add(r.json<{ secret: string }>().secret);
  return { ...u, name, rx, secret };
}

/** Deliveries carry nothing secret: every registered secret (keys, tokens, signing secrets) and no webhook URL. */
function assertClean(got: Delivery[], ...urls: string[]) {
  for (const d of got) {
    assertNoSecrets(`alert ${d.body}`, d.body);
    for (const u of urls) expect(d.body).not.toContain(u);
  }
}

const refusedKey = () => json({ type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } }, 401);

describe("account.needs_reauth", () => {
  it("a refresh token the token endpoint refuses raises it once an hour per account; another account raises its own", async () => {
    const u = await memberWithTarget();
    up().on("anthropic.fake/v1/messages", () => json({ type: "error", error: { type: "authentication_error", message: "OAuth token has expired" } }, 401));
    const login = async (who: string) => {
      const s = (await postJson("/api/oauth/anthropic/start", u.key, {})).json();
      const { code, state } = up().anthropicAuth.authorize(s.url, { uuid: who, email: `${who}@example.com` });
      const fin = await postJson("/api/oauth/anthropic/finish", u.key, { loginId: s.loginId, code: `${code}#${state}` });
      expect(fin.status).toBeLessThan(300);
      return fin.json().account;
    };
    const deadGrant = () => up().anthropicAuth.forced.push({ status: 400, body: { error: "invalid_grant", error_description: "Refresh token revoked" } });

    const a = await login("ant-a");
    deadGrant();
    await messages(u.key); // 401 -> renewal refused -> needs_reauth
    expect((await listAccounts(u.key))[0]!.status).toBe("needs_reauth");
    const first = await delivered(u.rx, 1, [u.id]);
    expect(first[0]!.json).toMatchObject({ event: "account.needs_reauth", user: { id: u.id }, account: { id: a.id, provider: "anthropic", label: "ant-a@example.com" } });
    expect(await signatureHolds(first[0]!, u.secret)).toBe(true);

    // A new login puts the account back; its grant dies again within the hour: no second alert.
    expect((await login("ant-a")).id).toBe(a.id);
    deadGrant();
    await messages(u.key);
    expect((await listAccounts(u.key))[0]!.status).toBe("needs_reauth");
    await sleep(300);
    await runDurableObjectAlarm(stubOf(u.id));
    expect(u.rx.got).toHaveLength(1);

    // Another account is another subject.
    const b = await login("ant-b");
    deadGrant();
    await messages(u.key);
    const both = await delivered(u.rx, 2, [u.id]);
    expect(both[1]!.json).toMatchObject({ event: "account.needs_reauth", account: { id: b.id } });
    assertClean(both, u.rx.url());
  });
});

describe("account.refused", () => {
  it("a check the provider refuses raises it", async () => {
    const u = await memberWithTarget(["account.refused"]);
    const key = secrets.add(`sk-ant-api03-${crypto.randomUUID()}`);
    const a = await addAccount(u.key, { provider: "anthropic", type: "api", key, label: "team key" });
    up().on("anthropic.fake/v1/messages/count_tokens", refusedKey);
    expect((await postJson(`/api/accounts/${a.id}/check`, u.key, {})).json()).toMatchObject({ verdict: "invalid" });
    const got = await delivered(u.rx, 1, [u.id]);
    expect(got[0]!.json).toMatchObject({ event: "account.refused", account: { id: a.id, label: "team key" } });
    expect((got[0]!.json as { message: string }).message).toMatch(/refused/);
    assertClean(got, u.rx.url());
  });

  it("a member adding, checking and deleting account after account cannot flood the receiver: 20 alerts an hour at most", async () => {
    const u = await memberWithTarget(["account.refused"]);
    up().on("anthropic.fake/v1/messages/count_tokens", refusedKey);
    for (let i = 0; i < 24; i++) {
      const a = await addAccount(u.key, { provider: "anthropic", type: "api", key: secrets.add(`sk-ant-api03-flood${i}-${crypto.randomUUID()}`), label: `flood ${i}` });
      await postJson(`/api/accounts/${a.id}/check`, u.key, {});
      await call(`/api/accounts/${a.id}`, { method: "DELETE", key: u.key });
    }
    await delivered(u.rx, 20, [u.id]);
    await sleep(200);
    await runDurableObjectAlarm(stubOf(u.id));
    expect(u.rx.got).toHaveLength(20);
  });

  it("an upstream refusing a key on a request raises it, once an hour for that key", async () => {
    const u = await memberWithTarget();
    const bad = secrets.add(`sk-ant-api03-${crypto.randomUUID()}`);
    const good = secrets.add(`sk-ant-api03-${crypto.randomUUID()}`);
    const a = await addAccount(u.key, { provider: "anthropic", type: "api", key: bad, label: "bad" });
    await addAccount(u.key, { provider: "anthropic", type: "api", key: good, label: "good" });
    up().on("anthropic.fake/v1/messages", (_r, cred) => (cred === good ? json(anthropicMessage()) : refusedKey()));
    expect((await messages(u.key)).status).toBe(200); // failed over at once
    await listAccounts(u.key); // flushes the outcomes to the object
    const got = await delivered(u.rx, 1, [u.id]);
    expect(got[0]!.json).toMatchObject({ event: "account.refused", account: { id: a.id } });

    // Put back in rotation, refused again within the hour: no second alert.
    await postJson(`/api/accounts/${a.id}`, u.key, { enabled: true }, "PATCH");
    expect((await messages(u.key, undefined, { "x-subpool-session": "another conversation" })).status).toBe(200);
    expect(up().seen.filter((x) => x.headers["x-api-key"] === bad)).toHaveLength(2);
    await listAccounts(u.key);
    await sleep(300);
    await runDurableObjectAlarm(stubOf(u.id));
    expect(u.rx.got).toHaveLength(1);
  });
});

describe("quota.high", () => {
  const used = (x: number) => ({
    "anthropic-ratelimit-unified-status": "allowed",
    "anthropic-ratelimit-unified-5h-utilization": String(x),
    "anthropic-ratelimit-unified-5h-reset": String(Math.floor(Date.now() / 1000) + 3600),
  });

  it("a quota header crossing the member's threshold raises it, once; staying above does not", async () => {
    const u = await memberWithTarget(["quota.high"]);
    expect((await postJson("/api/settings", u.key, { quotaThreshold: 0.8 }, "PATCH")).status).toBe(200);
    const a = await addAccount(u.key, { provider: "anthropic", type: "api", key: secrets.add(`sk-ant-api03-${crypto.randomUUID()}`), label: "main" });
    let level = 0.5;
    up().on("anthropic.fake/v1/messages", () => json(anthropicMessage(), 200, used(level)));
    await messages(u.key);
    await listAccounts(u.key);
    await sleep(200);
    expect(u.rx.got).toHaveLength(0); // below the threshold

    level = 0.85;
    await messages(u.key);
    await listAccounts(u.key);
    const got = await delivered(u.rx, 1, [u.id]);
    expect(got[0]!.json).toMatchObject({ event: "quota.high", account: { id: a.id, label: "main" } });
    expect((got[0]!.json as { message: string }).message).toMatch(/85 %/);

    level = 0.9;
    await messages(u.key);
    await listAccounts(u.key);
    await sleep(300);
    await runDurableObjectAlarm(stubOf(u.id));
    expect(u.rx.got).toHaveLength(1);
  });
});

describe("who hears what", () => {
  it("the team's target gets every member's events; a member's target only their own", async () => {
    const team = new WebhookReceiver(up(), "hooks.slack.com/services/T0/B0/TEAMSECRETPATH");
    const r = await put("/admin/alerts", ADMIN, { url: team.url(), events: ["account.refused"] });
    const teamSecret = secrets.add(r.json<{ secret: string }>().secret);
    const a = await memberWithTarget();
    const b = await memberWithTarget();
    up().on("anthropic.fake/v1/messages/count_tokens", refusedKey);
    for (const m of [a, b]) {
      const acc = await addAccount(m.key, { provider: "anthropic", type: "api", key: secrets.add(`sk-ant-api03-${crypto.randomUUID()}`), label: `key of ${m.id}` });
      await postJson(`/api/accounts/${acc.id}/check`, m.key, {});
    }
    const teamGot = await delivered(team, 2, [a.id, b.id]);
    // Slack's shape, signed with the team's secret, naming each member.
    for (const d of teamGot) {
      expect(Object.keys(d.json as object)).toEqual(["text"]);
      expect(await signatureHolds(d, teamSecret)).toBe(true);
    }
    const texts = teamGot.map((d) => (d.json as { text: string }).text);
    expect(texts.some((t) => t.startsWith(`subpool · ${a.name} · account.refused: `))).toBe(true);
    expect(texts.some((t) => t.startsWith(`subpool · ${b.name} · account.refused: `))).toBe(true);
    const aGot = await delivered(a.rx, 1, [a.id]);
    const bGot = await delivered(b.rx, 1, [b.id]);
    expect(aGot[0]!.json).toMatchObject({ user: { id: a.id } });
    expect(bGot[0]!.json).toMatchObject({ user: { id: b.id } });
    assertClean([...teamGot, ...aGot, ...bGot], team.url(), a.rx.url(), b.rx.url(), "TEAMSECRETPATH");
    // The team target's last delivery is shown to the admin.
    expect((await call("/admin/alerts", { key: ADMIN })).json()).toMatchObject({ lastDelivery: { ok: true, status: 204 } });
  });

  it("a member who subscribed to other events hears nothing of this one", async () => {
    const u = await memberWithTarget(["quota.high"]);
    const acc = await addAccount(u.key, { provider: "anthropic", type: "api", key: secrets.add(`sk-ant-api03-${crypto.randomUUID()}`) });
    up().on("anthropic.fake/v1/messages/count_tokens", refusedKey);
    await postJson(`/api/accounts/${acc.id}/check`, u.key, {});
    await sleep(300);
    await runDurableObjectAlarm(stubOf(u.id));
    expect(u.rx.got).toHaveLength(0);
    expect(await runInDurableObject(stubOf(u.id), (_o, s) => s.storage.sql.exec("SELECT COUNT(*) AS n FROM alert_outbox").one().n)).toBe(0);
  });
});

describe("what the isolates saw", () => {
  it("every account of a provider cooling raises pool.exhausted, naming the provider", async () => {
    const u = await memberWithTarget(["pool.exhausted"]);
    await addAccount(u.key, { provider: "anthropic", type: "api", key: secrets.add(`sk-ant-api03-${crypto.randomUUID()}`) });
    up().on("anthropic.fake/v1/messages", () => json({ type: "error", error: { type: "rate_limit_error", message: "slow down" } }, 429, { "retry-after": "120" }));
    await messages(u.key); // the provider's 429 benches the only account
    const busy = await messages(u.key, undefined, { "x-subpool-session": "another" });
    expect(busy.status).toBe(429);
    await listAccounts(u.key); // the batch carries the event to the object
    const got = await delivered(u.rx, 1, [u.id]);
    expect(got[0]!.json).toMatchObject({ event: "pool.exhausted", account: null, user: { id: u.id } });
    expect((got[0]!.json as { message: string }).message).toMatch(/Every Anthropic account .* was cooling down/);
  });

  it("a member over a team limit raises limit.reached, naming the limit", async () => {
    const u = await memberWithTarget(["limit.reached"]);
    await addAccount(u.key, { provider: "anthropic", type: "api", key: secrets.add(`sk-ant-api03-${crypto.randomUUID()}`) });
    up().on("anthropic.fake/v1/messages", () => json(anthropicMessage()));
    expect((await postJson(`/admin/users/${u.id}`, ADMIN, { limits: { requestsPerMinute: 1 } }, "PATCH")).status).toBe(200);
    expect((await messages(u.key)).status).toBe(200);
    const over = await messages(u.key);
    expect(over.status).toBe(429);
    expect(over.headers.get("x-subpool-limit")).toBe("requestsPerMinute");
    await listAccounts(u.key);
    const got = await delivered(u.rx, 1, [u.id]);
    expect(got[0]!.json).toMatchObject({ event: "limit.reached", account: null });
    expect((got[0]!.json as { message: string }).message).toMatch(/requests per minute/);
  });
});
