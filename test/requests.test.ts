/**
 * One request, its own I/O (docs/ARCHITECTURE.md): the platform settles a promise only in the
 * request that made it, so a request that ends early (its client went away) must leave nothing
 * that other requests wait on. Each test ends a request at a few points of its life, while it reads
 * the member's pool or renews a session, and then expects the member's next requests answered.
 */
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { BASE, type Answer, addAccount, call, createUser, messages, postJson, sleep, useGateway } from "./helpers/gateway";
import { anthropicMessage, json } from "./helpers/upstream";

const { up } = useGateway();
let n = 0;

/** A request its client gives up on after `ms` (the Worker's side of it is cancelled). */
async function abandoned(path: string, init: RequestInit, ms: number): Promise<void> {
  const ac = new AbortController();
  const p = SELF.fetch(BASE + path, { ...init, signal: ac.signal }).then(
    (r) => r.body?.cancel(),
    () => undefined,
  );
  await sleep(ms);
  ac.abort();
  await p;
}

/** The answer, or "no answer" when none came within `ms`. */
const within = (p: Promise<Answer>, ms: number): Promise<Answer | "no answer"> => Promise.race([p, sleep(ms).then(() => "no answer" as const)]);

describe("a request that ends early leaves nothing for the others to wait on", () => {
  it("while it reads the member's pool: their next requests are answered", async () => {
    const u = await createUser(`req${++n}`);
    for (const ms of [0, 1, 2, 3, 5, 8]) {
      // A change empties the isolate's copy of the pool: the next request reads it from the Durable Object.
      expect((await postJson("/api/settings", u.key, { affinityTtlS: 100 + ms }, "PATCH")).status).toBe(200);
      await abandoned("/api/settings", { headers: { authorization: `Bearer ${u.key}` } }, ms);
      const next = await within(call("/api/settings", { key: u.key }), 3000);
      expect(next === "no answer" ? next : next.status, `after a request abandoned at ${ms} ms`).toBe(200);
    }
  });

  it("while it renews a session: the next request is served, and the session is renewed once", async () => {
    const u = await createUser(`req${++n}`);
    const g = up().anthropicAuth.grant();
    await addAccount(u.key, { provider: "anthropic", type: "oauth", refresh: g.refresh, access: g.access, expires: Date.now() - 1000 });
    up().on("anthropic.fake/v1/messages", (_r, cred) => (up().anthropicAuth.validAccess.has(cred) ? json(anthropicMessage()) : json({}, 401)));
    up().anthropicAuth.delayMs = 300;
    await call("/api/accounts", { key: u.key }); // the key and the pool are known: a request goes straight to the renewal
    const body = JSON.stringify({ model: "claude-sonnet-4-5", max_tokens: 16, messages: [{ role: "user", content: "hi" }] });
    await abandoned("/anthropic/v1/messages", { method: "POST", headers: { "x-api-key": u.key, "anthropic-version": "2023-06-01", "content-type": "application/json" }, body }, 100);
    const next = await within(messages(u.key), 3000);
    expect(next === "no answer" ? next : next.status).toBe(200);
    expect(up().anthropicAuth.calls).toBe(1);
  });
});
