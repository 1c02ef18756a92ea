import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { getConfig } from "../../src/config";
import { ALERT_RETRY_DELAYS_MS, ALERT_TRIES, deliver, nextTryAt } from "../../src/alerts/deliver";
import { alertJson, alertLine, shapeOf, type AlertBody } from "../../src/alerts/payload";
import { AlertTargetBody, alertUrlProblem } from "../../src/alerts/rules";
import { parseWith } from "../../src/api/validate";
import { GatewayError } from "../../src/errors";
import { getKeyring, hmacSha256Hex, newSigningSecret, openUnderMaster, sealUnderMaster } from "../../src/vault/envelope";
import { useGateway } from "../helpers/gateway";
import { secrets } from "../helpers/secrets";
import { WebhookReceiver, signatureHolds } from "../helpers/webhook";

const { up } = useGateway();

describe("the webhook URL rule", () => {
  const allowed = [
    "https://hooks.slack.com/services/T000/B000/XXXX",
    "https://discord.com/api/webhooks/123/abc",
    "https://example.com:8443/hook?x=1",
    "HTTPS://Example.COM/hook",
    "https://10.0.0.1/hook", // https goes anywhere: a Worker reaches only the public internet
    "http://127.0.0.1:8787/hook",
    "http://127.255.3.4/hook",
    "http://localhost:3000/",
    "HTTP://LOCALHOST:3000/x",
    "http://[::1]:9000/in",
  ];
  for (const url of allowed) {
    it(`takes ${url}`, () => {
      expect(alertUrlProblem(url)).toBeNull();
    });
  }

  const refused: [string, RegExp][] = [
    ["ftp://example.com/x", /scheme ftp: is refused/],
    ["javascript:alert(1)", /scheme javascript: is refused/],
    ["data:text/plain,hi", /scheme data: is refused/],
    ["file:///etc/passwd", /scheme file: is refused/],
    ["wss://example.com/x", /scheme wss: is refused/],
    ["http://example.com/hook", /http: is taken only to a loopback address/],
    ["http://127.0.0.1.evil.com/", /loopback/],
    ["http://localhost.evil.com/", /loopback/],
    ["http://localhost./", /loopback/],
    ["http://0x7f.1/", /loopback/],
    ["http://0x7f000001/", /loopback/],
    ["http://2130706433/", /loopback/],
    ["http://127.1/", /loopback/],
    ["http://0177.0.0.1/", /loopback/],
    ["http://127.000.0.1/", /loopback/],
    ["http://127%2e0.0.1/", /loopback/],
    ["http://127\uff0e0\uff0e0\uff0e1/", /loopback/],
    ["http://[::ffff:7f00:1]/", /loopback/],
    ["http://[::ffff:127.0.0.1]/", /loopback/],
    ["http://[0:0:0:0:0:0:0:1]/", /loopback/],
    ["http://[::]/", /loopback/],
    ["http://0.0.0.0/", /loopback/],
    ["http://10.0.0.1/", /loopback/],
    ["http://user:pass@127.0.0.1/", /user name or password/],
    ["https://user:pass@example.com/", /user name or password/],
    ["https://@example.com/", /user name or password/],
    ["https://token@hooks.slack.com/services/x", /user name or password/],
    [" https://example.com/", /spaces/],
    ["https://example.com/ ", /spaces/],
    ["https://exa\tmple.com/", /spaces/],
    ["ht\ntps://example.com/", /spaces/],
    ["http://127.0.0.1\\@evil.com/", /backslashes/],
    ["https://example.com/\u200bx", /invisible/],
    ["//example.com/hook", /not an absolute URL/],
    ["example.com/hook", /not an absolute URL/],
    ["", /must not be empty/],
    [`https://example.com/${"a".repeat(2048)}`, /at most 2048/],
  ];
  for (const [url, why] of refused) {
    it(`refuses ${JSON.stringify(url.slice(0, 60))}`, () => {
      const problem = alertUrlProblem(url);
      expect(problem).toMatch(why);
    });
  }

  it("never quotes the URL back (a chat webhook's path is its secret)", () => {
    const url = "http://hooks.example.com/services/SECRETPATH0123";
    expect(alertUrlProblem(url)).not.toContain("SECRETPATH");
    const err = refusal(() => parseWith(AlertTargetBody, { url }));
    expect(err?.message).toMatch(/^url: /);
    expect(err?.message).not.toContain("SECRETPATH");
  });

  it("stores the URL as the parser prints it, so what was checked is what is fetched", () => {
    expect(parseWith(AlertTargetBody, { url: "HTTPS://Example.COM/hook" }).url).toBe("https://example.com/hook");
  });
});

describe("the alert target body", () => {
  it("events null or left out mean every event; a list is kept in the contract's order, once each", () => {
    expect(parseWith(AlertTargetBody, { url: "https://example.com/h" }).events).toBeNull();
    expect(parseWith(AlertTargetBody, { url: "https://example.com/h", events: null }).events).toBeNull();
    expect(parseWith(AlertTargetBody, { url: "https://example.com/h", events: ["quota.high", "account.refused", "quota.high"] }).events).toEqual([
      "account.refused",
      "quota.high",
    ]);
  });

  const bad: [unknown, RegExp, string][] = [
    [{ url: "https://example.com/h", events: [] }, /at least one event/, "events"],
    [{ url: "https://example.com/h", events: ["account.needs_reauth", "account.exploded"] }, /unknown event "account.exploded"/, "events"],
    [{ url: "https://example.com/h", events: "quota.high" }, /array of event names/, "events"],
    [{ url: "https://example.com/h", events: [3] }, /each event is a string/, "events.0"],
    [{ events: null }, /required/, "url"],
    [{ url: 42 }, /required: a string/, "url"],
    [{ url: "https://example.com/h", secret: "mine" }, /unknown field "secret"/, "secret"],
  ];
  for (const [body, message, field] of bad) {
    it(`refuses ${JSON.stringify(body)} naming ${field}`, () => {
      const err = refusal(() => parseWith(AlertTargetBody, body));
      expect(err?.status).toBe(400);
      expect(err?.message).toMatch(message);
      expect(err?.extra.field).toBe(field);
    });
  }
});

function refusal(f: () => unknown): GatewayError | null {
  try {
    f();
  } catch (e) {
    if (e instanceof GatewayError) return e;
    throw e;
  }
  return null;
}

const sample = (over: Partial<AlertBody> = {}): AlertBody => ({
  event: "account.needs_reauth",
  at: 1_700_000_000_000,
  user: { id: "u_aaaaaaaaaaaaaaaa", name: "alice" },
  account: { id: "acc_bbbbbbbbbbbbbbbb", provider: "anthropic", label: "work" },
  message: "The provider refused the refresh token: sign in again.",
  ...over,
});

describe("alert shapes", () => {
  it("a plain receiver gets subpool's body with exactly the contract's fields", () => {
    const j = JSON.parse(alertJson("https://example.com/h", sample())) as Record<string, unknown>;
    expect(Object.keys(j)).toEqual(["event", "at", "user", "account", "message"]);
    expect(j).toEqual(sample());
    expect(JSON.parse(alertJson("https://example.com/h", sample({ account: null }))).account).toBeNull();
  });

  it("fields a caller adds by mistake (a credential on the account object) are not sent", () => {
    const leaky = sample();
    Object.assign(leaky.account!, { key: "sk-ant-should-never-leave" });
    Object.assign(leaky.user, { gatewayKey: "sp_should-never-leave" });
    for (const url of ["https://example.com/h", "https://hooks.slack.com/services/T/B/X", "https://discord.com/api/webhooks/1/x"]) {
      const text = alertJson(url, leaky);
      expect(text).not.toContain("never-leave");
    }
  });

  it("Slack's URL gets {text}, one readable line, with Slack markup in a label shown as typed", () => {
    const url = "https://hooks.slack.com/services/T000/B000/SECRETPART";
    expect(shapeOf(url)).toBe("slack");
    const j = JSON.parse(alertJson(url, sample({ account: { id: "acc_x", provider: "anthropic", label: "<!channel> & co" }, message: 'Anthropic account "<!channel> & co" needs a new login: the refresh token was refused.' })));
    expect(Object.keys(j)).toEqual(["text"]);
    expect(j.text).toBe('subpool · alice · account.needs_reauth: Anthropic account "&lt;!channel&gt; &amp; co" needs a new login: the refresh token was refused.');
    expect(j.text).not.toContain("\n");
    expect(alertJson(url, sample())).not.toContain("SECRETPART");
  });

  it("Discord's webhook URL gets {content} with mentions turned off", () => {
    for (const url of ["https://discord.com/api/webhooks/1/SECRETPART", "https://discordapp.com/api/webhooks/1/SECRETPART"]) {
      expect(shapeOf(url)).toBe("discord");
      const pinging = sample({ account: { id: "acc_x", provider: "openai", label: "@everyone" }, message: 'OpenAI account "@everyone" needs a new login.' });
      const j = JSON.parse(alertJson(url, pinging));
      expect(Object.keys(j)).toEqual(["content", "allowed_mentions"]);
      expect(j.content).toBe(alertLine(pinging));
      expect(j.content).toContain("@everyone");
      expect(j.allowed_mentions).toEqual({ parse: [] });
      expect(alertJson(url, sample())).not.toContain("SECRETPART");
    }
  });

  it("look-alike hosts and paths get subpool's body", () => {
    for (const url of [
      "https://hooks.slack.com.evil.example/services/x",
      "https://evil.example/hooks.slack.com",
      "https://discord.com/channels/1/2",
      "https://discord.com.evil.example/api/webhooks/1/x",
      "http://localhost/api/webhooks/1/x",
    ]) {
      expect(shapeOf(url), url).toBe("subpool");
    }
  });
});

describe("signing", () => {
  it("signing secrets are fresh, prefixed, 256-bit", () => {
    const a = newSigningSecret();
    expect(a).toMatch(/^whsec_[\w-]{43}$/);
    expect(newSigningSecret()).not.toBe(a);
  });

  it("hmacSha256Hex is HMAC-SHA-256 (RFC 4231 test case 2)", async () => {
    expect(await hmacSha256Hex("Jefe", "what do ya want for nothing?")).toBe("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  });

  it("the team secret sealed under the master key opens only in its place, and survives MASTER_KEY rotation", async () => {
    const ring = await getKeyring(getConfig(env));
    const sealed = await sealUnderMaster(ring, "alerts:team", "whsec_abc");
    expect(sealed).toMatch(/^s1\.1\./);
    expect(sealed).not.toContain("whsec_abc");
    expect(await openUnderMaster(ring, "alerts:team", sealed)).toEqual({ plaintext: "whsec_abc", stale: false });
    await expect(openUnderMaster(ring, "alerts:other", sealed)).rejects.toThrow(/does not open/);
    const next = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
    const rotated = await getKeyring({ MASTER_KEY: next, MASTER_KEY_VERSION: 2, OLD_MASTER_KEYS: `1:${env.MASTER_KEY as string}` });
    expect(await openUnderMaster(rotated, "alerts:team", sealed)).toEqual({ plaintext: "whsec_abc", stale: true });
    expect(await sealUnderMaster(rotated, "alerts:team", "whsec_abc")).toMatch(/^s1\.2\./);
    const forgot = await getKeyring({ MASTER_KEY: next, MASTER_KEY_VERSION: 2, OLD_MASTER_KEYS: "" });
    await expect(openUnderMaster(forgot, "alerts:team", sealed)).rejects.toThrow(/version 1, which is not configured/);
  });
});

describe("one delivery", () => {
  it("POSTs the shaped body with a signature that verifies with the secret, and no secret in it", async () => {
    const rx = new WebhookReceiver(up());
    const secret = secrets.add(newSigningSecret());
    const r = await deliver(rx.url(), secret, sample());
    expect(r).toMatchObject({ status: 204, ok: true, error: null });
    expect(rx.got).toHaveLength(1);
    const d = rx.got[0]!;
    expect(d.headers["content-type"]).toBe("application/json");
    expect(d.headers["user-agent"]).toBe("subpool-alerts");
    expect(await signatureHolds(d, secret)).toBe(true);
    expect(await signatureHolds(d, newSigningSecret())).toBe(false);
    expect(d.json).toEqual(sample());
    expect(d.body).not.toContain(secret);
    expect(d.body).not.toContain(rx.url());
    expect(up().calls(rx.hostPath)[0]!.redirect).toBe("manual");
  });

  it("Slack and Discord shapes are signed too", async () => {
    for (const hostPath of ["hooks.slack.com/services/T/B/X", "discord.com/api/webhooks/1/x"]) {
      const rx = new WebhookReceiver(up(), hostPath);
      const secret = newSigningSecret();
      expect((await deliver(rx.url(), secret, sample())).ok).toBe(true);
      expect(await signatureHolds(rx.got[0]!, secret)).toBe(true);
    }
  });

  it("a failure says what happened without the URL's path or query", async () => {
    const rx = new WebhookReceiver(up(), "hooks.slack.com/services/T/B/SECRETPART");
    const url = `${rx.url()}?token=SECRETQUERY`;
    rx.script.push(500, 302, "refuse", "hang");
    const failed = [
      await deliver(url, "whsec_x", sample()),
      await deliver(url, "whsec_x", sample()),
      await deliver(url, "whsec_x", sample()),
      await deliver(url, "whsec_x", sample(), { timeoutMs: 200 }),
    ];
    expect(failed.map((r) => [r.status, r.ok])).toEqual([
      [500, false],
      [302, false],
      [0, false],
      [0, false],
    ]);
    expect(failed.map((r) => r.error)).toEqual([
      "hooks.slack.com answered 500",
      "hooks.slack.com answered with a redirect (302), which is not followed: set the final URL",
      "could not connect to hooks.slack.com",
      "hooks.slack.com did not answer within 200 ms",
    ]);
    for (const r of failed) expect(r.error).not.toMatch(/SECRET|whsec/);
  });

  it("is tried 3 times in all: again after 30 s, then after 5 min, then given up", () => {
    expect(ALERT_TRIES).toBe(3);
    expect(ALERT_RETRY_DELAYS_MS).toEqual([30_000, 300_000]);
    expect(nextTryAt(1, 1000)).toBe(31_000);
    expect(nextTryAt(2, 1000)).toBe(301_000);
    expect(nextTryAt(3, 1000)).toBeNull();
  });
});
