import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ADMIN, addAccount, call, createUser, postJson, useGateway } from "./helpers/gateway";
import { secrets } from "./helpers/secrets";

useGateway();

describe("users and gateway keys", () => {
  it("creates a user, shows the key once, and stores only its keyed hash", async () => {
    const r = await postJson("/admin/users", ADMIN, { name: "alice", role: "member" });
    expect(r.status).toBe(201);
    const u = r.json();
    secrets.add(u.key);
    expect(u).toMatchObject({ name: "alice", role: "member" });
    expect(u.key).toMatch(/^sp_[\w-]{43}$/);
    expect(r.headers.get("cache-control")).toBe("no-store");

    const list = await call("/admin/users", { key: ADMIN });
    expect(list.json().users).toEqual([expect.objectContaining({ id: u.id, name: "alice", role: "member" })]);
    expect(list.body).not.toContain(u.key);

    // Nowhere in KV is the key in clear.
    const keys = await env.VAULT.list();
    for (const k of keys.keys) {
      expect(k.name).not.toContain(u.key);
      expect((await env.VAULT.get(k.name)) ?? "").not.toContain(u.key);
    }
    expect(keys.keys.some((k) => k.name.startsWith("key:"))).toBe(true);
    // The key works.
    expect((await call("/api/accounts", { key: u.key })).status).toBe(200);
  });

  it("accepts the key as x-api-key too, and refuses a wrong or missing key with 401", async () => {
    const u = await createUser("bob");
    expect((await call("/api/accounts", { headers: { "x-api-key": u.key } })).status).toBe(200);
    const wrong = await call("/api/accounts", { key: u.key.slice(0, -2) + "xx" });
    expect(wrong.status).toBe(401);
    expect(wrong.json().error.type).toBe("authentication_error");
    const none = await call("/api/accounts");
    expect(none.status).toBe(401);
    expect(none.json().error.message).toMatch(/Authorization: Bearer/);
  });

  it("refuses duplicate names with 409 and bad input with 400 naming the field, creating nothing", async () => {
    await createUser("carol");
    expect((await postJson("/admin/users", ADMIN, { name: "carol" })).status).toBe(409);
    const cases: [unknown, string][] = [
      [{ name: "x y" }, "name"],
      [{ name: 5 }, "name"],
      [{ name: "dave", role: "owner" }, "role"],
      [{ name: "dave", rol: "admin" }, "rol"],
    ];
    for (const [body, field] of cases) {
      const r = await postJson("/admin/users", ADMIN, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json().error.field).toBe(field);
      expect(r.json().error.message).toContain(field);
    }
    const bad = await call("/admin/users", { method: "POST", key: ADMIN, body: "{not json" });
    expect(bad.status).toBe(400);
    expect(bad.json().error.message).toMatch(/not valid JSON/);
    const names = (await call("/admin/users", { key: ADMIN })).json().users.map((u: { name: string }) => u.name);
    expect(names).toContain("carol");
    expect(names).not.toContain("dave");
  });

  it("lets only admins manage users", async () => {
    const member = await createUser("erin");
    const r = await postJson("/admin/users", member.key, { name: "mallory" });
    expect(r.status).toBe(403);
    expect((await call("/admin/users", { key: member.key })).status).toBe(403);
    const adminUser = await createUser("frank", "admin");
    expect((await postJson("/admin/users", adminUser.key, { name: "grace" })).status).toBe(201);
  });

  it("rotating a key kills the old one at once and the new one works", async () => {
    const u = await createUser("heidi");
    expect((await call("/api/accounts", { key: u.key })).status).toBe(200);
    const r = await call(`/admin/users/${u.id}/key`, { method: "POST", key: ADMIN });
    expect(r.status).toBe(200);
    const fresh = secrets.add(r.json().key as string);
    expect(fresh).not.toBe(u.key);
    expect((await call("/api/accounts", { key: u.key })).status).toBe(401);
    expect((await call("/api/accounts", { key: fresh })).status).toBe(200);
  });

  it("a rotated key is refused even where KV still serves its old index entry", async () => {
    const u = await createUser("ivan");
    const indexBefore = (await env.VAULT.list({ prefix: "key:" })).keys.map((k) => k.name);
    const entries = await Promise.all(indexBefore.map(async (k) => [k, await env.VAULT.get(k)] as const));
    await call(`/admin/users/${u.id}/key`, { method: "POST", key: ADMIN });
    // Simulate a stale edge: the old index entry is back.
    for (const [k, v] of entries) if (v?.includes(u.id)) await env.VAULT.put(k, v);
    expect((await call("/api/accounts", { key: u.key })).status).toBe(401);
  });

  it("deleting a user crypto-shreds their data: data key, credentials, key index and DO storage go", async () => {
    const u = await createUser("judy");
    await addAccount(u.key, { provider: "anthropic", type: "api", key: secrets.add("sk-ant-api03-judy-secret-key") });
    expect((await env.VAULT.list({ prefix: `cred:${u.id}:` })).keys.length).toBe(1);
    const r = await call(`/admin/users/${u.id}`, { method: "DELETE", key: ADMIN });
    expect(r.status).toBe(204);
    expect(await env.VAULT.get(`dek:${u.id}`)).toBeNull();
    expect((await env.VAULT.list({ prefix: `cred:${u.id}:` })).keys).toEqual([]);
    const index = await Promise.all((await env.VAULT.list({ prefix: "key:" })).keys.map((k) => env.VAULT.get(k.name)));
    expect(index.filter((v) => v?.includes(u.id))).toEqual([]);
    expect(await env.VAULT.get(`user:${u.id}`)).toBeNull();
    const stub = env.USER_POOL.get(env.USER_POOL.idFromName(u.id));
    const left = await runInDurableObject(stub, (_o, state) => state.storage.sql.exec("SELECT COUNT(*) AS n FROM accounts").one().n);
    expect(left).toBe(0);
    expect((await call("/api/accounts", { key: u.key })).status).toBe(401);
    expect((await call(`/admin/users/${u.id}`, { method: "DELETE", key: ADMIN })).status).toBe(404);
  });

  it("the bootstrap admin token owns no accounts", async () => {
    const r = await call("/api/accounts", { key: ADMIN });
    expect(r.status).toBe(403);
    expect(r.json().error.message).toMatch(/create a user/);
  });

  it("answers /healthz without a key", async () => {
    expect((await call("/healthz")).json()).toEqual({ ok: true });
  });
});

describe("gateway keys in isolate memory", () => {
  it("the map of verified keys holds SHA-256 digests, never a key itself", async () => {
    const { verifiedKeyIds } = await import("../src/auth/key-cache");
    const u = await createUser(`mem-${crypto.randomUUID().slice(0, 8)}`);
    expect((await call("/api/accounts", { key: u.key })).status).toBe(200);
    expect((await call("/api/accounts", { key: u.key })).status).toBe(200); // the fast path
    const ids = verifiedKeyIds();
    expect(ids.length).toBeGreaterThan(0);
    for (const id of ids) {
      expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(id.startsWith("sp_")).toBe(false);
    }
    expect(ids).not.toContain(u.key);
  });
});

describe("gateway keys against a tampered or guessed index", () => {
  it("an index entry (KV) pointed at another user does not open that user's pool: the user's object must know the key", async () => {
    const alice = await createUser(`alice-${crypto.randomUUID().slice(0, 8)}`);
    const mallory = await createUser(`mallory-${crypto.randomUUID().slice(0, 8)}`);
    expect((await call("/api/me", { key: mallory.key })).json().id).toBe(mallory.id);
    // Whoever can write KV copies alice's index entry over mallory's.
    const { hashGatewayKey, getKeyring } = await import("../src/vault/envelope");
    const { getConfig } = await import("../src/config");
    const ring = await getKeyring(getConfig(env));
    const aliceEntry = await env.VAULT.get(`key:${await hashGatewayKey(ring, alice.key)}`);
    await env.VAULT.put(`key:${await hashGatewayKey(ring, mallory.key)}`, aliceEntry!);
    const { resetIsolateCaches } = await import("./helpers/isolate");
    resetIsolateCaches();
    const r = await call("/api/accounts", { key: mallory.key });
    expect(r.status).toBe(401);
  });

  it("a key that is not shaped like a gateway key is refused without a KV read", async () => {
    const before = (await call("/admin/stats", { key: ADMIN })).json().isolate.kv.get!;
    for (let i = 0; i < 20; i++) expect((await call("/api/me", { key: `guess-${crypto.randomUUID()}` })).status).toBe(401);
    const after = (await call("/admin/stats", { key: ADMIN })).json().isolate.kv.get!;
    expect(after - before).toBe(0);
  });
});
