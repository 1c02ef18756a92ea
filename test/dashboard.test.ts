import { SELF } from "cloudflare:test";
/**
 * The dashboard's routes in workerd: the page and its two assets, each under the strict CSP, and
 * nothing else taken from the API's paths. Behaviour in a browser: test/e2e/dashboard.test.mjs.
 */
import { describe, expect, it } from "vitest";
import { APP_CSS, APP_JS, ASSET_VERSION } from "../src/dashboard/assets.gen";
import { CSP } from "../src/dashboard/routes";
import { call, useGateway } from "./helpers/gateway";

useGateway();

const STRICT = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

describe("dashboard routes", () => {
  it("serves the page at / without a key, with the CSP, nosniff and no-referrer", async () => {
    expect(CSP).toBe(STRICT);
    const r = await call("/");
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toMatch(/^text\/html/);
    expect(r.headers.get("content-security-policy")).toBe(STRICT);
    expect(r.headers.get("x-content-type-options")).toBe("nosniff");
    expect(r.headers.get("referrer-policy")).toBe("no-referrer");
    expect(r.headers.get("cache-control")).toBe("no-store");
    expect(r.body.startsWith("<!doctype html>")).toBe(true);
    expect(r.body).toContain('<label for="gateway-key">Gateway key</label>');
    expect(r.body).toContain(`<script type="module" src="/assets/app.js?v=${ASSET_VERSION}"></script>`);
    // No inline script, no inline style, no inline event handler.
    expect(r.body.match(/<script\b[^>]*>/g)).toEqual([`<script type="module" src="/assets/app.js?v=${ASSET_VERSION}">`]);
    expect(r.body).not.toMatch(/\sstyle=|<style\b|\son[a-z]+=/i);
    // The connect texts use the page's own origin.
    expect(r.body).toContain("http://gw.test/anthropic");
  });

  it("serves the script and the stylesheet with the same headers; a versioned URL is immutable", async () => {
    const js = await call(`/assets/app.js?v=${ASSET_VERSION}`);
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(js.headers.get("content-security-policy")).toBe(STRICT);
    expect(js.headers.get("x-content-type-options")).toBe("nosniff");
    expect(js.headers.get("cache-control")).toContain("immutable");
    expect(js.body).toBe(APP_JS);
    const css = await call("/assets/app.css");
    expect(css.status).toBe(200);
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");
    expect(css.headers.get("referrer-policy")).toBe("no-referrer");
    expect(css.headers.get("cache-control")).toBe("no-cache");
    expect(css.body).toBe(APP_CSS);
  });

  it("leaves every other path to the API's 404", async () => {
    for (const path of ["/assets/other.js", "/index.html", "/nope"]) {
      const r = await call(path);
      expect(r.status).toBe(404);
      expect(r.json().error.type).toBe("not_found_error");
    }
  });
});

describe("the CLI from the gateway", () => {
  it("GET /cli says how to run the gateway's own CLI with only Node and this address", async () => {
    const res = await SELF.fetch("http://gw.test/cli");
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain("npx http://gw.test/cli/subpool-cli.tgz setup --url http://gw.test");
    expect(text).toContain("curl -fsSLO http://gw.test/cli/subpool-cli.mjs && node subpool-cli.mjs setup --url http://gw.test");
    // Every command it names runs as shown: no bare `subpool …` for someone who has no such command.
    expect(text).not.toMatch(/(^|[\s|:])subpool (login|accounts|env)/m);
    expect(text).toContain("npx http://gw.test/cli/subpool-cli.tgz login anthropic");
  });
});
