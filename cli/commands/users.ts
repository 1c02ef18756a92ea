/** `subpool users add | list | rm | rotate`: the team, for admins. Keys are shown once, here only. */
import { profileFlag, saveConfig } from "../config.js";
import { context, type Ctx } from "../context.js";
import { subpool } from "../invocation.js";
import { confirm } from "../prompts.js";
import { findUser } from "../resolve.js";
import type { Me, User, UserWithKey } from "../types.js";
import { out, paint, printJson, printTable, say } from "../ui.js";

async function fetchUsers(ctx: Ctx): Promise<User[]> {
  return (await ctx.api.get<{ users: User[] }>("/admin/users")).users;
}

const day = (ts: number) => new Date(ts).toISOString().replace("T", " ").slice(0, 16);

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

export async function listUsers(opts: { json?: boolean }): Promise<void> {
  const ctx = context();
  const data = await ctx.api.get<{ users: User[] }>("/admin/users");
  if (opts.json) {
    printJson(data);
    return;
  }
  if (data.users.length === 0) {
    out("No users yet.");
    say(`Add one: \`${subpool(`${profileFlag().trim()} users add <name>`.trim())}\` (add --admin for another admin).`);
    return;
  }
  await printTable(
    ["name", "role", "created", "id"],
    data.users.map((u) => [u.name, u.role, day(u.createdAt), u.id]),
  );
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
