/**
 * Quota probes, off every request path: while the user has been active in the last hour, every
 * PROBE_EVERY_MS the accounts whose telemetry is stale (they have not served lately) are asked at
 * no token cost where the provider allows it (Claude OAuth: the usage endpoint; ChatGPT: wham/usage),
 * stalest first, within PROBE_CALLS_PER_RUN upstream calls a run (a renewal counts as one), so a
 * member with many accounts gets them probed in turns instead of hundreds of calls every 5 minutes.
 */
import { type Env, getConfig } from "../config";
import { providerFor } from "../providers";
import { type AccountRow, type AccountsStore, extrasOf } from "./accounts-store";
import type { DataKey } from "./data-key";
import type { Renewals } from "./renewals";
import { applyTelemetry, readQuota } from "./telemetry-store";

/** Quota probes run this often, while the user has been active within ACTIVE_WINDOW_MS. */
export const PROBE_EVERY_MS = 5 * 60_000;
export const ACTIVE_WINDOW_MS = 60 * 60_000;
/** Upstream calls (renewals and probes) one alarm run may make for its user. */
export const PROBE_CALLS_PER_RUN = 8;

export class Probes {
  /** Per account, when the alarm last tried to probe it (a probe that fails waits its turn again). */
  private readonly probedAt = new Map<string, number>();

  constructor(
    private readonly env: Env,
    private readonly sql: SqlStorage,
    private readonly accounts: AccountsStore,
    private readonly dataKey: DataKey,
    private readonly renewals: Renewals,
  ) {}

  forget(id: string): void {
    this.probedAt.delete(id);
  }

  /** Whether any of these accounts can be probed at all (else no alarm is needed for probes). */
  static wanted(rows: AccountRow[]): boolean {
    return rows.some((r) => r.type === "oauth" && providerFor(r.provider).probeQuota);
  }

  async run(now: number): Promise<void> {
    const cfg = getConfig(this.env);
    // Stalest first (never heard of, then the oldest telemetry or try), within a budget of calls.
    const heard = (r: AccountRow) => Math.max(readQuota(r.quota)?.updatedAt ?? 0, this.probedAt.get(r.id) ?? 0);
    const due = this.accounts
      .all()
      .filter((r) => providerFor(r.provider).probeQuota && r.type === "oauth" && r.enabled === 1 && r.needs_reauth === 0)
      .filter((r) => now - heard(r) >= PROBE_EVERY_MS) // it served (or was probed) lately: its answers said
      .filter((r) => !this.renewals.wait(r)) // a failed renewal is waited out here too
      .sort((a, b) => heard(a) - heard(b));
    let budget = PROBE_CALLS_PER_RUN;
    for (const row of due) {
      const provider = providerFor(row.provider);
      if (!provider.probeQuota) continue;
      const renew = row.expires_at !== null && this.renewals.due(row, now);
      if (budget < (renew ? 2 : 1)) break;
      budget -= renew ? 2 : 1;
      this.probedAt.set(row.id, now);
      try {
        let current = row;
        if (renew) {
          const renewed = await this.renewals.once(row);
          if (!renewed.ok) continue;
          current = this.accounts.get(row.id) ?? row;
        }
        const opened = await this.dataKey.open(current);
        if (opened.kind !== "ok") continue;
        const reading = await provider.probeQuota(cfg, { id: row.id, type: "oauth", extras: extrasOf(current.extras) }, opened.cred);
        if (reading) applyTelemetry(this.sql, [{ accountId: row.id, successes: 0, failures: 0, lastUsedAt: 0, lastStatus: 0, quota: { ...reading, updatedAt: Date.now() } }]);
      } catch (e) {
        console.warn(`subpool: quota probe of account ${row.id} failed: ${(e as Error).name}`);
      }
    }
  }
}
