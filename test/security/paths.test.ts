/**
 * The proxy stays on the configured host whatever the path says, and never follows a redirect with
 * an account's credential.
 */
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { addAccount, createUser, useGateway } from "../helpers/gateway";
import { secrets } from "../helpers/secrets";
import { anthropicMessage, json } from "../helpers/upstream";

const { up } = useGateway();

const TRICKS = [
  "/../v1/messages",
  "/..%2f..%2fv1/messages",
  "/%2e%2e/%2e%2e/v1/messages",
  "/%2E%2E%2Fadmin",
  "//evil.fake/v1/messages",
  "///evil.fake/v1/messages",
  "/@evil.fake/v1/messages",
  "/v1/messages@evil.fake",
  "/\\\\evil.fake/v1/messages",
  "/%5c%5cevil.fake/v1/messages",
  "/https://evil.fake/v1/messages",
  "/http:%2f%2fevil.fake/v1/messages",
  "/v1/../../evil.fake",
  "/.%2e/.%2e/evil.fake",
  "/v1/messages?x=https://evil.fake/",
  "/v1/messages#@evil.fake",
  "/%00evil.fake/v1/messages",
  "/\tevil.fake/v1/messages",
];

describe("path tricks stay on the configured host", () => {
  it(`${TRICKS.length} tricks: every upstream call goes to anthropic.fake`, async () => {
    const u = await createUser(`paths-${crypto.randomUUID().slice(0, 8)}`);
    const key = secrets.add(`sk-ant-api03-${crypto.randomUUID()}`);
    await addAccount(u.key, { provider: "anthropic", type: "api", key });
    up().on("anthropic.fake/", () => json(anthropicMessage()));
    up().on("evil.fake/", () => json({ stolen: true }));
    for (const t of TRICKS) {
      const res = await SELF.fetch(`http://gw.test/anthropic${t}`, { method: "POST", headers: { "x-api-key": u.key, "content-type": "application/json" }, body: "{}" });
      await res.text();
      expect(res.status, t).toBeLessThan(500);
    }
    expect(up().seen.length).toBeGreaterThan(0);
    for (const s of up().seen) expect(new URL(s.url).host, s.url).toBe("anthropic.fake");
  });

  it("a redirect from the provider is passed to the client, never followed with the account's key", async () => {
    const u = await createUser(`paths-${crypto.randomUUID().slice(0, 8)}`);
    const key = secrets.add(`sk-ant-api03-${crypto.randomUUID()}`);
    await addAccount(u.key, { provider: "anthropic", type: "api", key });
    up().on("anthropic.fake/v1/messages", () => new Response(null, { status: 302, headers: { location: "https://evil.fake/collect" } }));
    up().on("evil.fake/", () => json({ stolen: true }));
    const res = await SELF.fetch("http://gw.test/anthropic/v1/messages", { method: "POST", headers: { "x-api-key": u.key, "content-type": "application/json" }, body: "{}", redirect: "manual" });
    expect(res.status).toBe(302);
    expect(up().calls("evil.fake/")).toHaveLength(0);
  });
});
