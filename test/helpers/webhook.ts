/**
 * A webhook receiver for alert tests, mounted on the fake upstream (upstream.ts routes outbound
 * fetches by host): it keeps every delivery it gets, answers what the test scripts (a status, a
 * thrown network error, or a hang), and verifies x-subpool-signature as a team's receiver would,
 * by recomputing the HMAC with node-free WebCrypto (not through src/vault, the code under test).
 */
import type { Upstream } from "./upstream";

export interface Delivery {
  url: string;
  headers: Record<string, string>;
  body: string;
  json: unknown;
}

export type Reply = number | "refuse" | "hang";

export class WebhookReceiver {
  readonly got: Delivery[] = [];
  /** Replies for the next deliveries in order; then `fallback`. */
  readonly script: Reply[] = [];
  fallback: Reply = 204;

  /** `hostPath` like "hooks.receiver.test/in" (as Upstream.on takes it). */
  constructor(up: Upstream, readonly hostPath = "hooks.receiver.test/in") {
    up.on(hostPath, async (req) => {
      const body = await req.text();
      let json: unknown = null;
      try {
        json = JSON.parse(body);
      } catch {
        /* a shape test reads `body` */
      }
      this.got.push({ url: req.url, headers: Object.fromEntries(req.headers), body, json });
      const reply = this.script.shift() ?? this.fallback;
      if (reply === "refuse") throw new TypeError("Network connection lost.");
      if (reply === "hang") return new Promise<Response>(() => {});
      return new Response(reply === 204 ? null : "ok", { status: reply });
    });
  }

  /** The URL to configure as a target (https unless told). */
  url(scheme = "https"): string {
    return `${scheme}://${this.hostPath}`;
  }

  /** The events received, in order. */
  events(): string[] {
    return this.got.map((d) => (d.json as { event?: string } | null)?.event ?? "?");
  }
}

/** Recomputes the signature of a delivery with the secret, as a receiver would. */
export async function signatureHolds(d: Delivery, secret: string): Promise<boolean> {
  const te = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", te.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, te.encode(d.body)));
  const hex = [...mac].map((b) => b.toString(16).padStart(2, "0")).join("");
  return d.headers["x-subpool-signature"] === `sha256=${hex}`;
}
