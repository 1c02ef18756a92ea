/**
 * The credential rule (docs/ARCHITECTURE.md, "Faults"), as properties: "Credentials (API keys, tokens) are printable ASCII without spaces
 * (0x21–0x7E), at most 8 KiB; anything else is refused with 400 naming the field", and "a stored
 * credential that cannot be sent as a header value: that account gets a lastError and is skipped;
 * the next account serves". credential-rules.test.ts lists the cases one by one; here the bad
 * character and its place are random, and the token endpoint is the source of the bad value.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { call, createUser, listAccounts, postJson, useGateway, type Answer } from "../helpers/gateway";
import { secrets } from "../helpers/secrets";
import { json } from "../helpers/upstream";
import { clip, fcParams, unsendableSecretArb } from "./arbitraries";

const { up } = useGateway();

describe("credentials are printable ASCII without spaces, at most 8 KiB", () => {
  type Place = { what: string; path: string; field: string; body: (bad: string) => unknown };
  const good = () => secrets.add(`sk-good-${crypto.randomUUID()}`);
  const PLACES: Place[] = [
    { what: "API key", path: "/api/accounts", field: "key", body: (bad) => ({ provider: "anthropic", type: "api", key: bad }) },
    { what: "refresh token", path: "/api/accounts", field: "refresh", body: (bad) => ({ provider: "anthropic", type: "oauth", refresh: bad }) },
    { what: "access token", path: "/api/accounts", field: "access", body: (bad) => ({ provider: "openai", type: "oauth", refresh: good(), access: bad }) },
    { what: "opencode API key", path: "/api/import", field: "key", body: (bad) => ({ anthropic: { type: "api", key: bad } }) },
    { what: "opencode refresh token", path: "/api/import", field: "refresh", body: (bad) => ({ "github-copilot": { type: "oauth", refresh: bad } }) },
    { what: "Claude Code refresh token", path: "/api/import", field: "refreshToken", body: (bad) => ({ claudeAiOauth: { refreshToken: bad, accessToken: good() } }) },
  ];

  it("an unsendable credential is refused with 400 naming the field, and nothing is stored", async () => {
    const u = await createUser(`creds-${crypto.randomUUID().slice(0, 8)}`);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...PLACES.map((p) => p.what)), unsendableSecretArb, async (what, bad) => {
        const place = PLACES.find((p) => p.what === what)!;
        const before = (await listAccounts(u.key)).length;
        const r = await postJson(place.path, u.key, place.body(bad));
        const where = `${place.what} ${JSON.stringify(clip(bad, 60))} at ${place.path}: ${r.status} ${clip(r.body, 300)}`;
        if (r.status === 200 && place.path === "/api/import") {
          // A per-entry refusal is as good as a 400 for a file.
          expect(r.json().imported, where).toEqual([]);
          expect(r.json().refused[0]?.reason, where).toContain(place.field);
        } else {
          expect(r.status, where).toBe(400);
          expect(r.json().error.field, where).toBe(place.field);
        }
        expect(await listAccounts(u.key), where).toHaveLength(before);
      }),
      fcParams(30),
    );
  }, 60_000);
});

describe("a stored credential that cannot be a header value is skipped, never a 500", () => {
  const ask = (path: string, key: string, body: unknown) =>
    call(path, { method: "POST", key, headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" }, body: JSON.stringify(body) });
  const anthropicBody = { model: "claude-sonnet-4-5", max_tokens: 16, messages: [{ role: "user", content: "hi" }] };

  /** The healthy second account served, twice (the bad one is not retried into a 500 either). */
  async function expectServedByTheOther(first: Answer, again: () => Promise<Answer>, healthyId: string) {
    expect(first.status, first.body).toBe(200);
    expect(first.headers.get("x-subpool-account")).toBe(healthyId);
    const second = await again();
    expect(second.status, second.body).toBe(200);
  }

  // The refresh must not store what it cannot send: found as a 500 on every request while this
  // suite was written (fixed since by the header check in the proxy); kept as a guard. The upstream
  // refuses the OAuth account's token (401), so the gateway refreshes, and the token endpoint
  // answers with an access token that cannot be a header value.
  it("an access token from the token endpoint with a newline: the next account serves, the OAuth one gets a lastError", async () => {
    const u = await createUser(`tok-${crypto.randomUUID().slice(0, 8)}`);
    const grant = up().anthropicAuth.grant();
    const oauth = (await postJson("/api/accounts", u.key, { provider: "anthropic", type: "oauth", refresh: grant.refresh, access: grant.access, expires: Date.now() + 3_600_000 })).json();
    const apiKey = secrets.add(`sk-ant-api03-${crypto.randomUUID()}`);
    const healthy = (await postJson("/api/accounts", u.key, { provider: "anthropic", type: "api", key: apiKey })).json();
    up().on("anthropic.fake/v1/messages", (_r, cred) =>
      cred === apiKey
        ? json({ id: "msg_1", type: "message", role: "assistant", content: [], usage: { input_tokens: 1, output_tokens: 1 } })
        : json({ type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } }, 401),
    );
    const bad = secrets.add(`bad-access-${crypto.randomUUID()}\nX-Injected: 1`);
    up().anthropicAuth.forced = [{ status: 200, body: { access_token: bad, refresh_token: secrets.add(`r2-${crypto.randomUUID()}`), expires_in: 3600 } }];
    await expectServedByTheOther(await ask("/anthropic/v1/messages", u.key, anthropicBody), () => ask("/anthropic/v1/messages", u.key, anthropicBody), healthy.id);
    expect(up().anthropicAuth.forced, "the gateway never asked the token endpoint").toEqual([]);
    const after = (await listAccounts(u.key)).find((a) => a.id === oauth.id)!;
    expect(after.lastError).toEqual(expect.any(String));
  }, 60_000);
});
