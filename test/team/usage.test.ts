/**
 * Team usage for the admin (GET /admin/usage, DESIGN §12): every member's last request, account
 * health counts, limits and usage per UTC day, and never a credential, label or account id.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ADMIN, addAccount, call, createUser, messages, postJson, useGateway } from "../helpers/gateway";
import { secrets } from "../helpers/secrets";
import { anthropicMessage, json } from "../helpers/upstream";

const { up } = useGateway();
let n = 0;
const stubOf = (userId: string) => env.USER_POOL.get(env.USER_POOL.idFromName(userId));

interface Member {
  id: string;
  name: string;
  role: string;
  createdAt: number;
  lastSeenAt: number | null;
  accounts: { total: number; active: number; cooling: number; needsReauth: number; disabled: number };
  limits: Record<string, unknown>;
  days: { date: string; requests: number; inputTokens: number; outputTokens: number; cacheReadTokens: number; cacheWriteTokens: number }[];
}

const usage = async (days?: string, key = ADMIN) => call(`/admin/usage${days === undefined ? "" : `?days=${days}`}`, { key });
const find = async (id: string, days?: string) => (await usage(days)).json<{ users: Member[] }>().users.find((u) => u.id === id)!;

describe("team usage (GET /admin/usage)", () => {
  it("shows each member's requests and tokens per day, last seen, account health and limits, and nothing of their accounts", async () => {
    const u = await createUser(`team${++n}`);
    const keys = [0, 1, 2].map((i) => secrets.add(`sk-ant-api03-team${i}-${crypto.randomUUID()}`));
    const accs: { id: string }[] = [];
    for (const [i, k] of keys.entries()) accs.push(await addAccount(u.key, { provider: "anthropic", type: "api", key: k, label: `secret-label-${n}-${i}` }));
    up().on("anthropic.fake/v1/messages", () => json(anthropicMessage()));
    await postJson(`/admin/users/${u.id}`, ADMIN, { limits: { tokensPerDay: 1000 } }, "PATCH");
    const before = Date.now();
    for (let i = 0; i < 3; i++) expect((await messages(u.key)).status).toBe(200);
    // One account out of rotation, one disabled.
    await runInDurableObject(stubOf(u.id), (_o, s) => s.storage.sql.exec("UPDATE accounts SET needs_reauth = 1 WHERE id = ?", accs[1]!.id));
    await postJson(`/api/accounts/${accs[2]!.id}`, u.key, { enabled: false }, "PATCH");
    await new Promise((r) => setTimeout(r, 1_300)); // the successes' batch reaches the object

    const r = await usage("7");
    expect(r.status).toBe(200);
    for (let i = 0; i < 3; i++) {
      expect(r.body).not.toContain(accs[i]!.id);
      expect(r.body).not.toContain(`secret-label-${n}-${i}`);
    }
    const m = r.json<{ users: Member[] }>().users.find((x) => x.id === u.id)!;
    expect(m.name).toBe(`team${n}`);
    expect(m.createdAt).toBeLessThanOrEqual(before);
    expect(m.role).toBe("member");
    expect(m.lastSeenAt).toBeGreaterThanOrEqual(before);
    expect(m.accounts).toEqual({ total: 3, active: 1, cooling: 0, needsReauth: 1, disabled: 1 });
    expect(m.limits).toEqual({ requestsPerMinute: null, tokensPerDay: 1000, tokensPerMonth: null, models: null });
    expect(m.days).toHaveLength(7);
    expect(m.days.map((d) => d.date)).toEqual([...m.days.map((d) => d.date)].sort());
    const today = m.days.at(-1)!;
    expect(today.date).toBe(new Date().toISOString().slice(0, 10));
    expect(today).toMatchObject({ requests: 3, inputTokens: 15, outputTokens: 6 });
    expect(m.days.slice(0, 6).every((d) => d.requests === 0 && d.inputTokens === 0)).toBe(true);
  });

  it("a member who never sent a request: lastSeenAt null, zero days", async () => {
    const u = await createUser(`quiet${++n}`);
    const m = await find(u.id, "3");
    expect(m.lastSeenAt).toBeNull();
    expect(m.accounts.total).toBe(0);
    expect(m.days.map((d) => d.requests)).toEqual([0, 0, 0]);
  });

  it("defaults to 30 days, and refuses days outside 1..90 with a 400 naming days", async () => {
    const u = await createUser(`days${++n}`);
    expect((await find(u.id)).days).toHaveLength(30);
    expect((await find(u.id, "90")).days).toHaveLength(90);
    for (const bad of ["0", "91", "abc", "1.5", "-3"]) {
      const r = await usage(bad);
      expect(r.status, bad).toBe(400);
      expect(r.json().error.field).toBe("days");
    }
  });

  it("is for admins: a member gets 403; an admin user may", async () => {
    const member = await createUser(`mem${++n}`);
    expect((await usage("7", member.key)).status).toBe(403);
    const lead = await createUser(`lead${++n}`, "admin");
    expect((await usage("7", lead.key)).status).toBe(200);
  });

  it("usage served by a deleted account still counts for the member", async () => {
    const u = await createUser(`del${++n}`);
    const acc = await addAccount(u.key, { provider: "anthropic", type: "api", key: secrets.add(`sk-ant-api03-del-${crypto.randomUUID()}`) });
    up().on("anthropic.fake/v1/messages", () => json(anthropicMessage()));
    await messages(u.key);
    await new Promise((r) => setTimeout(r, 1_300));
    expect((await call(`/api/accounts/${acc.id}`, { method: "DELETE", key: u.key })).status).toBe(204);
    const m = await find(u.id, "1");
    expect(m.days[0]).toMatchObject({ requests: 1, inputTokens: 5, outputTokens: 2 });
    expect(m.accounts.total).toBe(0);
  });
});
