/**
 * Turning what the user typed into one account or user. Accounts: the id, `<provider>:<position>`
 * (e.g. "anthropic:2"), the label, a unique first part of the id (3+ characters), or a unique first
 * part of the label ("work" for "work key"). Users: the id, the name, a unique id prefix. A name that
 * fits several is refused with every match and its id: nothing is changed on a guess.
 */
import { CliError } from "./errors.js";
import { subpool } from "./invocation.js";
import { findProvider, type Account, type User } from "./types.js";

export function describeAccount(a: Account): string {
  return `${a.provider} #${a.position} "${a.label}" (${a.id})`;
}

/** `anthropic:2` */
export const slotOf = (a: Account): string => `${a.provider}:${a.position}`;

function ambiguousAccounts(ref: string, matches: Account[]): CliError {
  const rows = matches.map((a) => `  ${slotOf(a).padEnd(18)} "${a.label}"  ${a.id}`).join("\n");
  const first = matches[0]!;
  return new CliError(`"${ref}" matches ${matches.length} accounts:\n${rows}`, `name one of them by its id or <provider>:<position>, e.g. ${first.id} or ${slotOf(first)}`);
}

export function findAccount(accounts: Account[], ref: string): Account {
  const r = ref.trim();
  const exact = accounts.find((a) => a.id === r);
  if (exact) return exact;
  const slot = /^([a-z-]+)[:#/](\d+)$/i.exec(r);
  if (slot) {
    const provider = findProvider(slot[1]!)?.id;
    const found = provider && accounts.find((a) => a.provider === provider && a.position === Number(slot[2]));
    if (found) return found;
    if (provider) throw new CliError(`there is no ${provider} account at position ${slot[2]}`, `\`${subpool()} accounts\` lists them`);
  }
  const lower = r.toLowerCase();
  const tiers: Account[][] = [
    accounts.filter((a) => a.label === r),
    accounts.filter((a) => a.label.toLowerCase() === lower),
    r.length >= 3 ? accounts.filter((a) => a.id.startsWith(r) || a.id.startsWith(`acc_${r}`)) : [],
    lower ? accounts.filter((a) => a.label.toLowerCase().startsWith(lower)) : [],
  ];
  for (const matches of tiers) {
    if (matches.length === 1) return matches[0]!;
    if (matches.length > 1) throw ambiguousAccounts(r, matches);
  }
  throw new CliError(
    accounts.length ? `no account matches "${r}"` : `no account matches "${r}": you have no accounts yet`,
    accounts.length ? `give an id (or its first characters), a label, or <provider>:<position>; \`${subpool()} accounts\` lists them` : `add one with \`${subpool()} login <provider>\` or \`${subpool()} import\``,
  );
}

export function findUser(users: User[], ref: string): User {
  const r = ref.trim();
  const tiers: User[][] = [
    users.filter((u) => u.id === r),
    users.filter((u) => u.name === r),
    users.filter((u) => u.name.toLowerCase() === r.toLowerCase()),
    r.length >= 3 ? users.filter((u) => u.id.startsWith(r) || u.id.startsWith(`u_${r}`)) : [],
  ];
  for (const matches of tiers) {
    if (matches.length === 1) return matches[0]!;
    if (matches.length > 1) {
      throw new CliError(`"${r}" matches ${matches.length} users:\n${matches.map((u) => `  ${u.name}  ${u.id}`).join("\n")}`, `name one of them by its id; \`${subpool()} users list\` lists them`);
    }
  }
  throw new CliError(`no user matches "${r}"`, `give a name or an id; \`${subpool()} users list\` lists them`);
}
