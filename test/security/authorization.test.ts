/**
 * The authorization matrix (docs/ARCHITECTURE.md, invariants 5 and 6, "HTTP API"): every route × every kind of caller that must be
 * turned away, one test per cell. Routes come from routes.ts (one row per route); callers from
 * the CALLERS table here. Each cell checks the status, the error's type and format, that nothing
 * changed (users, every fixture user's accounts and keys, KV) and that nothing went upstream.
 *
 *   no key / wrong key / malformed header / revoked key / deleted user's key   -> 401
 *   a member's key on an admin route                                           -> 403
 *   the bare ADMIN_TOKEN on a route about the caller's own accounts            -> 403 (it owns none)
 *   another user's account ids and login ids                                   -> exactly what an id that
 *                                                                                 never existed gets: 404
 *                                                                                 (410 for a login id), never 403
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ADMIN, call, createUser, listAccounts, postJson, useGateway, type Answer } from "../helpers/gateway";
import { secrets } from "../helpers/secrets";
import { fcParams } from "./arbitraries";
import { type Fixture, PROXY_ROUTES, ROUTES, type RequestParts, type RouteRow, fillPath, importableFile, makeFixture, routeName, snapshot } from "./routes";

const { up } = useGateway();

/** Per cell; generous because other suites may share the machine. */
const CELL_TIMEOUT_MS = 30_000;

/** One fixture for the file (storage persists across a file's tests); built in the first test. */
let fixtureP: Promise<Fixture> | null = null;
const fixture = () => (fixtureP ??= makeFixture(up()));

const b64url = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
/** A key of the real shape (sp_ + 43 base64url characters) that was never issued. */
const neverIssuedKey = () => secrets.add(`sp_${b64url(crypto.getRandomValues(new Uint8Array(32)))}`);

/** A key that worked (and was verified by this isolate, so any cache has it) and was then rotated away. */
async function revokedKey(): Promise<string> {
  const u = await createUser(`revoked-${crypto.randomUUID().slice(0, 8)}`, "admin");
  expect((await call("/api/me", { key: u.key })).status).toBe(200);
  expect((await call("/admin/users", { key: u.key })).status).toBe(200);
  const r = await call(`/admin/users/${u.id}/key`, { method: "POST", key: ADMIN });
  expect(r.status).toBe(200);
  secrets.add(r.json().key);
  return u.key;
}

/** A key that worked until its user was deleted. */
async function deletedUsersKey(): Promise<string> {
  const u = await createUser(`deleted-${crypto.randomUUID().slice(0, 8)}`, "admin");
  expect((await call("/api/me", { key: u.key })).status).toBe(200);
  expect((await call(`/admin/users/${u.id}`, { method: "DELETE", key: ADMIN })).status).toBe(204);
  return u.key;
}

type Expectation = { status: number; type: string } | null;
const UNAUTHENTICATED: Expectation = { status: 401, type: "authentication_error" };
const FORBIDDEN: Expectation = { status: 403, type: "permission_error" };

interface Caller {
  who: string;
  /** Headers to send; may create (and revoke) a user first. */
  headers: (fx: Fixture) => Promise<Record<string, string>>;
  /** What a management route answers this caller; null: not a cell (the caller may use the route). */
  management: (route: RouteRow) => Expectation;
  /** What a proxy route answers this caller. */
  proxy: Expectation;
}

const CALLERS: Caller[] = [
  { who: "no key", headers: async () => ({}), management: () => UNAUTHENTICATED, proxy: UNAUTHENTICATED },
  { who: "a wrong key (Bearer)", headers: async () => ({ authorization: `Bearer ${neverIssuedKey()}` }), management: () => UNAUTHENTICATED, proxy: UNAUTHENTICATED },
  { who: "a wrong key (x-api-key)", headers: async () => ({ "x-api-key": neverIssuedKey() }), management: () => UNAUTHENTICATED, proxy: UNAUTHENTICATED },
  {
    who: "a valid key in an unknown scheme (Basic)",
    headers: async (fx) => ({ authorization: `Basic ${btoa(`${fx.admin.name}:${fx.admin.key}`)}` }),
    management: () => UNAUTHENTICATED,
    proxy: UNAUTHENTICATED,
  },
  { who: "the ADMIN_TOKEN with one character changed", headers: async () => ({ authorization: `Bearer ${ADMIN.slice(0, -1)}${ADMIN.endsWith("x") ? "y" : "x"}` }), management: () => UNAUTHENTICATED, proxy: UNAUTHENTICATED },
  { who: "a revoked key (Bearer)", headers: async () => ({ authorization: `Bearer ${await revokedKey()}` }), management: () => UNAUTHENTICATED, proxy: UNAUTHENTICATED },
  { who: "a revoked key (x-api-key)", headers: async () => ({ "x-api-key": await revokedKey() }), management: () => UNAUTHENTICATED, proxy: UNAUTHENTICATED },
  { who: "a deleted user's key", headers: async () => ({ authorization: `Bearer ${await deletedUsersKey()}` }), management: () => UNAUTHENTICATED, proxy: UNAUTHENTICATED },
  { who: "a member's key", headers: async (fx) => ({ authorization: `Bearer ${fx.member.key}` }), management: (r) => (r.scope === "admin" ? FORBIDDEN : null), proxy: null },
  {
    who: "the bare ADMIN_TOKEN",
    headers: async () => ({ authorization: `Bearer ${ADMIN}` }),
    // It manages users and owns no accounts; /api/me answers who it is.
    management: (r) => (r.scope === "user" && routeName(r) !== "GET /api/me" ? FORBIDDEN : null),
    proxy: FORBIDDEN,
  },
];

async function send(method: string, path: string, headers: Record<string, string>, body: unknown): Promise<Answer> {
  const h = new Headers(headers);
  if (body !== undefined) h.set("content-type", "application/json");
  return call(path, { method, headers: h, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
}

const request = (route: RouteRow, parts: RequestParts) => ({ path: fillPath(route.path, parts.params), body: route.body === "none" ? undefined : parts.body });

function expectError(answer: Answer, format: "api" | "anthropic" | "openai", want: { status: number; type: string }, where: string) {
  expect(answer.status, `${where}: ${answer.body}`).toBe(want.status);
  expect(answer.headers.get("content-type") ?? "", where).toMatch(/^application\/json/);
  const body = answer.json<Record<string, any>>();
  if (format === "anthropic") expect(body, where).toMatchObject({ type: "error", error: { type: want.type, message: expect.any(String) } });
  else if (format === "openai") expect(body, where).toMatchObject({ error: { type: want.type, message: expect.any(String), code: expect.any(String) } });
  else expect(body, where).toMatchObject({ error: { type: want.type, message: expect.any(String) } });
}

const managementCells = ROUTES.flatMap((route) =>
  CALLERS.flatMap((caller) => {
    const want = caller.management(route);
    return want ? [{ name: `${routeName(route)} with ${caller.who} -> ${want.status}`, route, caller, want }] : [];
  }),
);

const proxyCells = PROXY_ROUTES.flatMap((route) =>
  CALLERS.flatMap((caller) => (caller.proxy ? [{ name: `${routeName(route)} with ${caller.who} -> ${caller.proxy.status}`, route, caller, want: caller.proxy }] : [])),
);

describe("management routes turn away every caller without the right", () => {
  for (const { name, route, caller, want } of managementCells) it(`${name}, changing nothing`, async () => {
    const fx = await fixture();
    const headers = await caller.headers(fx);
    const before = await snapshot(fx);
    const fetches = up().seen.length;
    const { path, body } = request(route, route.sample(fx));
    const answer = await send(route.method, path, headers, body);
    expectError(answer, "api", want, `${route.method} ${path} with ${caller.who}`);
    expect(await snapshot(fx), "state changed").toBe(before);
    expect(up().seen.slice(fetches), "went upstream").toEqual([]);
  }, CELL_TIMEOUT_MS);
});

describe("proxy routes turn away every caller without a usable key, before anything goes upstream", () => {
  for (const { name, route, caller, want } of proxyCells) it(name, async () => {
    const fx = await fixture();
    const headers = await caller.headers(fx);
    const before = await snapshot(fx);
    const fetches = up().seen.length;
    const answer = await send(route.method, route.path, { "anthropic-version": "2023-06-01", ...headers }, route.body);
    expectError(answer, route.format, want, `${route.method} ${route.path} with ${caller.who}`);
    expect(await snapshot(fx), "state changed").toBe(before);
    expect(up().seen.slice(fetches), "went upstream").toEqual([]);
  }, CELL_TIMEOUT_MS);
});

/**
 * Another user's ids: the member aims a route at the victim's object. The answer must be exactly
 * what an id that never existed gets (so existence does not leak), never a 403, and the victim's
 * object must be untouched (and still usable by the victim).
 */
interface ForeignCell {
  route: string;
  what: string;
  /** The attempt, and the same request with an id that never existed. */
  build: (fx: Fixture) => Promise<{ attempt: RequestParts; neverExisted: RequestParts; foreignId: string; unknownId: string; after?: () => Promise<void> }>;
  status: number[];
}

const unknownAccountId = "acc_AAAAAAAAAAAAAAAA";
const unknownLoginId = "login_AAAAAAAAAAAAAAAA";

const FOREIGN: ForeignCell[] = [
  {
    route: "PATCH /api/accounts/:accountId",
    what: "another user's account id",
    build: async (fx) => ({
      attempt: { params: { accountId: fx.victim.accountIds[0]! }, body: { label: "taken", enabled: false, position: 2 } },
      neverExisted: { params: { accountId: unknownAccountId }, body: { label: "taken", enabled: false, position: 2 } },
      foreignId: fx.victim.accountIds[0]!,
      unknownId: unknownAccountId,
    }),
    status: [404],
  },
  {
    route: "DELETE /api/accounts/:accountId",
    what: "another user's account id",
    build: async (fx) => ({
      attempt: { params: { accountId: fx.victim.accountIds[1]! } },
      neverExisted: { params: { accountId: unknownAccountId } },
      foreignId: fx.victim.accountIds[1]!,
      unknownId: unknownAccountId,
    }),
    status: [404],
  },
  {
    route: "GET /api/accounts/:accountId/usage",
    what: "another user's account id",
    build: async (fx) => ({
      attempt: { params: { accountId: fx.victim.accountIds[0]! } },
      neverExisted: { params: { accountId: unknownAccountId } },
      foreignId: fx.victim.accountIds[0]!,
      unknownId: unknownAccountId,
    }),
    status: [404],
  },
  {
    route: "POST /api/oauth/:provider/finish",
    what: "another user's pending Claude login, with the code the provider gave that user",
    build: async (fx) => {
      const start = await postJson("/api/oauth/anthropic/start", fx.victim.key, {});
      expect(start.status).toBe(200);
      const { loginId, url } = start.json<{ loginId: string; url: string }>();
      const { code, state } = up().anthropicAuth.authorize(url);
      return {
        attempt: { params: { provider: "anthropic" }, body: { loginId, code: `${code}#${state}` } },
        neverExisted: { params: { provider: "anthropic" }, body: { loginId: unknownLoginId, code: `${code}#${state}` } },
        foreignId: loginId,
        unknownId: unknownLoginId,
        // The victim's login was neither used nor spent: the victim finishes it now.
        after: async () => {
          const fin = await postJson("/api/oauth/anthropic/finish", fx.victim.key, { loginId, code: `${code}#${state}` });
          expect(fin.status, fin.body).toBe(201);
          await call(`/api/accounts/${fin.json().account.id}`, { method: "DELETE", key: fx.victim.key });
        },
      };
    },
    // The gateway answers a login id it does not hold with 410 ("gone: logins last 10 minutes");
    // what matters here is that a foreign id gets exactly that answer.
    status: [404, 410],
  },
  {
    route: "POST /api/oauth/:provider/finish",
    what: "another user's pending Copilot device login",
    build: async (fx) => {
      const start = await postJson("/api/oauth/github-copilot/start", fx.victim.key, {});
      expect(start.status).toBe(200);
      const { loginId, userCode } = start.json<{ loginId: string; userCode: string }>();
      up().device.approve(userCode);
      return {
        attempt: { params: { provider: "github-copilot" }, body: { loginId } },
        neverExisted: { params: { provider: "github-copilot" }, body: { loginId: unknownLoginId } },
        foreignId: loginId,
        unknownId: unknownLoginId,
        after: async () => {
          // Still the victim's: polling it is not refused as unknown.
          const poll = await postJson("/api/oauth/github-copilot/finish", fx.victim.key, { loginId });
          expect([200, 201, 202], poll.body).toContain(poll.status);
          if (poll.status !== 202) await call(`/api/accounts/${poll.json().account.id}`, { method: "DELETE", key: fx.victim.key });
        },
      };
    },
    status: [404, 410],
  },
];

describe("another user's ids get what an unknown id gets, and change nothing", () => {
  for (const cell of FOREIGN) it(`${cell.route} with ${cell.what}`, async () => {
    const fx = await fixture();
    const route = ROUTES.find((r) => routeName(r) === cell.route)!;
    const built = await cell.build(fx);
    const before = await snapshot(fx);
    const member = { authorization: `Bearer ${fx.member.key}` };

    const fetches = up().seen.length;
    const a = request(route, built.attempt);
    const attempt = await send(route.method, a.path, member, a.body);
    expect(up().seen.slice(fetches), "went upstream").toEqual([]);
    expect(cell.status, `${route.method} ${a.path}: ${attempt.body}`).toContain(attempt.status);
    expect(attempt.json().error.type).toBe("not_found_error");
    expect(await snapshot(fx), "state changed").toBe(before);

    const n = request(route, built.neverExisted);
    const unknown = await send(route.method, n.path, member, n.body);
    expect(attempt.status).toBe(unknown.status);
    expect(attempt.body.replaceAll(built.foreignId, "<id>")).toBe(unknown.body.replaceAll(built.unknownId, "<id>"));
    await built.after?.();
  }, CELL_TIMEOUT_MS);

  it("POST /api/import of another user's credential file creates the caller's own accounts and leaves the other's alone", async () => {
    const fx = await fixture();
    const file = importableFile(up());
    const theirs = await postJson("/api/import", fx.victim.key, file);
    expect(theirs.json().imported.map((i: { action: string }) => i.action)).toEqual(["created", "created"]);
    const victimBefore = await listAccounts(fx.victim.key);
    const r = await postJson("/api/import", fx.member.key, file);
    expect(r.status, r.body).toBe(200);
    // "created", never "unchanged" or "updated": nothing says that someone else holds these credentials.
    expect(r.json().imported.map((i: { action: string }) => i.action)).toEqual(["created", "created"]);
    expect(await listAccounts(fx.victim.key)).toEqual(victimBefore);
    for (const i of r.json().imported as { account: { id: string } }[]) {
      expect(victimBefore.map((a) => a.id)).not.toContain(i.account.id);
      expect((await call(`/api/accounts/${i.account.id}`, { method: "DELETE", key: fx.member.key })).status).toBe(204);
    }
    for (const i of theirs.json().imported as { account: { id: string } }[]) await call(`/api/accounts/${i.account.id}`, { method: "DELETE", key: fx.victim.key });
  }, CELL_TIMEOUT_MS);

  it("GET /api/accounts lists none of another user's accounts", async () => {
    const fx = await fixture();
    const mine = await listAccounts(fx.member.key);
    expect(mine.map((a) => a.id).sort()).toEqual([...fx.member.accountIds].sort());
    for (const id of fx.victim.accountIds) expect(JSON.stringify(mine)).not.toContain(id);
  });

  it("every route that takes a user-owned id has a foreign-id cell", () => {
    const owned = ROUTES.filter((r) => r.path.includes(":accountId") || r.path.endsWith("/finish")).map(routeName);
    expect(owned.filter((r) => !FOREIGN.some((f) => f.route === r))).toEqual([]);
  });
});

describe("a near miss of a valid key never authenticates", () => {
  const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  type Miss = { how: string; apply: (key: string) => string };
  const missArb: fc.Arbitrary<Miss> = fc.oneof(
    fc.tuple(fc.nat(), fc.constantFrom(...B64URL)).map(([i, c]) => ({ how: `char ${i} -> ${c}`, apply: (k: string) => { const at = i % k.length; return k[at] === c ? k : k.slice(0, at) + c + k.slice(at + 1); } })),
    fc.integer({ min: 1, max: 40 }).map((n) => ({ how: `drop last ${n}`, apply: (k: string) => k.slice(0, -n) })),
    fc.string({ unit: fc.constantFrom(...B64URL), minLength: 1, maxLength: 8 }).map((x) => ({ how: `append ${x}`, apply: (k: string) => k + x })),
    fc.constant({ how: "upper case", apply: (k: string) => k.toUpperCase() }),
    fc.constant({ how: "lower case", apply: (k: string) => k.toLowerCase() }),
    fc.constant({ how: "without the sp_ prefix", apply: (k: string) => k.slice(3) }),
    fc.constant({ how: "base64 instead of base64url", apply: (k: string) => k.replace(/-/g, "+").replace(/_/g, "/") }),
  );
  const placeArb = fc.constantFrom(
    { how: "Bearer", headers: (k: string) => ({ authorization: `Bearer ${k}` }) },
    { how: "x-api-key", headers: (k: string) => ({ "x-api-key": k }) },
    { how: "x-api-key, beside a Basic Authorization", headers: (k: string) => ({ authorization: "Basic Zm9vOmJhcg==", "x-api-key": k }) },
  );

  it("mutated member and ADMIN_TOKEN keys get 401 on every route, and change nothing", async () => {
    const fx = await fixture();
    const before = await snapshot(fx);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ROUTES), fc.constantFrom("member", "ADMIN_TOKEN"), missArb, placeArb, async (route, whose, miss, place) => {
        const valid = whose === "member" ? fx.member.key : ADMIN;
        const key = miss.apply(valid);
        fc.pre(key !== valid && key.length > 0);
        secrets.add(key);
        const { path, body } = request(route, route.sample(fx));
        const answer = await send(route.method, path, place.headers(key), body);
        expectError(answer, "api", UNAUTHENTICATED!, `${routeName(route)} with the ${whose} key, ${miss.how}, in ${place.how}`);
      }),
      fcParams(60),
    );
    expect(await snapshot(fx), "state changed").toBe(before);
  }, 120_000);
});

describe("the matrix covers every route", () => {
  it("every management route has its 401 cells, and every admin route its member cell", () => {
    for (const route of ROUTES) {
      const cells = managementCells.filter((c) => c.route === route);
      expect(cells.filter((c) => c.want.status === 401).length, routeName(route)).toBe(CALLERS.filter((c) => c.management(route)?.status === 401).length);
      expect(cells.some((c) => c.want.status === 403), routeName(route)).toBe(route.scope === "admin" || routeName(route) !== "GET /api/me");
    }
  });
});
