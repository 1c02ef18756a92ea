/**
 * Everything the benchmark measures, started and set up: the fake provider, subpool's bundle under
 * workerd (isolates A and B), the null Worker under workerd, Portkey's gateway on Node; three users
 * with three Anthropic API-key accounts each, created through subpool's HTTP API:
 *   main   "bench": the steady-state user (all load goes here)
 *   fo     "failover": account 1 always answers 429 (retry-after-ms: 1), so each request fails over once
 *   cd     "cooldown": for the cooldown-propagation trials
 *   traffic "traffic": one Anthropic and one OpenAI API-key account, for the long-stream, big-request
 *          and coding-turn phases (S.traffic: per path, the URLs and credentials of those phases)
 * Variants (other checkouts or edited copies of subpool, e.g. `--baseline REF`) each get their own
 * workerd process and the same users; their load path is "subpool:<name>". The floor Worker
 * (workers/floor-worker.js, path "floor") is started only when asked for (withFloor).
 * With `limits` (run.mjs --limits, DESIGN §12), the same subpool process also serves members with the
 * team's limits set (PATCH /admin/users/:id), set high enough never to refuse, so what they cost
 * per request is measured beside the member without limits:
 *   "subpool:limits"            user "limited" (three Anthropic accounts like "bench"): LIMITS below,
 *                               with a model allow-list ["*"] (which makes the edge read the body's
 *                               top level for "model": a big body is read whole instead of teed)
 *   "subpool:limits-no-models"  user "limited-nm": the same counts, no model list
 * and for the traffic phases their own traffic users ("traffic-limited", "traffic-limited-nm").
 */
import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { execFileSync } from "node:child_process";
import { freePort, removeOnExit, startProcess, waitForHttp, waitForOutput } from "./procs.mjs";
import { timed } from "./measure.mjs";
import { buildBundle, bundleBenchWorker, readWranglerToml, startWorkerd, writeNullConfig, writeSingleWorkerConfig, writeSubpoolConfig } from "./workerd.mjs";

const require = createRequire(import.meta.url);
const benchDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export const JSON_BODY = JSON.stringify({ model: "claude-sonnet-4-5", max_tokens: 64, messages: [{ role: "user", content: "hello" }] });
export const SSE_BODY = JSON.stringify({ model: "claude-sonnet-4-5", max_tokens: 64, stream: true, messages: [{ role: "user", content: "hello" }] });
export const BIG_BYTES = 200 * 1024 * 1024;
export const base = { "content-type": "application/json", "anthropic-version": "2023-06-01" };
/** The limits of the "subpool:limits" paths: every field set, none ever reached by a bench run. */
export const LIMITS = { requestsPerMinute: 1_000_000_000, tokensPerDay: 1_000_000_000_000, tokensPerMonth: 1_000_000_000_000, models: ["*"] };
export const LIMITS_NO_MODELS = { ...LIMITS, models: null };
/** Paths served by the same subpool process for members with limits (startStack({ limits: true })). */
export const LIMITED_PATHS = { "subpool:limits": LIMITS, "subpool:limits-no-models": LIMITS_NO_MODELS };

/**
 * This repo as it was at a git ref, for a before/after run (`--baseline REF`): `git archive <commit> |
 * tar -x` into the work dir (read-only for the repo: no worktree entry, index or HEAD change, nothing
 * to prune if the run is killed), with this repo's node_modules linked in. Returns { dir, commit }.
 */
export function checkoutRef(repo, work, ref, name) {
  let commit;
  try {
    commit = execFileSync("git", ["rev-parse", "--verify", "--quiet", `${ref}^{commit}`], { cwd: repo, stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
  } catch {
    throw new Error(`--baseline ${ref}: not a commit in ${repo}`);
  }
  const dir = path.join(work, `ref-${name}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const tar = execFileSync("git", ["archive", "--format=tar", commit], { cwd: repo, maxBuffer: 1 << 30 });
  execFileSync("tar", ["-x", "-C", dir], { input: tar });
  fs.symlinkSync(path.join(repo, "node_modules"), path.join(dir, "node_modules"), "dir");
  return { dir, commit };
}

/** tmpfs when there is one (see writeSubpoolConfig): /dev/shm; null = the work dir (a real disk). */
export function defaultDoDisk() {
  try {
    if (fs.statSync("/dev/shm").isDirectory()) {
      fs.accessSync("/dev/shm", fs.constants.W_OK);
      return "/dev/shm";
    }
  } catch {}
  return null;
}

async function api(url, init) {
  const r = await fetch(url, init);
  const text = await r.text();
  if (!r.ok) throw new Error(`${init?.method ?? "GET"} ${url} -> ${r.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

/** One subpool deployment: bundle from `dir`, its own workerd process (isolates A and B), users. */
/** Every provider address of subpool's Worker vars pointed at the fake provider (bench/fake-provider.mjs). */
export function fakeProviderVars(FAKE) {
  return {
    ANTHROPIC_API_BASE: FAKE,
    ANTHROPIC_TOKEN_URL: `${FAKE}/v1/oauth/token`,
    OPENAI_API_BASE: FAKE,
    OPENAI_TOKEN_URL: `${FAKE}/oauth/token`,
    CODEX_API_BASE: `${FAKE}/codex`,
    COPILOT_API_BASE: FAKE,
    GITHUB_API_BASE: FAKE,
    GITHUB_BASE: FAKE,
  };
}

async function startSubpool({ name, dir, repo, work, FAKE, log, inspectorPort, doDisk, optionalStats = false, workerdArgs = [], limits = false }) {
  const ADMIN = "sp_admin_bench_" + crypto.randomBytes(12).toString("hex");
  log(`building ${name} (wrangler deploy --dry-run in ${dir})`);
  const bundle = buildBundle(dir, path.join(work, `dist-${name}`), repo);
  const wt = readWranglerToml(dir);
  const vars = {
    ...wt.vars,
    ...fakeProviderVars(FAKE),
    MASTER_KEY: crypto.randomBytes(32).toString("base64"),
    ADMIN_TOKEN: ADMIN,
  };
  const [portA, portB] = [await freePort(), await freePort()];
  const A = `http://127.0.0.1:${portA}`;
  const B = `http://127.0.0.1:${portB}`;
  const doDir = path.join(doDisk ?? work, `subpool-bench-do-${name}-${crypto.randomBytes(4).toString("hex")}`);
  removeOnExit(doDir);
  const cfg = writeSubpoolConfig({ dir: path.join(work, `run-${name}`), doDir, bundle, kvScript: path.join(benchDir, "workers", "memory-kv.js"), compatibilityDate: wt.compatibilityDate, compatibilityFlags: wt.compatibilityFlags, vars, portA, portB });
  const proc = await startWorkerd(`workerd-${name}`, cfg, `${A}/healthz`, [...(inspectorPort ? ["-i", `127.0.0.1:${inspectorPort}`] : []), ...workerdArgs]);

  const adminH = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" };
  async function makeUser(userName, keyPrefix) {
    const u = await api(`${A}/admin/users`, { method: "POST", headers: adminH, body: JSON.stringify({ name: userName }) });
    const accounts = [];
    for (const i of [1, 2, 3]) {
      const body = JSON.stringify({ provider: "anthropic", type: "api", key: `${keyPrefix}-${i}`, label: `${userName} ${i}` });
      accounts.push(await api(`${A}/api/accounts`, { method: "POST", headers: { authorization: `Bearer ${u.key}`, "content-type": "application/json" }, body }));
    }
    return { key: u.key, id: u.id, accounts: accounts.map((a) => a.id), providerKeys: [1, 2, 3].map((i) => `${keyPrefix}-${i}`) };
  }
  /** The `long`, `bigreq` and `turn` phases' user: one Anthropic and one OpenAI API-key account (so the usage it records is theirs alone). */
  async function makeTrafficUser(userName, keyPrefix) {
    const u = await api(`${A}/admin/users`, { method: "POST", headers: adminH, body: JSON.stringify({ name: userName }) });
    const h = { authorization: `Bearer ${u.key}`, "content-type": "application/json" };
    const providerKeys = { anthropic: `${keyPrefix}-ant`, openai: `${keyPrefix}-oai` };
    const accounts = {};
    for (const provider of ["anthropic", "openai"]) {
      const body = JSON.stringify({ provider, type: "api", key: providerKeys[provider], label: `${userName} ${provider}` });
      accounts[provider] = (await api(`${A}/api/accounts?check=false`, { method: "POST", headers: h, body })).id;
    }
    return { key: u.key, id: u.id, accounts, providerKeys };
  }
  const users = { main: await makeUser("bench", "sk-bench-main"), fo: await makeUser("failover", "sk-bench-fo"), cd: await makeUser("cooldown", "sk-bench-cd"), traffic: await makeTrafficUser("traffic", "sk-bench-traffic") };
  /** Totals of what subpool recorded for an account of a traffic user (GET /api/accounts/:id/usage). */
  const usageFor = (user) => (accountId) => api(`${A}/api/accounts/${accountId}/usage?days=2`, { headers: { authorization: `Bearer ${user.key}` } });
  const usageOf = usageFor(users.traffic);
  /** Members with the team's limits (LIMITED_PATHS): a load user and a traffic user each. */
  const limited = {};
  if (limits) {
    for (const [i, [p, lim]] of Object.entries(LIMITED_PATHS).entries()) {
      const suffix = i === 0 ? "" : "-nm";
      const main = await makeUser(`limited${suffix}`, `sk-bench-lim${suffix}`);
      const traffic = await makeTrafficUser(`traffic-limited${suffix}`, `sk-bench-traffic-lim${suffix}`);
      for (const u of [main, traffic]) {
        const set = await api(`${A}/admin/users/${u.id}`, { method: "PATCH", headers: adminH, body: JSON.stringify({ limits: lim }) });
        if (JSON.stringify(set.limits) !== JSON.stringify(lim)) throw new Error(`PATCH /admin/users/${u.id}: limits ${JSON.stringify(set.limits)}, asked for ${JSON.stringify(lim)}`);
      }
      limited[p] = { main, traffic, usageOf: usageFor(traffic), limits: lim };
    }
  }
  // A variant (an older commit, say) may predate GET /admin/stats: its storage columns stay empty.
  const stats = () => api(`${A}/admin/stats`, { headers: adminH }).then((s) => structuredClone(s.isolate), (e) => (optionalStats ? null : Promise.reject(e)));
  return { name, dir, A, B, proc, users, limited, stats, usageOf, bundleBytes: fs.statSync(bundle).size, ADMIN, doDir };
}

/**
 * opts: { repo, src?, variants? {name: dir}, work, withPortkey?, withNull?, withFloor?, log?,
 *         inspectorPort?, nullInspectorPort? (workerd -i), doDisk?, strict? (check failover works),
 *         workerdArgs? { subpool?: [...], null?: [...] } (more `workerd serve` options, e.g. --async-trace FILE),
 *         limits? (members with the team's limits as paths "subpool:limits", "subpool:limits-no-models") }
 */
export async function startStack({ repo, src = null, variants = {}, work, withPortkey = true, withNull = true, withFloor = false, log = () => {}, inspectorPort = null, nullInspectorPort = null, doDisk = defaultDoDisk(), strict = true, workerdArgs = {}, limits = false }) {
  const fake = startProcess("fake-provider", process.execPath, [path.join(benchDir, "fake-provider.mjs"), "0"], { env: { ...process.env, BIG_BYTES: String(BIG_BYTES) } });
  const FAKE = `http://127.0.0.1:${Number((await waitForOutput(fake, /LISTENING (\d+)/))[1])}`;
  const ctl = (body) => fetch(`${FAKE}/__ctl`, { method: "POST", body: JSON.stringify(body) }).then((r) => r.json());
  const procs = { fake };

  const srcDir = src ? path.resolve(src) : repo;
  const sp = await startSubpool({ name: "subpool", dir: srcDir, repo, work, FAKE, log, inspectorPort, doDisk, workerdArgs: workerdArgs.subpool ?? [], limits });
  procs.subpool = sp.proc;
  const variantStacks = {};
  for (const [name, dir] of Object.entries(variants)) {
    variantStacks[name] = await startSubpool({ name: `variant-${name}`, dir: path.resolve(dir), repo, work, FAKE, log, doDisk, optionalStats: true });
    procs[`subpool:${name}`] = variantStacks[name].proc;
  }

  const NULLW = withNull ? `http://127.0.0.1:${await freePort()}` : null;
  if (withNull) {
    log("starting the null Worker (workerd)");
    const wt = readWranglerToml(repo);
    const nullCfg = writeNullConfig({ dir: path.join(work, "null"), script: path.join(benchDir, "workers", "null-worker.js"), compatibilityDate: wt.compatibilityDate, upstream: FAKE, port: Number(new URL(NULLW).port) });
    procs.null = await startWorkerd("workerd-null", nullCfg, `${NULLW}/__local`, [...(nullInspectorPort ? ["-i", `127.0.0.1:${nullInspectorPort}`] : []), ...(workerdArgs.null ?? [])]);
  }
  const FLOOR = withFloor ? `http://127.0.0.1:${await freePort()}` : null;
  const FLOOR_KEY = "sp_floor_" + crypto.randomBytes(16).toString("hex");
  if (withFloor) {
    log("starting the floor Worker (workerd)");
    const wt = readWranglerToml(repo);
    const script = bundleBenchWorker(path.join(benchDir, "workers", "floor-worker.js"), path.join(work, "floor-build", "floor-worker.js"));
    const vars = { UPSTREAM_BASE: FAKE, PROVIDER_KEY: sp.users.main.providerKeys[0], FLOOR_KEY_SHA256: crypto.createHash("sha256").update(FLOOR_KEY).digest("hex") };
    const cfg = writeSingleWorkerConfig({ dir: path.join(work, "floor"), name: "floor", script, compatibilityDate: wt.compatibilityDate, vars, port: Number(new URL(FLOOR).port) });
    procs.floor = await startWorkerd("workerd-floor", cfg, `${FLOOR}/healthz`);
  }
  const PK = withPortkey ? `http://127.0.0.1:${await freePort()}` : null;
  if (withPortkey) {
    log("starting Portkey's gateway (Node)");
    const pkEntry = path.join(path.dirname(require.resolve("@portkey-ai/gateway/package.json")), "build", "start-server.js");
    procs.portkey = startProcess("portkey", process.execPath, ["--require", path.join(benchDir, "lib", "loopback-only.cjs"), pkEntry, `--port=${new URL(PK).port}`, "--headless"], { env: { ...process.env, NODE_ENV: "production" } });
    await waitForHttp(`${PK}/`, procs.portkey);
  }

  const { users } = sp;
  await ctl({ key: users.fo.providerKeys[0], mode: "429", retryAfterMs: 1 }); // every request of the failover user fails over once

  const PATHS = {
    direct: { url: `${FAKE}/v1/messages`, headers: { ...base, "x-api-key": users.main.providerKeys[0] } },
    subpool: { url: `${sp.A}/anthropic/v1/messages`, headers: { ...base, "x-api-key": users.main.key } },
  };
  for (const [name, v] of Object.entries(variantStacks)) PATHS[`subpool:${name}`] = { url: `${v.A}/anthropic/v1/messages`, headers: { ...base, "x-api-key": v.users.main.key } };
  for (const [p, L] of Object.entries(sp.limited)) PATHS[p] = { url: `${sp.A}/anthropic/v1/messages`, headers: { ...base, "x-api-key": L.main.key } };
  if (withNull) PATHS.null = { url: `${NULLW}/v1/messages`, headers: { ...base, "x-api-key": users.main.providerKeys[0] } };
  if (withFloor) PATHS.floor = { url: `${FLOOR}/anthropic/v1/messages`, headers: { ...base, "x-api-key": FLOOR_KEY } };
  if (withPortkey) PATHS.portkey = { url: `${PK}/v1/messages`, headers: { ...base, "x-api-key": users.main.providerKeys[0], "x-portkey-provider": "anthropic", "x-portkey-custom-host": `${FAKE}/v1` } };

  // Sanity: every path answers 200 with the fake's body; the failover user fails over once.
  for (const [p, P] of Object.entries(PATHS)) {
    const r = await timed(P.url, { headers: P.headers, body: JSON_BODY, keepBody: true });
    if (r.status !== 200 || !r.text.includes("msg_bench")) throw new Error(`${p}: expected 200 from the fake, got ${r.status}: ${r.text.slice(0, 300)}`);
  }
  const r = await timed(PATHS.subpool.url, { headers: { ...base, "x-api-key": users.fo.key }, body: JSON_BODY, keepBody: true });
  if (strict && (r.status !== 200 || r.headers["x-subpool-attempts"] !== "2")) throw new Error(`failover user: expected 200 after 2 attempts, got ${r.status} attempts=${r.headers["x-subpool-attempts"]}`);

  // The traffic phases (lib/traffic-phases.mjs): per path, the URL of each provider API and the
  // credential to present (subpool and its variants: the traffic user's key; the null Worker: the
  // traffic user's provider keys, as the fake sees them through subpool too).
  const gatewayTraffic = (v) => ({
    pid: v.proc.pid,
    url: { anthropic: `${v.A}/anthropic`, openai: `${v.A}/openai` },
    auth: { anthropic: { "x-api-key": v.users.traffic.key }, openai: { authorization: `Bearer ${v.users.traffic.key}` } },
    accounts: v.users.traffic.accounts,
    usageOf: v.usageOf,
  });
  const traffic = { subpool: gatewayTraffic(sp), ...Object.fromEntries(Object.entries(variantStacks).map(([n, v]) => [`subpool:${n}`, gatewayTraffic(v)])) };
  for (const [p, L] of Object.entries(sp.limited)) traffic[p] = gatewayTraffic({ ...sp, users: { ...sp.users, traffic: L.traffic }, usageOf: L.usageOf });
  if (withNull) {
    const pk = users.traffic.providerKeys;
    traffic.null = { pid: procs.null.pid, url: { anthropic: NULLW, openai: NULLW }, auth: { anthropic: { "x-api-key": pk.anthropic }, openai: { authorization: `Bearer ${pk.openai}` } } };
  }

  const setup = { bundleBytes: sp.bundleBytes, src: srcDir, variants, doDisk: doDisk ?? work, pids: Object.fromEntries(Object.entries(procs).map(([k, v]) => [k, v.pid])) };
  // The members with limits are served by subpool's own process: its isolate's counters, read around their runs.
  const statsOf = Object.fromEntries([["subpool", sp.stats], ...Object.keys(sp.limited).map((p) => [p, sp.stats]), ...Object.entries(variantStacks).map(([n, v]) => [`subpool:${n}`, v.stats])]);
  const doDirs = [sp.doDir, ...Object.values(variantStacks).map((v) => v.doDir)];
  return { doDirs, FAKE, A: sp.A, B: sp.B, ADMIN: sp.ADMIN, NULLW, FLOOR, PK, ctl, stats: sp.stats, statsOf, users, limited: sp.limited, PATHS, traffic, procs, setup };
}
