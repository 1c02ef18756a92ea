import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { getConfig } from "../src/config";
import { decryptField, encryptField, getKeyring, hashGatewayKey, newDataKey, rewrapDataKey, unwrapDataKey } from "../src/vault/envelope";
import { addAccount, createUser, listAccounts, messages, useGateway } from "./helpers/gateway";
import { secrets } from "./helpers/secrets";
import { anthropicMessage, json } from "./helpers/upstream";

const { up } = useGateway();
const cfg = () => getConfig(env);
const otherMaster = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));

describe("envelope encryption", () => {
  it("round-trips a field and binds it to user, account and field name", async () => {
    const ring = await getKeyring(cfg());
    const { key } = await newDataKey(ring, "u_1");
    const place = { userId: "u_1", accountId: "acc_1", field: "refresh" };
    const ct = await encryptField(key, place, "sk-secret-value");
    expect(ct).toMatch(/^e1\.[\w-]{16}\.[\w-]+$/);
    expect(ct).not.toContain("sk-secret-value");
    expect(await decryptField(key, place, ct)).toBe("sk-secret-value");
    // Fresh IV each time.
    expect(await encryptField(key, place, "sk-secret-value")).not.toBe(ct);
    for (const moved of [
      { ...place, accountId: "acc_2" },
      { ...place, userId: "u_2" },
      { ...place, field: "access" },
    ]) {
      await expect(decryptField(key, moved, ct)).rejects.toThrow(/does not decrypt/);
    }
  });

  it("data keys are non-extractable, wrapped with the KEK version, and bound to their user", async () => {
    const ring = await getKeyring(cfg());
    const { key, wrapped } = await newDataKey(ring, "u_1");
    expect(key.extractable).toBe(false);
    expect(wrapped).toMatch(/^k1\.1\./);
    await expect(unwrapDataKey(ring, "u_2", wrapped)).rejects.toThrow(/does not unwrap/);
    const other = await getKeyring({ MASTER_KEY: otherMaster, MASTER_KEY_VERSION: 1, OLD_MASTER_KEYS: "" });
    await expect(unwrapDataKey(other, "u_1", wrapped)).rejects.toThrow(/does not unwrap/);
  });

  it("MASTER_KEY rotation: the old key stays readable and is re-wrapped under the new version", async () => {
    const old = await getKeyring(cfg());
    const { key, wrapped } = await newDataKey(old, "u_1");
    const ct = await encryptField(key, { userId: "u_1", accountId: "a", field: "key" }, "v");
    const rotated = await getKeyring({ MASTER_KEY: otherMaster, MASTER_KEY_VERSION: 2, OLD_MASTER_KEYS: `1:${env.MASTER_KEY as string}` });
    const opened = await unwrapDataKey(rotated, "u_1", wrapped);
    expect(opened.stale).toBe(true);
    const rewrapped = await rewrapDataKey(rotated, "u_1", wrapped);
    expect(rewrapped).toMatch(/^k1\.2\./);
    const again = await unwrapDataKey(rotated, "u_1", rewrapped);
    expect(again.stale).toBe(false);
    expect(await decryptField(again.key, { userId: "u_1", accountId: "a", field: "key" }, ct)).toBe("v");
  });

  it("gateway-key hashes are keyed: another MASTER_KEY gives another hash", async () => {
    const a = await hashGatewayKey(await getKeyring(cfg()), "sp_x");
    const b = await hashGatewayKey(await getKeyring({ MASTER_KEY: otherMaster, MASTER_KEY_VERSION: 1, OLD_MASTER_KEYS: "" }), "sp_x");
    expect(a).not.toBe(b);
    expect(a).toHaveLength(43);
  });
});

describe("ciphertext moved in storage", () => {
  async function twoUsers() {
    const alice = await createUser(`alice${crypto.randomUUID().slice(0, 6)}`);
    const bob = await createUser(`bob${crypto.randomUUID().slice(0, 6)}`);
    const ka = secrets.add(`sk-ant-alice-${crypto.randomUUID()}`);
    const kb = secrets.add(`sk-ant-bob-${crypto.randomUUID()}`);
    const a1 = await addAccount(alice.key, { provider: "anthropic", type: "api", key: ka });
    const a2 = await addAccount(alice.key, { provider: "anthropic", type: "api", key: secrets.add(`sk-ant-alice2-${crypto.randomUUID()}`) });
    const b1 = await addAccount(bob.key, { provider: "anthropic", type: "api", key: kb });
    up().on("anthropic.fake/v1/messages", () => json(anthropicMessage()));
    return { alice, bob, ka, kb, a1, a2, b1 };
  }
  const setCred = (userId: string, accountId: string, cred: string) =>
    runInDurableObject(env.USER_POOL.get(env.USER_POOL.idFromName(userId)), (_o, s) => s.storage.sql.exec("UPDATE accounts SET cred = ? WHERE id = ?", cred, accountId));
  const getCred = (userId: string, accountId: string) =>
    runInDurableObject(env.USER_POOL.get(env.USER_POOL.idFromName(userId)), (_o, s) => s.storage.sql.exec<{ cred: string }>("SELECT cred FROM accounts WHERE id = ?", accountId).one().cred);

  it("a record copied to another account of the same user fails to decrypt and is never used", async () => {
    const { alice, a1, a2, ka } = await twoUsers();
    // Account 2's storage now holds account 1's ciphertext (DO row and KV copy).
    const rec = await getCred(alice.id, a1.id);
    await setCred(alice.id, a2.id, rec);
    await env.VAULT.put(`cred:${alice.id}:${a2.id}`, rec);
    await setCred(alice.id, a1.id, "{}"); // and account 1 is broken too
    await env.VAULT.put(`cred:${alice.id}:${a1.id}`, JSON.stringify({ format: 1, version: 1, fields: {}, expires: null }));
    const r = await messages(alice.key);
    expect(r.status).toBe(502);
    for (const s of up().seen) expect(JSON.stringify(s.headers)).not.toContain(ka);
    const list = await listAccounts(alice.key);
    expect(list[1]!.lastError).toMatch(/does not decrypt/);
  });

  it("a record copied to another user fails to decrypt", async () => {
    const { alice, bob, a1, b1, ka } = await twoUsers();
    const rec = await getCred(alice.id, a1.id);
    await setCred(bob.id, b1.id, rec);
    await env.VAULT.put(`cred:${bob.id}:${b1.id}`, rec);
    const r = await messages(bob.key);
    expect(r.status).toBe(403); // Bob's only account now needs a new credential
    expect(up().seen.filter((s) => JSON.stringify(s.headers).includes(ka))).toEqual([]);
  });
});
