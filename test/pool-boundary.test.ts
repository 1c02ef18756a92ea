/**
 * The Durable Object boundary: storage made by the first release migrates forward intact, refusals
 * cross RPC with their status and reason, and transient DO errors are retried a bounded number of
 * times (never when the object says it is overloaded).
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Env } from "../src/config";
import { callPool } from "../src/pool/rpc";
import { MIGRATIONS, SCHEMA_VERSION, migrate, schemaVersion } from "../src/pool/schema";
import { addAccount, createUser, listAccounts, messages, postJson, useGateway } from "./helpers/gateway";
import { resetIsolateCaches } from "./helpers/isolate";
import { anthropicMessage, chatgptJwt, json } from "./helpers/upstream";
import { secrets } from "./helpers/secrets";

const { up } = useGateway();
const stubOf = (userId: string) => env.USER_POOL.get(env.USER_POOL.idFromName(userId));
let n = 0;

describe("schema migrations", () => {
  it("a new user's object starts at the latest schema version", async () => {
    const u = await createUser(`mig${++n}`);
    expect(await runInDurableObject(stubOf(u.id), (_o, s) => schemaVersion(s.storage.sql))).toBe(SCHEMA_VERSION);
  });

  it("opens an object created by the first schema, migrates it and finds every account intact", async () => {
    const u = await createUser(`mig${++n}`);
    const apiKey = secrets.add(`sk-ant-api03-${crypto.randomUUID()}`);
    await addAccount(u.key, { provider: "anthropic", type: "api", key: apiKey, label: "work key" });
    const g = up().openaiAuth.grant();
    const access = chatgptJwt("acct-legacy", "legacy");
    await addAccount(u.key, { provider: "openai", type: "oauth", refresh: g.refresh, access, expires: Date.now() + 3_600_000, label: "chatgpt" });
    const before = await listAccounts(u.key);

    // Rebuild the storage exactly as the first release left it: its tables, the ChatGPT workspace
    // id in its own column, no recorded schema version.
    await runInDurableObject(stubOf(u.id), (_o, state) => {
      const sql = state.storage.sql;
      const rows = sql.exec<Record<string, string | number | null>>("SELECT * FROM accounts").toArray();
      sql.exec("DROP TABLE accounts; DROP TABLE logins; DELETE FROM meta WHERE k = 'schema_version'");
      sql.exec(MIGRATIONS[0]!);
      for (const r of rows) {
        const extras = JSON.parse(String(r.extras)) as Record<string, string>;
        sql.exec(
          `INSERT INTO accounts (id, provider, type, label, position, enabled, needs_reauth, cooldown_until, last_status, last_error, last_used_at,
             success_count, failure_count, created_at, cred_version, cred, expires_at, chatgpt_account_id, fingerprint, identity)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          r.id, r.provider, r.type, r.label, r.position, r.enabled, r.needs_reauth, r.cooldown_until, r.last_status, r.last_error, r.last_used_at,
          r.success_count, r.failure_count, r.created_at, r.cred_version, r.cred, r.expires_at, extras.chatgptAccountId ?? null, r.fingerprint, r.identity,
        );
      }
      expect(schemaVersion(sql)).toBe(1);
    });

    // What the object's start-up does (blockConcurrencyWhile -> migrate).
    const steps = await runInDurableObject(stubOf(u.id), (_o, state) => migrate(state.storage));
    expect(steps).toEqual({ from: 1, to: SCHEMA_VERSION });
    const columns = await runInDurableObject(stubOf(u.id), (_o, s) => s.storage.sql.exec<{ name: string }>("SELECT name FROM pragma_table_info('accounts')").toArray().map((c) => c.name));
    expect(columns).toContain("extras");
    expect(columns).not.toContain("chatgpt_account_id");
    // Running it again changes nothing.
    expect(await runInDurableObject(stubOf(u.id), (_o, state) => migrate(state.storage))).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION });

    resetIsolateCaches();
    expect(await listAccounts(u.key)).toEqual(before);
    // Every account still opens and serves: the API key, and the ChatGPT account with its workspace id.
    up().on("anthropic.fake/v1/messages", (_r, cred) => (cred === apiKey ? json(anthropicMessage()) : json({}, 401)));
    expect((await messages(u.key)).status).toBe(200);
    up().on("chatgpt.fake/backend-api/codex/responses", (req) => json({ account: req.headers.get("chatgpt-account-id") }));
    const r = await postJson("/openai/v1/responses", u.key, { model: "gpt-5", input: "hi" });
    expect(r.status).toBe(200);
    expect(r.json<{ account: string }>().account).toBe("acct-legacy");
  });
});

describe("typed results across the Durable Object boundary", () => {
  it("a device-flow start that GitHub refuses is a 502 with GitHub's reason, and leaves no pending login", async () => {
    const u = await createUser(`rpc${++n}`);
    up().override("github.fake/login/device/code", () => Response.json({ error: "service_unavailable" }, { status: 503 }));
    const r = await postJson("/api/oauth/github-copilot/start", u.key, {});
    expect(r.status).toBe(502);
    expect(r.json().error.message).toMatch(/GitHub's device flow did not start \(token endpoint answered 503/);
    const logins = await runInDurableObject(stubOf(u.id), (_o, s) => s.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM logins").one().n);
    expect(logins).toBe(0);
  });

  it("a refusal inside the object keeps its status and field (not a generic 500)", async () => {
    const u = await createUser(`rpc${++n}`);
    const r = await postJson("/api/oauth/anthropic/finish", u.key, { loginId: "login_AAAAAAAAAAAAAAAA", code: "x#y" });
    expect(r.status).toBe(410);
    expect(r.json().error).toMatchObject({ type: "not_found_error", field: "loginId" });
    const p = await postJson(`/api/accounts/acc_AAAAAAAAAAAAAAAA`, u.key, { label: "x" }, "PATCH");
    expect(p.status).toBe(404);
  });
});

describe("retrying transient Durable Object errors", () => {
  /** A namespace whose stubs fail the first `failures` calls with the given error, then answer. */
  function fakeEnv(failures: number, error: () => Error) {
    let calls = 0;
    let stubs = 0;
    const stub = {
      ping: async () => {
        calls++;
        if (calls <= failures) throw error();
        return { ok: true as const, value: "pong" };
      },
    };
    const ns = { idFromName: (name: string) => name, get: () => (stubs++, stub) };
    return { env: { USER_POOL: ns } as unknown as Env, calls: () => calls, stubs: () => stubs };
  }
  const transient = () => Object.assign(new Error("Network connection lost."), { retryable: true });
  const overloaded = () => Object.assign(new Error("Durable Object is overloaded."), { retryable: true, overloaded: true });
  const ping = (s: unknown) => (s as { ping(): Promise<{ ok: true; value: string }> }).ping();

  it("retries an error marked retryable with a fresh stub, and succeeds", async () => {
    const f = fakeEnv(2, transient);
    expect(await callPool(f.env, "u", ping)).toBe("pong");
    expect(f.calls()).toBe(3);
    expect(f.stubs()).toBe(3);
  });

  it("gives up after three tries", async () => {
    const f = fakeEnv(5, transient);
    await expect(callPool(f.env, "u", ping)).rejects.toThrow(/Network connection lost/);
    expect(f.calls()).toBe(3);
  });

  it("does not retry an overloaded object, a plain error, or a call marked not retryable", async () => {
    for (const [error, opts] of [[overloaded, {}], [() => new Error("boom"), {}], [transient, { retry: false }]] as const) {
      const f = fakeEnv(1, error);
      await expect(callPool(f.env, "u", ping, opts)).rejects.toThrow();
      expect(f.calls()).toBe(1);
    }
  });
});

describe("the RPC surface", () => {
  it("exposes the object's thin methods only: its stores, helpers and private steps are not callable over RPC", async () => {
    const { UserPool } = await import("../src/pool/user-pool");
    const methods = Object.getOwnPropertyNames(UserPool.prototype).filter((m) => m !== "constructor").sort();
    // Every name here is a deliberate RPC method; anything else on the prototype would be reachable
    // by any code holding a stub (TypeScript's `private` is not private at run time).
    const internal = methods.filter((m) => /^(row|rows|meta|setMeta|exchange|refreshOnce|insert|put|open|mark(?!Unreadable$)|count|run|ask|schedule|purge|move|renumber|label|by|same|fingerprint|refingerprint|data|rewrapNow|userId|replaceCredential)/.test(m));
    expect(internal).toEqual([]);
    expect(methods).not.toContain("replaceCredential");
    // And the stores are ES-private fields: a stub has no property leading to them.
    const u = await createUser(`rpc${++n}`);
    const fields = await runInDurableObject(stubOf(u.id), (o) => Object.keys(o));
    expect(fields.filter((f) => !["ctx", "env"].includes(f))).toEqual([]);
  });
});
