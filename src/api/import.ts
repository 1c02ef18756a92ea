/**
 * POST /api/import: the body of an opencode auth.json, a Claude Code .credentials.json or a Codex
 * auth.json. Every usable credential becomes an account; re-importing the same file changes nothing;
 * a newer file for the same ChatGPT identity refreshes that account. The answer lists, per entry,
 * what was imported and what was refused and why.
 */
import { Hono } from "hono";
import { z } from "zod";
import { type AppEnv, userOf } from "../auth/middleware";
import { GatewayError, badRequest } from "../errors";
import { poolClient } from "../pool/client";
import { parseCredentialFile } from "../providers/credential-files";
import { fingerprintSecret, getKeyring } from "../vault/envelope";
import { jsonBody } from "./validate";

export const importer = new Hono<AppEnv>().post("/import", async (c) => {
  const me = userOf(c.var.principal);
  const data = await jsonBody(c, z.record(z.string(), z.unknown()));
  const parsed = parseCredentialFile(data);
  if (!parsed) throw badRequest("not a credential file subpool knows: send the content of an opencode auth.json, a Claude Code .credentials.json or a Codex auth.json");
  const ring = await getKeyring(c.var.cfg);
  const pool = poolClient(c.env, me.userId);
  const imported = [];
  const refused = [...parsed.refused];
  for (const e of parsed.entries) {
    const fingerprint = await fingerprintSecret(ring, e.provider, e.type, (e.type === "api" ? e.key : e.refresh) ?? "");
    const { entry, ...account } = e;
    try {
      const r = await pool.importAccount({ ...account, fingerprint });
      imported.push({ entry, provider: e.provider, type: e.type, action: r.action, account: r.account });
    } catch (err) {
      // A member at MAX_ACCOUNTS_PER_USER: this entry is not added, and the answer says why; the
      // entries already there are still recognised.
      if (err instanceof GatewayError && err.status === 403) refused.push({ entry, reason: err.message });
      else throw err;
    }
  }
  return c.json({ format: parsed.format, imported, refused });
});
