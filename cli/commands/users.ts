/** `subpool users add | list | rm | rotate`: the team, for admins. Keys are shown once, here only. */
import { profileFlag, saveConfig } from "../config.js";
import { context, type Ctx } from "../context.js";
import { subpool } from "../invocation.js";
import { confirm } from "../prompts.js";
import { findUser } from "../resolve.js";
import { limitsShort } from "../team-text.js";
import type { Me, User, UserWithKey } from "../types.js";
import type { AccountCounts, TeamUsageAnswer, UsageDay } from "../../src/wire.js";
import { ago, out, outputWidth, paint, printJson, renderTable, say, shortCount, textWidth } from "../ui.js";

async function fetchUsers(ctx: Ctx): Promise<User[]> {
  return (await ctx.api.get<{ users: User[] }>("/admin/users")).users;
}

function showKey(u: UserWithKey, url: string, what: string): void {
  out(`${what} ${paint("bold", u.name)} (${u.role}, ${u.id}).`);
  out();
  out(`Gateway key, shown this once — pass it on privately:`);
  out(`  ${u.key}`);
  out();
  out(`${u.name} runs (Node 20 or later is all it takes):`);
  out(`  npx ${url}/cli/subpool-cli.tgz setup --url ${url}`);
  out(`and pastes the key when asked. (${url}/cli says more; in a checkout of subpool: npx subpool setup.)`);
}

const todayUtc = (now = Date.now()) => new Date(now).toISOString().slice(0, 10);

/** Input + output + cache tokens of a day: what the team's token limits count. */
export const tokensOf = (d: UsageDay): number => d.inputTokens + d.outputTokens + d.cacheReadTokens + d.cacheWriteTokens;

/** The accounts cell: active/total, and how many need a new login (flagged). */
function accountsCell(a: AccountCounts): string {
  const base = `${a.active}/${a.total}`;
  return a.needsReauth > 0 ? paint("red", `${base}, ${a.needsReauth} need${a.needsReauth === 1 ? "s" : ""} login`) : base;
}

const truncate = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/**
 * `subpool users [--days N]`: the team from GET /admin/usage: role, last seen, accounts (active of
 * total, with those needing a new login flagged), requests and tokens today and over the window,
 * limits in short, the day they were added (UTC) and the id. The added date goes when the terminal
 * is too narrow for the table, then the id.
 */
export async function listUsers(opts: { days: number; json?: boolean }): Promise<void> {
  const ctx = context();
  const data = await ctx.api.get<TeamUsageAnswer>(`/admin/usage?days=${opts.days}`);
  if (opts.json) {
    printJson(data);
    return;
  }
  if (data.users.length === 0) {
    out("No users yet.");
    say(`Add one: \`${subpool(`${profileFlag().trim()} users add <name>`.trim())}\` (add --admin for another admin).`);
    return;
  }
  const now = Date.now();
  const today = todayUtc(now);
  const span = `${opts.days}d`;
  const rows = data.users.map((u) => {
    const d = u.days.find((x) => x.date === today);
    const reqs = u.days.reduce((t, x) => t + x.requests, 0);
    const toks = u.days.reduce((t, x) => t + tokensOf(x), 0);
    return [
      u.name,
      u.role,
      ago(u.lastSeenAt, now),
      accountsCell(u.accounts),
      d ? d.requests : 0,
      shortCount(d ? tokensOf(d) : 0),
      reqs,
      shortCount(toks),
      truncate(limitsShort(u.limits, shortCount), 64),
      new Date(u.createdAt).toISOString().slice(0, 10),
      u.id,
    ];
  });
  const head = ["name", "role", "last seen", "accounts", "req today", "tokens today", `req ${span}`, `tokens ${span}`, "limits", "added", "id"];
  const width = outputWidth();
  let table = await renderTable(head, rows);
  // Too wide: the added date goes first, then the id.
  for (const drop of ["added", "id"]) {
    if (width === undefined || textWidth(table) <= width) break;
    const i = head.indexOf(drop);
    head.splice(i, 1);
    for (const r of rows) r.splice(i, 1);
    table = await renderTable(head, rows);
  }
  out(table);
  const relogin = data.users.filter((u) => u.accounts.needsReauth > 0);
  for (const u of relogin) {
    const n = u.accounts.needsReauth;
    say(`${u.name} has ${n === 1 ? "an account that needs" : `${n} accounts that need`} a new login (or, for an API key, a new key): they see which in \`${subpool("accounts")}\` and sign in again with \`${subpool("login <provider>")}\`.`);
  }
  say(`Days are UTC; tokens count input, output and cache. Limits: \`${subpool(`${profileFlag().trim()} limits <name>`.trim())}\`.`);
}

export async function addUser(name: string, opts: { admin?: boolean; json?: boolean }): Promise<void> {
  const ctx = context();
  const u = await ctx.api.post<UserWithKey>("/admin/users", { name, role: opts.admin ? "admin" : "member" });
  if (opts.json) printJson(u);
  else showKey(u, ctx.cfg.url, "Created");
}

export async function removeUser(ref: string, opts: { yes?: boolean; json?: boolean }): Promise<void> {
  const ctx = context();
  const [all, me] = await Promise.all([fetchUsers(ctx), ctx.api.get<Me>("/api/me")]);
  const u = findUser(all, ref);
  const self = me.id === u.id ? " That is you: this machine's key stops working too." : "";
  if (!(await confirm(`Delete ${u.name} (${u.id})? Their key stops working and every account they stored is destroyed.${self}`, { yes: opts.yes === true, action: `deleting user ${u.name}` }))) {
    say("Nothing deleted.");
    return;
  }
  await ctx.api.del(`/admin/users/${encodeURIComponent(u.id)}`);
  if (opts.json) printJson({ removed: u });
  else out(`Deleted ${u.name} (${u.id}).`);
}

export async function rotateUser(ref: string, opts: { yes?: boolean; json?: boolean }): Promise<void> {
  const ctx = context();
  const [all, me] = await Promise.all([fetchUsers(ctx), ctx.api.get<Me>("/api/me")]);
  const u = findUser(all, ref);
  const self = me.id === u.id;
  const warning = self ? " It is your own key: the new one is saved for this machine." : "";
  if (!(await confirm(`Issue a new key for ${u.name}? Their current key stops working at once.${warning}`, { yes: opts.yes === true, action: `rotating the key of ${u.name}` }))) {
    say("Nothing changed.");
    return;
  }
  const rotated = await ctx.api.post<UserWithKey>(`/admin/users/${encodeURIComponent(u.id)}/key`);
  if (self && ctx.cfg.keyFrom === "file") saveConfig({ url: ctx.cfg.url, key: rotated.key }, ctx.cfg.path, ctx.cfg.profile);
  if (opts.json) {
    printJson(rotated);
    return;
  }
  showKey(rotated, ctx.cfg.url, "New key for");
  if (self) say(ctx.cfg.keyFrom === "file" ? `Saved the new key to ${ctx.cfg.path}${ctx.cfg.profile ? ` (profile ${ctx.cfg.profile})` : ""}.` : "Your key comes from SUBPOOL_KEY: put the new key there.");
}
