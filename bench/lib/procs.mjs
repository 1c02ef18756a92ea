/**
 * Child processes of the benchmark: started in their own process group, remembered, and ended on
 * exit, on Ctrl-C and on any failure (by their own pid, never by name).
 */
import { spawn } from "node:child_process";
import net from "node:net";
import fs from "node:fs";

const children = new Set();
const dirs = new Set();

/** A directory to delete when the benchmark exits, however it exits. */
export function removeOnExit(dir) {
  dirs.add(dir);
}

function removeDirs() {
  for (const d of dirs) {
    try {
      fs.rmSync(d, { recursive: true, force: true });
    } catch {}
  }
}

export function startProcess(name, cmd, args, opts = {}) {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], detached: true, ...opts });
  child.benchName = name;
  children.add(child);
  let log = "";
  const keep = (d) => {
    log += d.toString();
    if (log.length > 64_000) log = log.slice(-32_000);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  child.log = () => log;
  if (process.env.BENCH_VERBOSE) {
    child.stdout.on("data", (d) => process.stderr.write(`[${name}] ${d}`));
    child.stderr.on("data", (d) => process.stderr.write(`[${name}] ${d}`));
  }
  child.on("exit", () => children.delete(child));
  return child;
}

/** Resolves with the first match of `re` on the child's stdout+stderr. */
export function waitForOutput(child, re, timeoutMs = 20_000) {
  return new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${child.benchName} did not print ${re} within ${timeoutMs} ms; output:\n${child.log()}`));
    }, timeoutMs);
    const on = (d) => {
      buf += d.toString();
      const m = re.exec(buf);
      if (m) {
        cleanup();
        resolve(m);
      }
    };
    const onExit = (code) => {
      cleanup();
      reject(new Error(`${child.benchName} exited (${code}) before it was ready; output:\n${child.log()}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout.off("data", on);
      child.stderr.off("data", on);
      child.off("exit", onExit);
    };
    child.stdout.on("data", on);
    child.stderr.on("data", on);
    child.on("exit", onExit);
  });
}

/** Polls until `url` answers (any status). */
export async function waitForHttp(url, child, timeoutMs = 20_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fetch(url);
      return;
    } catch {
      if (child && child.exitCode !== null) throw new Error(`${child.benchName} exited (${child.exitCode}); output:\n${child.log()}`);
      if (Date.now() > until) throw new Error(`${url} did not answer within ${timeoutMs} ms${child ? `; output:\n${child.log()}` : ""}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function stopProcess(child, signal = "SIGTERM") {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
      resolve();
    }, 3000);
    child.once("exit", () => {
      clearTimeout(t);
      resolve();
    });
    try {
      process.kill(-child.pid, signal); // its own process group (detached)
    } catch {
      clearTimeout(t);
      resolve();
    }
  });
}

export async function stopAll() {
  await Promise.all([...children].map((c) => stopProcess(c)));
}

function killAllSync() {
  for (const c of children) {
    try {
      process.kill(-c.pid, "SIGKILL");
    } catch {}
  }
}

let installed = false;
export function installCleanup(extra = () => {}) {
  if (installed) return;
  installed = true;
  const bail = (sig) => {
    process.stderr.write(`\nbench: ${sig}, stopping child processes\n`);
    killAllSync();
    removeDirs();
    try {
      extra();
    } catch {}
    process.exit(130);
  };
  process.on("SIGINT", () => bail("SIGINT"));
  process.on("SIGTERM", () => bail("SIGTERM"));
  process.on("SIGHUP", () => bail("SIGHUP"));
  process.on("exit", () => {
    killAllSync();
    removeDirs();
    try {
      extra();
    } catch {}
  });
}

/** Resident set size of a process, in bytes (Linux). */
export function rssOf(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /VmRSS:\s+(\d+) kB/.exec(s);
  return m ? Number(m[1]) * 1024 : NaN;
}

/** CPU time (clock ticks) of the whole machine (busy) and of the given processes, for "foreign load". */
export function cpuSnapshot(pids) {
  const line = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line;
  const busy = user + nice + system + irq + softirq + (steal ?? 0);
  let ours = 0;
  for (const pid of pids) {
    try {
      const s = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
      ours += Number(f[11]) + Number(f[12]); // utime, stime (all threads)
    } catch {}
  }
  return { busy, ours, idle: idle + iowait, at: performance.now() };
}

/** Share of the machine's CPU (all cores = 100 %) used by other processes between two snapshots. */
export function foreignCpu(a, b) {
  const ticks = (b.busy - a.busy) + (b.idle - a.idle);
  if (ticks <= 0) return { foreignPct: NaN, oursPct: NaN };
  return { foreignPct: (100 * Math.max(0, b.busy - a.busy - (b.ours - a.ours))) / ticks, oursPct: (100 * (b.ours - a.ours)) / ticks };
}

/** CPU time (user + system, all threads) of one process, in milliseconds (Linux, CLK_TCK = 100). */
export function cpuMsOf(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return NaN;
  }
}

/**
 * CPU time of one process in milliseconds with nanosecond resolution: the sum of its threads' time on
 * a CPU (/proc/PID/task/TID/schedstat, first field). cpuMsOf counts in 10 ms ticks, too coarse for one
 * request or one stream. A thread that ended between two readings takes its time out of the sum (its
 * time stays in cpuMsOf's): cpuDeltaMs compares both and falls back to the ticks then.
 */
export function cpuPreciseMsOf(pid) {
  try {
    let ns = 0;
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      } catch {}
    }
    return ns / 1e6;
  } catch {
    return NaN;
  }
}

/** A CPU reading for cpuDeltaMs. */
export function cpuReading(pid) {
  return { ticks: cpuMsOf(pid), precise: cpuPreciseMsOf(pid) };
}

/** CPU ms between two cpuReading()s: the precise figure unless it disagrees with the ticks (a thread ended). */
export function cpuDeltaMs(a, b) {
  const ticks = b.ticks - a.ticks;
  const precise = b.precise - a.precise;
  if (!Number.isFinite(precise) || precise < 0 || Math.abs(precise - ticks) > 20 + 0.25 * ticks) return ticks;
  return precise;
}
