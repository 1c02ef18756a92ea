/** @jsxImportSource hono/jsx */
/**
 * The dashboard (docs/ARCHITECTURE.md, "Adding a dashboard page"): `GET /` is the page's shell,
 * rendered with Hono's JSX; `/assets/app.js` and `/assets/app.css` are its one script and one
 * stylesheet, built into the Worker as strings (scripts/build-dashboard.mjs). The page itself needs
 * no key: it holds nothing private, and the script signs in against the HTTP API.
 *
 * Every answer here carries a strict CSP (no inline script or style, nothing from elsewhere, no
 * framing), `nosniff` and `no-referrer`. Other paths are not matched here, so the app's notFound
 * still answers them in the API's format.
 */
import { Hono } from "hono";
import type { Env } from "../config";
import { setupCommand } from "../connect";
import { PROVIDERS } from "../providers";
import { APP_CSS, APP_JS, ASSET_VERSION } from "./assets.gen";
import { Page } from "./page";

export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
};

/** Assets are addressed with ?v=<hash of their content>: an exact match may be cached for good. */
function assetCache(version: string | undefined): string {
  return version === ASSET_VERSION ? "public, max-age=31536000, immutable" : "no-cache";
}

export const dashboard = new Hono<{ Bindings: Env }>()
  .get("/", async (c) => {
    const baseUrl = new URL(c.req.url).origin;
    const body = await (
      <Page baseUrl={baseUrl} providers={PROVIDERS.map((p) => ({ id: p.id, name: p.name, types: p.types }))} assetVersion={ASSET_VERSION} />
    ).toString();
    return c.html(`<!doctype html>\n${body}`, 200, { ...SECURITY_HEADERS, "cache-control": "no-store" });
  })
  /**
   * How a teammate gets the CLI with only Node and this address: the one-file build is served next
   * to this page (wrangler.toml [assets], built with every `wrangler dev` and `wrangler deploy`).
   */
  .get("/cli", (c) => {
    const base = new URL(c.req.url).origin;
    const text = [
      "subpool's command-line tool, served by this gateway (the same version). Node 20 or later:",
      "",
      `  ${setupCommand(base)}`,
      "",
      "or as one file:",
      "",
      `  curl -fsSLO ${base}/cli/subpool-cli.mjs && node subpool-cli.mjs setup --url ${base}`,
      "",
      `Then run it the same way each time (npx ${base}/cli/subpool-cli.tgz accounts, or node subpool-cli.mjs accounts),`,
      `or install it once as the command \`subpool\`: npm install -g ${base}/cli/subpool-cli.tgz`,
      `Next, in the same form: login anthropic | accounts | env claude-code (see --help), e.g. npx ${base}/cli/subpool-cli.tgz login anthropic.`,
      "",
    ].join("\n");
    return c.text(text, 200, { ...SECURITY_HEADERS, "cache-control": "no-cache" });
  })
  .get("/assets/app.js", (c) =>
    c.body(APP_JS, 200, { ...SECURITY_HEADERS, "content-type": "text/javascript; charset=utf-8", "cache-control": assetCache(c.req.query("v")) }),
  )
  .get("/assets/app.css", (c) =>
    c.body(APP_CSS, 200, { ...SECURITY_HEADERS, "content-type": "text/css; charset=utf-8", "cache-control": assetCache(c.req.query("v")) }),
  );
