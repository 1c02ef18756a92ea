/**
 * The team-wide alert target (PUT /admin/alerts): one KV record every member's Durable Object reads
 * when it has something to deliver, so the admin hears of every member's events. Its signing secret
 * belongs to no user, so it is sealed under the master keyring (envelope.ts, sealUnderMaster) and
 * bound to its KV key, and so is its URL (a Slack or Discord webhook URL is itself a secret). Objects keep what they read for TEAM_TARGET_TTL_MS: a change reaches them
 * within a minute (KV itself may lag as long), which an alert can afford and a busy team's KV
 * bill likes. The last delivery's status is one KV record too, written by whichever object sent.
 */
import { type Keyring, openUnderMaster, sealUnderMaster } from "../vault/envelope";
import { kvKeys } from "../vault/records";
import type { AlertDelivery } from "../wire";
import { type AlertEvent, isAlertEvent } from "./rules";

/** A target with its secret opened, as delivery needs it. Lives only in memory. */
export interface AlertTarget {
  url: string;
  events: AlertEvent[] | null;
  secret: string;
}

/** What KV holds under kvKeys.teamAlerts. */
interface TeamAlertRecord {
  /** s1.<version>.<iv>.<ct> (sealUnderMaster, place TEAM_URL_PLACE): a webhook URL is a bearer secret. */
  url: string;
  events: AlertEvent[] | null;
  /** s1.<version>.<iv>.<ct> (sealUnderMaster, place kvKeys.teamAlerts). */
  secret: string;
  createdAt: number;
}

export const TEAM_TARGET_TTL_MS = 60_000;
const TEAM_URL_PLACE = `${kvKeys.teamAlerts}#url`;

type Vault = { VAULT: KVNamespace };

function recordOf(v: unknown): TeamAlertRecord | null {
  if (!v || typeof v !== "object") return null;
  const r = v as Partial<TeamAlertRecord>;
  if (typeof r.url !== "string" || typeof r.secret !== "string") return null;
  const events = Array.isArray(r.events) ? r.events.filter((e): e is AlertEvent => typeof e === "string" && isAlertEvent(e)) : null;
  return { url: r.url, events, secret: r.secret, createdAt: typeof r.createdAt === "number" ? r.createdAt : 0 };
}

/** The team target with its secret opened, or null when none is set. Throws VaultError when it does not open. */
export async function readTeamTarget(env: Vault, ring: Keyring): Promise<(AlertTarget & { stale: boolean }) | null> {
  const rec = recordOf(await env.VAULT.get(kvKeys.teamAlerts, "json"));
  if (!rec) return null;
  const [secret, url] = await Promise.all([openUnderMaster(ring, kvKeys.teamAlerts, rec.secret), openUnderMaster(ring, TEAM_URL_PLACE, rec.url)]);
  return { url: url.plaintext, events: rec.events, secret: secret.plaintext, stale: secret.stale || url.stale };
}

export async function writeTeamTarget(env: Vault, ring: Keyring, target: AlertTarget, now = Date.now()): Promise<void> {
  const rec: TeamAlertRecord = { url: await sealUnderMaster(ring, TEAM_URL_PLACE, target.url), events: target.events, secret: await sealUnderMaster(ring, kvKeys.teamAlerts, target.secret), createdAt: now };
  await env.VAULT.put(kvKeys.teamAlerts, JSON.stringify(rec));
}

/** Removes the target and its status; whatever objects still hold in memory lapses within TEAM_TARGET_TTL_MS. */
export async function deleteTeamTarget(env: Vault): Promise<boolean> {
  const had = (await env.VAULT.get(kvKeys.teamAlerts)) !== null;
  await Promise.all([env.VAULT.delete(kvKeys.teamAlerts), env.VAULT.delete(kvKeys.teamAlertsStatus)]);
  return had;
}

export async function readTeamStatus(env: Vault): Promise<AlertDelivery | null> {
  const v = await env.VAULT.get<AlertDelivery>(kvKeys.teamAlertsStatus, "json");
  return v && typeof v.at === "number" ? v : null;
}

/** Best effort: KV allows one write a second per key, and a status is worth no failed alarm. */
export async function writeTeamStatus(env: Vault, status: AlertDelivery): Promise<void> {
  try {
    await env.VAULT.put(kvKeys.teamAlertsStatus, JSON.stringify(status));
  } catch (e) {
    console.warn(`subpool: could not record the team alert's delivery status: ${(e as Error).name}`);
  }
}

/** One object's memory of the team target (what it read, when). */
export class TeamTargetCache {
  private held: { at: number; target: AlertTarget | null } | null = null;

  /** The target as of at most TEAM_TARGET_TTL_MS ago; null when none is set or it does not open. */
  async get(env: Vault, ring: () => Promise<Keyring>, now = Date.now()): Promise<AlertTarget | null> {
    if (this.held && now - this.held.at < TEAM_TARGET_TTL_MS) return this.held.target;
    let target: AlertTarget | null = null;
    try {
      const t = await readTeamTarget(env, await ring());
      target = t && { url: t.url, events: t.events, secret: t.secret };
    } catch (e) {
      // A secret sealed under a master key no longer configured: nothing can be signed with it.
      console.warn(`subpool: the team alert target cannot be used: ${(e as Error).message}`);
    }
    this.held = { at: now, target };
    return target;
  }

  /** Known without a read: undefined when what is held has lapsed. */
  peek(now = Date.now()): AlertTarget | null | undefined {
    return this.held && now - this.held.at < TEAM_TARGET_TTL_MS ? this.held.target : undefined;
  }
}
