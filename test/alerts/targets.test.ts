/**
 * Alert targets through the Worker: PUT/GET/DELETE and the test send of /admin/alerts (the team's)
 * and /api/alerts (a member's own), who may use which, bad input refused naming its field and
 * changing nothing, and the signing secret shown once.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ADMIN, call, createUser, postJson, useGateway } from "../helpers/gateway";
import { secrets } from "../helpers/secrets";
import { WebhookReceiver, signatureHolds } from "../helpers/webhook";

const { up } = useGateway();
let n = 0;

const put = (path: string, key: string, body: unknown) => postJson(path, key, body, "PUT");

afterEach(async () => {
  await call("/admin/alerts", { method: "DELETE", key: ADMIN });
});

for (const scope of ["admin", "api"] as const) {
  const path = `/${scope}/alerts`;
  const who = async () => (scope === "admin" ? ADMIN : (await createUser(`tgt${++n}`)).key);

  describe(`${path}`, () => {
    it("PUT answers the URL, the events and the signing secret once; GET shows them without it; DELETE removes", async () => {
      const key = await who();
      const rx = new WebhookReceiver(up());
      const r = await put(path, key, { url: rx.url(), events: ["account.needs_reauth", "quota.high"] });
      expect(r.status).toBe(200);
      expect(r.headers.get("cache-control")).toBe("no-store");
      const created = r.json<{ url: string; events: string[]; secret: string }>();
      expect(created).toEqual({ url: rx.url(), events: ["account.needs_reauth", "quota.high"], secret: expect.stringMatching(/^whsec_[\w-]{43}$/) });

      secrets.add(created.secret); // from here on, no answer may show it
      const got = await call(path, { key });
      expect(got.status).toBe(200);
      expect(got.json()).toEqual({ url: rx.url(), events: ["account.needs_reauth", "quota.high"], lastDelivery: null });

      expect((await call(path, { method: "DELETE", key })).status).toBe(204);
      expect((await call(path, { key })).status).toBe(404);
    });

    it("events null (or left out) is every event; PUT again rotates the secret", async () => {
      const key = await who();
      const rx = new WebhookReceiver(up());
      const first = (await put(path, key, { url: rx.url() })).json<{ events: null; secret: string }>();
      expect(first.events).toBeNull();
      const second = (await put(path, key, { url: rx.url(), events: null })).json<{ secret: string }>();
      expect(second.secret).not.toBe(first.secret);
      // The test is signed with the new secret only.
      const t = await postJson(`${path}/test`, key, {});
      expect(t.json()).toMatchObject({ ok: true, status: 204, error: null });
      expect(await signatureHolds(rx.got[0]!, second.secret)).toBe(true);
      expect(await signatureHolds(rx.got[0]!, first.secret)).toBe(false);
    });

    it("the test sends event test at once, signed, answers the delivery, and GET shows it as the last delivery", async () => {
      const key = await who();
      const rx = new WebhookReceiver(up());
      const { secret } = (await put(path, key, { url: rx.url(), events: ["quota.high"] })).json<{ secret: string }>();
      secrets.add(secret);
      const t = await postJson(`${path}/test`, key, {});
      expect(t.status).toBe(200);
      const result = t.json<{ at: number; status: number; ok: boolean; error: string | null }>();
      expect(result).toEqual({ at: expect.any(Number), status: 204, ok: true, error: null });
      expect(rx.got).toHaveLength(1);
      expect(rx.got[0]!.json).toMatchObject({ event: "test", account: null, user: { name: expect.any(String) } });
      expect(await signatureHolds(rx.got[0]!, secret)).toBe(true);
      expect(rx.got[0]!.body).not.toContain(secret);
      expect((await call(path, { key })).json<{ lastDelivery: unknown }>().lastDelivery).toEqual(result);

      rx.fallback = 500;
      const failed = (await postJson(`${path}/test`, key, {})).json();
      expect(failed).toMatchObject({ status: 500, ok: false, error: "hooks.receiver.test answered 500" });
      expect((await call(path, { key })).json<{ lastDelivery: unknown }>().lastDelivery).toEqual(failed);
    });

    it("tests are bounded: the sixth within a minute is a 429 with retry-after, and is not sent", async () => {
      const key = await who();
      const rx = new WebhookReceiver(up());
      await put(path, key, { url: rx.url() });
      for (let i = 0; i < 5; i++) expect((await postJson(`${path}/test`, key, {})).status).toBe(200);
      const sixth = await postJson(`${path}/test`, key, {});
      expect(sixth.status).toBe(429);
      expect(Number(sixth.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(rx.got).toHaveLength(5);
    });

    it("a test without a target is a 404", async () => {
      const key = await who();
      await call(path, { method: "DELETE", key });
      const r = await postJson(`${path}/test`, key, {});
      expect(r.status).toBe(404);
    });

    const bad: [unknown, string][] = [
      [{ url: "http://example.com/hook" }, "url"],
      [{ url: "ftp://example.com/hook" }, "url"],
      [{ url: "http://0x7f.1/hook" }, "url"],
      [{ url: "https://user:pw@example.com/hook" }, "url"],
      [{ url: "https://example.com/hook", events: [] }, "events"],
      [{ url: "https://example.com/hook", events: ["account.exploded"] }, "events"],
      [{ url: "https://example.com/hook", secret: "mine" }, "secret"],
      [{}, "url"],
    ];
    for (const [body, field] of bad) {
      it(`refuses ${JSON.stringify(body)} with a 400 naming ${field}, and changes nothing`, async () => {
        const key = await who();
        const rx = new WebhookReceiver(up());
        await put(path, key, { url: rx.url() });
        const r = await put(path, key, body);
        expect(r.status).toBe(400);
        expect(r.json().error.field).toBe(field);
        expect((await call(path, { key })).json<{ url: string }>().url).toBe(rx.url());
      });
    }

    it("refuses a body that is not JSON with a 400", async () => {
      const key = await who();
      const r = await call(path, { method: "PUT", key, headers: { "content-type": "application/json" }, body: "{url:" });
      expect(r.status).toBe(400);
    });
  });
}

describe("who may set which target", () => {
  it("a member cannot touch the team's target (403), and the admin token has no target of its own (403)", async () => {
    const m = await createUser(`tgt${++n}`);
    const rx = new WebhookReceiver(up());
    for (const [method, p] of [
      ["PUT", "/admin/alerts"],
      ["GET", "/admin/alerts"],
      ["DELETE", "/admin/alerts"],
      ["POST", "/admin/alerts/test"],
    ] as const) {
      const r = await call(p, { method, key: m.key, headers: { "content-type": "application/json" }, body: method === "PUT" ? JSON.stringify({ url: rx.url() }) : method === "POST" ? "{}" : undefined });
      expect(r.status, `${method} ${p}`).toBe(403);
    }
    expect((await call("/admin/alerts", { key: ADMIN })).status).toBe(404); // nothing was set
    expect((await put("/api/alerts", ADMIN, { url: rx.url() })).status).toBe(403);
    expect((await call("/api/alerts", {})).status).toBe(401);
  });

  it("a user with the admin role may set the team's target", async () => {
    const a = await createUser(`tgt${++n}`, "admin");
    const rx = new WebhookReceiver(up());
    expect((await put("/admin/alerts", a.key, { url: rx.url() })).status).toBe(200);
    const t = (await postJson("/admin/alerts/test", a.key, {})).json();
    expect(t).toMatchObject({ ok: true });
    expect(rx.got[0]!.json).toMatchObject({ event: "test", user: { id: a.id } });
  });

  it("a member's target is their own: another member sees none", async () => {
    const a = await createUser(`tgt${++n}`);
    const b = await createUser(`tgt${++n}`);
    const rx = new WebhookReceiver(up());
    await put("/api/alerts", a.key, { url: rx.url() });
    expect((await call("/api/alerts", { key: b.key })).status).toBe(404);
  });
});

describe("webhook URLs at rest", () => {
  it("are sealed: neither KV nor the member's object holds a webhook URL in the clear (a Slack URL is a bearer secret)", async () => {
    const u = await createUser(`rest${++n}`);
    const teamUrl = "https://hooks.slack.com/services/T000/B000/team-url-secret-path";
    const memberUrl = "https://discord.com/api/webhooks/123/member-url-secret-path";
    expect((await put("/admin/alerts", ADMIN, { url: teamUrl })).status).toBe(200);
    expect((await put("/api/alerts", u.key, { url: memberUrl })).status).toBe(200);
    // Read back in full by their owners.
    expect((await call("/admin/alerts", { key: ADMIN })).json<{ url: string }>().url).toBe(teamUrl);
    expect((await call("/api/alerts", { key: u.key })).json<{ url: string }>().url).toBe(memberUrl);
    // Every KV value, and every row of the member's object.
    const { env, runInDurableObject } = await import("cloudflare:test");
    let dump = "";
    let cursor: string | undefined;
    do {
      const page = await env.VAULT.list({ cursor });
      for (const k of page.keys) dump += `${k.name}=${await env.VAULT.get(k.name)}\n`;
      cursor = page.list_complete ? undefined : page.cursor;
    } while (cursor);
    dump += await runInDurableObject(env.USER_POOL.get(env.USER_POOL.idFromName(u.id)), (_o, s) =>
      JSON.stringify(
        s.storage.sql
          .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'")
          .toArray()
          .map((t) => s.storage.sql.exec(`SELECT * FROM ${t.name}`).toArray()),
      ),
    );
    expect(dump).toContain("alerts:team");
    for (const secretPath of ["team-url-secret-path", "member-url-secret-path", "hooks.slack.com", "discord.com"]) expect(dump).not.toContain(secretPath);
  });
});
