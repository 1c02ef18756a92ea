/**
 * A bounded load run: 500 requests over 5 accounts of one user while the fake answers 429 to two of
 * them and the third's token has expired; then 500 over 10 users at once. Every request ends in a
 * success (or a correct 429 with Retry-After), none is lost or answered twice, each expired account
 * is refreshed exactly once, and no user's request is served with another user's account.
 */
import { describe, expect, it } from "vitest";
import { addAccount, createUser, useGateway } from "../helpers/gateway";
import { secrets } from "../helpers/secrets";
import { SELF } from "cloudflare:test";
import { anthropicError, json } from "../helpers/upstream";

const { up } = useGateway();
let n = 0;

/** Who each OAuth grant belongs to, followed through refreshes (refresh token -> owner, access -> owner). */
const refreshOwner = new Map<string, string>();
const oauthOwner = new Map<string, string>();

interface Pool {
  key: string;
  owner: string;
}

/** A user with 5 accounts: two rate limited, one OAuth with an expired token, two healthy. */
async function userWithFive(owners: Map<string, string>, limited: Set<string>): Promise<Pool> {
  const u = await createUser(`load${++n}`);
  const owner = u.id;
  for (let i = 0; i < 5; i++) {
    if (i === 2) {
      const g = up().anthropicAuth.grant();
      refreshOwner.set(g.refresh, owner);
      await addAccount(u.key, { provider: "anthropic", type: "oauth", refresh: g.refresh, access: g.access, expires: Date.now() - 1000 });
      owners.set(g.access, "stale"); // the expired one must never be presented
      continue;
    }
    const k = secrets.add(`sk-ant-api03-load-${n}-${i}-${crypto.randomUUID()}`);
    owners.set(k, owner);
    if (i < 2) limited.add(k);
    await addAccount(u.key, { provider: "anthropic", type: "api", key: k });
  }
  return { key: u.key, owner };
}

type Result = { rid: string; owner: string; status: number; body: string; retryAfter: string | null };

/** `perUser` requests for every pool at once; request ids carry the wave so they stay unique. */
function fire(pools: Pool[], perUser: number, wave = 0): Promise<Result[]> {
  {
    const jobs: Promise<Result>[] = [];
    for (let i = 0; i < perUser; i++) {
      for (const p of pools) {
        const rid = `${p.owner}:${wave}:${i}`;
        jobs.push(
          SELF.fetch("http://gw.test/anthropic/v1/messages", {
            method: "POST",
            headers: { "x-api-key": p.key, "anthropic-version": "2023-06-01", "content-type": "application/json" },
            body: JSON.stringify({ model: "claude-sonnet-4-5", max_tokens: 8, metadata: { user_id: rid }, messages: [{ role: "user", content: "hi" }] }),
          }).then(async (r) => ({ rid, owner: p.owner, status: r.status, body: await r.text(), retryAfter: r.headers.get("retry-after") })),
        );
      }
    }
    return Promise.all(jobs);
  }
}

function installFake(owners: Map<string, string>, limited: Set<string>, answered: Map<string, number>) {
  up().override("anthropic.fake/v1/oauth/token", async (req) => {
    const { refresh_token } = JSON.parse(await req.text()) as { refresh_token: string };
    const res = await up().anthropicAuth.exchange(refresh_token);
    const body = (await res.clone().json()) as { access_token?: string; refresh_token?: string };
    const owner = refreshOwner.get(refresh_token);
    if (owner && body.access_token && body.refresh_token) {
      oauthOwner.set(body.access_token, owner);
      refreshOwner.set(body.refresh_token, owner);
    }
    return res;
  });
  up().on("anthropic.fake/v1/messages", async (req, cred) => {
    const rid = (JSON.parse(await req.text()) as { metadata: { user_id: string } }).metadata.user_id;
    if (limited.has(cred)) return json(anthropicError("rate_limit_error", "rate limited"), 429, { "retry-after": "60" });
    const owner = up().anthropicAuth.validAccess.has(cred) ? "oauth" : owners.get(cred);
    if (!owner || owner === "stale") return json(anthropicError("authentication_error", "invalid credential"), 401);
    answered.set(rid, (answered.get(rid) ?? 0) + 1);
    // An OAuth token is known to the fake only as valid: its owner is whoever's request carried it,
    // which `check` then compares with the user the token was issued to (owners of its grant).
    return json({ rid, servedBy: owner === "oauth" ? (oauthOwner.get(cred) ?? "unknown") : owner });
  });
}

function check(results: Result[], answered: Map<string, number>, total: number) {
  expect(results).toHaveLength(total);
  for (const r of results) {
    if (r.status === 429) {
      expect(Number(r.retryAfter)).toBeGreaterThan(0);
      continue;
    }
    expect(r.status, r.body).toBe(200);
    const body = JSON.parse(r.body) as { rid: string; servedBy: string };
    expect(body.rid).toBe(r.rid); // its own answer, not another request's
    expect(body.servedBy).toBe(r.owner); // with its own user's account
  }
  // None lost, none answered twice upstream.
  expect(new Set(results.map((r) => r.rid)).size).toBe(total);
  for (const r of results) if (r.status === 200) expect(answered.get(r.rid)).toBe(1);
}

describe("load", () => {
  it("500 requests over 5 accounts of one user: two rate limited, one expired; all served, one refresh", async () => {
    const owners = new Map<string, string>();
    const limited = new Set<string>();
    const p = await userWithFive(owners, limited);
    const answered = new Map<string, number>();
    installFake(owners, limited, answered);
    const results: Result[] = [];
    for (let wave = 0; wave < 10; wave++) results.push(...(await fire([p], 50, wave)));
    check(results, answered, 500);
    expect(results.filter((r) => r.status === 200)).toHaveLength(500);
    expect(up().anthropicAuth.calls).toBe(1);
  }, 60_000);

  it("the same over 10 users at once: no cross-talk, one refresh per expired account", async () => {
    const owners = new Map<string, string>();
    const limited = new Set<string>();
    const pools: Pool[] = [];
    for (let i = 0; i < 10; i++) pools.push(await userWithFive(owners, limited));
    const answered = new Map<string, number>();
    installFake(owners, limited, answered);
    const results = await fire(pools, 50);
    check(results, answered, 500);
    expect(up().anthropicAuth.calls).toBe(10);
  }, 60_000);
});
