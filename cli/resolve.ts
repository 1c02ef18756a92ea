/**
 * Turning what the user typed into one account or user: the id, a unique id prefix, the label
 * (accounts) or name (users), or for accounts "<provider>:<position>" (e.g. "anthropic:2").
 */
import { CliError } from "./errors.js";
import { PROVIDER_ALIASES, type Account, type User } from "./types.js";

function pick<T>(what: string, ref: string, matches: T[], describe: (t: T) => string, listCmd: string): T | undefined {
  if (matches.length === 1) return matches[0];
  if (matches.length > 1) {
    throw new CliError(`"${ref}" matches ${matches.length} ${what}s: ${matches.map(describe).join("; ")}`, `use the id (or a longer prefix of it); \`${listCmd}\` lists them`);
  }
  return undefined;
}

export function describeAccount(a: Account): string {
  return `${a.provider} #${a.position} "${a.label}" (${a.id})`;
}

export function findAccount(accounts: Account[], ref: string): Account {
  const r = ref.trim();
  const exact = accounts.find((a) => a.id === r);
  if (exact) return exact;
  const slot = /^([a-z-]+)[:#/](\d+)$/i.exec(r);
  if (slot) {
    const provider = PROVIDER_ALIASES[slot[1]!.toLowerCase()];
    const found = provider && accounts.find((a) => a.provider === provider && a.position === Number(slot[2]));
    if (found) return found;
  }
  const list = "subpool accounts";
  const found =
    pick("account", r, accounts.filter((a) => a.label === r), describeAccount, list) ??
    pick("account", r, accounts.filter((a) => a.label.toLowerCase() === r.toLowerCase()), describeAccount, list) ??
    (r.length >= 3 ? pick("account", r, accounts.filter((a) => a.id.startsWith(r) || a.id.startsWith(`acc_${r}`)), describeAccount, list) : undefined);
  if (found) return found;
  throw new CliError(
    accounts.length ? `no account matches "${r}"` : `no account matches "${r}": you have no accounts yet`,
    accounts.length ? "give an id (or its first characters), a label, or <provider>:<position>; `subpool accounts` lists them" : "add one with `subpool login <provider>` or `subpool import`",
  );
}

export function findUser(users: User[], ref: string): User {
  const r = ref.trim();
  const describe = (u: User) => `${u.name} (${u.id})`;
  const found =
    users.find((u) => u.id === r) ??
    pick("user", r, users.filter((u) => u.name === r), describe, "subpool users list") ??
    pick("user", r, users.filter((u) => u.name.toLowerCase() === r.toLowerCase()), describe, "subpool users list") ??
    (r.length >= 3 ? pick("user", r, users.filter((u) => u.id.startsWith(r) || u.id.startsWith(`u_${r}`)), describe, "subpool users list") : undefined);
  if (found) return found;
  throw new CliError(`no user matches "${r}"`, "give a name or an id; `subpool users list` lists them");
}
