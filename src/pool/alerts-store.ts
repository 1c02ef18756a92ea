/**
 * The member's alerts in their Durable Object (DESIGN §12, "Alerts"): their own target
 * (`alert_target`, one row: URL, events, the signing secret sealed under their data key, the last
 * delivery), the outbox of deliveries waiting for the alarm (`alert_outbox`, member's or team's),
 * and what was raised lately (`alert_sent`), which keeps one event about one subject to one alert
 * an hour. Plain reads and writes of the object's SQLite, no I/O.
 */
import type { AlertDelivery, AlertPayload } from "../wire";
import { type AlertEvent, isAlertEvent } from "../alerts/rules";
import { parseJsonBody } from "../util";

/** The same event about the same subject is raised at most once in this long. */
export const DEDUP_MS = 60 * 60_000;
/** Deliveries an outbox holds at most: past that, new alerts are dropped (a receiver long dead must not grow storage). */
export const OUTBOX_CAP = 200;
/**
 * Alerts one member raises in an hour at most, whatever their subjects: the hourly dedup is per
 * subject, and a member who adds, checks and deletes account after account makes a new subject
 * each time (a flood of the team's channel, or of a URL they chose). Past the cap, alerts are dropped.
 */
export const ALERTS_PER_HOUR = 20;

export type AlertScope = "member" | "team";

export interface TargetRow {
  url: string;
  events: AlertEvent[] | null;
  /** e1 envelope under the user's data key (place: user | "alerts" | "signing-secret"). */
  secret: string;
  createdAt: number;
  lastDelivery: AlertDelivery | null;
}

export interface OutboxRow {
  id: number;
  scope: AlertScope;
  body: AlertPayload;
  tries: number;
  nextAt: number;
}

type RawTarget = {
  url: string;
  events: string | null;
  secret: string;
  created_at: number;
  last_at: number | null;
  last_status: number | null;
  last_ok: number | null;
  last_error: string | null;
};

function eventsOf(json: string | null): AlertEvent[] | null {
  const v = parseJsonBody(json);
  return Array.isArray(v) ? v.filter((e): e is AlertEvent => typeof e === "string" && isAlertEvent(e)) : null;
}

export class AlertsStore {
  constructor(private readonly sql: SqlStorage) {}

  // ---- the member's target --------------------------------------------------------------------

  target(): TargetRow | null {
    const r = this.sql.exec<RawTarget>("SELECT url, events, secret, created_at, last_at, last_status, last_ok, last_error FROM alert_target WHERE id = 1").toArray()[0];
    if (!r) return null;
    return {
      url: r.url,
      events: eventsOf(r.events),
      secret: r.secret,
      createdAt: r.created_at,
      lastDelivery: r.last_at === null ? null : { at: r.last_at, status: r.last_status ?? 0, ok: r.last_ok === 1, error: r.last_error },
    };
  }

  /** Sets (or replaces, with a new secret) the target; a new target starts with no last delivery. */
  setTarget(url: string, events: AlertEvent[] | null, sealedSecret: string, now: number): void {
    this.sql.exec(
      `INSERT INTO alert_target (id, url, events, secret, created_at) VALUES (1, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET url = excluded.url, events = excluded.events, secret = excluded.secret,
         created_at = excluded.created_at, last_at = NULL, last_status = NULL, last_ok = NULL, last_error = NULL`,
      url,
      events === null ? null : JSON.stringify(events),
      sealedSecret,
      now,
    );
  }

  /** Removes the target and what waits for it; whether there was one. */
  deleteTarget(): boolean {
    const had = this.sql.exec("DELETE FROM alert_target WHERE id = 1").rowsWritten > 0;
    this.sql.exec("DELETE FROM alert_outbox WHERE scope = 'member'");
    return had;
  }

  recordDelivery(d: AlertDelivery): void {
    this.sql.exec("UPDATE alert_target SET last_at = ?, last_status = ?, last_ok = ?, last_error = ? WHERE id = 1", d.at, d.status, d.ok ? 1 : 0, d.error);
  }

  // ---- what was raised lately (one alert an hour per event and subject) ------------------------

  /** Records the event about `subject` unless it was raised within DEDUP_MS; whether it is new. */
  claim(event: AlertEvent, subject: string, now: number): boolean {
    this.sql.exec("DELETE FROM alert_sent WHERE at <= ?", now - DEDUP_MS);
    if (this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM alert_sent").one().n >= ALERTS_PER_HOUR) {
      console.warn(`subpool: alert ${event} dropped: ${ALERTS_PER_HOUR} alerts were raised for this member in the last hour`);
      return false;
    }
    const fresh = this.sql.exec("INSERT INTO alert_sent (event, subject, at) VALUES (?, ?, ?) ON CONFLICT (event, subject) DO NOTHING", event, subject, now).rowsWritten > 0;
    return fresh;
  }

  // ---- the outbox -------------------------------------------------------------------------------

  /** Queues a delivery; false when the outbox is full (the alert is dropped). */
  enqueue(scope: AlertScope, body: AlertPayload, now: number): boolean {
    const n = this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM alert_outbox").one().n;
    if (n >= OUTBOX_CAP) return false;
    this.sql.exec("INSERT INTO alert_outbox (scope, event, body, tries, next_at, created_at) VALUES (?, ?, ?, 0, ?, ?)", scope, body.event, JSON.stringify(body), now, now);
    return true;
  }

  due(now: number, limit: number): OutboxRow[] {
    return this.sql
      .exec<{ id: number; scope: string; body: string; tries: number; next_at: number }>(
        "SELECT id, scope, body, tries, next_at FROM alert_outbox WHERE next_at <= ? ORDER BY next_at, id LIMIT ?",
        now,
        limit,
      )
      .toArray()
      .map((r) => ({ id: r.id, scope: r.scope === "team" ? "team" : "member", body: JSON.parse(r.body) as AlertPayload, tries: r.tries, nextAt: r.next_at }));
  }

  /** When the next delivery is due, or null when the outbox is empty. */
  nextDue(): number | null {
    return this.sql.exec<{ at: number | null }>("SELECT MIN(next_at) AS at FROM alert_outbox").one().at;
  }

  done(id: number): void {
    this.sql.exec("DELETE FROM alert_outbox WHERE id = ?", id);
  }

  retryAt(id: number, tries: number, nextAt: number): void {
    this.sql.exec("UPDATE alert_outbox SET tries = ?, next_at = ? WHERE id = ?", tries, nextAt, id);
  }
}
