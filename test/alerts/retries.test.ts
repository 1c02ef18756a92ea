/**
 * A receiver that is down (hanging, answering 500, refusing connections) is tried three times by
 * the member's alarm, 30 s and then 5 min apart, and given up, the last failure kept as the
 * target's last delivery; meanwhile the member's requests answer at once. The schedule is read
 * from the outbox's next_at and moved forward by the test instead of waiting for it.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { addAccount, call, createUser, messages, postJson, sleep, useGateway } from "../helpers/gateway";
import { secrets } from "../helpers/secrets";
import { anthropicMessage, json } from "../helpers/upstream";
import { WebhookReceiver } from "../helpers/webhook";

const { up } = useGateway();
let n = 0;
const stubOf = (userId: string) => env.USER_POOL.get(env.USER_POOL.idFromName(userId));

type Row = { tries: number; next_at: number };
const outbox = (userId: string) => runInDurableObject(stubOf(userId), (_o, s) => s.storage.sql.exec<Row>("SELECT tries, next_at FROM alert_outbox").toArray());
/** Makes the waiting retry due now (the test's clock), then runs the alarm as its time would. */
async function retryNow(userId: string) {
  await runInDurableObject(stubOf(userId), (_o, s) => s.storage.sql.exec("UPDATE alert_outbox SET next_at = 0"));
  await runDurableObjectAlarm(stubOf(userId));
}

async function until<T>(what: string, f: () => Promise<T>, ok: (v: T) => boolean, ms = 8000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v) || Date.now() > end) {
      expect(ok(v), what).toBe(true);
      return v;
    }
    await sleep(50);
  }
}

describe("a dead receiver", () => {
  it("is tried 3 times by the alarm with backoff (30 s, then 5 min) and given up, while proxied requests answer at once", async () => {
    const u = await createUser(`retry${++n}`);
    const rx = new WebhookReceiver(up());
    rx.script.push("hang", 500, "refuse");
    expect((await postJson("/api/alerts", u.key, { url: rx.url() }, "PUT")).status).toBe(200);
    const good = secrets.add(`sk-ant-api03-${crypto.randomUUID()}`);
    await addAccount(u.key, { provider: "anthropic", type: "api", key: good, label: "good" });
    const bad = await addAccount(u.key, { provider: "anthropic", type: "api", key: secrets.add(`sk-ant-api03-${crypto.randomUUID()}`), label: "bad" });
    up().on("anthropic.fake/v1/messages/count_tokens", () => json({ type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } }, 401));
    up().on("anthropic.fake/v1/messages", (_r, cred) => (cred === good ? json(anthropicMessage()) : json({}, 401)));

    // The check that raises account.refused answers without waiting for any delivery.
    const t0 = Date.now();
    expect((await postJson(`/api/accounts/${bad.id}/check`, u.key, {})).json()).toMatchObject({ verdict: "invalid" });
    expect(Date.now() - t0).toBeLessThan(1000);

    // Try 1: the receiver hangs. While it does, the member's requests answer at once.
    await until("the first try reached the receiver", async () => rx.got.length, (k) => k === 1);
    for (let i = 0; i < 5; i++) {
      const t = Date.now();
      const r = await messages(u.key);
      expect(r.status).toBe(200);
      expect(Date.now() - t).toBeLessThan(500);
    }
    const [afterFirst] = await until("the first try timed out", () => outbox(u.id), (rows) => rows[0]?.tries === 1, 9000);
    expect(afterFirst!.next_at - Date.now()).toBeGreaterThan(25_000);
    expect(afterFirst!.next_at - Date.now()).toBeLessThanOrEqual(30_000);
    const shown = (await call("/api/alerts", { key: u.key })).json<{ lastDelivery: { status: number; ok: boolean; error: string } }>().lastDelivery;
    expect(shown).toMatchObject({ status: 0, ok: false, error: "hooks.receiver.test did not answer within 5 s" });

    // Try 2, when its time comes: a 500; the next wait is 5 minutes.
    await retryNow(u.id);
    expect(rx.got).toHaveLength(2);
    const [afterSecond] = await outbox(u.id);
    expect(afterSecond!.tries).toBe(2);
    expect(afterSecond!.next_at - Date.now()).toBeGreaterThan(295_000);
    expect(afterSecond!.next_at - Date.now()).toBeLessThanOrEqual(300_000);

    // Try 3: the connection is refused; given up, the failure kept as the last delivery.
    await retryNow(u.id);
    expect(rx.got).toHaveLength(3);
    expect(await outbox(u.id)).toEqual([]);
    expect((await call("/api/alerts", { key: u.key })).json<{ lastDelivery: unknown }>().lastDelivery).toMatchObject({
      status: 0,
      ok: false,
      error: "could not connect to hooks.receiver.test; given up after 3 tries",
    });
    // Nothing more is sent: the alarm that is left is the quota probes' or none.
    await runDurableObjectAlarm(stubOf(u.id));
    expect(rx.got).toHaveLength(3);
    // Each try carried the same alert.
    expect(new Set(rx.got.map((d) => d.body)).size).toBe(1);
  }, 20_000);

  it("a receiver that comes back on the second try gets the alert once, and the last delivery says so", async () => {
    const u = await createUser(`retry${++n}`);
    const rx = new WebhookReceiver(up());
    rx.script.push(503);
    await postJson("/api/alerts", u.key, { url: rx.url() }, "PUT");
    const bad = await addAccount(u.key, { provider: "anthropic", type: "api", key: secrets.add(`sk-ant-api03-${crypto.randomUUID()}`) });
    up().on("anthropic.fake/v1/messages/count_tokens", () => json({}, 401));
    await postJson(`/api/accounts/${bad.id}/check`, u.key, {});
    await until("the first try failed", () => outbox(u.id), (rows) => rows[0]?.tries === 1);
    await retryNow(u.id);
    expect(rx.got.map((d) => d.body)).toHaveLength(2);
    expect(await outbox(u.id)).toEqual([]);
    expect((await call("/api/alerts", { key: u.key })).json<{ lastDelivery: unknown }>().lastDelivery).toMatchObject({ status: 204, ok: true, error: null });
  });
});
