// The README, walked: every fenced ```sh block of README.md runs, in order, in one bash session per
// block (variables carry over from block to block, as in one terminal), from the checkout, and the
// test fails when a command fails. Conventions, written in the README as an HTML comment on the
// line before the fence:
//
//   <!-- not-run: <why> -->                          not run (needs a Cloudflare account, a browser ...)
//   <!-- readme-test: background, ready when <address> ... -->
//                                                   a server: started in the background; the next
//                                                   block waits until <address> answers (an http://
//                                                   URL: any HTTP answer from it; host:port: it listens)
//
// What the harness changes so that it can run anywhere, next to other gateways, without touching
// the developer's own state: the ports (8787 -> a free port, 4000 -> another, 4001 (the team lead's
// webhook receiver) -> a third), `npm run dev` gets a
// temporary --persist-to, `npm run demo` runs its non-interactive part (--once) on a free port and a
// temporary --dir, `npm install`/`npm ci`/`npm test` are skipped (installed already; the suite is
// what runs this), HOME is a temporary directory (the CLI's config lands there), and curl fails on
// an HTTP error (--fail-with-body), so a README command that gets a 4xx or 5xx fails the test.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ROOT, freePort } from "./gateway.mjs";

/** The ```sh blocks of a markdown text, each with the HTML comment on the line before its fence (if any). */
export function shBlocks(markdown) {
  const lines = markdown.split("\n");
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(sh|bash|shell)\s*$/.test(lines[i])) {
      if (/^```/.test(lines[i])) {
        // Skip other fenced blocks whole (they may contain ``` lines of their own languages).
        for (i++; i < lines.length && !/^```\s*$/.test(lines[i]); i++);
      }
      continue;
    }
    const start = i + 1;
    let prev = i - 1;
    while (prev >= 0 && lines[prev].trim() === "") prev--;
    const comment = /^<!--\s*(.*?)\s*-->$/.exec(lines[prev]?.trim() ?? "")?.[1] ?? null;
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]); i++);
    blocks.push({ line: start, code: lines.slice(start, i).join("\n"), comment });
  }
  return blocks;
}

function classify(block) {
  const c = block.comment ?? "";
  const notRun = /^not-run:\s*(.+)$/.exec(c);
  if (notRun) return { kind: "not-run", reason: notRun[1] };
  const bg = /^readme-test:\s*background,\s*ready when\s+(\S+)/.exec(c);
  if (bg) return { kind: "background", ready: bg[1] };
  return { kind: "run" };
}

const README = readFileSync(join(ROOT, "README.md"), "utf8");

describe("README walkthrough", { timeout: 600_000 }, () => {
  const tmp = mkdtempSync(join(tmpdir(), "subpool-readme-"));
  const home = join(tmp, "home");
  const stateFile = join(tmp, "vars.sh");
  const servers = [];
  let ports = {};
  let env = {};

  before(async () => {
    mkdirSync(home, { recursive: true });
    ports = { gw: await freePort(), fake: await freePort(), demo: await freePort(), hook: await freePort() };
    env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith("SUBPOOL_") || k === "XDG_CONFIG_HOME" || k === "CODEX_HOME") delete env[k];
    Object.assign(env, {
      HOME: home,
      XDG_CONFIG_HOME: join(home, ".config"),
      NO_COLOR: "1",
      SUBPOOL_NO_BROWSER: "1",
      WRANGLER_SEND_METRICS: "false",
      RT_GW_PORT: String(ports.gw),
      RT_STATE: join(tmp, "gateway-state"),
      RT_DEMO_PORT: String(ports.demo),
      RT_DEMO_DIR: join(tmp, "demo"),
      RT_VARS: stateFile,
    });
  });

  after(async () => {
    for (const s of servers) {
      try {
        process.kill(-s.pid, "SIGTERM");
      } catch {}
    }
    await sleep(servers.length ? 1500 : 0);
    for (const s of servers) {
      try {
        process.kill(-s.pid, "SIGKILL");
      } catch {}
    }
    rmSync(tmp, { recursive: true, force: true });
  });

  /** The block as the harness runs it: its ports swapped for free ones. */
  const adapt = (code) =>
    code
      .replace(/localhost:8787/g, `localhost:${ports.gw}`)
      .replace(/127\.0\.0\.1:4000/g, `127.0.0.1:${ports.fake}`)
      .replace(/(fake-provider\.mjs) 4000\b/g, `$1 ${ports.fake}`)
      .replace(/127\.0\.0\.1:4001\b/g, `127.0.0.1:${ports.hook}`)
      .replace(/\.listen\(4001\b/g, `.listen(${ports.hook}`);

  const PRELUDE = `
set -eo pipefail
npm() {
  case "$1" in
    install|ci|test) echo "[readme-test] npm $* skipped" >&2; return 0;;
    run)
      case "$2" in
        dev) shift 2; [ "\${1:-}" = "--" ] && shift; command npm run dev -- --port "$RT_GW_PORT" --persist-to "$RT_STATE" "$@"; return;;
        demo) shift 2; [ "\${1:-}" = "--" ] && shift; command npm run demo -- --once --port "$RT_DEMO_PORT" --dir "$RT_DEMO_DIR" "$@"; return;;
        test|test:unit|test:e2e) echo "[readme-test] npm $* skipped" >&2; return 0;;
      esac;;
  esac
  command npm "$@"
}
curl() { command curl --fail-with-body --max-time 30 "$@"; }
[ -f "$RT_VARS" ] && . "$RT_VARS"
__rt_before=" $(compgen -v | tr '\\n' ' ') "
`;
  // Variables the block set, for the next block (as one terminal keeps them).
  const EPILOGUE = `
for __v in $(compgen -v); do case "$__rt_before" in *" $__v "*) ;; *) case "$__v" in __*|BASH*|PIPESTATUS|FUNCNAME|LINENO|RANDOM|SECONDS|_) ;; *) declare -p "$__v" >> "$RT_VARS";; esac;; esac; done
`;

  async function ready(address) {
    const target = adapt(address);
    for (const until = Date.now() + 90_000; Date.now() < until; await sleep(250)) {
      if (servers.some((s) => s.exitCode !== null)) return `a background block exited:\n${servers.map((s) => s.log()).join("\n")}`;
      if (/^https?:\/\//.test(target)) {
        if (await fetch(target, { signal: AbortSignal.timeout(2000) }).then(() => true, () => false)) return null;
      } else {
        const [host, port] = target.split(":");
        const up = await new Promise((r) => {
          const s = connect(Number(port), host, () => (s.end(), r(true)));
          s.on("error", () => r(false));
        });
        if (up) return null;
      }
    }
    return `${target} did not answer within 90 s:\n${servers.map((s) => s.log()).join("\n")}`;
  }

  const blocks = shBlocks(README).map((b) => ({ ...b, ...classify(b) }));

  it("every ```sh block is run or says why not", () => {
    assert.ok(blocks.length >= 8, `found only ${blocks.length} sh blocks`);
    for (const b of blocks) if (b.kind === "not-run") assert.ok(b.reason.length > 5, `README line ${b.line}: a not-run block says why`);
    assert.ok(blocks.filter((b) => b.kind === "run").length >= 4);
    // The first command of the README is the demo, and it is run.
    assert.equal(blocks[0].kind, "run");
    assert.match(blocks[0].code.split("\n")[0], /^npm install && npm run demo\b/);
  });

  for (const b of blocks) {
    const title = `README line ${b.line}: ${b.code.split("\n")[0].slice(0, 70)}`;
    if (b.kind === "not-run") {
      it(title, { skip: `not-run: ${b.reason}` }, () => {});
      continue;
    }
    it(title, { timeout: 180_000 }, async () => {
      const script = `${PRELUDE}\n${adapt(b.code)}\n${EPILOGUE}`;
      if (b.kind === "background") {
        const child = spawn("bash", ["-c", script], { cwd: ROOT, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
        let log = "";
        child.stdout.on("data", (d) => (log += d));
        child.stderr.on("data", (d) => (log += d));
        child.log = () => `--- README line ${b.line} ---\n${log}`;
        servers.push(child);
        const problem = await ready(b.ready);
        assert.equal(problem, null, problem ?? "");
        return;
      }
      const r = spawnSync("bash", ["-c", script], { cwd: ROOT, env, encoding: "utf8", timeout: 170_000 });
      assert.equal(r.status, 0, `README line ${b.line} failed (exit ${r.status}):\n${adapt(b.code)}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`);
    });
  }

  it("the walk left what the README says it would", async () => {
    // The CLI's config (in the temporary HOME) holds the default key and the admin profile.
    const file = join(home, ".config", "subpool", "config.json");
    assert.ok(existsSync(file), "npx subpool setup saved its config");
    const cfg = JSON.parse(readFileSync(file, "utf8"));
    assert.ok(cfg.key?.startsWith("sp_") && cfg.profiles?.admin?.key, JSON.stringify(Object.keys(cfg)));
    // "For the team lead": the receiver's own check of x-subpool-signature passed for the test event
    // (its output may still be in the pipe: the blocks before ran with this process blocked).
    let logs = "";
    for (const until = Date.now() + 5000; Date.now() < until; await sleep(100)) {
      logs = servers.map((s) => s.log()).join("\n");
      if (/verified: /.test(logs)) break;
    }
    assert.match(logs, /verified: \{"event":"test"/, logs);
    assert.doesNotMatch(logs, /BAD SIGNATURE/);
  });
});
