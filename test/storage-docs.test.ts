/**
 * The storage documents stay true: every table and column the migrations make in a user's object is
 * described in src/vault/STORAGE.md (what a dump of it reveals) and every meta key the code writes is
 * listed there; docs/ARCHITECTURE.md names every table and says what each migration version did.
 * A new migration that is not documented fails here.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import architecture from "../docs/ARCHITECTURE.md?raw";
import storage from "../src/vault/STORAGE.md?raw";
import { SCHEMA_VERSION } from "../src/pool/schema";
import { ADMIN, addAccount, createUser, messages, postJson, useGateway } from "./helpers/gateway";
import { secrets } from "./helpers/secrets";
import { anthropicMessage, json } from "./helpers/upstream";

const { up } = useGateway();

/** The section of a markdown document under a heading (to the next heading of the same level). */
function section(doc: string, heading: string): string {
  const start = doc.indexOf(heading);
  expect(start, `heading "${heading}"`).toBeGreaterThanOrEqual(0);
  const level = heading.match(/^#+/)![0];
  const next = doc.indexOf(`\n${level} `, start + heading.length);
  return doc.slice(start, next < 0 ? undefined : next);
}

/** STORAGE.md's Durable Object table: table name -> the backticked names in its columns cell. */
function documentedTables(): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const line of section(storage, "## Durable Object").split("\n")) {
    // Cells split on pipes that are not escaped (`<provider>\|<id>` stays in its cell).
    const cells = line.split(/(?<!\\)\|/).map((c) => c.trim());
    const name = /^`([a-z_]+)`$/.exec(cells[1] ?? "")?.[1];
    if (!name || cells.length < 4) continue;
    // Columns are listed before an em dash; what follows is prose.
    const cols = cells[2]!.split(" — ")[0]!;
    out.set(name, new Set([...cols.matchAll(/`([^`]+)`/g)].flatMap((x) => x[1]!.split(/,\s*/))));
  }
  return out;
}

async function busyObject() {
  const u = await createUser(`docs${Date.now() % 100000}`);
  const key = secrets.add(`sk-ant-api03-docs-${crypto.randomUUID()}`);
  await addAccount(u.key, { provider: "anthropic", type: "api", key });
  up().on("anthropic.fake/v1/messages", () => json(anthropicMessage()));
  await postJson("/api/settings", u.key, { strategy: "round-robin" }, "PATCH");
  await postJson(`/admin/users/${u.id}`, ADMIN, { limits: { requestsPerMinute: 100 } }, "PATCH");
  await postJson(`/admin/users/${u.id}/key`, ADMIN, {});
  await messages(u.key);
  await new Promise((r) => setTimeout(r, 1_200));
  return env.USER_POOL.get(env.USER_POOL.idFromName(u.id));
}

describe("storage documents", () => {
  it("STORAGE.md describes every table and column of a user's object, and no table that is not there", async () => {
    const stub = await busyObject();
    const actual = await runInDurableObject(stub, (_o, s) => {
      const tables = s.storage.sql
        .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'")
        .toArray()
        .map((t) => t.name);
      return Object.fromEntries(tables.map((t) => [t, s.storage.sql.exec<{ name: string }>(`PRAGMA table_info(${t})`).toArray().map((c) => c.name)]));
    });
    const documented = documentedTables();
    expect([...documented.keys()].sort()).toEqual(Object.keys(actual).sort());
    for (const [table, cols] of Object.entries(actual)) {
      if (table === "meta") continue; // meta's cell lists its keys (below)
      expect([...documented.get(table)!].sort(), `STORAGE.md's columns of ${table}`).toEqual([...cols].sort());
    }
  });

  it("STORAGE.md lists every meta key the object writes", async () => {
    const stub = await busyObject();
    const keys = await runInDurableObject(stub, (_o, s) => s.storage.sql.exec<{ k: string }>("SELECT k FROM meta").toArray().map((r) => r.k));
    const listed = documentedTables().get("meta")!;
    for (const k of keys) expect(listed.has(k), `meta key "${k}" in STORAGE.md`).toBe(true);
  });

  it("ARCHITECTURE.md names every table and says what each migration version did", async () => {
    const text = section(architecture, "## Durable Object storage and migrations");
    for (const table of documentedTables().keys()) expect(text, `table ${table}`).toContain(`\`${table}\``);
    for (let v = 1; v <= SCHEMA_VERSION; v++) expect(text, `migration ${v}`).toMatch(new RegExp(`Version ${v}\\b`));
  });
});
