/**
 * The user's own record in their Durable Object: the `meta` table (profile, gateway key id and hash,
 * the wrapped data key, routing settings, limits, when they were last active and seen) and the
 * `key_resets` log. Plain reads and writes of the object's SQLite, no I/O.
 */
import type { KeyReset, UserProfile } from "../wire";
import { refuse } from "./result";

/** How many gateway-key resets a user's object remembers. */
export const KEY_RESETS_KEPT = 50;

export class ProfileStore {
  constructor(
    private readonly sql: SqlStorage,
    private readonly storage: DurableObjectStorage,
  ) {}

  get(k: string): string | null {
    return this.sql.exec<{ v: string }>("SELECT v FROM meta WHERE k = ?", k).toArray()[0]?.v ?? null;
  }

  set(k: string, v: string): void {
    this.sql.exec("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", k, v);
  }

  delete(k: string): void {
    this.sql.exec("DELETE FROM meta WHERE k = ?", k);
  }

  profile(): UserProfile | null {
    const p = this.get("profile");
    return p ? (JSON.parse(p) as UserProfile) : null;
  }

  /** The user's id; a refusal when the user was deleted (or never made). */
  userId(): string {
    const p = this.profile();
    if (!p) throw refuse(404, "this user does not exist (deleted?)");
    return p.id;
  }

  /** Replaces the gateway key and records who did it, in one transaction; the old hash is returned. */
  setKey(keyId: string, keyHash: string, by: KeyReset["by"]): string | null {
    return this.storage.transactionSync(() => {
      const old = this.get("keyHash");
      this.set("keyId", keyId);
      this.set("keyHash", keyHash);
      this.sql.exec("INSERT INTO key_resets (at, by_id, by_name) VALUES (?, ?, ?)", Date.now(), by.id, by.name);
      this.sql.exec("DELETE FROM key_resets WHERE seq NOT IN (SELECT seq FROM key_resets ORDER BY seq DESC LIMIT ?)", KEY_RESETS_KEPT);
      return old;
    });
  }

  keyResets(): KeyReset[] {
    return this.sql
      .exec<{ at: number; by_id: string | null; by_name: string }>("SELECT at, by_id, by_name FROM key_resets ORDER BY seq DESC LIMIT ?", KEY_RESETS_KEPT)
      .toArray()
      .map((r) => ({ at: r.at, by: { id: r.by_id, name: r.by_name } }));
  }
}
