/**
 * The credential rule at the edge (docs/ARCHITECTURE.md, "Faults"): API keys and refresh/access
 * tokens are printable ASCII without spaces (0x21-0x7E), at most 8 KiB, after trimming surrounding
 * whitespace. Anything else gets a 400 naming the field (POST /api/accounts), a per-entry refusal
 * (POST /api/import), or, for a login's pasted code (printable ASCII, spaces allowed), a 400 on
 * `code`. No message quotes the value, and a refusal changes nothing.
 */
import { describe, expect, it } from "vitest";
import { call, createUser, listAccounts, messages, postJson, useGateway } from "../helpers/gateway";
import { secrets } from "../helpers/secrets";
import { anthropicMessage, chatgptJwt, json } from "../helpers/upstream";

const { up } = useGateway();
let n = 0;

/** A unique, registered base (so an echo of any part of it is caught), and the ways to spoil it. */
function spoilt(tag: string) {
  const base = secrets.add(`${tag}-${crypto.randomUUID()}`);
  const mid = base.length >> 1;
  const at = (s: string) => base.slice(0, mid) + s + base.slice(mid);
  return {
    base,
    bad: [
      { what: "a CR/LF", value: at("\r\nx-injected: 1"), reason: /contains a line break/ },
      { what: "a LF", value: at("\n"), reason: /contains a line break/ },
      { what: "a NUL", value: at("\u0000"), reason: /contains a NUL/ },
      { what: "a space", value: at(" "), reason: /contains a space/ },
      { what: "a tab", value: at("\t"), reason: /contains a control character/ },
      { what: "an é", value: at("é"), reason: /contains a non-ASCII/ },
      { what: "an emoji", value: at("🔑"), reason: /contains a non-ASCII/ },
      { what: "8 KiB + 1", value: base + "x".repeat(8193 - base.length), reason: /too long.*8 KiB/ },
    ],
  };
}

describe("POST /api/accounts", () => {
  const cases = [
    { field: "key", body: (v: string) => ({ provider: "anthropic", type: "api", key: v }) },
    { field: "refresh", body: (v: string) => ({ provider: "anthropic", type: "oauth", refresh: v }) },
    { field: "access", body: (v: string) => ({ provider: "anthropic", type: "oauth", refresh: secrets.add(`sk-ant-ort01-${crypto.randomUUID()}`), access: v }) },
  ];
  for (const c of cases) {
    it(`refuses a bad ${c.field} with 400 naming the field, never quoting it, changing nothing`, async () => {
      const u = await createUser(`cred${++n}`);
      const existing = await postJson("/api/accounts", u.key, { provider: "anthropic", type: "api", key: secrets.add(`sk-ant-api03-${crypto.randomUUID()}`) });
      expect(existing.status).toBe(201);
      const { base, bad } = spoilt(`sk-ant-${c.field}`);
      for (const b of bad) {
        const r = await postJson("/api/accounts", u.key, c.body(b.value));
        expect(r.status, `${b.what}: ${r.body}`).toBe(400);
        const err = r.json().error;
        expect(err.field, b.what).toBe(c.field);
        expect(err.message, b.what).toMatch(new RegExp(`^${c.field}: `));
        expect(err.message, b.what).toMatch(b.reason);
        expect(r.body).not.toContain(base.slice(0, 12));
      }
      const after = await listAccounts(u.key);
      expect(after.map((a) => a.id)).toEqual([existing.json().id]);
    });
  }

  it("trims surrounding whitespace, then accepts: the key works exactly as trimmed; 8 KiB is allowed", async () => {
    const u = await createUser(`cred${++n}`);
    const key = secrets.add(`sk-ant-api03-${crypto.randomUUID()}`);
    const acc = await postJson("/api/accounts", u.key, { provider: "anthropic", type: "api", key: `  ${key}\r\n` });
    expect(acc.status, acc.body).toBe(201);
    up().on("anthropic.fake/v1/messages", (_r, cred) => (cred === key ? json(anthropicMessage()) : json({}, 401)));
    const r = await messages(u.key);
    expect(r.status).toBe(200);
    expect(up().seen.at(-1)!.headers["x-api-key"]).toBe(key);

    const long = secrets.add(`sk-ant-api03-${crypto.randomUUID()}`.padEnd(8192, "A"));
    const big = await postJson("/api/accounts", u.key, { provider: "anthropic", type: "oauth", refresh: long, access: long });
    expect(big.status, big.body).toBe(201);
    // Empty after trimming is empty.
    const blank = await postJson("/api/accounts", u.key, { provider: "anthropic", type: "api", key: " \n " });
    expect(blank.status).toBe(400);
    expect(blank.json().error).toMatchObject({ field: "key", message: expect.stringMatching(/empty/) });
    expect(await listAccounts(u.key)).toHaveLength(2);
  });
});

describe("POST /api/import", () => {
  it("opencode auth.json: a bad credential refuses its entry with the reason; the rest is imported", async () => {
    const u = await createUser(`cred${++n}`);
    const { base, bad } = spoilt("sk-ant-imp");
    for (const b of bad) {
      const good = secrets.add(`sk-proj-${crypto.randomUUID()}`);
      const r = await postJson("/api/import", u.key, {
        anthropic: { type: "api", key: b.value },
        openai: { type: "api", key: good },
        "github-copilot": { type: "oauth", refresh: secrets.add(`gho_${crypto.randomUUID()}`), access: b.value },
      });
      expect(r.status, r.body).toBe(200);
      const body = r.json();
      expect(body.imported.map((i) => i.entry), b.what).toEqual(["openai"]);
      expect(body.refused, b.what).toEqual([
        { entry: "anthropic", reason: expect.stringMatching(new RegExp(`^key: .*${b.reason.source}`)) },
        { entry: "github-copilot", reason: expect.stringMatching(new RegExp(`^access: .*${b.reason.source}`)) },
      ]);
      expect(r.body).not.toContain(base.slice(0, 12));
    }
    // Only the good openai keys came in, one per file.
    const list = await listAccounts(u.key);
    expect(list.map((a) => a.provider)).toEqual(Array(bad.length).fill("openai"));
  });

  it("Claude Code .credentials.json and Codex auth.json: bad tokens and a bad OPENAI_API_KEY are refused per entry", async () => {
    const u = await createUser(`cred${++n}`);
    const { base, bad } = spoilt("sk-ant-ort01");
    for (const b of bad) {
      const cc = await postJson("/api/import", u.key, { claudeAiOauth: { accessToken: secrets.add(`sk-ant-oat01-${crypto.randomUUID()}`), refreshToken: b.value, expiresAt: Date.now() + 3_600_000 } });
      expect(cc.status).toBe(200);
      expect(cc.json().imported, b.what).toEqual([]);
      expect(cc.json().refused, b.what).toEqual([{ entry: "claudeAiOauth", reason: expect.stringMatching(new RegExp(`^refreshToken: .*${b.reason.source}`)) }]);

      const rt = secrets.add(`rt-${crypto.randomUUID()}`);
      const codex = await postJson("/api/import", u.key, {
        OPENAI_API_KEY: b.value,
        tokens: { id_token: chatgptJwt("acct-x", "id"), access_token: chatgptJwt(`acct-${crypto.randomUUID()}`, "acc"), refresh_token: rt },
      });
      expect(codex.status).toBe(200);
      const body = codex.json();
      expect(body.imported.map((i) => i.entry), b.what).toEqual(["tokens"]);
      expect(body.refused, b.what).toEqual([{ entry: "OPENAI_API_KEY", reason: expect.stringMatching(new RegExp(`^key: .*${b.reason.source}`)) }]);
      const badRefresh = await postJson("/api/import", u.key, { tokens: { access_token: chatgptJwt("acct-y", "acc"), refresh_token: b.value } });
      expect(badRefresh.json().refused, b.what).toEqual([{ entry: "tokens", reason: expect.stringMatching(/^refresh_token: /) }]);
      for (const x of [cc, codex, badRefresh]) expect(x.body).not.toContain(base.slice(0, 12));
    }
    const list = await listAccounts(u.key);
    expect(list.map((a) => `${a.provider}/${a.type}`)).toEqual(Array(bad.length).fill("openai/oauth"));
  });
});

describe("POST /api/oauth/:provider/finish: the pasted code", () => {
  it("refuses CR/LF, NUL, control and non-ASCII characters and 8 KiB + 1 with 400 on code; the login stays pending", async () => {
    const u = await createUser(`cred${++n}`);
    const s = (await postJson("/api/oauth/anthropic/start", u.key, {})).json();
    const { code, state } = up().anthropicAuth.authorize(s.url, { uuid: "ant-cred-1", email: "cred@example.com" });
    const good = `${code}#${state}`;
    const at = (x: string) => `${code.slice(0, 10)}${x}${code.slice(10)}#${state}`;
    const bad = [
      { what: "CR/LF", value: at("\r\n"), reason: /contains a line break/ },
      { what: "NUL", value: at("\u0000"), reason: /contains a NUL/ },
      { what: "tab", value: at("\t"), reason: /contains a control character/ },
      { what: "é", value: at("é"), reason: /contains a non-ASCII/ },
      { what: "emoji", value: at("🔑"), reason: /contains a non-ASCII/ },
      { what: "8 KiB + 1", value: good + "x".repeat(8193 - good.length), reason: /too long/ },
    ];
    const callsBefore = up().anthropicAuth.calls;
    for (const b of bad) {
      const r = await postJson("/api/oauth/anthropic/finish", u.key, { loginId: s.loginId, code: b.value });
      expect(r.status, b.what).toBe(400);
      expect(r.json().error, b.what).toMatchObject({ field: "code", message: expect.stringMatching(b.reason) });
      expect(r.body).not.toContain(code.slice(0, 12));
    }
    // Nothing reached the provider, nothing was created.
    expect(up().anthropicAuth.calls).toBe(callsBefore);
    expect(await listAccounts(u.key)).toHaveLength(0);
    // A space is printable ASCII: not refused at the edge, the provider refuses the wrong code.
    const spaced = await postJson("/api/oauth/anthropic/finish", u.key, { loginId: s.loginId, code: at(" ") });
    expect(spaced.status).toBe(400);
    expect(spaced.json().error.message).not.toMatch(/printable/);
    // Surrounding whitespace is trimmed; the right code still finishes the same login.
    const fin = await postJson("/api/oauth/anthropic/finish", u.key, { loginId: s.loginId, code: `  ${good}\n` });
    expect(fin.status, fin.body).toBe(201);
    expect(await listAccounts(u.key)).toHaveLength(1);
  });

  it("the OpenAI login's pasted redirect address is held to the same rule", async () => {
    const u = await createUser(`cred${++n}`);
    const s = (await postJson("/api/oauth/openai/start", u.key, {})).json();
    const r = await postJson("/api/oauth/openai/finish", u.key, { loginId: s.loginId, code: "http://localhost:1455/auth/callback?code=abc\r\ndef&state=x" });
    expect(r.status).toBe(400);
    expect(r.json().error).toMatchObject({ field: "code", message: expect.stringMatching(/line break/) });
    const none = await call("/api/accounts", { key: u.key });
    expect(none.json().accounts).toHaveLength(0);
  });
});
