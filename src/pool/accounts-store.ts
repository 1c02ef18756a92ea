/**
 * The `accounts` table of a user's Durable Object: every statement that reads or writes an account
 * row lives here, so a reader finds what can happen to an account in one file. No I/O but the
 * object's own SQLite, no secret handled in the clear (the `cred` column holds a sealed record).
 *
 * Health transitions that alerts care about (needs a new login, refused) go through the methods
 * named for them, and report whether the account entered that state (an alert is raised once).
 */
import type { AccountExtras, AccountType } from "../providers/types";
import { cleanLabel, parseJsonBody } from "../util";
import type { CredentialRecord } from "../vault/records";
import { readQuota } from "./telemetry-store";
import type { AccountState, OutcomeReport } from "./types";

export type AccountRow = {
  id: string;
  provider: string;
  type: string;
  label: string;
  position: number;
  enabled: number;
  needs_reauth: number;
  cooldown_until: number | null;
  last_status: number | null;
  last_error: string | null;
  last_error_at: number | null;
  last_used_at: number | null;
  success_count: number;
  failure_count: number;
  created_at: number;
  cred_version: number;
  cred: string;
  expires_at: number | null;
  extras: string;
  quota: string | null;
  fingerprint: string | null;
  identity: string | null;
};

export function extrasOf(json: string): AccountExtras {
  const v = parseJsonBody(json);
  return v && typeof v === "object" && !Array.isArray(v) ? (v as AccountExtras) : {};
}

export function stateOf(r: AccountRow): AccountState {
  return {
    id: r.id,
    provider: r.provider,
    type: r.type as AccountType,
    label: r.label,
    position: r.position,
    enabled: r.enabled === 1,
    needsReauth: r.needs_reauth === 1,
    cooldownUntil: r.cooldown_until,
    lastStatus: r.last_status,
    lastError: r.last_error,
    lastErrorAt: r.last_error_at,
    lastUsedAt: r.last_used_at,
    successCount: r.success_count,
    failureCount: r.failure_count,
    createdAt: r.created_at,
    credVersion: r.cred_version,
    expires: r.expires_at,
    extras: extrasOf(r.extras),
    quota: readQuota(r.quota),
  };
}

export const recordOf = (r: AccountRow): CredentialRecord => JSON.parse(r.cred) as CredentialRecord;

export interface InsertRow {
  id: string;
  provider: string;
  type: AccountType;
  label: string;
  position: number;
  createdAt: number;
  record: CredentialRecord;
  extras: AccountExtras;
  fingerprint: string | null;
  identity: string | null;
}

export class AccountsStore {
  constructor(private readonly sql: SqlStorage) {}

  all(): AccountRow[] {
    return this.sql.exec<AccountRow>("SELECT * FROM accounts ORDER BY provider, position, created_at").toArray();
  }

  get(id: string): AccountRow | undefined {
    return this.sql.exec<AccountRow>("SELECT * FROM accounts WHERE id = ?", id).toArray()[0];
  }

  count(): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM accounts").one().n;
  }

  ids(): string[] {
    return this.sql.exec<{ id: string }>("SELECT id FROM accounts").toArray().map((r) => r.id);
  }

  nextPosition(provider: string): number {
    return (this.sql.exec<{ p: number | null }>("SELECT MAX(position) AS p FROM accounts WHERE provider = ?", provider).one().p ?? 0) + 1;
  }

  insert(a: InsertRow): void {
    this.sql.exec(
      `INSERT INTO accounts (id, provider, type, label, position, created_at, cred_version, cred, expires_at, extras, fingerprint, identity)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      a.id,
      a.provider,
      a.type,
      a.label,
      a.position,
      a.createdAt,
      a.record.version,
      JSON.stringify(a.record),
      a.record.expires,
      JSON.stringify(a.extras),
      a.fingerprint,
      a.identity,
    );
  }

  remove(id: string): void {
    this.sql.exec("DELETE FROM accounts WHERE id = ?", id);
  }

  /** A credential a person handed in (a re-login, an import): a fresh start for the account. */
  replaceCredential(id: string, record: CredentialRecord, extras: AccountExtras, fingerprint: string | undefined): void {
    this.sql.exec(
      "UPDATE accounts SET cred = ?, cred_version = ?, expires_at = ?, needs_reauth = 0, cooldown_until = NULL, last_error = NULL, extras = ? WHERE id = ?",
      JSON.stringify(record),
      record.version,
      record.expires,
      JSON.stringify(extras),
      id,
    );
    if (fingerprint) this.sql.exec("UPDATE accounts SET fingerprint = ? WHERE id = ?", fingerprint, id);
  }

  /** A renewed session: the new sealed record; a rate limit's bench stays. */
  renewed(id: string, record: CredentialRecord, extras: AccountExtras): void {
    this.sql.exec(
      "UPDATE accounts SET cred = ?, cred_version = ?, expires_at = ?, needs_reauth = 0, last_error = NULL, extras = ? WHERE id = ?",
      JSON.stringify(record),
      record.version,
      record.expires,
      JSON.stringify(extras),
      id,
    );
  }

  /** Counters, last status and error, cooldowns (they only grow) from the isolates' batches. */
  applyOutcomes(reports: OutcomeReport[]): void {
    for (const r of reports) {
      this.sql.exec(
        `UPDATE accounts SET
           success_count = success_count + ?, failure_count = failure_count + ?,
           last_used_at = CASE WHEN ? > 0 THEN MAX(COALESCE(last_used_at, 0), ?) ELSE last_used_at END,
           last_status = CASE WHEN ? > 0 THEN ? ELSE last_status END,
           cooldown_until = CASE WHEN ? IS NULL THEN cooldown_until ELSE MAX(COALESCE(cooldown_until, 0), ?) END,
           last_error = CASE WHEN ? = 1 THEN ? ELSE last_error END,
           last_error_at = CASE WHEN ? = 1 AND ? IS NOT NULL THEN ? ELSE last_error_at END
         WHERE id = ?`,
        r.successes,
        r.failures,
        r.successes + r.failures,
        r.lastUsedAt,
        r.successes + r.failures,
        r.lastStatus,
        r.cooldownUntil ?? null,
        r.cooldownUntil ?? null,
        r.lastError === undefined ? 0 : 1,
        r.lastError ?? null,
        r.lastError === undefined ? 0 : 1,
        r.lastError ?? null,
        r.lastUsedAt || Date.now(),
        r.accountId,
      );
    }
  }

  // ---- health ---------------------------------------------------------------------------------

  /** Its session or grant is dead: out of rotation until a new login. True when it just became so. */
  markReauth(id: string, reason: string): boolean {
    const was = this.get(id)?.needs_reauth === 1;
    this.sql.exec("UPDATE accounts SET needs_reauth = 1, last_error = ?, last_error_at = ? WHERE id = ?", reason, Date.now(), id);
    return !was;
  }

  /** Its stored credential does not open: out until a person replaces it (no cooldown either). */
  markUnreadable(id: string, reason: string): boolean {
    const was = this.get(id)?.needs_reauth === 1;
    this.sql.exec("UPDATE accounts SET needs_reauth = 1, last_error = ?, last_error_at = ?, cooldown_until = NULL WHERE id = ?", reason, Date.now(), id);
    return !was;
  }

  /**
   * A check was refused: out of rotation (every request would try it first and fail) until a new
   * credential or a check that passes. `error` null keeps the reason already recorded.
   */
  markRefused(id: string, error: string | null): boolean {
    const was = this.get(id)?.needs_reauth === 1;
    this.sql.exec("UPDATE accounts SET needs_reauth = 1, cooldown_until = NULL WHERE id = ?", id);
    if (error !== null) this.setError(id, error);
    return !was;
  }

  /**
   * A check passed. It speaks only for itself: it puts back an account a check (or a credential
   * that did not open) had taken out, and clears a check's error, a failed renewal's error and a
   * bench for a refused credential (401/403); not a rate limit the account's requests met.
   */
  passed(id: string, unreadableReason: string): void {
    this.sql.exec(
      "UPDATE accounts SET needs_reauth = 0, last_error = CASE WHEN last_error LIKE 'check: %' OR last_error LIKE 'refresh failed: %' OR last_error = ? THEN NULL ELSE last_error END WHERE id = ?",
      unreadableReason,
      id,
    );
    this.sql.exec("UPDATE accounts SET cooldown_until = NULL WHERE id = ? AND last_status IN (401, 403)", id);
  }

  setError(id: string, error: string): void {
    this.sql.exec("UPDATE accounts SET last_error = ?, last_error_at = ? WHERE id = ?", error, Date.now(), id);
  }

  /** A failed renewal: its error, and a bench until the next try (cooldowns only grow). */
  renewalFailed(id: string, error: string, until: number): void {
    this.sql.exec(
      "UPDATE accounts SET last_error = ?, last_error_at = ?, cooldown_until = MAX(COALESCE(cooldown_until, 0), ?) WHERE id = ?",
      error,
      Date.now(),
      until,
      id,
    );
  }

  /** Ends a bench that lasts no longer than `until` (a longer one set since, a rate limit, stays). */
  unbench(id: string, until: number): void {
    this.sql.exec("UPDATE accounts SET cooldown_until = NULL WHERE id = ? AND cooldown_until <= ?", id, until);
  }

  /** Enabling is also how a person says "try it again": it clears the bench. */
  setEnabled(id: string, enabled: boolean): void {
    this.sql.exec(
      "UPDATE accounts SET enabled = ?, cooldown_until = CASE WHEN ? = 1 THEN NULL ELSE cooldown_until END WHERE id = ?",
      enabled ? 1 : 0,
      enabled ? 1 : 0,
      id,
    );
  }

  // ---- labels and order -------------------------------------------------------------------------

  setLabel(id: string, label: string): void {
    this.sql.exec("UPDATE accounts SET label = ? WHERE id = ?", label, id);
  }

  /** Labels name one account each (the CLI and the dashboard find accounts by label). */
  labelTaken(label: string, exceptId: string | null): boolean {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM accounts WHERE lower(label) = lower(?) AND id IS NOT ?", label, exceptId).one().n > 0;
  }

  /** The label, or "label 2", "label 3" ... when it is taken (three imported "opencode" entries). */
  uniqueLabel(label: string): string {
    const clean = cleanLabel(label);
    if (!this.labelTaken(clean, null)) return clean;
    for (let i = 2; ; i++) if (!this.labelTaken(`${clean} ${i}`, null)) return `${clean} ${i}`;
  }

  move(row: AccountRow, position: number): void {
    const ids = this.sql
      .exec<{ id: string }>("SELECT id FROM accounts WHERE provider = ? AND id != ? ORDER BY position, created_at", row.provider, row.id)
      .toArray()
      .map((r) => r.id);
    const at = Math.min(Math.max(position, 1), ids.length + 1) - 1;
    ids.splice(at, 0, row.id);
    ids.forEach((id, i) => this.sql.exec("UPDATE accounts SET position = ? WHERE id = ?", i + 1, id));
  }

  renumber(provider: string): void {
    const ids = this.sql.exec<{ id: string }>("SELECT id FROM accounts WHERE provider = ? ORDER BY position, created_at", provider).toArray();
    ids.forEach((r, i) => this.sql.exec("UPDATE accounts SET position = ? WHERE id = ?", i + 1, r.id));
  }

  // ---- one credential, one account ------------------------------------------------------------------

  byFingerprint(provider: string, type: string, fingerprint: string): AccountRow | undefined {
    return this.sql.exec<AccountRow>("SELECT * FROM accounts WHERE provider = ? AND type = ? AND fingerprint = ?", provider, type, fingerprint).toArray()[0];
  }

  byIdentity(provider: string, identity: string): AccountRow | undefined {
    return this.sql.exec<AccountRow>("SELECT * FROM accounts WHERE provider = ? AND identity = ? ORDER BY position LIMIT 1", provider, identity).toArray()[0];
  }

  /** Accounts stored before adding took fingerprints. */
  unfingerprinted(provider: string, type: string): AccountRow[] {
    return this.sql.exec<AccountRow>("SELECT * FROM accounts WHERE provider = ? AND type = ? AND fingerprint IS NULL", provider, type).toArray();
  }

  fingerprinted(): AccountRow[] {
    return this.sql.exec<AccountRow>("SELECT * FROM accounts WHERE fingerprint IS NOT NULL").toArray();
  }

  /** Sets the fingerprint, only if it is still `expected` (null: none yet). */
  setFingerprint(id: string, fingerprint: string, expected: string | null): void {
    this.sql.exec("UPDATE accounts SET fingerprint = ? WHERE id = ? AND fingerprint IS ?", fingerprint, id, expected);
  }
}
