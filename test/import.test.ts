import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, createUser, listAccounts, postJson, useGateway } from "./helpers/gateway";
import { secrets } from "./helpers/secrets";
import { chatgptJwt } from "./helpers/upstream";

useGateway();
let n = 0;
const s = (tag: string) => secrets.add(`${tag}-${crypto.randomUUID()}`);

const importFile = (key: string, file: unknown) => postJson("/api/import", key, file);

describe("import of credential files people already have", () => {
  it("imports an opencode auth.json: each credential one account; other providers refused per entry", async () => {
    const u = await createUser(`imp${++n}`);
    const file = {
      anthropic: { type: "oauth", refresh: s("sk-ant-ort01"), access: s("sk-ant-oat01"), expires: Date.now() + 3_600_000 },
      openai: { type: "api", key: s("sk-proj") },
      "github-copilot": { type: "oauth", refresh: s("gho"), access: s("tid"), expires: Date.now() + 1_000_000 },
      openrouter: { type: "api", key: s("sk-or") },
      vercel: { type: "wellknown", key: "X", token: s("tok") },
    };
    const r = await importFile(u.key, file);
    expect(r.status).toBe(200);
    const body = r.json();
    expect(body.format).toBe("opencode");
    expect(body.imported.map((i: { entry: string; action: string }) => [i.entry, i.action])).toEqual([
      ["anthropic", "created"],
      ["openai", "created"],
      ["github-copilot", "created"],
    ]);
    expect(body.refused.map((x: { entry: string }) => x.entry)).toEqual(["openrouter", "vercel"]);
    expect(body.refused[0]!.reason).toMatch(/not one subpool serves/);
    const list = await listAccounts(u.key);
    expect(list.map((a) => `${a.provider}/${a.type}`).sort()).toEqual(["anthropic/oauth", "github-copilot/oauth", "openai/api"]);
  });

  it("re-importing the same file duplicates nothing", async () => {
    const u = await createUser(`imp${++n}`);
    const file = { anthropic: { type: "api", key: s("sk-ant-api03") }, openai: { type: "oauth", refresh: s("rt"), access: chatgptJwt("acct-1", "a") } };
    expect((await importFile(u.key, file)).json().imported.map((i: { action: string }) => i.action)).toEqual(["created", "created"]);
    expect((await importFile(u.key, file)).json().imported.map((i: { action: string }) => i.action)).toEqual(["unchanged", "unchanged"]);
    expect(await listAccounts(u.key)).toHaveLength(2);
  });

  it("imports a Claude Code .credentials.json", async () => {
    const u = await createUser(`imp${++n}`);
    const r = await importFile(u.key, { claudeAiOauth: { accessToken: s("sk-ant-oat01"), refreshToken: s("sk-ant-ort01"), expiresAt: Date.now() + 3_600_000, scopes: ["user:inference"], subscriptionType: "max" } });
    expect(r.json()).toMatchObject({ format: "claude-code", imported: [{ entry: "claudeAiOauth", provider: "anthropic", type: "oauth", action: "created", account: { label: "Claude Code (max)" } }], refused: [] });
  });

  it("imports a Codex auth.json; a newer file of the same ChatGPT identity updates the account", async () => {
    const u = await createUser(`imp${++n}`);
    const file = (refresh: string) => ({ OPENAI_API_KEY: null, tokens: { id_token: chatgptJwt("acct-7", "id"), access_token: chatgptJwt("acct-7", "acc"), refresh_token: refresh, account_id: "acct-7" }, last_refresh: "2026-11-01T00:00:00Z" });
    const first = await importFile(u.key, file(s("rt-1")));
    expect(first.json()).toMatchObject({ format: "codex", imported: [{ entry: "tokens", provider: "openai", type: "oauth", action: "created" }] });
    const second = await importFile(u.key, file(s("rt-2")));
    expect(second.json().imported[0]).toMatchObject({ action: "updated", account: { id: first.json().imported[0]!.account.id } });
    expect(await listAccounts(u.key)).toHaveLength(1);
    // With an API key as well
    const both = await importFile(u.key, { ...file(s("rt-3")), OPENAI_API_KEY: s("sk-proj") });
    expect(both.json().imported.map((i: { entry: string; action: string }) => `${i.entry}:${i.action}`)).toEqual(["tokens:updated", "OPENAI_API_KEY:created"]);
  });

  it("a partly bad file imports the good entries and names what is wrong with the others, without quoting values", async () => {
    const u = await createUser(`imp${++n}`);
    const leaked = s("sk-ant-should-not-echo");
    const r = await importFile(u.key, {
      anthropic: { type: "oauth", access: leaked },
      openai: { type: "api", key: s("sk-proj") },
      "github-copilot": { type: "api", key: s("gho") },
    });
    expect(r.status).toBe(200);
    const body = r.json();
    expect(body.imported.map((i: { entry: string }) => i.entry)).toEqual(["openai"]);
    expect(body.refused).toEqual([
      { entry: "anthropic", reason: expect.stringContaining("refresh") },
      { entry: "github-copilot", reason: expect.stringMatching(/OAuth accounts only/) },
    ]);
    expect(r.body).not.toContain(leaked);
  });

  it("refuses what is not a credential file with a 400 and imports nothing", async () => {
    const u = await createUser(`imp${++n}`);
    for (const body of [{ hello: "world" }, { anthropic: "sk-ant-plain-string" }]) {
      const r = await importFile(u.key, body);
      expect(r.status).toBe(400);
      expect(r.json().error.message).toMatch(/opencode auth.json/);
    }
    expect((await call("/api/import", { method: "POST", key: u.key, body: "[]" })).status).toBe(400);
    expect(await listAccounts(u.key)).toEqual([]);
    expect((await env.VAULT.list({ prefix: `cred:${u.id}:` })).keys).toEqual([]);
  });
});
