/**
 * An admin can reset a member's gateway key (and so could use the member's subscriptions with the
 * new one): every reset is recorded in the member's own Durable Object, with when and by whom, and
 * shown to the member in GET /api/me as keyResets (newest first, the last 50).
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { KEY_RESETS_KEPT } from "../../src/pool/profile-store";
import type { KeyReset, Me } from "../../src/wire";
import { ADMIN, call, createUser, useGateway } from "../helpers/gateway";
import { secrets } from "../helpers/secrets";

useGateway();
let n = 0;

const me = async (key: string) => {
  const r = await call("/api/me", { key });
  expect(r.status, r.body).toBe(200);
  return r.json<Me>();
};

async function resetKey(userId: string, by: string) {
  const r = await call(`/admin/users/${userId}/key`, { method: "POST", key: by });
  expect(r.status, r.body).toBe(200);
  return r;
}

describe("admin key resets, as the member sees them", () => {
  it("a reset by ADMIN_TOKEN and one by an admin user show in the member's /api/me; another member sees none", async () => {
    const alice = await createUser(`kr-alice${++n}`);
    const bob = await createUser(`kr-bob${n}`);
    const root = await createUser(`kr-admin${n}`, "admin");
    expect((await me(alice.key)).keyResets).toEqual([]);

    const t0 = Date.now();
    const first = await resetKey(alice.id, ADMIN);
    // The admin route's answer is what it was: the profile and the new key, not cached.
    expect(Object.keys(first.json()).sort()).toEqual(["createdAt", "id", "key", "name", "role"]);
    expect(first.json()).toMatchObject({ id: alice.id, name: `kr-alice${n}`, role: "member" });
    expect(first.headers.get("cache-control")).toBe("no-store");
    const key1 = secrets.add(first.json().key);
    // The old key is dead; the new one works and sees the reset.
    expect((await call("/api/me", { key: alice.key })).status).toBe(401);
    const second = await resetKey(alice.id, root.key);
    const key2 = secrets.add(second.json().key);
    expect((await call("/api/me", { key: key1 })).status).toBe(401);

    const view = await me(key2);
    expect(view).toMatchObject({ id: alice.id, role: "member" });
    expect(view.keyResets).toEqual<KeyReset[]>([
      { at: expect.any(Number), by: { id: root.id, name: `kr-admin${n}` } },
      { at: expect.any(Number), by: { id: null, name: "ADMIN_TOKEN" } },
    ]);
    for (const r of view.keyResets) {
      expect(r.at).toBeGreaterThanOrEqual(t0);
      expect(r.at).toBeLessThanOrEqual(Date.now());
    }
    expect(view.keyResets[0]!.at).toBeGreaterThanOrEqual(view.keyResets[1]!.at);

    // Bob's and the admin's own views are untouched.
    expect((await me(bob.key)).keyResets).toEqual([]);
    expect((await me(root.key)).keyResets).toEqual([]);
    // The bootstrap token's view has the same shape, with nothing in it.
    expect((await call("/api/me", { key: ADMIN })).json<Me>()).toMatchObject({ id: null, name: "admin-token", role: "admin", keyResets: [] });
  });

  it("an admin resetting their own key is recorded too; a refused reset records nothing", async () => {
    const a = await createUser(`kr-self${++n}`, "admin");
    const m = await createUser(`kr-member${n}`);
    // A member cannot reset anyone's key, and that attempt leaves no trace.
    expect((await call(`/admin/users/${a.id}/key`, { method: "POST", key: m.key })).status).toBe(403);
    expect((await call(`/admin/users/u_${"x".repeat(16)}/key`, { method: "POST", key: a.key })).status).toBe(404);
    expect((await me(a.key)).keyResets).toEqual([]);
    const r = await resetKey(a.id, a.key);
    const key = secrets.add(r.json().key);
    expect((await me(key)).keyResets).toEqual([{ at: expect.any(Number), by: { id: a.id, name: `kr-self${n}` } }]);
  });

  it("keeps the last 50", async () => {
    const u = await createUser(`kr-many${++n}`);
    const stub = env.USER_POOL.get(env.USER_POOL.idFromName(u.id));
    // 60 earlier resets, written straight into storage (as 60 admin calls would have).
    await runInDurableObject(stub, (_o, s) => {
      for (let i = 0; i < 60; i++) s.storage.sql.exec("INSERT INTO key_resets (at, by_id, by_name) VALUES (?, NULL, ?)", 1_000 + i, `old-${i}`);
    });
    const r = await resetKey(u.id, ADMIN);
    const resets = (await me(secrets.add(r.json().key))).keyResets;
    expect(resets).toHaveLength(KEY_RESETS_KEPT);
    expect(resets[0]!.by).toEqual({ id: null, name: "ADMIN_TOKEN" });
    expect(resets[1]!.by.name).toBe("old-59");
    expect(resets.at(-1)!.by.name).toBe(`old-${60 - KEY_RESETS_KEPT + 1}`);
    const stored = await runInDurableObject(stub, (_o, s) => s.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM key_resets").one().n);
    expect(stored).toBe(KEY_RESETS_KEPT);
  });
});
