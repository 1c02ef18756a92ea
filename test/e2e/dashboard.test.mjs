// The dashboard in a real browser: headless Chromium (Debian's `chromium`, driven by playwright-core)
// against the gateway started the README's way (`npm run dev`, test/e2e/gateway.mjs) and a fake
// provider on 127.0.0.1 that also plays GitHub's device flow. Offline: nothing leaves 127.0.0.1.
//
// One gateway, one browser, one user ("alice") for the whole file; the tests run in order and build
// on each other (add, cool, reorder, rename, delete, log in, connect), then the admin flow runs in a
// fresh browser context with ADMIN_TOKEN, then the team views (issue 18: the team table with a
// member whose login died, limits, a member's limits, the team's and a member's alert webhooks
// against a local receiver on 127.0.0.1), and the CSP check last.
//
// Screenshots for the README: SCREENSHOTS=1 npm run test:e2e -- --test-name-pattern=dashboard
// (or `SCREENSHOTS=1 npx node --test test/e2e/dashboard.test.mjs`) writes docs/screenshots/*.png.
// CHROMIUM=/path/to/chromium overrides /usr/bin/chromium.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { chromium } from "playwright-core";
import { ROOT, startGateway } from "./gateway.mjs";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"];
const SHOTS = process.env.SCREENSHOTS ? join(ROOT, "docs", "screenshots") : null;
const LAPTOP = { width: 1280, height: 860 };
const PHONE = { width: 390, height: 844 };
const STRICT_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const COOLDOWN_S = 300;

const tag = randomBytes(5).toString("hex");
const KEYS = {
  work: `sk-ant-api03-dash-work-${tag}`,
  limited: `sk-ant-api03-dash-limited-${tag}`,
  refused: `sk-ant-api03-dash-refused-${tag}`,
  flaky: `sk-ant-api03-dash-flaky-${tag}`,
  old: `sk-proj-dash-old-${tag}`,
  openai: `sk-proj-dash-openai-${tag}`,
  carol: `sk-ant-api03-dash-carol-${tag}`,
  deadAccess: `sk-ant-oat01-dash-dead-${tag}`,
  deadRefresh: `sk-ant-ort01-dash-dead-${tag}`,
};
const secrets = [...Object.values(KEYS)];

// ---------------------------------------------------------------------------------------------
// The fake provider: Anthropic's /v1/messages (a key with "limited" in it is rate limited) and
// GitHub's device flow + Copilot token exchange (shapes as in test/helpers/upstream.ts DeviceFlow).
// ---------------------------------------------------------------------------------------------

/** device code -> { userCode, approved } */
const devices = new Map();
/** Keys with "flaky" in them that were rate limited once already (the second request is served). */
const flakyOnce = new Set();

function send(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

function fakeProvider(req, res, body) {
  const url = new URL(req.url ?? "/", "http://fake");
  const now = Date.now();
  // Credential checks (free): Anthropic's count_tokens, OpenAI's model list. A key with "bad" in it is refused.
  if (url.pathname === "/v1/messages/count_tokens" || url.pathname === "/v1/models") {
    const key = String(req.headers["x-api-key"] ?? req.headers.authorization ?? "");
    if (key.includes("bad")) return send(res, 401, { type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } });
    return send(res, 200, url.pathname === "/v1/models" ? { object: "list", data: [{ id: "gpt-fake", object: "model" }] } : { input_tokens: 12 });
  }
  if (url.pathname === "/v1/messages") {
    const key = String(req.headers["x-api-key"] ?? "");
    if (key.includes("limited")) {
      return send(res, 429, { type: "error", error: { type: "rate_limit_error", message: "This request would exceed your rate limit (fake)." } }, { "retry-after": String(COOLDOWN_S) });
    }
    // A key the provider refuses on requests (its free check passes: revoked since, say).
    if (key.includes("refused")) return send(res, 401, { type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } });
    // A key rate limited for one second, once.
    if (key.includes("flaky") && !flakyOnce.has(key)) {
      flakyOnce.add(key);
      return send(res, 429, { type: "error", error: { type: "rate_limit_error", message: "This request would exceed your rate limit (fake)." } }, { "retry-after": "1" });
    }
    // A subscription (OAuth) answer carries the unified 5-hour and weekly windows; an API key's its budgets.
    const subscription = String(req.headers.authorization ?? "").startsWith("Bearer sk-ant-oat01-");
    const limits = subscription
      ? {
          "anthropic-ratelimit-unified-status": "allowed",
          "anthropic-ratelimit-unified-5h-utilization": "0.34",
          "anthropic-ratelimit-unified-5h-reset": String(Math.floor((now + 3 * 3_600_000 + 12 * 60_000) / 1000)),
          "anthropic-ratelimit-unified-7d-utilization": "0.71",
          "anthropic-ratelimit-unified-7d-reset": String(Math.floor((now + 4 * 86_400_000) / 1000)),
        }
      : {
          "anthropic-ratelimit-requests-limit": "50",
          "anthropic-ratelimit-requests-remaining": "31",
          "anthropic-ratelimit-requests-reset": new Date(now + 40_000).toISOString(),
          "anthropic-ratelimit-tokens-limit": "100000",
          "anthropic-ratelimit-tokens-remaining": "42000",
          "anthropic-ratelimit-tokens-reset": new Date(now + 25_000).toISOString(),
        };
    return send(
      res,
      200,
      {
        id: `msg_${randomBytes(8).toString("hex")}`,
        type: "message",
        role: "assistant",
        model: "claude-sonnet-4-5",
        content: [{ type: "text", text: "Hello from the fake provider." }],
        stop_reason: "end_turn",
        stop_sequence: null,
        usage: { input_tokens: 1200, output_tokens: 350, cache_read_input_tokens: 5000, cache_creation_input_tokens: 800 },
      },
      limits,
    );
  }
  // Claude's login: the token endpoint redeems a pasted code (any code but "used") and the usage
  // endpoint tells the subscription's 5-hour and weekly windows.
  if (url.pathname === "/v1/oauth/token" && req.method === "POST") {
    const j = JSON.parse(body || "{}");
    if (j.grant_type !== "authorization_code" || j.code === "used" || !j.code_verifier) return send(res, 400, { error: "invalid_grant", error_description: "code already used" });
    const access = `sk-ant-oat01-${randomBytes(16).toString("hex")}`;
    const refresh = `sk-ant-ort01-${randomBytes(16).toString("hex")}`;
    secrets.push(access, refresh);
    return send(res, 200, { token_type: "Bearer", access_token: access, refresh_token: refresh, expires_in: 28_800, account: { uuid: "uuid-e2e", email_address: "claude-e2e@example.com" }, organization: { uuid: "org-e2e" } });
  }
  if (url.pathname === "/api/oauth/usage") {
    return send(res, 200, {
      five_hour: { utilization: 34, resets_at: new Date(now + 3 * 3_600_000 + 12 * 60_000).toISOString() },
      seven_day: { utilization: 71, resets_at: new Date(now + 4 * 86_400_000).toISOString() },
    });
  }
  if (url.pathname === "/login/device/code" && req.method === "POST") {
    const deviceCode = `dc_${randomBytes(12).toString("hex")}`;
    const userCode = `${randomBytes(2).toString("hex")}-${randomBytes(2).toString("hex")}`.toUpperCase();
    devices.set(deviceCode, { userCode, approved: false });
    secrets.push(deviceCode);
    return send(res, 200, { device_code: deviceCode, user_code: userCode, verification_uri: `http://${req.headers.host}/login/device`, expires_in: 900, interval: 1 });
  }
  if (url.pathname === "/login/oauth/access_token" && req.method === "POST") {
    const j = JSON.parse(body || "{}");
    const d = devices.get(j.device_code);
    if (!d) return send(res, 200, { error: "incorrect_device_code" });
    if (!d.approved) return send(res, 200, { error: "authorization_pending" });
    devices.delete(j.device_code);
    const gh = `gho_${randomBytes(16).toString("hex")}`;
    secrets.push(gh);
    return send(res, 200, { access_token: gh, token_type: "bearer", scope: "read:user" });
  }
  if (url.pathname === "/user") return send(res, 200, { id: 4242, login: "octo-e2e" });
  if (url.pathname === "/copilot_internal/v2/token") {
    const t = `tid=${randomBytes(16).toString("hex")}`;
    secrets.push(t);
    return send(res, 200, { token: t, expires_at: Math.floor(now / 1000) + 1800, refresh_in: 1500 });
  }
  send(res, 404, { type: "error", error: { type: "not_found_error", message: `fake provider: no ${url.pathname}` } });
}

/** The person enters the code on "GitHub" and approves. */
function approveDevice(userCode) {
  for (const d of devices.values()) if (d.userCode === userCode) d.approved = true;
}

// ---------------------------------------------------------------------------------------------

/** @type {import("./gateway.mjs").Gateway} */
let gw;
/** @type {import("node:http").Server} */
let fake;
/** @type {import("playwright-core").Browser} */
let browser;
/** @type {import("playwright-core").BrowserContext} */
let ctx;
/** @type {import("playwright-core").Page} */
let page;
let alice = { id: "", key: "" };
/** The admin's browser context for the team views (made by the first team test, closed in after). */
let admin = { ctx: /** @type {import("playwright-core").BrowserContext | null} */ (null), page: /** @type {import("playwright-core").Page} */ (/** @type {unknown} */ (null)) };
/** A local alert receiver: every delivery it got; a path with "fail" in it answers 500. */
const deliveries = [];
/** @type {import("node:http").Server} */
let receiver;
let receiverUrl = "";
/** Every CSP report the browser logged, on every page (the deliberate ones come last). */
const cspReports = [];
/** Uncaught errors in the page's own script. */
const pageErrors = [];

function watch(p) {
  p.on("console", (m) => {
    if (/Content Security Policy/i.test(m.text())) cspReports.push(m.text());
  });
  p.on("pageerror", (e) => pageErrors.push(String(e)));
}

async function newContext() {
  const c = await browser.newContext({ viewport: LAPTOP, locale: "en-US", timezoneId: "UTC", colorScheme: "light" });
  await c.grantPermissions(["clipboard-read", "clipboard-write"], { origin: gw.url });
  return c;
}

async function shot(name, p = page, fullPage = true) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
}

const card = (label, p = page) => p.locator(`li.card[data-label="${label}"]`);
const group = (name, p = page) => p.locator("section.group").filter({ has: p.locator("h2", { hasText: name }) });

async function listAccounts() {
  const r = await gw.api("GET", "/api/accounts", alice.key);
  assert.equal(r.status, 200, r.text);
  return r.json.accounts;
}

/** What the page shows, with every secret the test knows of checked to be absent. */
async function assertNoSecretsInPage(p = page, allowed = []) {
  const html = await p.content();
  for (const s of [...secrets, alice.key, gw.adminToken]) {
    if (!s || allowed.includes(s)) continue;
    assert.ok(!html.includes(s), `the page shows a secret (${s.slice(0, 12)}…)`);
  }
}

/** m:ss or h:mm:ss -> seconds. */
function seconds(text) {
  const parts = text.trim().split(":").map(Number);
  assert.ok(parts.length >= 2 && parts.every((n) => Number.isInteger(n)), `not a countdown: ${JSON.stringify(text)}`);
  return parts.reduce((s, n) => s * 60 + n, 0);
}

describe("dashboard in a browser", { timeout: 180_000 }, () => {
  before(async () => {
    assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: install Debian's package (apt-get install -y chromium) or set CHROMIUM=/path`);
    fake = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => fakeProvider(req, res, body));
    });
    await new Promise((r) => fake.listen(0, "127.0.0.1", () => r(undefined)));
    const fakeUrl = `http://127.0.0.1:${/** @type {import("node:net").AddressInfo} */ (fake.address()).port}`;
    receiver = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        deliveries.push({ path: req.url ?? "", headers: req.headers, body });
        res.writeHead((req.url ?? "").includes("fail") ? 500 : 200, { "content-type": "text/plain" });
        res.end("ok");
      });
    });
    await new Promise((r) => receiver.listen(0, "127.0.0.1", () => r(undefined)));
    receiverUrl = `http://127.0.0.1:${/** @type {import("node:net").AddressInfo} */ (receiver.address()).port}`;
    const started = Date.now();
    [gw, browser] = await Promise.all([
      startGateway({
        vars: {
          ANTHROPIC_API_BASE: fakeUrl,
          ANTHROPIC_AUTHORIZE_URL: `${fakeUrl}/oauth/authorize`,
          ANTHROPIC_TOKEN_URL: `${fakeUrl}/v1/oauth/token`,
          OPENAI_API_BASE: fakeUrl,
          GITHUB_BASE: fakeUrl,
          GITHUB_API_BASE: fakeUrl,
        },
        secrets: () => secrets,
      }),
      chromium.launch({ executablePath: CHROMIUM, args: ARGS }),
    ]);
    const u = await gw.api("POST", "/admin/users", gw.adminToken, { name: "alice", role: "member" });
    assert.equal(u.status, 201, u.text);
    alice = u.json;
    secrets.push(alice.key);
    ctx = await newContext();
    page = await ctx.newPage();
    watch(page);
    console.log(`# gateway + browser up in ${Date.now() - started} ms`);
  });

  after(async () => {
    await admin.ctx?.close().catch(() => {});
    await browser?.close().catch(() => {});
    await gw?.stop();
    await new Promise((r) => (fake ? fake.close(() => r(undefined)) : r(undefined)));
    await new Promise((r) => (receiver ? receiver.close(() => r(undefined)) : r(undefined)));
  });

  it("serves the page, its script and its stylesheet under the strict CSP, nosniff, no-referrer", async () => {
    for (const path of ["/", "/assets/app.js", "/assets/app.css"]) {
      const r = await fetch(gw.url + path);
      assert.equal(r.status, 200, path);
      assert.equal(r.headers.get("content-security-policy"), STRICT_CSP, path);
      assert.equal(r.headers.get("x-content-type-options"), "nosniff", path);
      assert.equal(r.headers.get("referrer-policy"), "no-referrer", path);
      assert.equal(r.headers.get("set-cookie"), null, path);
    }
    const missing = await fetch(`${gw.url}/no-such-page`);
    assert.equal(missing.status, 404);
    assert.equal((await missing.json()).error.type, "not_found_error");
  });

  it("signed out: asks for the gateway key; a wrong key is refused with a message that says so", async () => {
    await page.goto(`${gw.url}/`);
    const field = page.getByLabel("Gateway key");
    await field.waitFor();
    assert.equal(await field.getAttribute("type"), "password");
    await shot("signed-out");
    await field.fill(`sp_${randomBytes(32).toString("base64url")}`);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("#sign-in-error").filter({ hasText: "not accepted" }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    assert.ok(await field.isVisible());
    // An empty field is refused in words too.
    await field.fill("");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("#sign-in-error").filter({ hasText: "Enter your gateway key" }).waitFor();
  });

  it("signs in by keyboard; the key stays in sessionStorage (no cookie) and is not in the page", async () => {
    const field = page.getByLabel("Gateway key");
    await field.focus();
    await page.keyboard.type(alice.key);
    await page.keyboard.press("Enter");
    await page.locator("#who-name", { hasText: "alice" }).waitFor();
    assert.equal(await page.evaluate(() => document.cookie), "");
    const stored = await page.evaluate(() => Object.values(sessionStorage));
    assert.deepEqual(stored, [alice.key]);
    assert.ok(await page.getByRole("heading", { name: "Accounts", level: 1 }).isVisible());
    await page.getByText("No accounts yet").waitFor();
    assert.equal(await page.getByRole("link", { name: "Admin" }).isVisible(), false, "members see no Admin view");
    await assertNoSecretsInPage();
  });

  it("adds an API key and shows it under its provider, active, without the key", async () => {
    await page.locator("#add-provider").selectOption({ label: "Anthropic" });
    await page.getByLabel("API key", { exact: true }).fill(KEYS.work);
    await page.locator("#add-label").fill("work key");
    await page.getByRole("button", { name: "Add API key" }).click();
    const c = card("work key");
    await c.waitFor();
    assert.match(await c.locator(".badge").innerText(), /^Active/);
    assert.ok(await group("Anthropic").locator('li.card[data-label="work key"]').isVisible());
    assert.equal(await page.locator("#add-key").inputValue(), "", "the key field is cleared");
    assert.match(await page.locator("#flash").innerText(), /Added “work key”/);
    await assertNoSecretsInPage();
  });

  it("says in words what is wrong with a key it cannot add", async () => {
    await page.locator("#add-key").fill("");
    await page.getByRole("button", { name: "Add API key" }).click();
    await page.locator("#add-key-error", { hasText: "Paste the API key first." }).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), "add-key");

    const bad = `sk-ant-api03-dash-bad-${tag}`;
    secrets.push(bad);
    await page.locator("#add-key").fill(bad);
    await page.locator("#add-label").fill("bad key");
    await page.getByRole("button", { name: "Add API key" }).click();
    // A gateway that checks keys on adding refuses it in words; an older one keeps it (removed here).
    const refused = page.locator("#add-key-error", { hasText: /^Could not add the key: Anthropic refused this credential/ });
    await Promise.race([refused.waitFor(), card("bad key").waitFor()]);
    if (await card("bad key").count()) {
      const id = (await listAccounts()).find((a) => a.label === "bad key").id;
      assert.equal((await gw.api("DELETE", `/api/accounts/${id}`, alice.key)).status, 204);
      await page.reload();
      await card("work key").waitFor();
    } else {
      assert.ok(!(await listAccounts()).some((a) => a.label === "bad key"), "nothing was stored");
      await page.locator("#add-key").fill("");
    }
    await page.locator("#add-label").fill("");
  });

  it("a 429 makes a cooldown appear by itself (the page refreshes) and its m:ss countdown runs", async () => {
    // A second key, moved to the front, so that the next request meets the 429 first.
    await page.locator("#add-key").fill(KEYS.limited);
    await page.locator("#add-label").fill("team key");
    await page.getByRole("button", { name: "Add API key" }).click();
    await card("team key").waitFor();
    assert.ok(await card("team key").getByRole("button", { name: /^Move down/ }).isDisabled());
    await card("team key").getByRole("button", { name: /^Move up/ }).click();
    await page.waitForFunction(() => document.querySelector("li.card")?.getAttribute("data-label") === "team key");
    assert.deepEqual((await listAccounts()).sort((a, b) => a.position - b.position).map((a) => a.label), ["team key", "work key"]);

    // One request through the gateway: team key answers 429 (cooldown), work key serves it.
    const r = await fetch(`${gw.url}/anthropic/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": alice.key, "anthropic-version": "2023-06-01", "content-type": "application/json" },
      body: JSON.stringify({ model: "claude-sonnet-4-5", max_tokens: 16, messages: [{ role: "user", content: "hi" }] }),
    });
    assert.equal(r.status, 200, await r.text());

    // No reload, no click: the page's own refresh (every 10 s) shows it.
    const badge = card("team key").locator(".badge");
    await badge.filter({ hasText: "Cooling down" }).waitFor({ timeout: 15_000 });
    const countdown = card("team key").locator(".countdown");
    const first = seconds(await countdown.innerText());
    assert.ok(first > COOLDOWN_S - 30 && first <= COOLDOWN_S, `countdown starts near ${COOLDOWN_S} s: ${first}`);
    await sleep(2200);
    const second = seconds(await countdown.innerText());
    assert.ok(second < first && second >= first - 4, `the countdown runs: ${first} then ${second}`);
    assert.match(await countdown.innerText(), /^\d+:\d\d$/);
    assert.match(await card("team key").innerText(), /429 rate limited/);
    assert.match(await card("work key").innerText(), /1 succeeded/);
  });

  it("reorders with Move down / Move up (PATCH position), by keyboard; the focus stays on the card", async () => {
    await card("team key").getByRole("button", { name: /^Move down/ }).focus();
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => document.querySelector("li.card")?.getAttribute("data-label") === "work key");
    // "Move down" is disabled at the end: the focus moves to the card's first usable button.
    await page.waitForFunction(() => document.activeElement?.closest("li.card")?.getAttribute("data-label") === "team key");
    assert.equal(await page.evaluate(() => document.activeElement?.tagName), "BUTTON");
    const list = (await listAccounts()).sort((a, b) => a.position - b.position);
    assert.deepEqual(list.map((a) => [a.label, a.position]), [["work key", 1], ["team key", 2]]);
    assert.ok(await card("work key").getByRole("button", { name: /^Move up/ }).isDisabled());
  });

  it("renames, disables and enables an account", async () => {
    await card("work key").getByRole("button", { name: /^Rename/ }).click();
    const input = page.getByLabel("New name");
    await input.fill("main key");
    await input.press("Enter");
    await card("main key").waitFor();
    assert.ok((await listAccounts()).some((a) => a.label === "main key"));

    await card("main key").getByRole("button", { name: /^Disable/ }).click();
    await card("main key").locator(".badge", { hasText: "Disabled" }).waitFor();
    assert.equal((await listAccounts()).find((a) => a.label === "main key").enabled, false);
    await card("main key").getByRole("button", { name: /^Enable/ }).click();
    await card("main key").locator(".badge", { hasText: "Active" }).waitFor();
    assert.equal((await listAccounts()).find((a) => a.label === "main key").enabled, true);
  });

  it("checks an account: shows the gateway's answer, or says the check is not available", async () => {
    await card("main key").getByRole("button", { name: /^Check/ }).click();
    const note = card("main key").locator(".note.check");
    await note.filter({ hasNotText: "Checking…" }).waitFor();
    const text = await note.innerText();
    // Gateways with POST /api/accounts/:id/check answer with the provider's verdict (the fake accepts
    // the key: count_tokens answers 200); older ones do not have the route.
    const checked = (await gw.api("POST", `/api/accounts/${(await listAccounts()).find((a) => a.label === "main key").id}/check`, alice.key)).status !== 404;
    if (checked) assert.match(text, /^Check passed: the key counted tokens/);
    else assert.equal(text, "Check is not available on this gateway.");
  });

  /** A key added through the API, moved to the front (the next request meets it first). */
  async function addFirst(label, key) {
    const add = await gw.api("POST", "/api/accounts", alice.key, { provider: "anthropic", type: "api", key, label });
    assert.equal(add.status, 201, add.text);
    assert.equal((await gw.api("PATCH", `/api/accounts/${add.json.id}`, alice.key, { position: 1 })).status, 200);
    return add.json.id;
  }

  /** One request through the gateway; a new conversation each time (its text). */
  const ask = (text) =>
    fetch(`${gw.url}/anthropic/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": alice.key, "anthropic-version": "2023-06-01", "content-type": "application/json" },
      body: JSON.stringify({ model: "claude-sonnet-4-5", max_tokens: 16, messages: [{ role: "user", content: text }] }),
    });

  it("says why an account is benched: a key the provider refused is not 'rate limited'", async () => {
    const id = await addFirst("refused key", KEYS.refused);
    // The refused key answers 401 (benched AUTH_COOLDOWN_S); the next account serves.
    const r = await ask("first");
    assert.equal(r.status, 200, await r.text());
    await page.reload();
    const note = card("refused key").locator(".note");
    await note.waitFor();
    const said = await note.innerText();
    assert.match(said, /^Key refused: Anthropic did not accept this key \(upstream answered 401 \(authentication_error\)\)\. Check it, or add a new one; requests use your next account until /);
    assert.doesNotMatch(said, /rate limited/i);
    // The team key's 429 still says what it is.
    assert.match(await card("team key").locator(".note").innerText(), /^Rate limited\. Requests use your next account until /);
    assert.equal((await gw.api("DELETE", `/api/accounts/${id}`, alice.key)).status, 204);
    await page.reload();
    await card("main key").waitFor();
  });

  it("an error from before the account's last success is dated, and not in red", async () => {
    const id = await addFirst("flaky key", KEYS.flaky);
    // The flaky key answers 429 once (benched 1 s): the next account serves; a second later it serves.
    const first = await ask("once");
    assert.equal(first.status, 200, await first.text());
    await sleep(1500);
    const second = await ask("twice");
    assert.equal(second.status, 200, await second.text());
    assert.equal(second.headers.get("x-subpool-account"), id);
    await page.reload();
    const flaky = card("flaky key");
    await flaky.locator(".badge", { hasText: "Active" }).waitFor();
    const lastError = flaky.locator(".facts dd").filter({ hasText: "rate limited" });
    assert.match(await lastError.innerText(), /^rate limited · (just now|\d+ s ago), before the last success$/);
    assert.equal(await lastError.getAttribute("class"), "old-error");
    // A current error stays red: the team key is still benched for its 429.
    assert.equal(await card("team key").locator(".facts dd.error-text").count(), 1);
    assert.equal((await gw.api("DELETE", `/api/accounts/${id}`, alice.key)).status, 204);
    await page.reload();
    await card("main key").waitFor();
  });

  it("deletes only after a confirmation (Cancel keeps the account)", async () => {
    const add = await gw.api("POST", "/api/accounts", alice.key, { provider: "openai", type: "api", key: KEYS.old, label: "old key" });
    assert.equal(add.status, 201, add.text);
    await page.reload();
    await card("old key").waitFor();
    await card("old key").getByRole("button", { name: /^Delete/ }).click();
    const dialog = page.getByRole("dialog");
    await dialog.waitFor();
    assert.match(await dialog.innerText(), /Delete “old key”\?/);
    assert.equal(await page.evaluate(() => document.activeElement?.id), "confirm-cancel", "Cancel has the focus");
    await dialog.getByRole("button", { name: "Cancel" }).click();
    await dialog.waitFor({ state: "hidden" });
    assert.ok(await card("old key").isVisible());
    assert.ok((await listAccounts()).some((a) => a.label === "old key"));

    await card("old key").getByRole("button", { name: /^Delete/ }).click();
    await dialog.getByRole("button", { name: "Delete" }).click();
    await card("old key").waitFor({ state: "detached" });
    assert.ok(!(await listAccounts()).some((a) => a.label === "old key"));
    assert.match(await page.locator("#flash").innerText(), /Deleted “old key”/);
  });

  it("signs in to GitHub Copilot with the device flow: shows the code, waits, adds the account", async () => {
    await page.locator("#login-provider").selectOption({ label: "GitHub Copilot" });
    await page.getByRole("button", { name: "Start sign-in" }).click();
    const code = page.locator("#user-code");
    await code.waitFor();
    const userCode = (await code.innerText()).trim();
    assert.match(userCode, /^[0-9A-F]{4}-[0-9A-F]{4}$/);
    const link = page.locator("#login-panel a[href]");
    assert.match(await link.getAttribute("href"), /\/login\/device$/);
    assert.equal(await link.getAttribute("rel"), "noopener noreferrer");
    await page.locator("#login-panel .login-status", { hasText: "Waiting for you to approve" }).waitFor();
    await sleep(1500); // a poll or two while pending
    approveDevice(userCode);
    await page.locator("#login-panel", { hasText: "Signed in: “octo-e2e” was added" }).waitFor({ timeout: 15_000 });
    await group("GitHub Copilot").locator('li.card[data-label="octo-e2e"]').waitFor();
    assert.match(await card("octo-e2e").locator(".type").innerText(), /Subscription login/);
    await page.locator("#login-panel").getByRole("button", { name: "Close" }).click();
    await assertNoSecretsInPage();
  });

  it("signs in to Claude by pasting the code: wrong pastes explained, then the account is added", async () => {
    await page.locator("#login-provider").selectOption({ label: "Anthropic" });
    await page.locator("#login-label").fill("claude max");
    await page.getByRole("button", { name: "Start sign-in" }).click();
    const open = page.getByRole("link", { name: "Open the sign-in page" });
    await open.waitFor();
    const href = new URL(await open.getAttribute("href"));
    assert.equal(href.pathname, "/oauth/authorize");
    assert.equal(await open.getAttribute("target"), "_blank");
    const state = href.searchParams.get("state");
    assert.ok(state);

    const field = page.getByLabel("Code from the sign-in page");
    await page.getByRole("button", { name: "Finish sign-in" }).click();
    await page.locator("#login-panel .error", { hasText: "Paste the code the sign-in page showed." }).waitFor();
    await field.fill("just-the-code");
    await page.getByRole("button", { name: "Finish sign-in" }).click();
    await page.locator("#login-panel .error", { hasText: /including the part after "#"/ }).waitFor();
    await field.fill(`used#${state}`);
    await page.getByRole("button", { name: "Finish sign-in" }).click();
    await page.locator("#login-panel .error", { hasText: /Anthropic refused the code/ }).waitFor();

    await field.fill(`fresh-code#${state}`);
    await page.getByRole("button", { name: "Finish sign-in" }).click();
    const done = page.locator("#login-panel .good", { hasText: /^Signed in: “[^”]+” was added/ });
    await done.waitFor();
    const label = /“([^”]+)”/.exec(await done.innerText())[1];
    await group("Anthropic").locator(`li.card[data-label="${label}"]`).waitFor();
    assert.match(await card(label).locator(".type").innerText(), /Subscription login/);
    await page.locator("#login-panel").getByRole("button", { name: "Close" }).click();
    await assertNoSecretsInPage();
  });

  it("accounts at laptop width: a screenshot with a cooling account", async () => {
    // One more provider and a few requests, so the page has something in every part: the Claude
    // login first for one request (its answer tells the 5-hour and weekly windows), then back last.
    await gw.api("POST", "/api/accounts", alice.key, { provider: "openai", type: "api", key: KEYS.openai, label: "openai key" });
    const claude = (await listAccounts()).find((a) => a.type === "oauth" && a.provider === "anthropic");
    assert.equal((await gw.api("PATCH", `/api/accounts/${claude.id}`, alice.key, { position: 1 })).status, 200);
    for (let i = 0; i < 4; i++) {
      if (i === 1) assert.equal((await gw.api("PATCH", `/api/accounts/${claude.id}`, alice.key, { position: 3 })).status, 200);
      await fetch(`${gw.url}/anthropic/v1/messages`, {
        method: "POST",
        headers: { "x-api-key": alice.key, "anthropic-version": "2023-06-01", "content-type": "application/json" },
        body: JSON.stringify({ model: "claude-sonnet-4-5", max_tokens: 16, messages: [{ role: "user", content: `hello ${i}` }] }),
      });
    }
    await page.goto(`${gw.url}/#accounts`);
    await page.reload();
    await card("openai key").waitFor();
    await card("team key").locator(".countdown").waitFor();
    await sleep(500);
    await shot("accounts");
  });

  it("quota bars with their resets and the 14-day usage chart render from the API's shapes; no data says so", async () => {
    // The browser sees these shapes from the gateway (docs: GET /api/accounts "quota",
    // GET /api/accounts/:id/usage); set here in the browser so the rendering is checked on its own.
    const now = Date.now();
    const day = (offset) => new Date(now - offset * 86_400_000).toISOString().slice(0, 10);
    await page.route(/\/api\/accounts$/, async (route) => {
      const res = await route.fetch();
      const body = await res.json();
      body.accounts = body.accounts.map((a) =>
        a.label === "main key"
          ? { ...a, quota: { status: "allowed_warning", windows: { "7d": { utilization: 0.91, resetsAt: now + 3 * 86_400_000 }, "5h": { utilization: 0.42, resetsAt: now + 2 * 3_600_000 + 60_000 } }, updatedAt: now - 60_000 } }
          : { ...a, quota: null },
      );
      await route.fulfill({ response: res, json: body });
    });
    await page.route(/\/api\/accounts\/[^/]+\/usage\?days=14$/, async (route) => {
      const main = (await listAccounts()).find((a) => a.label === "main key");
      const days = route.request().url().includes(main.id)
        ? [0, 1, 3, 20].map((o, i) => ({ date: day(o), requests: 10 * (i + 1), inputTokens: 1000 * (i + 1), outputTokens: 300, cacheReadTokens: 5000, cacheWriteTokens: 0 }))
        : [];
      await route.fulfill({ json: { days } });
    });
    try {
      await page.goto(`${gw.url}/#accounts`);
      await page.reload(); // a new document: the usage cache starts empty
      const c = card("main key");
      await c.locator("meter").first().waitFor();
      assert.deepEqual(await c.locator(".bars label").allInnerTexts(), ["5-hour window", "Weekly window"]);
      assert.deepEqual(await c.locator("meter").evaluateAll((ms) => ms.map((m) => m.value)), [0.42, 0.91]);
      const bars = await c.locator(".bars").innerText();
      assert.match(bars, /42 % used · resets in 2 h 1 min/);
      assert.match(bars, /91 % used · resets in 3 days/);
      assert.match(await c.locator(".quota h4").innerText(), /Near the limit/);
      // The chart: 14 days, the one 20 days ago left out.
      await c.locator("svg.chart").waitFor();
      assert.equal(await c.locator("svg.chart rect").count(), 14);
      assert.equal(await c.locator("svg.chart rect.bar:not(.zero)").count(), 3);
      assert.match(await c.locator(".usage").innerText(), /^Usage, last 14 days[\s\S]*60 requests/i);
      assert.match(await card("team key").locator(".quota").innerText(), /Quota: no data yet/);
      assert.match(await card("team key").locator(".usage").innerText(), /Usage: no requests in the last 14 days/);
    } finally {
      await page.unrouteAll();
    }
  });

  it("settings: saves the strategy, or is hidden on a gateway without settings", async () => {
    const r = await gw.api("GET", "/api/settings", alice.key);
    const link = page.getByRole("link", { name: "Settings" });
    if (r.status === 404) {
      await page.goto(`${gw.url}/#settings`);
      await page.waitForFunction(() => !document.querySelector('#nav [data-view="settings"]')?.checkVisibility());
      assert.equal(await link.isVisible(), false);
      return;
    }
    assert.equal(r.status, 200, r.text);
    await link.click();
    await page.getByLabel("Strategy").selectOption("round-robin");
    await page.getByRole("button", { name: "Save settings" }).click();
    await page.locator("#flash:not(:empty), #settings-error:not(:empty)").first().waitFor();
    assert.equal(await page.locator("#settings-error").innerText(), "");
    assert.match(await page.locator("#flash").innerText(), /Settings saved/);
    assert.equal((await gw.api("GET", "/api/settings", alice.key)).json.strategy, "round-robin");
    await page.getByLabel("Quota threshold, % of a window").fill("250");
    await page.getByRole("button", { name: "Save settings" }).click();
    await page.locator("#settings-error", { hasText: /percentage/ }).waitFor();
  });

  it("connect your tools: the base URL and each tool's settings; the key only on demand; copy", async () => {
    await page.goto(`${gw.url}/#connect`);
    await page.getByRole("heading", { name: "Connect your tools", level: 1 }).waitFor();
    const origin = new URL(gw.url).origin;
    assert.equal(await page.locator("#base-url").innerText(), origin);
    const claude = page.locator("#connect-claude-code");
    assert.match(await claude.innerText(), new RegExp(`ANTHROPIC_BASE_URL="${origin.replace(/\./g, "\\.")}/anthropic"`));
    for (const id of ["opencode", "codex", "anthropic-sdk", "openai-sdk", "copilot"]) {
      assert.ok((await page.locator(`#connect-${id}`).innerText()).includes(origin), id);
    }
    await assertNoSecretsInPage();
    await shot("connect", page, false);

    await page.getByLabel("Show with my key").check();
    assert.ok((await claude.innerText()).includes(`ANTHROPIC_API_KEY='${alice.key}'`));
    assert.ok((await page.locator("#connect-opencode").innerText()).includes(`"apiKey": "${alice.key}"`));
    await page.getByRole("button", { name: "Copy the Claude Code settings" }).click();
    assert.ok((await page.evaluate(() => navigator.clipboard.readText())).includes(alice.key));
    await page.getByLabel("Shell").selectOption("fish");
    assert.ok((await claude.innerText()).includes(`set -gx ANTHROPIC_API_KEY '${alice.key}'`));
    await page.getByLabel("Show with my key").uncheck();
    await assertNoSecretsInPage();
    await page.getByLabel("Shell").selectOption("sh");
  });

  it("reads at phone width: nothing overflows sideways", async () => {
    await page.setViewportSize(PHONE);
    for (const view of ["accounts", "connect"]) {
      await page.goto(`${gw.url}/#${view}`);
      await page.locator(`[data-view-panel="${view}"]`).waitFor();
      await sleep(300);
      const [scroll, inner] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
      assert.ok(scroll <= inner, `${view}: ${scroll} px wide in a ${inner} px window`);
      if (view === "accounts") await shot("accounts-phone", page, false);
    }
    await page.setViewportSize(LAPTOP);
  });

  it("signs out: the key is forgotten, also after a reload", async () => {
    await page.goto(`${gw.url}/#accounts`);
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("Gateway key").waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    await page.reload();
    await page.getByLabel("Gateway key").waitFor();
    assert.equal(await page.locator("#who").isVisible(), false);
    await assertNoSecretsInPage();
  });

  it("admin: adds a user (key shown once, copy), rotates its key, deletes it after a confirmation", async () => {
    const actx = await newContext();
    const ap = await actx.newPage();
    watch(ap);
    try {
      await ap.goto(`${gw.url}/`);
      await ap.getByLabel("Gateway key").fill(gw.adminToken);
      await ap.getByRole("button", { name: "Sign in" }).click();
      await ap.getByRole("heading", { name: "Admin", level: 1 }).waitFor();
      assert.equal(await ap.getByRole("link", { name: "Accounts" }).isVisible(), false, "the admin token owns no accounts");
      await ap.locator("#root-note").waitFor();
      await ap.locator("#users tr", { hasText: "alice" }).waitFor();

      await ap.getByLabel("Name").fill("bob");
      await ap.getByRole("button", { name: "Add user" }).click();
      const shown = ap.locator("#new-key");
      await shown.waitFor();
      const bobKey = (await shown.innerText()).trim();
      secrets.push(bobKey);
      assert.match(bobKey, /^sp_[\w-]{20,}$/);
      assert.equal((await gw.api("GET", "/api/me", bobKey)).json.name, "bob");
      await ap.getByRole("button", { name: "Copy key" }).click();
      assert.equal(await ap.evaluate(() => navigator.clipboard.readText()), bobKey);
      // What bob runs, as `subpool users add` prints it: the CLI this gateway serves, set up against it.
      const setup = `npx ${gw.url}/cli/subpool-cli.tgz setup --url ${gw.url}`;
      assert.match(await ap.locator("#new-key-slot").innerText(), /bob runs this \(Node 20 or later is all it takes\) and pastes the key when asked/);
      assert.equal((await ap.locator("#setup-command").innerText()).trim(), setup);
      await ap.getByRole("button", { name: "Copy command" }).click();
      assert.equal(await ap.evaluate(() => navigator.clipboard.readText()), setup);
      await ap.locator("#users tr", { hasText: "bob" }).waitFor();
      await shot("admin", ap);
      await ap.getByRole("button", { name: "Done, hide the key" }).click();
      await shown.waitFor({ state: "detached" });
      await assertNoSecretsInPage(ap);

      // Rotate: asks first, shows the new key once, the old one dies.
      const row = ap.locator("#users tr", { hasText: "bob" });
      await row.getByRole("button", { name: /^New key/ }).click();
      await ap.getByRole("dialog").getByRole("button", { name: "Make a new key" }).click();
      await shown.waitFor();
      const rotated = (await shown.innerText()).trim();
      secrets.push(rotated);
      assert.notEqual(rotated, bobKey);
      assert.equal((await gw.api("GET", "/api/me", bobKey)).status, 401);
      assert.equal((await gw.api("GET", "/api/me", rotated)).status, 200);
      await ap.getByRole("button", { name: "Done, hide the key" }).click();

      // Delete: Cancel keeps bob; Delete removes him.
      await row.getByRole("button", { name: /^Delete/ }).click();
      await ap.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
      assert.ok(await row.isVisible());
      await row.getByRole("button", { name: /^Delete/ }).click();
      await ap.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
      await row.waitFor({ state: "detached" });
      const users = (await gw.api("GET", "/admin/users", gw.adminToken)).json.users;
      assert.deepEqual(users.map((u) => u.name), ["alice"]);
      assert.equal((await gw.api("GET", "/api/me", rotated)).status, 401);
      await assertNoSecretsInPage(ap);
    } finally {
      await actx.close();
    }
  });

  // ---- the team views (issue 18): the admin's team table, limits and alerts; a member's limits and alerts ----

  const compactFmt = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });
  const fullFmt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const dayTokens = (d) => d.inputTokens + d.outputTokens + d.cacheReadTokens + d.cacheWriteTokens;
  const teamRow = (name, p = admin.page) => p.locator(`#users tr[data-name="${name}"]`);
  const sign = (secret, body) => `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;

  /** A page signed in with `key` in a fresh context (its own sessionStorage). */
  async function signedIn(key, name) {
    const c = await newContext();
    const p = await c.newPage();
    watch(p);
    await p.goto(`${gw.url}/`);
    await p.getByLabel("Gateway key").fill(key);
    await p.getByRole("button", { name: "Sign in" }).click();
    await p.locator("#who-name", { hasText: name }).waitFor();
    return { c, p };
  }

  it("team: the admin sees each member's usage and account health; a member whose account needs a new login stands out", async () => {
    // carol: a Claude login whose session cannot be renewed (the token endpoint refuses the refresh
    // token), found by a check, and an API key that serves one request.
    const made = await gw.api("POST", "/admin/users", gw.adminToken, { name: "carol", role: "member" });
    assert.equal(made.status, 201, made.text);
    const carol = made.json;
    secrets.push(carol.key);
    const dead = await gw.api("POST", "/api/accounts?check=false", carol.key, {
      provider: "anthropic",
      type: "oauth",
      access: KEYS.deadAccess,
      refresh: KEYS.deadRefresh,
      expires: Date.now() - 60_000,
      label: "carol claude",
    });
    assert.equal(dead.status, 201, dead.text);
    const check = await gw.api("POST", `/api/accounts/${dead.json.id}/check`, carol.key);
    assert.equal(check.json?.account?.status, "needs_reauth", check.text);
    assert.equal((await gw.api("POST", "/api/accounts", carol.key, { provider: "anthropic", type: "api", key: KEYS.carol, label: "carol key" })).status, 201);
    const r = await fetch(`${gw.url}/anthropic/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": carol.key, "anthropic-version": "2023-06-01", "content-type": "application/json" },
      body: JSON.stringify({ model: "claude-sonnet-4-5", max_tokens: 16, messages: [{ role: "user", content: "hi from carol" }] }),
    });
    assert.equal(r.status, 200, await r.text());

    const { c, p } = await signedIn(gw.adminToken, "the admin token");
    admin = { ctx: c, page: p };
    await p.getByRole("heading", { name: "Admin", level: 1 }).waitFor();
    await teamRow("carol").waitFor();

    // carol: highlighted, with a badge, and named in the summary on top.
    assert.match(await teamRow("carol").getAttribute("class"), /\bneeds-login\b/);
    assert.equal(await teamRow("carol").locator(".badge").innerText(), "1 needs a new login");
    assert.match(await teamRow("carol").locator('td[data-th="Accounts"]').innerText(), /^2: 1 active\s+1 needs a new login$/);
    assert.match(await p.locator("#needs-login-summary").innerText(), /^1 member has an account that needs a new login: carol\. /);
    assert.equal(await teamRow("alice").getAttribute("class"), null);
    assert.equal(await teamRow("alice").locator(".badge").count(), 0);

    // alice's numbers are the API's: today, the window, last seen; no limits yet.
    const usage = (await gw.api("GET", "/admin/usage?days=30", gw.adminToken)).json.users;
    const a = usage.find((u) => u.name === "alice");
    const today = a.days.at(-1);
    assert.ok(today.requests >= 4, JSON.stringify(today));
    const used = async (name, th) => (await teamRow(name).locator(`td[data-th="${th}"]`).innerText()).replace(/\s+/g, " ");
    assert.equal(await used("alice", "Today"), `${compactFmt.format(dayTokens(today))} tokens ${today.requests} requests`);
    const winReq = a.days.reduce((s, d) => s + d.requests, 0);
    const winTok = a.days.reduce((s, d) => s + dayTokens(d), 0);
    assert.equal(await used("alice", "Last 30 days"), `${compactFmt.format(winTok)} tokens ${fullFmt.format(winReq)} requests`);
    assert.match(await teamRow("alice").locator('td[data-th="Last seen"]').innerText(), /^(just now|\d+ (s|min) ago)$/);
    assert.equal(await teamRow("alice").locator('td[data-th="Limits"]').innerText(), "none");
    // When alice was added: the day in short (this year's, so no year), the moment in the time element.
    const added = teamRow("alice").locator('td[data-th="Added"] time');
    assert.equal(await added.innerText(), new Intl.DateTimeFormat("en-US", { month: "short", day: "numeric", timeZone: "UTC" }).format(a.createdAt));
    assert.equal(await added.getAttribute("datetime"), new Date(a.createdAt).toISOString());
    assert.equal(await used("carol", "Today"), `${compactFmt.format(7350)} tokens 1 request`);

    // The chart: a bar per day of the window, stacked by member, with a legend.
    const bars = p.locator(".team-chart svg.chart > rect, .team-chart svg.chart > g");
    assert.equal(await bars.count(), 30);
    assert.deepEqual((await p.locator(".team-chart .legend li").allInnerTexts()).map((t) => t.replace(/\s+/g, " ")), [`alice ${compactFmt.format(winTok)}`, `carol ${compactFmt.format(7350)}`]);
    assert.match(await p.locator(".team-chart svg.chart").getAttribute("aria-label"), /^The team's tokens per UTC day over the last 30 days, by member/);
    // Another window.
    await p.getByLabel("Usage over").selectOption("7");
    await p.locator("#team-window-head", { hasText: "Last 7 days" }).waitFor();
    await p.waitForFunction(() => document.querySelectorAll(".team-chart svg.chart > rect, .team-chart svg.chart > g").length === 7);
    await p.getByLabel("Usage over").selectOption("30");
    await p.locator("#team-window-head", { hasText: "Last 30 days" }).waitFor();
    await assertNoSecretsInPage(p);
  });

  it("team: sets a member's limits in a dialog, by keyboard; a value the gateway refuses is shown in its words", async () => {
    const p = admin.page;
    const limitsButton = teamRow("alice").getByRole("button", { name: /^Limits/ });
    await limitsButton.click();
    const dlg = p.getByRole("dialog", { name: "Limits for alice" });
    await dlg.waitFor();
    assert.equal(await p.evaluate(() => document.activeElement?.id), "limit-rpm");
    await dlg.getByLabel("Tokens per day").fill("-5");
    await dlg.getByRole("button", { name: "Save limits" }).click();
    await p.locator("#limits-error", { hasText: /^Tokens per day: must be 0 or more \(0 stops the member\)\.?$/ }).waitFor();
    assert.equal(await p.locator("#limit-day").getAttribute("aria-invalid"), "true");
    assert.equal(await p.evaluate(() => document.activeElement?.id), "limit-day");
    // Escape closes without saving; the focus goes back to the row's button.
    await p.keyboard.press("Escape");
    await dlg.waitFor({ state: "hidden" });
    assert.equal(await p.evaluate(() => document.activeElement?.dataset.focusKey), `${alice.id}:limits`);
    const none = (await gw.api("GET", "/admin/users", gw.adminToken)).json.users.find((u) => u.name === "alice").limits;
    assert.deepEqual(none, { requestsPerMinute: null, tokensPerDay: null, tokensPerMonth: null, models: null });

    // Enter on the focused button opens it again; Enter in a field saves.
    await p.keyboard.press("Enter");
    await dlg.waitFor();
    assert.equal(await p.locator("#limits-error").innerText(), "");
    await p.keyboard.type("60");
    await dlg.getByLabel("Tokens per day").fill("2M");
    await dlg.getByLabel("Tokens per month").fill("50,000,000");
    await dlg.getByLabel("Models").fill("claude-sonnet-*, claude-haiku-*");
    await dlg.getByLabel("Models").press("Enter");
    await dlg.waitFor({ state: "hidden" });
    const cell = teamRow("alice").locator('td[data-th="Limits"]');
    await cell.filter({ hasText: "60 req/min" }).waitFor();
    assert.deepEqual(await cell.locator(".lim").allInnerTexts(), ["60 req/min", "2M tokens/day", "50M tokens/month", "models: claude-sonnet-*, claude-haiku-*"]);
    assert.match(await p.locator("#flash").innerText(), /^Limits for alice saved/);
    const set = (await gw.api("GET", "/admin/users", gw.adminToken)).json.users.find((u) => u.name === "alice").limits;
    assert.deepEqual(set, { requestsPerMinute: 60, tokensPerDay: 2_000_000, tokensPerMonth: 50_000_000, models: ["claude-sonnet-*", "claude-haiku-*"] });
    await p.waitForFunction(() => document.activeElement?.closest("tr")?.getAttribute("data-name") === "alice");

    // A limit of 0 stops the member: said so (in red), not "0 req/min", which reads like a member who sent nothing.
    await limitsButton.click();
    await dlg.waitFor();
    await dlg.getByLabel("Requests per minute").fill("0");
    await dlg.getByLabel("Tokens per month").fill("0");
    await dlg.getByRole("button", { name: "Save limits" }).click();
    await dlg.waitFor({ state: "hidden" });
    await cell.filter({ hasText: "stopped" }).waitFor();
    assert.deepEqual(await cell.locator(".lim").allInnerTexts(), ["stopped (0 requests/minute)", "2M tokens/day", "no tokens allowed (0/month)", "models: claude-sonnet-*, claude-haiku-*"]);
    assert.equal(await cell.locator(".lim.error-text").count(), 2);
    assert.match(await cell.getAttribute("title"), /^stopped: no requests allowed \(0 requests per minute\); 2,000,000 tokens per UTC day; no tokens allowed \(0 tokens per UTC month\)/);
    // Back to what the member's views below expect.
    const back = await gw.api("PATCH", `/admin/users/${alice.id}`, gw.adminToken, { limits: { requestsPerMinute: 60, tokensPerMonth: 50_000_000 } });
    assert.equal(back.status, 200, back.text);
    await p.reload();
    await cell.filter({ hasText: "60 req/min" }).waitFor();

    // At phone width the table becomes one block per member: nothing overflows sideways.
    await p.setViewportSize(PHONE);
    await sleep(300);
    const [scroll, inner] = await p.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(scroll <= inner, `admin: ${scroll} px wide in a ${inner} px window`);
    await p.setViewportSize(LAPTOP);
  });

  it("team: the chart stacks the five members who used the most and the rest; the summary counts who needs a new login (a larger team, from the API's shape)", async () => {
    // A fresh gateway has one day of usage and two members: the browser sees a month of a team of
    // eight here (GET /admin/usage's shape, the real answer plus made-up members and earlier days),
    // so the rendering is checked at that size, and the README's screenshot shows it.
    const p = admin.page;
    const wave = (seed, i) => Math.round((Math.sin(seed * 7 + i * 0.9) + 1.3) * 90_000 * (((i + seed) % 7) < 5 ? 1 : 0.3));
    const day = (date, tokens) => ({ date, requests: Math.round(tokens / 4000), inputTokens: Math.round(tokens * 0.2), outputTokens: Math.round(tokens * 0.05), cacheReadTokens: Math.round(tokens * 0.7), cacheWriteTokens: tokens - Math.round(tokens * 0.2) - Math.round(tokens * 0.05) - Math.round(tokens * 0.7) });
    const made = [
      { name: "dave", role: "admin", seed: 1, scale: 2.2, accounts: { total: 3, active: 3, cooling: 0, needsReauth: 0, disabled: 0 }, limits: { requestsPerMinute: null, tokensPerDay: null, tokensPerMonth: null, models: null } },
      { name: "erin", role: "member", seed: 2, scale: 1.4, accounts: { total: 2, active: 0, cooling: 0, needsReauth: 2, disabled: 0 }, limits: { requestsPerMinute: 30, tokensPerDay: 1_000_000, tokensPerMonth: null, models: null } },
      { name: "frank", role: "member", seed: 3, scale: 0.9, accounts: { total: 2, active: 1, cooling: 1, needsReauth: 0, disabled: 0 }, limits: { requestsPerMinute: null, tokensPerDay: null, tokensPerMonth: 20_000_000, models: null } },
      { name: "grace", role: "member", seed: 4, scale: 0.6, accounts: { total: 1, active: 1, cooling: 0, needsReauth: 0, disabled: 0 }, limits: { requestsPerMinute: null, tokensPerDay: null, tokensPerMonth: null, models: ["claude-haiku-*"] } },
      { name: "heidi", role: "member", seed: 5, scale: 0.3, accounts: { total: 1, active: 0, cooling: 0, needsReauth: 0, disabled: 1 }, limits: { requestsPerMinute: null, tokensPerDay: null, tokensPerMonth: null, models: null } },
      { name: "ivan", role: "member", seed: 6, scale: 0, accounts: { total: 0, active: 0, cooling: 0, needsReauth: 0, disabled: 0 }, limits: { requestsPerMinute: null, tokensPerDay: null, tokensPerMonth: null, models: null } },
    ];
    await p.route(/\/admin\/usage\?days=\d+$/, async (route) => {
      const res = await route.fetch();
      const body = await res.json();
      const dates = body.users[0].days.map((d) => d.date);
      // The real members keep today; their earlier days are made up too.
      for (const u of body.users) u.days = u.days.map((d, i) => (i === dates.length - 1 ? d : day(d.date, Math.round(wave(u.name.length, i) * (u.name === "alice" ? 1.6 : 0.5)))));
      for (const [k, m] of made.entries()) {
        body.users.push({
          id: `u_made${String(k).padStart(12, "0")}`,
          name: m.name,
          role: m.role,
          lastSeenAt: m.scale ? Date.now() - (k + 1) * 2_400_000 : null,
          createdAt: Date.now() - (k + 3) * 86_400_000,
          accounts: m.accounts,
          limits: m.limits,
          days: dates.map((date, i) => day(date, Math.round(wave(m.seed, i) * m.scale))),
        });
      }
      await route.fulfill({ response: res, json: body });
    });
    try {
      await p.reload();
      await teamRow("ivan").waitFor();
      assert.match(await p.locator("#needs-login-summary").innerText(), /^2 members have accounts that need a new login: carol, erin\. /);
      assert.deepEqual(await p.locator("#users tr.needs-login").evaluateAll((rows) => rows.map((r) => r.dataset.name)), ["carol", "erin"]);
      assert.match(await p.locator(".team-glance").innerText(), /^8 members · 7 made requests today · /);
      // Five colours for the five who used the most, one for the rest.
      const legend = (await p.locator(".team-chart .legend li").allInnerTexts()).map((t) => t.replace(/\s+/g, " "));
      assert.equal(legend.length, 6, legend.join(" | "));
      assert.deepEqual(legend.slice(0, 5).map((t) => t.split(" ")[0]), ["dave", "alice", "erin", "frank", "grace"]);
      assert.match(legend[5], /^2 other members [\d.]+[KM]$/);
      assert.equal(await p.locator(".team-chart svg.chart > rect, .team-chart svg.chart > g").count(), 30);
      assert.equal(await p.locator(".team-chart svg.chart > g.stack").first().locator("rect.s0").count(), 1);
      assert.match(await p.locator(".team-chart svg.chart > g.stack title").last().textContent(), /^[A-Z][a-z]{2} \d+: [\d.]+[KM] tokens, \d+ requests; dave [\d.]+[KM], alice/);
      assert.equal(await teamRow("ivan").locator('td[data-th="Last seen"]').innerText(), "never");
      assert.equal(await teamRow("ivan").locator('td[data-th="Accounts"]').innerText(), "none");
      assert.match(await teamRow("ivan").locator('td[data-th="Added"]').innerText(), /^[A-Z][a-z]{2} \d{1,2}(, \d{4})?$/);
      assert.equal(await teamRow("dave").locator("th .role").innerText(), "admin");
      if (SHOTS) {
        await p.evaluate(() => {
          window.scrollTo(0, 0);
          document.activeElement?.blur();
        });
        await p.locator('section[aria-labelledby="users-title"]').screenshot({ path: join(SHOTS, "team.png") });
      }
    } finally {
      await p.unrouteAll();
    }
    await p.reload();
    await teamRow("alice").waitFor();
    assert.equal(await teamRow("ivan").count(), 0);
  });

  it("limits: a member sees their limits and what is left, on Accounts and in Settings", async () => {
    const { c, p } = await signedIn(alice.key, "alice");
    try {
      const line = p.locator("#limits-line");
      await line.waitFor();
      const me = (await gw.api("GET", "/api/me", alice.key)).json;
      assert.deepEqual(me.limits.models, ["claude-sonnet-*", "claude-haiku-*"]);
      const before = me.left.tokensPerDay;
      assert.ok(before > 0 && before < 2_000_000, `something was spent today: ${before} left`);
      const text = await line.innerText();
      assert.ok(text.startsWith(`Team limits: ${fullFmt.format(before)} of 2,000,000 tokens left today (resets in `), text);
      assert.match(text, /· [\d,]+ of 50,000,000 tokens left this month \(resets in [^)]+\) · \d+ of 60 requests left this minute \(resets in \d+ s\) · models: claude-sonnet-\*, claude-haiku-\* Details$/);
      assert.equal(await line.getByRole("link", { name: "Details" }).getAttribute("href"), "#settings");

      // One more request (7,350 tokens): once the gateway counts it, Settings shows what is left now.
      const r = await fetch(`${gw.url}/anthropic/v1/messages`, {
        method: "POST",
        headers: { "x-api-key": alice.key, "anthropic-version": "2023-06-01", "content-type": "application/json" },
        body: JSON.stringify({ model: "claude-sonnet-4-5", max_tokens: 16, messages: [{ role: "user", content: "within my limits" }] }),
      });
      assert.equal(r.status, 200, await r.text());
      let left = before;
      for (let i = 0; i < 40 && left === before; i++) {
        left = (await gw.api("GET", "/api/me", alice.key)).json.left.tokensPerDay;
        if (left === before) await sleep(250);
      }
      assert.equal(left, before - 7350);
      await line.getByRole("link", { name: "Details" }).click();
      const day = p.locator('#my-limits li[data-limit="Tokens per UTC day"]');
      await day.filter({ hasText: `${fullFmt.format(left)} of 2,000,000 tokens left today` }).waitFor();
      assert.match(await day.innerText(), /resets in \d+ (h|min|s)/);
      assert.equal(await day.locator("meter").evaluate((m) => m.value), 2_000_000 - left);
      assert.deepEqual(await p.locator("#my-limits .bars label").allInnerTexts(), ["Tokens per UTC day", "Tokens per UTC month", "Requests per minute"]);
      assert.match(await p.locator("#my-limits .models").innerText(), /^Models: claude-sonnet-\*, claude-haiku-\* \(requests for other models are refused with 403\)$/);
      await assertNoSecretsInPage(p);
    } finally {
      await c.close();
    }
  });

  it("alerts: the team webhook saves and shows its secret once; a test reaches a local receiver, signed; the last delivery shows; removed after asking", async () => {
    const p = admin.page;
    const panel = p.locator("#team-alerts");
    await panel.scrollIntoViewIfNeeded();
    await panel.locator("#team-alerts-current", { hasText: "No webhook is set" }).waitFor();
    // A URL the gateway refuses, in its words.
    await panel.getByLabel("Webhook URL").fill("http://example.com/hook");
    await panel.getByRole("button", { name: "Save webhook" }).click();
    await panel.locator("#team-alerts-error", { hasText: /^Could not save the webhook: the URL was refused: http: is taken only to a loopback address/ }).waitFor();
    assert.equal(await panel.getByLabel("Webhook URL").getAttribute("aria-invalid"), "true");

    const hookPath = `/hooks/team-${tag}`;
    await panel.getByLabel("Webhook URL").fill(`${receiverUrl}${hookPath}`);
    await panel.getByLabel("An account's quota window crossed its member's threshold").uncheck();
    await panel.getByRole("button", { name: "Save webhook" }).click();
    const shown = p.locator("#team-alerts-secret-value");
    await shown.waitFor();
    const secret = (await shown.innerText()).trim();
    assert.match(secret, /^whsec_[\w-]{20,}$/);
    secrets.push(secret);
    assert.equal(await p.evaluate(() => document.activeElement?.id), "team-alerts-secret-title");
    await panel.getByRole("button", { name: "Copy secret" }).click();
    assert.equal(await p.evaluate(() => navigator.clipboard.readText()), secret);
    assert.equal(await panel.getByLabel("Webhook URL").inputValue(), "", "the form is cleared");
    const target = (await gw.api("GET", "/admin/alerts", gw.adminToken)).json;
    assert.deepEqual(target.events, ["account.needs_reauth", "account.refused", "pool.exhausted", "limit.reached"]);
    assert.equal(target.secret, undefined);

    // What is set: the host only (a webhook's path is often its secret), the events in words.
    const current = panel.locator("#team-alerts-current");
    assert.match(await current.innerText(), new RegExp(`Sends to\\s+${receiverUrl.replace(/[.]/g, "\\.")}/…`));
    assert.ok(!(await p.content()).includes(hookPath), "the webhook's path is not shown");
    assert.match(await current.innerText(), /Events\s+An account needs a new login; A provider refused an account's key; A request found every account of a provider cooling down; A member hit a team limit/);
    assert.match(await panel.locator("#team-alerts-last").innerText(), /^none yet$/);

    // Send a test: the receiver gets it, signed with the secret just shown.
    const sent = deliveries.length;
    await panel.getByRole("button", { name: /^Send a test/ }).click();
    await panel.locator("#team-alerts-result", { hasText: "Test delivered: the receiver answered 200." }).waitFor();
    const got = deliveries.slice(sent).find((d) => d.path === hookPath);
    assert.ok(got, "the receiver got the test");
    assert.equal(JSON.parse(got.body).event, "test");
    assert.equal(got.headers["x-subpool-signature"], sign(secret, got.body));
    assert.ok(!got.body.includes(secret));
    await panel.locator("#team-alerts-last", { hasText: /^delivered: the receiver answered 200 · (just now|\d+ s ago)$/ }).waitFor();
    if (SHOTS) await panel.screenshot({ path: join(SHOTS, "alerts.png") });

    // The secret goes once hidden, and is not shown again (a reload shows none).
    await panel.getByRole("button", { name: "Done, hide the secret" }).click();
    await shown.waitFor({ state: "detached" });
    await assertNoSecretsInPage(p);
    await p.reload();
    await panel.locator("#team-alerts-last", { hasText: /^delivered/ }).waitFor();
    assert.equal(await shown.count(), 0);
    await assertNoSecretsInPage(p);

    // A receiver that fails: the test says so, and so does the last delivery.
    await panel.getByLabel("Webhook URL").fill(`${receiverUrl}/fail-${tag}`);
    await panel.getByRole("button", { name: "Save webhook" }).click();
    await shown.waitFor();
    secrets.push((await shown.innerText()).trim());
    await panel.getByRole("button", { name: "Done, hide the secret" }).click();
    await panel.getByRole("button", { name: /^Send a test/ }).click();
    await panel.locator("#team-alerts-result", { hasText: /^Test not delivered: 127\.0\.0\.1(:\d+)? answered 500\.$/ }).waitFor();
    assert.match(await panel.locator("#team-alerts-result").getAttribute("class"), /\berror\b/);
    await panel.locator("#team-alerts-last.error-text", { hasText: /^not delivered: .*answered 500 · / }).waitFor();

    // Remove: Cancel keeps it; Remove removes it.
    await panel.getByRole("button", { name: /^Remove/ }).click();
    await p.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
    assert.equal((await gw.api("GET", "/admin/alerts", gw.adminToken)).status, 200);
    await panel.getByRole("button", { name: /^Remove/ }).click();
    await p.getByRole("dialog").getByRole("button", { name: "Remove" }).click();
    await panel.locator("#team-alerts-current", { hasText: "No webhook is set" }).waitFor();
    assert.equal((await gw.api("GET", "/admin/alerts", gw.adminToken)).status, 404);
    await assertNoSecretsInPage(p);
  });

  it("alerts: a member sets their own webhook in Settings; the test is signed and names them", async () => {
    const { c, p } = await signedIn(alice.key, "alice");
    try {
      await p.goto(`${gw.url}/#settings`);
      const panel = p.locator("#my-alerts");
      await panel.locator("#my-alerts-current", { hasText: "No webhook is set" }).waitFor();
      const hookPath = `/hooks/alice-${tag}`;
      await panel.getByLabel("Webhook URL").fill(`${receiverUrl}${hookPath}`);
      await panel.getByLabel("Webhook URL").press("Enter");
      const shown = p.locator("#my-alerts-secret-value");
      await shown.waitFor();
      const secret = (await shown.innerText()).trim();
      secrets.push(secret);
      assert.equal((await gw.api("GET", "/api/alerts", alice.key)).json.events, null, "every event");
      assert.match(await panel.locator("#my-alerts-current").innerText(), /Events\s+every event/);
      const sent = deliveries.length;
      await panel.getByRole("button", { name: /^Send a test/ }).click();
      await panel.locator("#my-alerts-result", { hasText: "Test delivered: the receiver answered 200." }).waitFor();
      const got = deliveries.slice(sent).find((d) => d.path === hookPath);
      assert.ok(got, "the receiver got the test");
      const body = JSON.parse(got.body);
      assert.equal(body.event, "test");
      assert.equal(body.user.name, "alice");
      assert.equal(got.headers["x-subpool-signature"], sign(secret, got.body));
      await panel.getByRole("button", { name: "Done, hide the secret" }).click();
      await shown.waitFor({ state: "detached" });
      assert.equal(await p.evaluate(() => document.activeElement?.id), "my-alerts-url");
      await assertNoSecretsInPage(p);
      // At phone width Settings (limits, alerts) does not overflow either.
      await p.setViewportSize(PHONE);
      await sleep(300);
      const [scroll, inner] = await p.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
      assert.ok(scroll <= inner, `settings: ${scroll} px wide in a ${inner} px window`);
    } finally {
      await c.close();
    }
  });

  it("a key rotated meanwhile signs the page out with a message", async () => {
    await page.goto(`${gw.url}/`);
    await page.getByLabel("Gateway key").fill(alice.key);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("#who-name", { hasText: "alice" }).waitFor();
    const r = await gw.api("POST", `/admin/users/${alice.id}/key`, gw.adminToken);
    assert.equal(r.status, 200);
    secrets.push(r.json.key);
    alice.key = r.json.key;
    // The next call the page makes (here: the view's load; else the 10 s refresh) meets the 401.
    await page.evaluate(() => (location.hash = location.hash === "#connect" ? "#accounts" : "#connect"));
    await page.evaluate(() => (location.hash = "#accounts"));
    await page.locator("#sign-in-error", { hasText: "no longer accepted" }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  });

  it("CSP: the page's own script ran with no violation; an injected inline script or handler does not run", async () => {
    assert.deepEqual(cspReports, [], "no CSP violation while using the dashboard");
    assert.deepEqual(pageErrors, [], "no uncaught error in the page's script");
    const fresh = await ctx.newPage();
    watch(fresh);
    try {
      const res = await fresh.goto(`${gw.url}/`);
      assert.equal(res?.headers()["content-security-policy"], STRICT_CSP);
      await fresh.getByLabel("Gateway key").waitFor();
      // The page's script did run (it set this class): the CSP lets 'self' scripts through.
      assert.ok(await fresh.evaluate(() => document.documentElement.classList.contains("js")));
      await fresh.evaluate(() => {
        window.__violations = [];
        document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(e.violatedDirective));
      });

      await fresh.addScriptTag({ content: "window.__inlineRan = true;" }).catch(() => {});
      await fresh.evaluate(() => {
        const s = document.createElement("script");
        s.textContent = "window.__inlineRan2 = true;";
        document.body.append(s);
        const b = document.createElement("button");
        b.setAttribute("onclick", "window.__handlerRan = true");
        document.body.append(b);
        b.click();
        const img = document.createElement("img");
        img.setAttribute("onerror", "window.__handlerRan2 = true");
        img.src = "data:,";
        document.body.append(img);
      });
      await sleep(300);
      const ran = await fresh.evaluate(() => [window.__inlineRan, window.__inlineRan2, window.__handlerRan, window.__handlerRan2]);
      assert.deepEqual(ran, [undefined, undefined, undefined, undefined]);
      const violations = await fresh.evaluate(() => window.__violations);
      assert.ok(violations.length >= 3 && violations.every((d) => d.startsWith("script-src")), JSON.stringify(violations));
      assert.ok(cspReports.length >= 3, "the browser reported the refusals");
      assert.ok(cspReports.every((t) => /script-src/.test(t)));
    } finally {
      await fresh.close();
    }
  });
});
