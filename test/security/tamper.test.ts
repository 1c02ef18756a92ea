/**
 * Tampered storage fails closed (docs/ARCHITECTURE.md, "Encryption"): a credential whose ciphertext
 * or IV was altered, or that was moved to another account (the AAD binds it to its place), never
 * authenticates, so it is never sent. The request is served by the next account, GET /api/accounts
 * says what is wrong, and, once the Durable Object has confirmed its own copy is bad, the account is
 * needs_reauth (it can never work) instead of "active". A bad KV copy next to a sound DO copy is
 * restored from the DO; a data key that does not unwrap (a MASTER_KEY problem) marks nothing.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { getConfig } from "../../src/config";
import { UNREADABLE_CREDENTIAL, checkUnreadable } from "../../src/pool/client";
import { getSnapshot } from "../../src/pool/snapshots";
import type { UserPool } from "../../src/pool/user-pool";
import { b64urlDecode, b64urlEncode } from "../../src/vault/envelope";
import type { CredentialRecord } from "../../src/vault/records";
import { addAccount, createUser, listAccounts, messages, useGateway } from "../helpers/gateway";
import { resetIsolateCaches } from "../helpers/isolate";
import { secrets } from "../helpers/secrets";
import { anthropicMessage, json } from "../helpers/upstream";

const { up } = useGateway();
let n = 0;

const stubOf = (userId: string) => env.USER_POOL.get(env.USER_POOL.idFromName(userId));
const doCred = (userId: string, accountId: string) =>
  runInDurableObject(stubOf(userId), (_o, s) => s.storage.sql.exec<{ cred: string }>("SELECT cred FROM accounts WHERE id = ?", accountId).one().cred);
const setDoCred = (userId: string, accountId: string, cred: string) =>
  runInDurableObject(stubOf(userId), (_o, s) => void s.storage.sql.exec("UPDATE accounts SET cred = ? WHERE id = ?", cred, accountId));
const kvCred = (userId: string, accountId: string) => env.VAULT.get(`cred:${userId}:${accountId}`);
const setKvCred = (userId: string, accountId: string, cred: string) => env.VAULT.put(`cred:${userId}:${accountId}`, cred);

/** Flips one bit in the middle of a base64url part. */
function flip(part: string): string {
  const bytes = b64urlDecode(part);
  bytes[bytes.length >> 1]! ^= 0x01;
  return b64urlEncode(bytes);
}

/** The record with one field's envelope (e1.<iv>.<ct>) altered in its IV or its ciphertext. */
function tamper(recordJson: string, field: "key" | "refresh" | "access", where: "iv" | "ciphertext"): string {
  const rec = JSON.parse(recordJson) as CredentialRecord;
  const [tag, iv, ct] = rec.fields[field]!.split(".") as [string, string, string];
  rec.fields[field] = where === "iv" ? `${tag}.${flip(iv)}.${ct}` : `${tag}.${iv}.${flip(ct)}`;
  return JSON.stringify(rec);
}

/** One user, three Anthropic API keys in order: the first is the one to tamper with. */
async function pool() {
  const u = await createUser(`tamper${++n}`);
  const keys: string[] = [1, 2, 3].map((i) => secrets.add(`sk-ant-api03-tamper${i}-${crypto.randomUUID()}`));
  const accs = [];
  for (const key of keys) accs.push(await addAccount(u.key, { provider: "anthropic", type: "api", key }));
  up().on("anthropic.fake/v1/messages", (_r, cred) => (keys.includes(cred) ? json(anthropicMessage()) : json({}, 401)));
  return { u, keys, accs };
}

const ways = [
  { name: "a flipped bit in the ciphertext", apply: async (userId: string, accs: { id: string }[]) => tamper(await doCred(userId, accs[0]!.id), "key", "ciphertext") },
  { name: "a flipped bit in the IV", apply: async (userId: string, accs: { id: string }[]) => tamper(await doCred(userId, accs[0]!.id), "key", "iv") },
  // The third account's record, intact, in the first account's place: its AAD names the third.
  { name: "another account's record moved in (AAD)", apply: async (userId: string, accs: { id: string }[]) => doCred(userId, accs[2]!.id) },
];

describe("a tampered credential fails closed", () => {
  for (const way of ways) {
    it(`${way.name} in DO storage and KV: the next account serves, the tampered one is never used`, async () => {
      const { u, keys, accs } = await pool();
      const bad = await way.apply(u.id, accs);
      await setDoCred(u.id, accs[0]!.id, bad);
      await setKvCred(u.id, accs[0]!.id, bad);

      for (let i = 0; i < 3; i++) {
        const r = await messages(u.key);
        expect(r.status, r.body).toBe(200);
        expect(r.headers.get("x-subpool-account")).toBe(accs[1]!.id);
      }
      // Only the second key ever left the gateway (not the first, not the third through the first's slot).
      expect(up().seen.map((s) => s.headers["x-api-key"])).toEqual([keys[1], keys[1], keys[1]]);

      const list = await listAccounts(u.key);
      const tampered = list.find((a) => a.id === accs[0]!.id)!;
      expect(tampered.lastError).toMatch(/^stored credential does not decrypt/);
      expect(tampered.successCount).toBe(0);
      expect(list.find((a) => a.id === accs[2]!.id)).toMatchObject({ status: "active", lastError: null });
    });
  }

  // The proxy asks the DO to confirm (checkUnreadable) when a credential does not decrypt, so the
  // account does not stay "active" and get tried, and fail, on every request.
  it("after one request the tampered account is needs_reauth", async () => {
    const { u, accs } = await pool();
    const bad = tamper(await doCred(u.id, accs[0]!.id), "key", "ciphertext");
    await setDoCred(u.id, accs[0]!.id, bad);
    await setKvCred(u.id, accs[0]!.id, bad);
    expect((await messages(u.key)).status).toBe(200);
    const tampered = (await listAccounts(u.key)).find((a) => a.id === accs[0]!.id)!;
    expect(tampered).toMatchObject({ status: "needs_reauth", lastError: UNREADABLE_CREDENTIAL });
  });
});

describe("the Durable Object confirms before marking (checkUnreadable, markUnreadable)", () => {
  const stateOf = async (userId: string, accountId: string) => (await getSnapshot(env, getConfig(env), userId)).accounts.find((a) => a.id === accountId)!;

  for (const way of ways) {
    it(`${way.name} in both copies: needs_reauth with a clear lastError, then skipped without another try`, async () => {
      const { u, keys, accs } = await pool();
      const bad = await way.apply(u.id, accs);
      await setDoCred(u.id, accs[0]!.id, bad);
      await setKvCred(u.id, accs[0]!.id, bad);

      expect(await checkUnreadable(env, getConfig(env), u.id, await stateOf(u.id, accs[0]!.id))).toEqual({ ok: false, reason: UNREADABLE_CREDENTIAL });
      let tampered = (await listAccounts(u.key)).find((a) => a.id === accs[0]!.id)!;
      expect(tampered).toMatchObject({ status: "needs_reauth", lastError: UNREADABLE_CREDENTIAL, enabled: true });
      const failures = tampered.failureCount;

      resetIsolateCaches();
      for (let i = 0; i < 3; i++) expect((await messages(u.key)).headers.get("x-subpool-account")).toBe(accs[1]!.id);
      expect(up().seen.map((s) => s.headers["x-api-key"])).toEqual([keys[1], keys[1], keys[1]]);
      tampered = (await listAccounts(u.key)).find((a) => a.id === accs[0]!.id)!;
      // Not even tried: no new failure, the lastError stays the one that says what to do.
      expect(tampered).toMatchObject({ status: "needs_reauth", lastError: UNREADABLE_CREDENTIAL, failureCount: failures });
      // Kept, not deleted: the person sees it and adds the account again.
      expect(await listAccounts(u.key)).toHaveLength(3);
    });
  }

  it("only the KV copy altered: the DO's sound copy is returned and KV is restored; the account stays active and serves", async () => {
    const { u, keys, accs } = await pool();
    const good = await doCred(u.id, accs[0]!.id);
    await setKvCred(u.id, accs[0]!.id, tamper(good, "key", "ciphertext"));
    const r = await checkUnreadable(env, getConfig(env), u.id, await stateOf(u.id, accs[0]!.id));
    expect(r.ok && r.cred.key).toBe(keys[0]);
    expect(await kvCred(u.id, accs[0]!.id)).toBe(good);
    resetIsolateCaches();
    const served = await messages(u.key);
    expect(served.headers.get("x-subpool-account")).toBe(accs[0]!.id);
    expect((await listAccounts(u.key))[0]).toMatchObject({ status: "active" });
  });

  it("the KV copy of the wrapped data key altered: restored from the DO, nothing marked", async () => {
    const { u, keys, accs } = await pool();
    const wrapped = (await env.VAULT.get(`dek:${u.id}`))!;
    const [k1, ver, iv, ct] = wrapped.split(".");
    await env.VAULT.put(`dek:${u.id}`, `${k1}.${ver}.${iv}.${flip(ct!)}`);
    resetIsolateCaches();
    const r = await checkUnreadable(env, getConfig(env), u.id, await stateOf(u.id, accs[0]!.id));
    expect(r.ok && r.cred.key).toBe(keys[0]);
    expect(await env.VAULT.get(`dek:${u.id}`)).toBe(wrapped);
    expect((await listAccounts(u.key)).map((a) => a.status)).toEqual(["active", "active", "active"]);
  });

  it("a data key that does not unwrap in the DO either (a MASTER_KEY problem) marks nothing", async () => {
    const { u, accs } = await pool();
    const wrapped = (await env.VAULT.get(`dek:${u.id}`))!;
    const [k1, ver, iv, ct] = wrapped.split(".");
    const broken = `${k1}.${ver}.${iv}.${flip(ct!)}`;
    await env.VAULT.put(`dek:${u.id}`, broken);
    // The object unwraps again the wrapped key it now finds in its storage.
    await runInDurableObject(stubOf(u.id), (_o, s) => s.storage.sql.exec("UPDATE meta SET v = ? WHERE k = 'dek'", broken));
    resetIsolateCaches();
    const r = await checkUnreadable(env, getConfig(env), u.id, await stateOf(u.id, accs[0]!.id));
    expect(r).toEqual({ ok: false, reason: expect.stringMatching(/data key does not unwrap.*MASTER_KEY/) });
    const direct = await runInDurableObject(stubOf(u.id), (o) => (o as UserPool).markUnreadable(accs[0]!.id, "x"));
    expect(direct).toMatchObject({ ok: true, value: { kind: "config", message: expect.stringMatching(/does not unwrap/) } });
    expect((await listAccounts(u.key)).map((a) => a.status)).toEqual(["active", "active", "active"]);
  });
});

describe("a refresh inside the DO whose own copy does not decrypt", () => {
  it("marks the OAuth account needs_reauth (no token endpoint call, no 500) and the next account serves", async () => {
    const u = await createUser(`tamper${++n}`);
    const g = up().anthropicAuth.grant();
    // Expired access token: the first request has the DO refresh it.
    const oauth = await addAccount(u.key, { provider: "anthropic", type: "oauth", refresh: g.refresh, access: g.access, expires: Date.now() - 1000 });
    const apiKey = secrets.add(`sk-ant-api03-tamper-next-${crypto.randomUUID()}`);
    const api = await addAccount(u.key, { provider: "anthropic", type: "api", key: apiKey });
    up().on("anthropic.fake/v1/messages", (_r, cred) => (cred === apiKey ? json(anthropicMessage()) : json({}, 401)));
    // Only the DO's copy is altered: the Worker opens KV's, the DO cannot open its own.
    await setDoCred(u.id, oauth.id, tamper(await doCred(u.id, oauth.id), "refresh", "ciphertext"));
    const calls = up().anthropicAuth.calls;

    const r = await messages(u.key);
    expect(r.status, r.body).toBe(200);
    expect(r.headers.get("x-subpool-account")).toBe(api.id);
    expect(up().anthropicAuth.calls).toBe(calls);
    expect(up().seen.every((s) => s.headers["x-api-key"] === apiKey)).toBe(true);
    expect((await listAccounts(u.key)).find((a) => a.id === oauth.id)).toMatchObject({ status: "needs_reauth", lastError: UNREADABLE_CREDENTIAL });
    // The grant was not spent: a person who puts the same tokens back has a working account.
    expect(up().anthropicAuth.isLive(g.refresh)).toBe(true);
  });
});
