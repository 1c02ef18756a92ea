/**
 * subpool: the Hono app. Mounts the management routers and the three provider proxies, renders
 * every error once (onError) in the format of the route's client, and exports the Durable Object.
 */
import { Hono } from "hono";
import { accounts } from "./api/accounts";
import { admin } from "./api/admin";
import { adminAlerts, memberAlerts } from "./api/alerts";
import { dashboard } from "./dashboard/routes";
import { type AppEnv, requireKey, userOf } from "./auth/middleware";
import { GatewayError, apiErrorFormat, errorResponse } from "./errors";
import { PROVIDERS, providerForPath } from "./providers";
import { forward } from "./proxy/forward";
import { ZodError } from "zod";
import type { Env } from "./config";
import { countedEnv, stats } from "./stats";

export { UserPool } from "./pool/user-pool";

const app = new Hono<AppEnv>();

app.get("/healthz", (c) => c.json({ ok: true }));

// Management answers hold a member's accounts, and once a new gateway key: no cache (a browser's,
// a proxy's) may keep one. Set after the route ran, so errors and 404s carry it too.
for (const path of ["/api/*", "/admin/*"]) {
  app.use(path, async (c, next) => {
    await next();
    c.res.headers.set("cache-control", "no-store");
  });
}

app.route("/admin/alerts", adminAlerts);
app.route("/api/alerts", memberAlerts);
app.route("/admin", admin);
app.route("/api", accounts);
app.route("/", dashboard);

for (const provider of Object.values(PROVIDERS)) {
  app.all(`${provider.prefix}/*`, requireKey, async (c) => {
    const me = userOf(c.var.principal);
    stats.proxied++;
    const url = new URL(c.req.url);
    return forward({
      env: c.env,
      cfg: c.var.cfg,
      userId: me.userId,
      provider,
      request: c.req.raw,
      path: url.pathname.slice(provider.prefix.length),
      search: url.search,
      waitUntil: (p) => c.executionCtx.waitUntil(p),
    });
  });
}

/** Errors on a proxy route speak that provider's format; everything else the management API's. */
const formatForPath = (path: string) => providerForPath(path)?.errorFormat ?? apiErrorFormat;
const prefixes = PROVIDERS.map((p) => p.prefix).join(", ");

app.notFound((c) => {
  const path = new URL(c.req.url).pathname;
  return errorResponse(
    formatForPath(path),
    new GatewayError(404, "not_found_error", `no route ${c.req.method} ${path}: proxies live under ${prefixes}; management under /api and /admin`),
  );
});

app.onError((err, c) => {
  const format = formatForPath(new URL(c.req.url).pathname);
  if (err instanceof GatewayError) return errorResponse(format, err);
  if (err instanceof ZodError) return errorResponse(format, new GatewayError(400, "invalid_request_error", "invalid input"));
  // Unexpected: log the kind and message (our own messages never carry secrets), answer generically.
  console.error(`subpool: ${c.req.method} ${new URL(c.req.url).pathname} failed: ${err.name}: ${err.message}`);
  return errorResponse(format, new GatewayError(500, "api_error", "subpool hit an internal error; the request was not completed"));
});

export default {
  fetch(request, env, ctx) {
    stats.requests++;
    return app.fetch(request, countedEnv(env), ctx);
  },
} satisfies ExportedHandler<Env>;
