/**
 * The UserPool Durable Object's SQLite schema, as numbered migrations applied forward in order.
 * Every object records the version it reached in `meta.schema_version`; on start-up (inside
 * blockConcurrencyWhile) it applies the migrations it has not seen, each in one transaction.
 * `CREATE TABLE IF NOT EXISTS` alone never reaches an existing user's object: a new column or table
 * is a new migration appended here, never an edit of a shipped one.
 */

/** Index i holds migration i + 1. Shipped migrations are frozen. */
export const MIGRATIONS: readonly string[] = [
  // 1 — the first release's schema (objects made before versioning have exactly this).
  `CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
  id TEXT PRIMARY KEY,
  provider TEXT NOT NULL,
  type TEXT NOT NULL,
  label TEXT NOT NULL,
  position INTEGER NOT NULL,
  enabled INTEGER NOT NULL DEFAULT 1,
  needs_reauth INTEGER NOT NULL DEFAULT 0,
  cooldown_until INTEGER,
  last_status INTEGER,
  last_error TEXT,
  last_used_at INTEGER,
  success_count INTEGER NOT NULL DEFAULT 0,
  failure_count INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  cred_version INTEGER NOT NULL,
  cred TEXT NOT NULL,
  expires_at INTEGER,
  chatgpt_account_id TEXT,
  fingerprint TEXT,
  identity TEXT
);
CREATE INDEX IF NOT EXISTS accounts_by_provider ON accounts (provider, position);
CREATE TABLE IF NOT EXISTS logins (
  id TEXT PRIMARY KEY,
  provider TEXT NOT NULL,
  label TEXT,
  state TEXT,
  secret TEXT NOT NULL,
  interval_s INTEGER,
  next_poll_at INTEGER,
  expires_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);`,
  // 2 — per-account provider extras as one JSON object, in place of a column named after one
  // provider (the first schema kept the ChatGPT workspace id in its own column).
  `ALTER TABLE accounts ADD COLUMN extras TEXT NOT NULL DEFAULT '{}';
UPDATE accounts SET extras = json_object('chatgptAccountId', chatgpt_account_id) WHERE chatgpt_account_id IS NOT NULL;
ALTER TABLE accounts DROP COLUMN chatgpt_account_id;`,
  // 3 — admin resets of this user's gateway key, shown to the user in GET /api/me (the last 50).
  // `by_id` is the admin's user id, NULL for the bootstrap ADMIN_TOKEN; `by_name` is for people.
  `CREATE TABLE IF NOT EXISTS key_resets (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  by_id TEXT,
  by_name TEXT NOT NULL
);`,
  // 4 — routing: quota telemetry per account, usage per account and UTC day, conversation
  // bindings (session affinity). Settings live in meta.
  `ALTER TABLE accounts ADD COLUMN quota TEXT;
CREATE TABLE IF NOT EXISTS usage_daily (
  account_id TEXT NOT NULL,
  date TEXT NOT NULL,
  requests INTEGER NOT NULL DEFAULT 0,
  input_tokens INTEGER NOT NULL DEFAULT 0,
  output_tokens INTEGER NOT NULL DEFAULT 0,
  cache_read_tokens INTEGER NOT NULL DEFAULT 0,
  cache_write_tokens INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (account_id, date)
);
CREATE TABLE IF NOT EXISTS affinity (
  key TEXT PRIMARY KEY,
  account_id TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS affinity_by_time ON affinity (at);`,
  // 5 — when the last error happened, so a reader can tell an old error from a current one.
  `ALTER TABLE accounts ADD COLUMN last_error_at INTEGER;`,
  // 6 — the member's own usage per UTC day, whatever account served it: what team usage shows and
  // team limits count. Kept apart from usage_daily because that goes with a deleted account (a
  // member must not reset the day's count by deleting an account). Filled from usage_daily once.
  `CREATE TABLE IF NOT EXISTS member_usage_daily (
  date TEXT PRIMARY KEY,
  requests INTEGER NOT NULL DEFAULT 0,
  input_tokens INTEGER NOT NULL DEFAULT 0,
  output_tokens INTEGER NOT NULL DEFAULT 0,
  cache_read_tokens INTEGER NOT NULL DEFAULT 0,
  cache_write_tokens INTEGER NOT NULL DEFAULT 0
);
INSERT INTO member_usage_daily (date, requests, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)
  SELECT date, SUM(requests), SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens), SUM(cache_write_tokens) FROM usage_daily GROUP BY date;`,
  // 7 — alerts (src/pool/alerts-store.ts): the member's own target (one row; the signing secret
  // sealed under their data key; the last delivery), the outbox the alarm delivers (the member's
  // or the team's target; the body holds no secret), and what was raised lately (one alert an
  // hour per event and subject).
  `CREATE TABLE IF NOT EXISTS alert_target (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  url TEXT NOT NULL,
  events TEXT,
  secret TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_at INTEGER,
  last_status INTEGER,
  last_ok INTEGER,
  last_error TEXT
);
CREATE TABLE IF NOT EXISTS alert_outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  scope TEXT NOT NULL CHECK (scope IN ('member', 'team')),
  event TEXT NOT NULL,
  body TEXT NOT NULL,
  tries INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_outbox_by_due ON alert_outbox (next_at);
CREATE TABLE IF NOT EXISTS alert_sent (
  event TEXT NOT NULL,
  subject TEXT NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (event, subject)
);`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** The version an object's storage is at: recorded, or 1 for objects made before versioning. */
export function schemaVersion(sql: SqlStorage): number {
  const hasMeta = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'meta'").one().n > 0;
  if (!hasMeta) return 0;
  const v = sql.exec<{ v: string }>("SELECT v FROM meta WHERE k = 'schema_version'").toArray()[0]?.v;
  if (v !== undefined) return Number(v);
  const hasAccounts = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'accounts'").one().n > 0;
  return hasAccounts ? 1 : 0;
}

/**
 * Brings the storage to SCHEMA_VERSION. Each step and its version record commit together, so a
 * failure leaves the object at the last complete version. Returns the versions it went between.
 */
export function migrate(storage: DurableObjectStorage): { from: number; to: number } {
  const sql = storage.sql;
  const from = schemaVersion(sql);
  if (from > SCHEMA_VERSION) {
    // Storage written by a newer release (a rollback): never downgrade it, refuse loudly.
    throw new Error(`this object's storage is at schema version ${from}, newer than this code's ${SCHEMA_VERSION}`);
  }
  for (let v = from; v < SCHEMA_VERSION; v++) {
    storage.transactionSync(() => {
      sql.exec(MIGRATIONS[v]!);
      sql.exec("INSERT INTO meta (k, v) VALUES ('schema_version', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", String(v + 1));
    });
  }
  return { from, to: SCHEMA_VERSION };
}
