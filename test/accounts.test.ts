import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ADMIN, addAccount, call, createUser, listAccounts, postJson, useGateway } from "./helpers/gateway";
import { secrets } from "./helpers/secrets";

const { up } = useGateway();
let n = 0;
const key = () => secrets.add(`sk-ant-api03-acct-${++n}-${crypto.randomUUID()}`);

describe("accounts API", () => {
  it("adds API-key and OAuth accounts, several per provider, never overwriting, in position order", async () => {
    const u = await createUser(`acct${++n}`);
    const a = await addAccount(u.key, { provider: "anthropic", type: "api", key: key(), label: "work" });
    const b = await addAccount(u.key, { provider: "anthropic", type: "oauth", refresh: secrets.add(`rt-${crypto.randomUUID()}`), access: secrets.add(`at-${crypto.randomUUID()}`), expires: Date.now() + 3600_000 });
    const c = await addAccount(u.key, { provider: "openai", type: "api", key: secrets.add(`sk-proj-${crypto.randomUUID()}`) });
    expect([a.position, b.position, c.position]).toEqual([1, 2, 1]);
    const list = await listAccounts(u.key);
    expect(list.map((x) => [x.provider, x.type, x.position, x.status])).toEqual([
      ["anthropic", "api", 1, "active"],
      ["anthropic", "oauth", 2, "active"],
      ["openai", "api", 1, "active"],
    ]);
    expect(list[0]).toMatchObject({ label: "work", enabled: true, cooldownUntil: null, lastStatus: null, lastUsedAt: null, successCount: 0, failureCount: 0 });
    expect(list[1]!.label).toBe("anthropic account 2");
  });

  it("moves, relabels, disables and deletes; positions stay dense", async () => {
    const u = await createUser(`acct${++n}`);
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await addAccount(u.key, { provider: "anthropic", type: "api", key: key() })).id);
    const moved = await postJson(`/api/accounts/${ids[2]}`, u.key, { position: 1, label: "primary" }, "PATCH");
    expect(moved.status).toBe(200);
    expect(moved.json()).toMatchObject({ id: ids[2], position: 1, label: "primary" });
    expect((await listAccounts(u.key)).map((a) => a.id)).toEqual([ids[2], ids[0], ids[1]]);
    const off = await postJson(`/api/accounts/${ids[0]}`, u.key, { enabled: false }, "PATCH");
    expect(off.json()).toMatchObject({ enabled: false, status: "disabled" });
    expect((await call(`/api/accounts/${ids[2]}`, { method: "DELETE", key: u.key })).status).toBe(204);
    expect((await listAccounts(u.key)).map((a) => [a.id, a.position])).toEqual([
      [ids[0], 1],
      [ids[1], 2],
    ]);
    expect(await env.VAULT.get(`cred:${u.id}:${ids[2]}`)).toBeNull();
    expect((await call(`/api/accounts/${ids[2]}`, { method: "DELETE", key: u.key })).status).toBe(404);
  });

  it("stores credentials only encrypted, and never returns them", async () => {
    const u = await createUser(`acct${++n}`);
    const secret = key();
    const a = await addAccount(u.key, { provider: "anthropic", type: "api", key: secret });
    expect(JSON.stringify(a)).not.toContain(secret);
    const raw = (await env.VAULT.get(`cred:${u.id}:${a.id}`))!;
    expect(raw).not.toContain(secret);
    expect(JSON.parse(raw)).toMatchObject({ format: 1, version: 1, fields: { key: expect.stringMatching(/^e1\./) } });
  });

  describe("refuses bad input with a 4xx naming the field, and changes nothing", () => {
    const cases: [string, unknown, number, string | undefined, RegExp][] = [
      ["malformed JSON", "{provider: anthropic", 400, undefined, /not valid JSON/],
      ["an empty body", "", 400, undefined, /empty/],
      ["an unknown provider", { provider: "gemini", type: "api", key: "k-123456789" }, 400, "provider", /one of "anthropic", "openai", "github-copilot"/],
      ["a missing type", { provider: "anthropic", key: "k-123456789" }, 400, "type", /"api".*"oauth"/],
      ["a key of the wrong type", { provider: "anthropic", type: "api", key: 42 }, 400, "key", /string/],
      ["a missing refresh token", { provider: "anthropic", type: "oauth" }, 400, "refresh", /refresh token/],
      ["expires as a string", { provider: "anthropic", type: "oauth", refresh: "r-123456789", expires: "tomorrow" }, 400, "expires", /epoch milliseconds/],
      ["an unknown field", { provider: "anthropic", type: "api", key: "k-123456789", lable: "x" }, 400, "lable", /unknown field "lable"/],
      ["an API key for Copilot", { provider: "github-copilot", type: "api", key: "k-123456789" }, 400, "type", /OAuth only/],
      ["a JSON array", [1, 2], 400, undefined, /object/],
    ];
    for (const [what, body, status, field, message] of cases) {
      it(what, async () => {
        const u = await createUser(`bad${++n}`);
        const r = await call("/api/accounts", { method: "POST", key: u.key, headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) });
        expect(r.status).toBe(status);
        expect(r.json().error.field).toBe(field);
        expect(r.json().error.message).toMatch(message);
        if (field) expect(r.json().error.message).toContain(field);
        expect(await listAccounts(u.key)).toEqual([]);
        expect((await env.VAULT.list({ prefix: `cred:${u.id}:` })).keys).toEqual([]);
      });
    }

    it("bad PATCH bodies and ids", async () => {
      const u = await createUser(`bad${++n}`);
      const a = await addAccount(u.key, { provider: "anthropic", type: "api", key: key(), label: "keep" });
      for (const [body, field] of [
        [{ position: 0 }, "position"],
        [{ position: 1.5 }, "position"],
        [{ enabled: "yes" }, "enabled"],
        [{ label: "" }, "label"],
        [{}, undefined],
      ] as const) {
        const r = await postJson(`/api/accounts/${a.id}`, u.key, body, "PATCH");
        expect(r.status, JSON.stringify(body)).toBe(400);
        expect(r.json().error.field).toBe(field);
      }
      expect((await postJson("/api/accounts/acc_nope", u.key, { enabled: false }, "PATCH")).status).toBe(404);
      expect((await listAccounts(u.key))[0]).toMatchObject({ label: "keep", enabled: true, position: 1 });
    });
  });

  it("re-enabling an account clears its cooldown", async () => {
    const u = await createUser(`acct${++n}`);
    const a = await addAccount(u.key, { provider: "anthropic", type: "api", key: key() });
    await env.USER_POOL.get(env.USER_POOL.idFromName(u.id)).sync([{ accountId: a.id, successes: 0, failures: 1, lastUsedAt: Date.now(), lastStatus: 429, cooldownUntil: Date.now() + 60_000 }]);
    expect((await listAccounts(u.key))[0]!.status).toBe("cooling");
    await postJson(`/api/accounts/${a.id}`, u.key, { enabled: false }, "PATCH");
    const on = await postJson(`/api/accounts/${a.id}`, u.key, { enabled: true }, "PATCH");
    expect(on.json()).toMatchObject({ status: "active", cooldownUntil: null });
  });

  it("unknown routes answer 404 in the right format", async () => {
    const u = await createUser(`acct${++n}`);
    const r = await call("/api/nothing", { key: u.key });
    expect(r.status).toBe(404);
    expect(r.json().error.type).toBe("not_found_error");
  });
});

describe("labels name one account each", () => {
  it("a taken label gets a number when adding; renaming onto a taken label is a 409 naming label", async () => {
    const u = await createUser(`labels-${crypto.randomUUID().slice(0, 8)}`);
    const file = {
      anthropic: { type: "api", key: secrets.add(`sk-ant-api03-${crypto.randomUUID()}`) },
      openai: { type: "api", key: secrets.add(`sk-proj-${crypto.randomUUID()}`) },
    };
    const imported = await postJson("/api/import", u.key, file);
    expect(imported.status).toBe(200);
    const labels = (await listAccounts(u.key)).map((a) => a.label).sort();
    expect(labels).toEqual(["opencode API key", "opencode API key 2"]);
    const a = await addAccount(u.key, { provider: "anthropic", type: "api", key: secrets.add(`sk-ant-api03-${crypto.randomUUID()}`), label: "work" });
    const b = await addAccount(u.key, { provider: "anthropic", type: "api", key: secrets.add(`sk-ant-api03-${crypto.randomUUID()}`), label: "Work" });
    expect(b.label).toBe("Work 2");
    const r = await postJson(`/api/accounts/${b.id}`, u.key, { label: "WORK" }, "PATCH");
    expect(r.status).toBe(409);
    expect(r.json().error.field).toBe("label");
    expect((await postJson(`/api/accounts/${a.id}`, u.key, { label: "work" }, "PATCH")).status).toBe(200); // its own label
  });
});

describe("one credential, one account", () => {
  it("adding a key a second time is a 409 naming the account that holds it, and adds nothing", async () => {
    const u = await createUser(`dup-${crypto.randomUUID().slice(0, 8)}`);
    const k = key();
    const first = await addAccount(u.key, { provider: "anthropic", type: "api", key: k, label: "work" });
    const again = await postJson("/api/accounts?check=false", u.key, { provider: "anthropic", type: "api", key: k, label: "again" });
    expect(again.status).toBe(409);
    expect(again.json().error).toMatchObject({ field: "key", message: expect.stringContaining(`"work" (${first.id})`) });
    const r = `rt-${crypto.randomUUID()}`;
    secrets.add(r);
    const oauth = await addAccount(u.key, { provider: "anthropic", type: "oauth", refresh: r, label: "claude" });
    const twice = await postJson("/api/accounts?check=false", u.key, { provider: "anthropic", type: "oauth", refresh: r });
    expect(twice.status).toBe(409);
    expect(twice.json().error).toMatchObject({ field: "refresh", message: expect.stringContaining(oauth.id) });
    // The same key for another provider is another credential.
    expect((await postJson("/api/accounts?check=false", u.key, { provider: "openai", type: "api", key: k })).status).toBe(201);
    expect((await listAccounts(u.key)).map((a) => a.label)).toEqual(["work", "claude", "openai key 1"]);
  });

  it("an import finds a key added by hand already there, and adds it no second time", async () => {
    const u = await createUser(`dup-${crypto.randomUUID().slice(0, 8)}`);
    const k = key();
    const added = await addAccount(u.key, { provider: "anthropic", type: "api", key: k, label: "by hand" });
    for (let i = 0; i < 2; i++) {
      const r = await postJson("/api/import", u.key, { anthropic: { type: "api", key: k } });
      expect(r.status).toBe(200);
      expect(r.json().imported).toMatchObject([{ action: "unchanged", account: { id: added.id } }]);
    }
    expect(await listAccounts(u.key)).toHaveLength(1);
  });

  it("an account stored before adding took fingerprints is found too", async () => {
    const u = await createUser(`dup-${crypto.randomUUID().slice(0, 8)}`);
    const k = key();
    const old = await addAccount(u.key, { provider: "anthropic", type: "api", key: k });
    await runInDurableObject(env.USER_POOL.get(env.USER_POOL.idFromName(u.id)), (_o, s) => {
      s.storage.sql.exec("UPDATE accounts SET fingerprint = NULL");
    });
    const again = await postJson("/api/accounts?check=false", u.key, { provider: "anthropic", type: "api", key: k });
    expect(again.status).toBe(409);
    expect(again.json().error.message).toContain(old.id);
    expect((await postJson("/api/import", u.key, { anthropic: { type: "api", key: k } })).json().imported[0]).toMatchObject({ action: "unchanged", account: { id: old.id } });
  });

  it("a grant from a sign-in, added or imported afterwards, is that same account", async () => {
    const u = await createUser(`dup-${crypto.randomUUID().slice(0, 8)}`);
    const auth = up().anthropicAuth;
    const redeem = auth.redeem.bind(auth);
    let issued = "";
    auth.redeem = async (code, verifier) => {
      const r = await redeem(code, verifier);
      issued = String(r.body.refresh_token ?? "");
      return r;
    };
    const s = (await postJson("/api/oauth/anthropic/start", u.key, {})).json();
    const { code, state } = auth.authorize(s.url, { uuid: "dup-user", email: "dup@example.com" });
    const fin = await postJson("/api/oauth/anthropic/finish", u.key, { loginId: s.loginId, code: `${code}#${state}` });
    expect(fin.status).toBe(201);
    const id = fin.json().account.id;
    expect(issued).not.toBe("");
    const added = await postJson("/api/accounts?check=false", u.key, { provider: "anthropic", type: "oauth", refresh: issued });
    expect(added.status).toBe(409);
    expect(added.json().error.message).toContain(id);
    const imported = await postJson("/api/import", u.key, { anthropic: { type: "oauth", refresh: issued, access: "sk-ant-oat01-x", expires: Date.now() + 60_000 } });
    expect(imported.json().imported[0]).toMatchObject({ action: "unchanged", account: { id } });
    expect(await listAccounts(u.key)).toHaveLength(1);
  });
});

describe("one credential, one account: signing in", () => {
  it("a sign-in of another person never refreshes someone else's account, even with a grant that looks the same", async () => {
    const u = await createUser(`dup-${crypto.randomUUID().slice(0, 8)}`);
    const auth = up().anthropicAuth;
    const redeem = auth.redeem.bind(auth);
    let first = "";
    auth.redeem = async (code, verifier) => {
      const r = await redeem(code, verifier);
      first ||= String(r.body.refresh_token);
      return { ...r, body: { ...r.body, refresh_token: first } }; // a provider that hands out one token (as a fake may)
    };
    const ids = [];
    for (const who of [{ uuid: "person-a", email: "a@example.com" }, { uuid: "person-b", email: "b@example.com" }]) {
      const s = (await postJson("/api/oauth/anthropic/start", u.key, {})).json();
      const { code, state } = auth.authorize(s.url, who);
      const fin = await postJson("/api/oauth/anthropic/finish", u.key, { loginId: s.loginId, code: `${code}#${state}` });
      expect(fin.status).toBe(201);
      ids.push(fin.json().account.id);
    }
    expect(new Set(ids).size).toBe(2);
    expect((await listAccounts(u.key)).map((a) => a.label).sort()).toEqual(["a@example.com", "b@example.com"]);
  });
});

describe("a member's accounts are bounded", () => {
  it("past MAX_ACCOUNTS_PER_USER, adding is a 403 naming the var, an import refuses the new entries, a sign-in adds none; nothing is added", async () => {
    const u = await createUser(`cap-${crypto.randomUUID().slice(0, 8)}`);
    const cap = Number(env.MAX_ACCOUNTS_PER_USER);
    expect(cap).toBe(50);
    const first = key();
    await addAccount(u.key, { provider: "anthropic", type: "api", key: first });
    for (let i = 1; i < cap; i++) await addAccount(u.key, { provider: "anthropic", type: "api", key: key() });
    const over = await postJson("/api/accounts?check=false", u.key, { provider: "anthropic", type: "api", key: key() });
    expect(over.status).toBe(403);
    expect(over.json().error.message).toMatch(/you have 50 accounts, the most this gateway keeps for one member \(MAX_ACCOUNTS_PER_USER = 50\)/);
    const imported = await postJson("/api/import", u.key, { anthropic: { type: "api", key: first }, openai: { type: "api", key: secrets.add(`sk-proj-${crypto.randomUUID()}`) } });
    expect(imported.status).toBe(200);
    expect(imported.json().imported).toMatchObject([{ entry: "anthropic", action: "unchanged" }]);
    expect(imported.json().refused).toMatchObject([{ entry: "openai", reason: expect.stringMatching(/MAX_ACCOUNTS_PER_USER/) }]);
    const s = (await postJson("/api/oauth/anthropic/start", u.key, {})).json();
    const { code, state } = up().anthropicAuth.authorize(s.url);
    const fin = await postJson("/api/oauth/anthropic/finish", u.key, { loginId: s.loginId, code: `${code}#${state}` });
    expect(fin.status).toBe(403);
    expect(await listAccounts(u.key)).toHaveLength(cap);
  });
});

describe("one rule for labels everywhere", () => {
  const unsafe: [string, string][] = [
    ["ESC (a terminal escape)", "work\u001b[31mred"],
    ["BEL", "work\u0007"],
    ["a line break", "work\nsecond line"],
    ["a right-to-left override", "work\u202egnp.exe"],
    ["a C1 control", "work\u009b2J"],
    ["a zero-width space (two labels that look alike)", "wo\u200brk"],
    ["a soft hyphen", "wo\u00adrk"],
    ["a tag character", "work\u{e0041}"],
  ];
  for (const [what, label] of unsafe) {
    it(`a label with ${what} is refused with a 400 naming label, when adding, renaming or signing in, and nothing changes`, async () => {
      const u = await createUser(`lbl-${crypto.randomUUID().slice(0, 8)}`);
      const add = await postJson("/api/accounts?check=false", u.key, { provider: "anthropic", type: "api", key: key(), label });
      expect(add.status).toBe(400);
      expect(add.json().error).toMatchObject({ field: "label", message: expect.stringMatching(/^label: must not contain control characters/) });
      expect(await listAccounts(u.key)).toEqual([]);

      const a = await addAccount(u.key, { provider: "anthropic", type: "api", key: key(), label: "keep" });
      const rename = await postJson(`/api/accounts/${a.id}`, u.key, { label }, "PATCH");
      expect(rename.status).toBe(400);
      expect(rename.json().error.field).toBe("label");
      expect((await listAccounts(u.key))[0]!.label).toBe("keep");

      const login = await postJson("/api/oauth/anthropic/start", u.key, { label });
      expect(login.status).toBe(400);
      expect(login.json().error.field).toBe("label");
    });
  }

  it("a label stored before the rule is shown without its controls", async () => {
    const u = await createUser(`lbl-${crypto.randomUUID().slice(0, 8)}`);
    const a = await addAccount(u.key, { provider: "anthropic", type: "api", key: key(), label: "old" });
    await runInDurableObject(env.USER_POOL.get(env.USER_POOL.idFromName(u.id)), (_o, s) => {
      s.storage.sql.exec("UPDATE accounts SET label = ? WHERE id = ?", "old\u001b]0;pwned\u0007 one\u202e", a.id);
    });
    expect((await listAccounts(u.key))[0]!.label).toBe("old]0;pwned one");
  });
});

describe("what an account says about its last error", () => {
  it("lastErrorAt dates the last error, so an old one can be told from a current one; enabling an enabled, cooling account clears its bench", async () => {
    const u = await createUser(`lasterr-${crypto.randomUUID().slice(0, 8)}`);
    const a = await addAccount(u.key, { provider: "anthropic", type: "api", key: secrets.add(`sk-ant-api03-${crypto.randomUUID()}`) });
    const stub = env.USER_POOL.get(env.USER_POOL.idFromName(u.id));
    const t = Date.now() - 60_000;
    await stub.sync([{ accountId: a.id, successes: 0, failures: 1, lastUsedAt: t, lastStatus: 429, cooldownUntil: Date.now() + 600_000, lastError: "rate limited" }]);
    await stub.sync([{ accountId: a.id, successes: 1, failures: 0, lastUsedAt: Date.now(), lastStatus: 200 }]);
    const [after] = await listAccounts(u.key);
    expect(after).toMatchObject({ lastError: "rate limited", lastErrorAt: t, lastStatus: 200, status: "cooling" });
    expect(after!.lastUsedAt!).toBeGreaterThan(after!.lastErrorAt!);
    const r = await postJson(`/api/accounts/${a.id}`, u.key, { enabled: true }, "PATCH");
    expect(r.status).toBe(200);
    expect(r.json<{ status: string; cooldownUntil: number | null }>()).toMatchObject({ status: "active", cooldownUntil: null });
  });
});

describe("management answers are never cached", () => {
  it("every /api and /admin answer, errors included, carries cache-control: no-store", async () => {
    const u = await createUser(`nostore-${crypto.randomUUID().slice(0, 8)}`);
    const answers = [
      await call("/api/accounts", { key: u.key }),
      await call("/api/me", { key: u.key }),
      await call("/api/settings", { key: u.key }),
      await call("/api/accounts"), // no key: 401
      await call("/api/nothing", { key: u.key }), // 404
      await postJson("/api/accounts", u.key, { provider: "gemini" }), // 400
      await call("/admin/users", { key: ADMIN }),
      await postJson("/admin/users", ADMIN, { name: `nostore-${crypto.randomUUID().slice(0, 8)}` }), // a new key, shown once
    ];
    for (const r of answers) expect(r.headers.get("cache-control"), `${r.status} ${r.body.slice(0, 80)}`).toBe("no-store");
  });
});
