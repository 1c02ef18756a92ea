/**
 * One delivery of one alert to one receiver, and the retry schedule around it (DESIGN §12). Called
 * from a Durable Object's alarm, or by an explicit "send a test": never on a proxied request's path,
 * so a dead receiver costs no member a millisecond. A 3xx is a failure (a redirect would carry the
 * signed body somewhere the admin did not name). The result is what `GET …/alerts` shows, so its
 * error names the receiver's host at most: a Slack or Discord URL's path is the secret itself.
 */
import { hmacSha256Hex } from "../vault/envelope";
import { alertJson, type AlertBody } from "./payload";

export interface DeliveryResult {
  /** Epoch ms when the attempt was made. */
  at: number;
  /** The receiver's HTTP status, or 0 when none came (no connection, timeout). */
  status: number;
  ok: boolean;
  error: string | null;
}

/** Tries in all for one alert, and the wait before each retry (the first try goes at once). */
export const ALERT_TRIES = 3;
export const ALERT_RETRY_DELAYS_MS = [30_000, 5 * 60_000] as const;

/** Deliveries one alarm run makes at most (in parallel); the rest stay due for the next run. */
export const DELIVERIES_PER_RUN = 10;

/** Tests a person may send to one target within TEST_WINDOW_MS (each makes the gateway call their URL). */
export const TESTS_PER_WINDOW = 5;
export const TEST_WINDOW_MS = 60_000;

/** Longest wait for a receiver's answer head. */
export const ALERT_TIMEOUT_MS = 5_000;

export const SIGNATURE_HEADER = "x-subpool-signature";

/** When a failed try number `tries` (1-based) is tried again, or null when that was the last. */
export function nextTryAt(tries: number, now: number): number | null {
  if (tries >= ALERT_TRIES) return null;
  return now + ALERT_RETRY_DELAYS_MS[Math.min(tries, ALERT_RETRY_DELAYS_MS.length) - 1]!;
}

/** The request deliver() sends: body bytes, and the headers that go with them. */
export async function signedRequest(url: string, secret: string, alert: AlertBody): Promise<{ body: string; headers: Record<string, string> }> {
  const body = alertJson(url, alert);
  return {
    body,
    headers: {
      "content-type": "application/json",
      "user-agent": "subpool-alerts",
      [SIGNATURE_HEADER]: `sha256=${await hmacSha256Hex(secret, body)}`,
    },
  };
}

/** Sends one alert; never throws. */
export async function deliver(url: string, secret: string, alert: AlertBody, opts: { timeoutMs?: number; now?: () => number } = {}): Promise<DeliveryResult> {
  const at = (opts.now ?? Date.now)();
  const host = new URL(url).host;
  const timeoutMs = opts.timeoutMs ?? ALERT_TIMEOUT_MS;
  const { body, headers } = await signedRequest(url, secret, alert);
  let res: Response;
  try {
    res = await fetch(url, { method: "POST", headers, body, redirect: "manual", signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    // The runtime's message may quote the URL: only the kind of failure is kept.
    const timedOut = e instanceof Error && (e.name === "TimeoutError" || e.name === "AbortError");
    const span = timeoutMs % 1000 === 0 ? `${timeoutMs / 1000} s` : `${timeoutMs} ms`;
    return { at, status: 0, ok: false, error: timedOut ? `${host} did not answer within ${span}` : `could not connect to ${host}` };
  }
  // The receiver's body is not read into the result (it may echo anything); the connection is freed.
  void res.body?.cancel().catch(() => {});
  if (res.status >= 200 && res.status < 300) return { at, status: res.status, ok: true, error: null };
  if (res.status >= 300 && res.status < 400) return { at, status: res.status, ok: false, error: `${host} answered with a redirect (${res.status}), which is not followed: set the final URL` };
  return { at, status: res.status, ok: false, error: `${host} answered ${res.status}` };
}
