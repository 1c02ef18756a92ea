/**
 * Property-based tests over every management route (routes.ts) with hostile input: arbitrary and
 * near-valid JSON, prototype-named keys, deep nesting, huge strings, invalid UTF-8, non-JSON,
 * wrong content types, streamed bodies, random headers, query strings and path ids.
 *
 * Properties (docs/ARCHITECTURE.md, invariants 6 and 7):
 *   1. never a 5xx;
 *   2. a refusal (4xx) changes nothing: user list, every fixture user's accounts, all of KV (nor
 *      does any GET);
 *   3. a 4xx answers JSON `{"error": {"type", "message"}}` whose message says what is wrong (and
 *      names `field` when it sets one);
 *   4. no secret in any answer or log line (the helpers scan every response; useGateway the logs).
 *
 * Failures print fast-check's seed; `VITE_FC_SEED=<seed> npx vitest run test/security/properties.test.ts`
 * replays it. `VITE_FC_RUNS=<n>` changes the number of runs per route.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ADMIN, call, createUser, listAccounts, postJson, useGateway, type Answer } from "../helpers/gateway";
import { secrets } from "../helpers/secrets";
import { type BodySpec, bodyArb, bodyInit, clip, describeBody, fcParams, headersArb, queryArb } from "./arbitraries";
import { type Fixture, ROUTES, type RouteRow, fillPath, makeFixture, routeName, snapshot } from "./routes";

const { up } = useGateway();

/** Runs per route: more where the route reads a body. */
const runsFor = (route: RouteRow) => (route.body === "json" || route.body === "optional" ? 40 : 30);

interface Input {
  caller: "ADMIN_TOKEN" | "admin" | "member";
  params: Record<string, string>;
  query: string;
  headers: [string, string][];
  body: BodySpec | null;
}

function keyOf(fx: Fixture, caller: Input["caller"]): string {
  return caller === "ADMIN_TOKEN" ? ADMIN : caller === "admin" ? fx.admin.key : fx.member.key;
}

async function send(route: RouteRow, fx: Fixture, input: Input): Promise<Answer> {
  const headers = new Headers();
  for (const [n, v] of input.headers) headers.append(n, v);
  headers.delete("content-type");
  if (input.body?.contentType != null) headers.set("content-type", input.body.contentType);
  headers.set("authorization", `Bearer ${keyOf(fx, input.caller)}`);
  const path = fillPath(route.path, input.params) + input.query;
  return call(path, { method: route.method, headers, ...(input.body ? { body: bodyInit(input.body) } : {}) });
}

function describeInput(route: RouteRow, input: Input): string {
  return [
    `${route.method} ${clip(fillPath(route.path, input.params), 120)}${clip(input.query, 60)} as ${input.caller}`,
    `headers ${clip(JSON.stringify(input.headers), 300)}`,
    `body ${describeBody(input.body)}`,
  ].join("\n    ");
}

/**
 * Known gateway bugs the properties find; each has a named failing test below. The property
 * tolerates only this exact signature so it stays green and keeps looking for new ones.
 * Delete the entry when the bug is fixed (its `it.fails` test then fails, as a reminder).
 */
const KNOWN_BUGS: { name: string; matches: (route: RouteRow, input: Input, answer: Answer) => boolean }[] = [];

/** The parsed body of a POST /api/import that answered 500, if it was a JSON object. */
function importBody(route: RouteRow, input: Input, answer: Answer): Record<string, unknown> | null {
  if (routeName(route) !== "POST /api/import" || answer.status !== 500 || !input.body) return null;
  try {
    const data = JSON.parse(new TextDecoder().decode(input.body.bytes)) as unknown;
    return data && typeof data === "object" && !Array.isArray(data) ? (data as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function inputArb(route: RouteRow, fx: Fixture): fc.Arbitrary<Input> {
  const callers: Input["caller"][] = route.scope === "admin" ? ["ADMIN_TOKEN", "admin"] : ["member", "member", "member", "admin"];
  const params = route.params?.(fx) ?? {};
  return fc
    .record({
      caller: fc.constantFrom(...callers),
      params: fc.record(params),
      query: queryArb,
      headers: headersArb,
      body: route.body === "none" ? fc.constant(null) : route.body === "json" ? bodyArb(route.valid?.(fx) ?? null) : fc.option(bodyArb(route.valid?.(fx) ?? null), { freq: 4 }),
    })
    .map((i) => Object.assign(i, { [fc.toStringMethod]: () => describeInput(route, i) }));
}

/** Property 3: a 4xx is JSON naming what is wrong. */
function expectClearRefusal(answer: Answer, where: string) {
  expect(answer.headers.get("content-type") ?? "", where).toMatch(/^application\/json/);
  let body: { error?: { type?: unknown; message?: unknown; field?: unknown } };
  try {
    body = JSON.parse(answer.body);
  } catch {
    throw new Error(`${where}: a ${answer.status} whose body is not JSON: ${clip(answer.body)}`);
  }
  expect(typeof body.error?.type, where).toBe("string");
  expect(typeof body.error?.message, where).toBe("string");
  const message = body.error!.message as string;
  expect(message.length, where).toBeGreaterThan(10);
  if (body.error!.field !== undefined) expect(body.error!.field, where).toEqual(expect.any(String));
}

describe("hostile input to the management API", () => {
  const known = new Map<string, number>();

  for (const route of ROUTES) {
    it(`${routeName(route)}: never a 5xx; a refusal changes nothing, says what is wrong, leaks nothing`, async () => {
      const fx = await makeFixture(up());
      let before = await snapshot(fx);
      let refused = 0;
      let accepted = 0;
      await fc.assert(
        fc.asyncProperty(inputArb(route, fx), async (input) => {
          const t0 = Date.now();
          const answer = await send(route, fx, input);
          if (Date.now() - t0 > 1000) console.info(`SLOW ${Date.now() - t0}ms ${answer.status} ${describeInput(route, input).slice(0, 300)}`);
          const where = describeInput(route, input);
          const bug = KNOWN_BUGS.find((b) => b.matches(route, input, answer));
          if (bug) {
            known.set(bug.name, (known.get(bug.name) ?? 0) + 1);
            before = await snapshot(fx);
            return;
          }
          expect(answer.status, `${where}\n  answered ${answer.status}: ${clip(answer.body, 400)}`).toBeLessThan(500);
          if (answer.status >= 400) {
            refused++;
            expectClearRefusal(answer, where);
            const after = await snapshot(fx);
            expect(after, `${where}\n  a ${answer.status} changed state`).toBe(before);
          } else if (route.method === "GET") {
            accepted++;
            // A read changes nothing either.
            expect(await snapshot(fx), `${where}\n  a GET changed state`).toBe(before);
          } else {
            accepted++;
            // A key shown once (user creation, rotation) is a secret from now on.
            if (answer.body.includes('"key"')) secrets.add((JSON.parse(answer.body) as { key?: string }).key ?? "");
            if (answer.status !== 204) expect(() => JSON.parse(answer.body), where).not.toThrow();
            before = await snapshot(fx);
          }
        }),
        fcParams(runsFor(route)),
      );
      console.info(`${routeName(route)}: ${refused} refused, ${accepted} accepted${known.size ? `; known bugs hit so far: ${JSON.stringify([...known])}` : ""}`);
    }, 120_000);
  }
});

describe("what the properties found", () => {
  // Was a 500 (TypeError: Cannot read properties of undefined (reading 'accountMeta')): the provider
  // lookup read a plain object, so an inherited member counted as a provider. Fixed; kept as a guard.
  // Input: {"constructor":{"type":"api","key":"abcdefghijklmnopq"}}
  it("an opencode entry named constructor / toString / valueOf is refused per entry, not a 500", async () => {
    const u = await createUser(`proto-${crypto.randomUUID().slice(0, 8)}`);
    const key = secrets.add(`sk-ant-api03-${crypto.randomUUID()}`);
    for (const name of ["constructor", "toString", "valueOf", "hasOwnProperty"]) {
      const r = await postJson("/api/import", u.key, { [name]: { type: "api", key }, anthropic: { type: "api", key } });
      expect(r.status, `${name}: ${r.body}`).toBe(200);
      expect(r.json().refused).toEqual([{ entry: name, reason: expect.any(String) }]);
    }
    expect(await listAccounts(u.key)).toHaveLength(1);
  }, 60_000);

  // Was a 500 (RangeError: Maximum call stack size exceeded): the refusal reason quoted String(type),
  // and Array.prototype.toString recurses once per level; the body is well under the 1 MiB limit.
  // Fixed (ebb0349); kept as a guard.
  // Input: {"anthropic":{"type":[[[[…]]]]}} nested 5,000 deep (about 10 KB; 3,000 passed).
  it("an opencode entry whose type is an array nested 10,000 deep is refused per entry, not a 500", async () => {
    const u = await createUser(`deep-${crypto.randomUUID().slice(0, 8)}`);
    const depth = 10_000;
    const r = await call("/api/import", { method: "POST", key: u.key, headers: { "content-type": "application/json" }, body: `{"anthropic":{"type":${"[".repeat(depth)}${"]".repeat(depth)}}}` });
    expect(r.status, r.body).toBe(200);
    expect(r.json().refused).toEqual([{ entry: "anthropic", reason: expect.any(String) }]);
    expect(await listAccounts(u.key)).toEqual([]);
  }, 60_000);
});

describe("the properties can fail", () => {
  // Guards against a vacuous suite: the same checks reject a 500, a changed snapshot and a bare 4xx.
  it("a 5xx, a non-JSON 4xx and a 4xx without a message are caught", () => {
    const fake = (status: number, body: string, ct = "application/json"): Answer => ({ status, body, headers: new Headers({ "content-type": ct }), json: () => JSON.parse(body) });
    expect(() => expect(fake(500, "{}").status).toBeLessThan(500)).toThrow();
    expect(() => expectClearRefusal(fake(400, "oops", "text/plain"), "x")).toThrow();
    expect(() => expectClearRefusal(fake(400, '{"error":{"type":"invalid_request_error","message":""}}'), "x")).toThrow();
    expect(() => expectClearRefusal(fake(400, '{"error":{"type":"invalid_request_error","message":"name: required: a string","field":7}}'), "x")).toThrow();
    expectClearRefusal(fake(400, '{"error":{"type":"invalid_request_error","message":"name: required: a string","field":"name"}}'), "x");
  });

  it("the snapshot sees a change made by an accepted request", async () => {
    const fx = await makeFixture(up());
    const before = await snapshot(fx);
    await call(`/api/accounts/${fx.member.accountIds[0]}`, { method: "PATCH", key: fx.member.key, headers: { "content-type": "application/json" }, body: '{"label":"changed"}' });
    expect(await snapshot(fx)).not.toBe(before);
  }, 30_000);
});
