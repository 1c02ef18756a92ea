/**
 * The team's limits for a member, enforced at the edge (DESIGN §12) with no KV or Durable Object
 * round trip per request: the snapshot the request already uses carries the limits and what the
 * member had spent when the object answered (`spent`), and this isolate adds what it admitted and
 * counted since (pool/snapshots.ts re-applies its unsent outcomes to every fresh snapshot).
 *
 * What that allows past a limit, by design (docs/ARCHITECTURE.md, "Team limits"):
 *   - requests in flight when the line is crossed finish (tokens are known only at their end);
 *   - another isolate's admissions and tokens reach this one within a flush (about a second) plus
 *     the snapshot's age (SNAPSHOT_TTL_MS): N busy isolates may each admit up to a second's worth.
 * Over a limit: 429 in the provider's own error format, `retry-after` until the window frees,
 * `x-subpool-limit: <field>`, and a message naming it as the team's limit, not the provider's.
 * A model outside the allow-list: 403. Refused requests are not counted.
 */
import { GatewayError } from "../errors";
import type { Snapshot } from "../pool/types";
import type { Provider } from "../providers/types";
import { humanDuration } from "../util";
import type { LimitField, LimitsLeft } from "../wire";
import { modelAllowed, topLevelModels } from "./models";

/** The ends of the current epoch minute, UTC day and UTC month. */
export function windowEnds(now: number): LimitsLeft["resets"] {
  const d = new Date(now);
  return {
    minute: (Math.floor(now / 60_000) + 1) * 60_000,
    day: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1),
    month: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1),
  };
}

/** What the snapshot says was spent in the windows `now` falls in (a window that ended counts 0). */
export function spentNow(snap: Snapshot, now: number): { minuteRequests: number; dayTokens: number; monthTokens: number } {
  const s = snap.spent;
  const day = new Date(now).toISOString().slice(0, 10);
  return {
    minuteRequests: s.minute === Math.floor(now / 60_000) ? s.minuteRequests : 0,
    dayTokens: s.day === day ? s.dayTokens : 0,
    monthTokens: s.month === day.slice(0, 7) ? s.monthTokens : 0,
  };
}

export function leftOf(snap: Snapshot, now: number): LimitsLeft {
  const l = snap.limits;
  const spent = spentNow(snap, now);
  const left = (limit: number | null, used: number) => (limit === null ? null : Math.max(0, limit - used));
  return {
    requestsPerMinute: left(l.requestsPerMinute, spent.minuteRequests),
    tokensPerDay: left(l.tokensPerDay, spent.dayTokens),
    tokensPerMonth: left(l.tokensPerMonth, spent.monthTokens),
    resets: windowEnds(now),
  };
}

/** Whether the member has a limit at all (most members: nothing to do per request). */
export function limited(snap: Snapshot): boolean {
  const l = snap.limits;
  return l.requestsPerMinute !== null || l.tokensPerDay !== null || l.tokensPerMonth !== null || l.models !== null;
}

/**
 * Refuses the request when it is over a limit (a GatewayError the proxy's onError renders in the
 * provider's format), and says which limit for the alert. Reads the body only for a model allow-list.
 */
/** The request body as the proxy holds it (src/proxy/body.ts), read only when a model list asks. */
export interface BodyBytes {
  held(): ArrayBuffer | null;
  bytes(): Promise<ArrayBuffer | null>;
}

export interface LimitedRequest {
  method: string;
  /** The path after the provider's prefix. */
  path: string;
  body: BodyBytes;
}

/** A model name as quoted back: a member chooses it, and the answer must not echo a megabyte. */
const quoted = (model: string) => (model.length > 100 ? `${model.slice(0, 100)}…` : model);

export async function enforceLimits(snap: Snapshot, provider: Provider, req: LimitedRequest, now: number): Promise<void> {
  const l = snap.limits;
  // A model list or a token limit covers only what the gateway can see: a batch or a file names
  // its models elsewhere and is billed later, out of sight. Those paths are closed to the member.
  const watched: LimitField | null = l.models !== null ? "models" : l.tokensPerDay !== null ? "tokensPerDay" : l.tokensPerMonth !== null ? "tokensPerMonth" : null;
  if (watched && !provider.metered(req.method, req.path)) {
    throw limitError(
      403,
      watched,
      `subpool: ${req.method} ${provider.prefix}${req.path.slice(0, 200)} is closed to you: your team's ${watched === "models" ? "model list" : "token limit"} covers only requests whose model and tokens the gateway sees (messages, chat completions, responses, model listings), and this one's it cannot (a limit of your team, not of ${provider.name}). Ask your admin.`,
    );
  }
  if (l.models !== null) {
    const body = req.body;
    const bytes = body.held() ?? (await body.bytes());
    const named = bytes ? topLevelModels(new Uint8Array(bytes)) : [];
    if (named.length > 1) {
      throw new GatewayError(400, "invalid_request_error", `the request names "model" ${named.length} times; name it once`, { field: "model" });
    }
    const model = named[0];
    if (model !== undefined && !modelAllowed(model, l.models)) {
      const allowed = l.models.length === 0 ? "no model" : l.models.join(", ");
      throw limitError(
        403,
        "models",
        `subpool: your team's admin allows you ${allowed} through this gateway, not "${quoted(model)}" (a limit of your team, not of ${provider.name}). Pick an allowed model, or ask your admin.`,
      );
    }
  }
  const spent = spentNow(snap, now);
  const ends = windowEnds(now);
  const over = (field: LimitField, end: number, what: string) => {
    const s = Math.max(1, Math.ceil((end - now) / 1000));
    // A limit of 0 is a pause: nothing frees it but the admin, and no retry will pass.
    if (l[field] === 0) {
      return limitError(429, field, `subpool: your team's admin has paused your use of this gateway (a limit of 0 ${what.replace(/^0 /, "")}; not ${provider.name}'s rate limit). Ask your admin.`, s, true);
    }
    return limitError(
      429,
      field,
      `subpool: you reached your team's limit of ${what} (set by your team's admin, not ${provider.name}'s rate limit). It frees in ${humanDuration(s)}.`,
      s,
    );
  };
  if (l.tokensPerMonth !== null && spent.monthTokens >= l.tokensPerMonth) throw over("tokensPerMonth", ends.month, `${l.tokensPerMonth.toLocaleString("en-US")} tokens per month (UTC)`);
  if (l.tokensPerDay !== null && spent.dayTokens >= l.tokensPerDay) throw over("tokensPerDay", ends.day, `${l.tokensPerDay.toLocaleString("en-US")} tokens per day (UTC)`);
  if (l.requestsPerMinute !== null && spent.minuteRequests >= l.requestsPerMinute) throw over("requestsPerMinute", ends.minute, `${l.requestsPerMinute} requests per minute`);
}

function limitError(status: 403 | 429, field: LimitField, message: string, retryAfterS?: number, paused = false): GatewayError {
  const headers: Record<string, string> = { "x-subpool-limit": field };
  if (retryAfterS !== undefined) headers["retry-after"] = String(retryAfterS);
  // A client that retries a day's or a month's limit, or a pause, only spins: SDKs honour x-should-retry.
  if (field !== "requestsPerMinute" || paused) headers["x-should-retry"] = "false";
  return new GatewayError(status, status === 429 ? "rate_limit_error" : "permission_error", message, { headers });
}

export function limitFieldOf(e: unknown): LimitField | null {
  if (!(e instanceof GatewayError)) return null;
  const f = e.extra.headers?.["x-subpool-limit"];
  return f === "requestsPerMinute" || f === "tokensPerDay" || f === "tokensPerMonth" || f === "models" ? f : null;
}
