/**
 * The management routes as one table, shared by the property tests (properties.test.ts) and the
 * authorization matrix (authorization.test.ts). A new route is one row here; both files pick it up.
 *
 * Path templates name their parameters by kind (`:userId`, `:accountId`, `:provider`) so each
 * test knows which ids to fill in: random, well-formed but unknown, the caller's own, or another
 * user's.
 */
import { env } from "cloudflare:test";
import fc from "fast-check";
import { kvKeys } from "../../src/vault/records";
import { ADMIN, call, createUser, postJson } from "../helpers/gateway";
import { secrets } from "../helpers/secrets";
import { type Upstream, chatgptJwt } from "../helpers/upstream";
import { pathIdArb, secretArb } from "./arbitraries";

export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export interface User {
  id: string;
  key: string;
  name: string;
}

/** The users every test starts from. Names are unique per fixture; storage persists per file. */
export interface Fixture {
  /** A member with three accounts and two pending logins: the caller of account routes. */
  member: User & { accountIds: string[]; loginIds: { anthropic: string; copilot: string } };
  /** An admin-role user: the caller of admin routes (besides ADMIN_TOKEN). */
  admin: User;
  /** Another member, with accounts imported from `importFile`: the target of cross-user attempts. */
  victim: User & { accountIds: string[]; importFile: Record<string, unknown> };
  /** A member that admin routes may rotate or delete without disturbing the others. */
  spare: User;
}

export interface RequestParts {
  params?: Record<string, string>;
  body?: unknown;
}

export interface RouteRow {
  method: Method;
  /** Template: `/api/accounts/:accountId`. */
  path: string;
  /** `admin`: admin keys only (403 for members); `user`: any user key (403 for the bare ADMIN_TOKEN, which owns no accounts). */
  scope: "admin" | "user";
  /** `json`: reads a JSON body; `optional`: reads one when sent; `ignored`: takes none but may get one; `none`: GET. */
  body: "json" | "optional" | "ignored" | "none";
  /** What a well-behaved client sends; the property tests mutate it. */
  valid?: (fx: Fixture) => fc.Arbitrary<unknown>;
  /** Random values for the path parameters. */
  params?: (fx: Fixture) => Record<string, fc.Arbitrary<string>>;
  /** One well-formed request, for the authorization matrix. Destructive ones aim at objects whose loss the snapshot shows. */
  sample: (fx: Fixture) => RequestParts;
}

export const PROVIDERS = ["anthropic", "openai", "github-copilot"] as const;

const nameArb = fc.stringMatching(/^[a-z][a-z0-9._-]{0,14}$/);
const labelArb = fc.string({ minLength: 1, maxLength: 30 });
const provider = () => ({ provider: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...PROVIDERS) }, { weight: 2, arbitrary: pathIdArb("p") }) });

/** Bodies of the three credential files /api/import reads. */
export function importFileArb(): fc.Arbitrary<Record<string, unknown>> {
  const oauth = fc.record(
    { type: fc.constant("oauth"), refresh: secretArb, access: secretArb, expires: fc.nat() },
    { requiredKeys: ["type", "refresh"] },
  );
  const api = fc.record({ type: fc.constant("api"), key: secretArb });
  const opencode = fc
    .array(fc.tuple(fc.constantFrom("anthropic", "openai", "github-copilot", "openrouter", "vercel"), fc.oneof(oauth, api)), { minLength: 1, maxLength: 4 })
    .map((entries) => Object.fromEntries(entries));
  const claude = fc.record({
    claudeAiOauth: fc.record(
      { accessToken: secretArb, refreshToken: secretArb, expiresAt: fc.nat(), scopes: fc.constant(["user:inference"]), subscriptionType: fc.constantFrom("max", "pro") },
      { requiredKeys: ["refreshToken"] },
    ),
  });
  const codex = fc.record({
    OPENAI_API_KEY: fc.option(secretArb),
    tokens: fc.uuid().chain((u) =>
      fc.record({
        id_token: fc.constant(chatgptJwt(`acct-${u.slice(0, 8)}`, `id-${u}`)),
        access_token: fc.constant(chatgptJwt(`acct-${u.slice(0, 8)}`, `acc-${u}`)),
        refresh_token: secretArb,
        account_id: fc.constant(`acct-${u.slice(0, 8)}`),
      }),
    ),
    last_refresh: fc.constant("2026-11-01T00:00:00Z"),
  });
  return fc.oneof(opencode, claude, codex);
}

const ALERT_EVENTS = ["account.needs_reauth", "account.refused", "pool.exhausted", "quota.high", "limit.reached", "test"];
const alertUrlArb = fc.oneof(
  fc.constantFrom("https://hooks.receiver.test/in", "http://127.0.0.1:9/in", "http://0x7f.1/in", "ftp://example.com/x", "https://u:p@example.com/"),
  fc.webUrl({ withQueryParameters: true }),
  fc.string({ maxLength: 60 }),
);
const alertEventsArb = fc.oneof(fc.constant(null), fc.subarray(ALERT_EVENTS), fc.array(fc.string({ maxLength: 20 }), { maxLength: 3 }));

const newAccountArb = fc.oneof(
  fc.record({ provider: fc.constantFrom("anthropic", "openai"), type: fc.constant("api"), key: secretArb, label: labelArb }, { requiredKeys: ["provider", "type", "key"] }),
  fc.record(
    { provider: fc.constantFrom(...PROVIDERS), type: fc.constant("oauth"), refresh: secretArb, access: secretArb, expires: fc.nat(), label: labelArb },
    { requiredKeys: ["provider", "type", "refresh"] },
  ),
);

export const ROUTES: RouteRow[] = [
  // ---- admin
  {
    method: "GET",
    path: "/admin/users",
    scope: "admin",
    body: "none",
    sample: () => ({}),
  },
  {
    method: "POST",
    path: "/admin/users",
    scope: "admin",
    body: "json",
    valid: () => fc.record({ name: nameArb, role: fc.constantFrom("member", "admin") }, { requiredKeys: ["name"] }),
    sample: () => ({ body: { name: `intruder-${crypto.randomUUID().slice(0, 8)}`, role: "admin" } }),
  },
  {
    method: "DELETE",
    path: "/admin/users/:userId",
    scope: "admin",
    body: "ignored",
    params: (fx) => ({ userId: pathIdArb("u", [fx.spare.id]) }),
    sample: (fx) => ({ params: { userId: fx.spare.id } }),
  },
  {
    method: "POST",
    path: "/admin/users/:userId/key",
    scope: "admin",
    body: "ignored",
    params: (fx) => ({ userId: pathIdArb("u", [fx.spare.id]) }),
    // The member's own id: if a refusal still rotated the key, the member's snapshot read would fail.
    sample: (fx) => ({ params: { userId: fx.member.id } }),
  },
  {
    method: "POST",
    path: "/admin/rewrap",
    scope: "admin",
    body: "ignored",
    sample: () => ({}),
  },
  {
    method: "PATCH",
    path: "/admin/users/:userId",
    scope: "admin",
    body: "json",
    params: (fx) => ({ userId: pathIdArb("u", [fx.spare.id]) }),
    valid: () =>
      fc.record({
        limits: fc.record(
          {
            requestsPerMinute: fc.option(fc.nat()),
            tokensPerDay: fc.option(fc.nat()),
            tokensPerMonth: fc.option(fc.nat()),
            models: fc.option(fc.array(fc.constantFrom("claude-sonnet-*", "gpt-5*", "claude-haiku-4-5"), { maxLength: 3 })),
          },
          { requiredKeys: [] },
        ),
      }),
    // If a refusal still changed them, GET /admin/users (in the state snapshot) would show it.
    sample: (fx) => ({ params: { userId: fx.spare.id }, body: { limits: { requestsPerMinute: 0, models: ["nothing"] } } }),
  },
  {
    method: "GET",
    path: "/admin/usage",
    scope: "admin",
    body: "none",
    sample: () => ({}),
  },
  {
    method: "GET",
    path: "/admin/stats",
    scope: "admin",
    body: "none",
    sample: () => ({}),
  },
  // ---- the caller's own
  {
    method: "GET",
    path: "/api/me",
    scope: "user",
    body: "none",
    sample: () => ({}),
  },
  {
    method: "GET",
    path: "/api/accounts",
    scope: "user",
    body: "none",
    sample: () => ({}),
  },
  {
    method: "POST",
    path: "/api/accounts",
    scope: "user",
    body: "json",
    valid: () => newAccountArb,
    sample: () => ({ body: { provider: "anthropic", type: "api", key: secrets.add(`sk-ant-api03-${crypto.randomUUID()}`), label: "intruder" } }),
  },
  {
    method: "PATCH",
    path: "/api/accounts/:accountId",
    scope: "user",
    body: "json",
    valid: () => fc.record({ label: labelArb, position: fc.integer({ min: 1, max: 5 }), enabled: fc.boolean() }, { requiredKeys: [] }),
    params: (fx) => ({ accountId: pathIdArb("acc", [...fx.member.accountIds, ...fx.victim.accountIds], 10) }),
    sample: (fx) => ({ params: { accountId: fx.member.accountIds[0]! }, body: { label: "renamed", position: 3, enabled: false } }),
  },
  {
    method: "DELETE",
    path: "/api/accounts/:accountId",
    scope: "user",
    body: "ignored",
    params: (fx) => ({ accountId: pathIdArb("acc", [...fx.member.accountIds, ...fx.victim.accountIds], 10) }),
    sample: (fx) => ({ params: { accountId: fx.member.accountIds[0]! } }),
  },
  {
    method: "POST",
    path: "/api/import",
    scope: "user",
    body: "json",
    valid: () => importFileArb(),
    sample: (fx) => ({ body: fx.victim.importFile }),
  },
  {
    method: "POST",
    path: "/api/oauth/:provider/start",
    scope: "user",
    body: "optional",
    valid: () => fc.record({ label: labelArb }, { requiredKeys: [] }),
    params: provider,
    sample: () => ({ params: { provider: "anthropic" }, body: { label: "intruder" } }),
  },
  {
    method: "POST",
    path: "/api/oauth/:provider/finish",
    scope: "user",
    body: "json",
    valid: (fx) =>
      fc.record(
        {
          loginId: fc.oneof(fc.constantFrom(fx.member.loginIds.anthropic, fx.member.loginIds.copilot), pathIdArb("login")),
          code: fc.oneof(fc.string({ maxLength: 40 }), fc.tuple(fc.uuid(), fc.uuid()).map(([a, b]) => `${a}#${b}`)),
        },
        { requiredKeys: ["loginId"] },
      ),
    params: provider,
    sample: (fx) => ({ params: { provider: "anthropic" }, body: { loginId: fx.member.loginIds.anthropic, code: "some-code#some-state" } }),
  },
  // ---- routing settings and usage (docs/ARCHITECTURE.md, "Routing")
  {
    method: "GET",
    path: "/api/settings",
    scope: "user",
    body: "none",
    sample: () => ({}),
  },
  {
    method: "PATCH",
    path: "/api/settings",
    scope: "user",
    body: "json",
    valid: () =>
      fc.record(
        { strategy: fc.constantFrom("failover", "round-robin", "quota-aware"), quotaThreshold: fc.double({ min: 0, max: 1, noNaN: true }), affinityTtlS: fc.integer({ min: 0, max: 700_000 }) },
        { requiredKeys: [] },
      ),
    sample: () => ({ body: { strategy: "round-robin", quotaThreshold: 0.5, affinityTtlS: 60 } }),
  },
  {
    method: "GET",
    path: "/api/accounts/:accountId/usage",
    scope: "user",
    body: "none",
    params: (fx) => ({ accountId: pathIdArb("acc", [...fx.member.accountIds, ...fx.victim.accountIds], 10) }),
    sample: (fx) => ({ params: { accountId: fx.member.accountIds[0]! } }),
  },
  // ---- alert targets (docs/ARCHITECTURE.md, "Alerts"): the team's (admins) and a member's own
  ...(["admin", "user"] as const).flatMap((scope): RouteRow[] => {
    const base = scope === "admin" ? "/admin/alerts" : "/api/alerts";
    return [
      {
        method: "PUT",
        path: base,
        scope,
        body: "json",
        valid: () => fc.record({ url: alertUrlArb, events: alertEventsArb }, { requiredKeys: ["url"] }),
        sample: () => ({ body: { url: "https://hooks.receiver.test/intruder", events: null } }),
      },
      { method: "GET", path: base, scope, body: "none", sample: () => ({}) },
      { method: "DELETE", path: base, scope, body: "ignored", sample: () => ({}) },
      { method: "POST", path: `${base}/test`, scope, body: "ignored", sample: () => ({}) },
    ];
  }),
  // A new route is one row here (an :accountId route also needs its FOREIGN cell in
  // authorization.test.ts; a test there says so).
];

/** The proxy prefixes (docs/ARCHITECTURE.md, "HTTP API"): no key, a wrong key or a revoked key never reaches an upstream. */
export interface ProxyRow {
  method: Method;
  path: string;
  format: "anthropic" | "openai";
  body?: unknown;
}

export const PROXY_ROUTES: ProxyRow[] = [
  { method: "POST", path: "/anthropic/v1/messages", format: "anthropic", body: { model: "claude-sonnet-4-5", max_tokens: 16, messages: [{ role: "user", content: "hi" }] } },
  { method: "GET", path: "/anthropic/v1/models", format: "anthropic" },
  { method: "POST", path: "/openai/v1/chat/completions", format: "openai", body: { model: "gpt-5", messages: [{ role: "user", content: "hi" }] } },
  { method: "POST", path: "/openai/v1/responses", format: "openai", body: { model: "gpt-5", input: "hi" } },
  { method: "POST", path: "/copilot/chat/completions", format: "openai", body: { model: "gpt-4o", messages: [{ role: "user", content: "hi" }] } },
];

export const routeName = (r: { method: string; path: string }) => `${r.method} ${r.path}`;

/** The template filled in; values are path segments as sent (already escaped). */
export function fillPath(template: string, params: Record<string, string> = {}): string {
  return template.replace(/:(\w+)/g, (_m, name: string) => {
    const v = params[name];
    if (v === undefined) throw new Error(`no value for :${name} in ${template}`);
    return v;
  });
}

// ---------------------------------------------------------------------------------------------
// Fixture and state snapshot

let fixtures = 0;
const tag = () => `${++fixtures}-${crypto.randomUUID().slice(0, 6)}`;

async function userWithName(name: string, role: "member" | "admin" = "member"): Promise<User> {
  const u = await createUser(name, role);
  return { ...u, name };
}

async function created(path: string, key: string, body: unknown): Promise<Record<string, any>> {
  const r = await postJson(path, key, body);
  if (r.status >= 300) throw new Error(`fixture: ${path} answered ${r.status}: ${r.body}`);
  return r.json();
}

/**
 * Users, accounts and pending logins, built with the test's fake upstream: its OAuth servers issue
 * the tokens (so a gateway that checks a credential on entry accepts them) and the Copilot login
 * starts a device flow there.
 */
export async function makeFixture(up: Upstream): Promise<Fixture> {
  const t = tag();
  const [member, admin, victim, spare] = await Promise.all([
    userWithName(`member-${t}`),
    userWithName(`admin-${t}`, "admin"),
    userWithName(`victim-${t}`),
    userWithName(`spare-${t}`),
  ]);
  const s = (p: string) => secrets.add(`${p}-${crypto.randomUUID()}`);
  const ant = up.anthropicAuth.grant();
  const memberAccounts = [
    await created("/api/accounts", member.key, { provider: "anthropic", type: "api", key: s("sk-ant-api03") }),
    await created("/api/accounts", member.key, { provider: "anthropic", type: "oauth", refresh: ant.refresh, access: ant.access, expires: Date.now() + 3_600_000 }),
    await created("/api/accounts", member.key, { provider: "github-copilot", type: "oauth", refresh: up.githubToken() }),
  ];
  const importFile = importableFile(up);
  const imported = await created("/api/import", victim.key, importFile);
  const anthropicLogin = await created("/api/oauth/anthropic/start", member.key, {});
  const copilotLogin = await created("/api/oauth/github-copilot/start", member.key, {});
  return {
    member: { ...member, accountIds: memberAccounts.map((a) => a.id), loginIds: { anthropic: anthropicLogin.loginId, copilot: copilotLogin.loginId } },
    admin,
    victim: { ...victim, accountIds: (imported.imported as { account: { id: string } }[]).map((i) => i.account.id), importFile },
    spare,
  };
}

/** An opencode auth.json with two fresh credentials the fake upstream accepts. */
export function importableFile(up: Upstream): Record<string, unknown> {
  const ant = up.anthropicAuth.grant();
  return {
    anthropic: { type: "oauth", refresh: ant.refresh, access: ant.access, expires: Date.now() + 3_600_000 },
    openai: { type: "api", key: secrets.add(`sk-proj-${crypto.randomUUID()}`) },
  };
}

/**
 * What a refused request must leave as it was: the user list, the accounts of every fixture user
 * (reading them with each key also shows that no key was rotated or deleted), the member's
 * /api/me (its key resets) and routing settings, the names of all KV entries, and the values of
 * the fixture users' entries (data keys, profiles, credentials).
 */
export async function snapshot(fx: Fixture): Promise<string> {
  const ids = [fx.member.id, fx.admin.id, fx.victim.id, fx.spare.id];
  const [users, accounts, kv] = await Promise.all([
    call("/admin/users", { key: ADMIN }).then((r) => ({ status: r.status, body: r.body })),
    Promise.all(
      [
        ...[fx.member, fx.admin, fx.victim].map((u) => [u, "/api/accounts"] as const),
        // The admin key resets recorded for the member (the target of the key route's sample).
        [fx.member, "/api/me"] as const,
        [fx.member, "/api/settings"] as const,
      ].map(async ([u, path]) => {
        const r = await call(path, { key: u.key });
        // /api/me's `left.resets` are clock times (the next minute, day, month): not state.
        const body = path === "/api/me" && r.status === 200 ? JSON.stringify({ ...r.json(), left: { ...r.json<{ left: object }>().left, resets: null } }) : r.body;
        return { user: u.name, path, status: r.status, body };
      }),
    ),
    (async () => {
      const names: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await env.VAULT.list({ cursor });
        names.push(...page.keys.map((k) => k.name));
        cursor = page.list_complete ? undefined : page.cursor;
      } while (cursor);
      const owned = names.filter((n) => ids.some((id) => n.includes(id)));
      const values: (string | null)[] = [];
      for (let i = 0; i < owned.length; i += 100) {
        const got = await env.VAULT.get(owned.slice(i, i + 100), "text");
        values.push(...owned.slice(i, i + 100).map((n) => got.get(n) ?? null));
      }
      return { names: names.filter((n) => n !== kvKeys.teamAlertsStatus), owned: owned.map((n, i) => [n, values[i]]) };
    })(),
  ]);
  // Alert targets: the team's and the member's (a 404 when none is set is a state too). Their last
  // delivery is left out: members' alarms write it whenever an alert goes, whatever the test sends.
  const alerts = await Promise.all(
    [
      ["/admin/alerts", ADMIN],
      ["/api/alerts", fx.member.key],
    ].map(async ([path, key]) => {
      const r = await call(path!, { key: key! });
      const { lastDelivery: _, ...target } = r.status === 200 ? r.json<Record<string, unknown>>() : { error: r.status };
      return { path, status: r.status, target };
    }),
  );
  // The fixture users' keys are never revoked by a test: a read that fails is a broken fixture or a breach.
  for (const r of [users, ...accounts]) if (r.status !== 200) throw new Error(`snapshot: a fixture read answered ${r.status}: ${r.body}`);
  return JSON.stringify({ users, accounts, kv, alerts }, null, 1);
}
