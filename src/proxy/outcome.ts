/**
 * Records what one attempt on one account came to: the outcome (success or failure, status,
 * cooldown, reason, quota telemetry, tokens) goes to the isolate's snapshot at once and to the
 * user's Durable Object with the next flush, off the response path (`waitUntil`). A success binds
 * the conversation to the account that served it, when routing asked for that. One log line per
 * failed attempt (ids, status and our own reason text: never a secret), so `wrangler tail` shows
 * every rotation; successes stay silent, they are the hot path.
 */
import type { Env } from "../config";
import { bindConversation, recordOutcome, recordUsage } from "../pool/snapshots";
import { utcDay } from "../pool/telemetry-store";
import type { OutcomeReport } from "../pool/types";
import type { Usage } from "../providers/telemetry";
import type { Provider } from "../providers/types";
import { humanDuration } from "../util";

export interface OutcomeContext {
  env: Env;
  userId: string;
  provider: Provider;
  path: string;
  waitUntil(p: Promise<unknown>): void;
  /** The conversation to bind to the account that served, or null (the routing plan decides). */
  bindAs(servedBy: string): string | null;
}

export class Outcome {
  /** Quota telemetry of the answer being handled, sent with its outcome. */
  quota: OutcomeReport["quota"];
  /** Tokens of a JSON answer read whole, sent with its outcome. */
  usage: Usage | null = null;

  constructor(
    private readonly x: OutcomeContext,
    private readonly accountId: string,
  ) {}

  report(status: number, ok: boolean, cooldownS?: number, reason?: string): void {
    const { env, userId } = this.x;
    const now = Date.now();
    const p = recordOutcome(env, userId, {
      accountId: this.accountId,
      successes: ok ? 1 : 0,
      failures: ok ? 0 : 1,
      lastUsedAt: now,
      lastStatus: status,
      cooldownUntil: cooldownS !== undefined ? now + cooldownS * 1000 : undefined,
      lastError: ok ? undefined : (reason ?? `upstream answered ${status}`),
      ...(this.quota ? { quota: this.quota } : {}),
      ...(ok ? { usage: [{ date: utcDay(now), requests: 1, inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, ...this.usage }] } : {}),
    });
    if (p) this.x.waitUntil(p.catch(() => undefined));
    const conversation = ok ? this.x.bindAs(this.accountId) : null;
    if (conversation) {
      const b = bindConversation(env, userId, conversation, this.accountId, now);
      if (b) this.x.waitUntil(b.catch(() => undefined));
    }
    if (!ok) {
      console.log(
        `subpool: ${this.x.provider.id} ${this.x.path} user=${userId} account=${this.accountId} -> ${status || "network"}: ${reason ?? "failed"}` +
          `${cooldownS !== undefined ? `; benched ${humanDuration(cooldownS)}` : ""}`,
      );
    }
  }

  /** Tokens counted after the answer was handed over (a stream, a large JSON answer). */
  lateUsage(u: Usage | null): void {
    const p = u ? recordUsage(this.x.env, this.x.userId, this.accountId, u, Date.now()) : null;
    if (p) this.x.waitUntil(p.catch(() => undefined));
  }

  /** A stream that broke or went silent after it was handed over: a failure of the account, no bench. */
  lateFailure(reason: string): void {
    const now = Date.now();
    const p = recordOutcome(this.x.env, this.x.userId, { accountId: this.accountId, successes: 0, failures: 1, lastUsedAt: now, lastStatus: 200, lastError: reason });
    if (p) this.x.waitUntil(p.catch(() => undefined));
    console.log(`subpool: ${this.x.provider.id} ${this.x.path} user=${this.x.userId} account=${this.accountId} -> 200 stream: ${reason}`);
  }
}
