/**
 * Runs Workers the way production does: the bundle `wrangler deploy` would upload, under the
 * `workerd` binary (no wrangler dev proxy, no Miniflare entry worker in the request path).
 *
 * subpool's process holds: the subpool Worker (isolate "A", with the UserPool Durable Object class,
 * SQLite storage in a directory, tmpfs by default: see writeSubpoolConfig), a second isolate "B" of the same bundle bound to the same Durable
 * Object namespace and KV (to measure how fast a cooldown recorded in one isolate reaches another),
 * an in-memory KV service, and a `network` service allowing local addresses as global outbound.
 * The null Worker runs in its own workerd process, so each process's memory is its own.
 */
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { execFileSync } from "node:child_process";
import { startProcess, waitForHttp } from "./procs.mjs";

const require = createRequire(import.meta.url);

export function workerdBinary() {
  try {
    return require.resolve("@cloudflare/workerd-linux-64/bin/workerd");
  } catch {
    return path.join(path.dirname(require.resolve("workerd/package.json")), "bin", "workerd");
  }
}

export function workerdVersion() {
  return execFileSync(workerdBinary(), ["--version"]).toString().trim();
}

/**
 * `wrangler deploy --dry-run --outdir`: the exact module that would be uploaded. `dir` holds
 * wrangler.toml and src/ (this repo, or a variant copy); wrangler comes from `toolRepo`.
 */
export function buildBundle(dir, outDir, toolRepo = dir) {
  fs.rmSync(outDir, { recursive: true, force: true });
  const wrangler = path.join(toolRepo, "node_modules", ".bin", "wrangler");
  execFileSync(wrangler, ["deploy", "--dry-run", "--outdir", outDir], {
    cwd: dir,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", CI: "1" },
  });
  const file = path.join(outDir, "index.js");
  if (!fs.existsSync(file)) throw new Error(`wrangler did not produce ${file}`);
  return file;
}

/**
 * One bench Worker (bench/workers/*.js) bundled with its imports (hono) by esbuild, the bundler
 * wrangler itself uses, with the same export conditions. Returns the bundle's path.
 */
export function bundleBenchWorker(entry, outFile) {
  const esbuild = require("esbuild");
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  esbuild.buildSync({ entryPoints: [entry], outfile: outFile, bundle: true, format: "esm", platform: "browser", conditions: ["workerd", "worker", "browser"], target: "es2022", logLevel: "silent" });
  return outFile;
}

/** compatibility_date and [vars] of wrangler.toml (a flat reader: key = "value" lines). */
export function readWranglerToml(repo) {
  const text = fs.readFileSync(path.join(repo, "wrangler.toml"), "utf8");
  const out = { compatibilityDate: null, compatibilityFlags: [], vars: {} };
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*$/, "").trim();
    if (!line) continue;
    const sec = /^\[+([^\]]+)\]+$/.exec(line);
    if (sec) {
      section = sec[1].trim();
      continue;
    }
    const kv = /^([A-Za-z0-9_]+)\s*=\s*(.+)$/.exec(line);
    if (!kv) continue;
    const [, k, v] = kv;
    if (section === "" && k === "compatibility_date") out.compatibilityDate = JSON.parse(v);
    if (section === "" && k === "compatibility_flags") out.compatibilityFlags = JSON.parse(v);
    if (section === "vars") {
      try {
        out.vars[k] = String(JSON.parse(v));
      } catch {
        out.vars[k] = v;
      }
    }
  }
  return out;
}

const q = (s) => JSON.stringify(String(s)); // capnp text strings accept JSON-style escapes

function textBindings(obj) {
  return Object.entries(obj).map(([k, v]) => `(name = ${q(k)}, text = ${q(v)})`);
}

function workerBlock({ modules, compatibilityDate, compatibilityFlags = [], bindings, extra = "" }) {
  return `(
      modules = [${modules.map((m) => `(name = ${q(m.name)}, esModule = embed ${q(m.file)})`).join(", ")}],
      compatibilityDate = ${q(compatibilityDate)},
      compatibilityFlags = [${compatibilityFlags.map(q).join(", ")}],
      bindings = [
        ${bindings.join(",\n        ")}
      ],
      globalOutbound = "net",${extra}
    )`;
}

/**
 * subpool: sockets "a" (isolate A) and "b" (isolate B).
 * Returns the config file path.
 */
/**
 * doDir: where the Durable Object's SQLite files live. The benchmark puts them on tmpfs by default:
 * workerd runs SQLite (and its fsync) on the same thread as every request of the process, so on a
 * real disk each DO write stalls the gateway for the fsync (measured: up to 0.8 s when the disk is
 * busy); in production the DO runs elsewhere and its storage never blocks the Worker's thread.
 */
/**
 * kvAddress: the KV service at another address (`host:port`, e.g. memory-kv.js in a workerd process of
 * its own, so that KV outlives a restart of this one: bench/team.mjs) instead of in this process.
 * morePorts: more isolates of the same bundle ("C", "D", ...: sockets on these ports, bound to the same
 * Durable Object namespace and KV as B is), for the overshoot trials of bench/team.mjs.
 */
export function writeSubpoolConfig({ dir, bundle, kvScript, compatibilityDate, compatibilityFlags, vars, portA, portB, doDir, kvAddress = null, morePorts = [] }) {
  fs.mkdirSync(doDir, { recursive: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(bundle, path.join(dir, "subpool.js"));
  fs.copyFileSync(kvScript, path.join(dir, "memory-kv.js"));
  const common = [`(name = "VAULT", kvNamespace = "kv")`, ...textBindings(vars)];
  const mod = [{ name: "index.js", file: "subpool.js" }];
  const config = `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "subpool", worker = ${workerBlock({
      modules: mod,
      compatibilityDate,
      compatibilityFlags,
      bindings: [`(name = "USER_POOL", durableObjectNamespace = (className = "UserPool"))`, ...common],
      extra: `
      durableObjectNamespaces = [(className = "UserPool", uniqueKey = "subpool-bench-UserPool", enableSql = true)],
      durableObjectStorage = (localDisk = "do-disk"),`,
    })}),
    ${["b", ...morePorts.map((_, i) => String.fromCharCode(99 + i))]
      .map(
        (s) => `(name = "subpool-${s}", worker = ${workerBlock({
      modules: mod,
      compatibilityDate,
      compatibilityFlags,
      bindings: [`(name = "USER_POOL", durableObjectNamespace = (className = "UserPool", serviceName = "subpool"))`, ...common],
    })})`,
      )
      .join(",\n    ")},
    ${
      kvAddress
        ? `(name = "kv", external = (address = ${q(kvAddress)}, http = ())),`
        : `(name = "kv", worker = (
      modules = [(name = "memory-kv.js", esModule = embed "memory-kv.js")],
      compatibilityDate = "2026-08-01",
    )),`
    }
    (name = "do-disk", disk = (path = ${q(doDir)}, writable = true)),
    (name = "net", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [
    (name = "a", address = "127.0.0.1:${portA}", http = (), service = "subpool"),
    (name = "b", address = "127.0.0.1:${portB}", http = (), service = "subpool-b"),${morePorts
      .map((port, i) => `\n    (name = "${String.fromCharCode(99 + i)}", address = "127.0.0.1:${port}", http = (), service = "subpool-${String.fromCharCode(99 + i)}"),`)
      .join("")}
  ],
);
`;
  const file = path.join(dir, "subpool.capnp");
  fs.writeFileSync(file, config);
  return file;
}

/** A Worker alone in its own workerd process (the null and floor Workers): text bindings `vars`. */
export function writeSingleWorkerConfig({ dir, name, script, compatibilityDate, vars, port }) {
  fs.mkdirSync(dir, { recursive: true });
  const mod = `${name}-worker.js`;
  fs.copyFileSync(script, path.join(dir, mod));
  const config = `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = ${q(name)}, worker = ${workerBlock({
      modules: [{ name: mod, file: mod }],
      compatibilityDate,
      bindings: textBindings(vars),
    })}),
    (name = "net", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = ${q(name)})],
);
`;
  const file = path.join(dir, `${name}.capnp`);
  fs.writeFileSync(file, config);
  return file;
}

export function writeNullConfig({ dir, script, compatibilityDate, upstream, port }) {
  return writeSingleWorkerConfig({ dir, name: "null", script, compatibilityDate, vars: { UPSTREAM_BASE: upstream }, port });
}

export async function startWorkerd(name, configFile, probeUrl, extraArgs = []) {
  const child = startProcess(name, workerdBinary(), ["serve", ...extraArgs, configFile], { cwd: path.dirname(configFile) });
  await waitForHttp(probeUrl, child);
  return child;
}
