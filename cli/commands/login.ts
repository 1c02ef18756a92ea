/**
 * `subpool login <provider>`: a subscription sign-in run by the gateway (POST /api/oauth/…/start,
 * then …/finish). Anthropic: open the address, paste the code#state the page shows. OpenAI: open the
 * address; the browser is sent to localhost:1455, which this command listens on when it can (else
 * the user pastes the address). GitHub Copilot: a device code, entered on GitHub while we poll.
 */
import { createServer, type Server } from "node:http";
import { ApiError, type Answer } from "../api.js";
import { browserUsable, openBrowser } from "../browser.js";
import { context, type Ctx } from "../context.js";
import { Cancelled, CliError } from "../errors.js";
import { subpool } from "../invocation.js";
import { ask, isInteractive, progress, sleep } from "../prompts.js";
import { describeAccount } from "../resolve.js";
import { infoOf, type LoginDone, type LoginPending, type LoginStart, type Provider } from "../types.js";
import { out, paint, printJson, say } from "../ui.js";

const CALLBACK_PORT = 1455;
const CALLBACK_PATH = "/auth/callback";
const FINISH_TIMEOUT_MS = 90_000;

interface LoginOptions {
  label?: string;
  browser: boolean;
  callback: boolean;
  json?: boolean;
}

const isAbort = (e: unknown) => (e as { name?: unknown } | null)?.name === "AbortError";

function again(provider: string): string {
  return `run \`${subpool()} login ${provider}\` again`;
}

/** Errors of finish that end this login (as opposed to "paste it again"). */
function fatal(e: unknown, provider: string): unknown {
  if (e instanceof ApiError && (e.status === 410 || e.status === 404) && !e.message.includes("does not know")) {
    return new CliError(`this login is over: ${e.message}`, again(provider));
  }
  return e;
}

// ---- the localhost:1455 listener (OpenAI) -------------------------------------------------------

interface Callback {
  /**
   * The next redirect that reached us, as the full address the browser was sent to. The browser's
   * page waits (up to a minute) for `reply`: it says "Signed in" only once the gateway said so.
   */
  next(): Promise<{ address: string; reply(ok: boolean, text: string): void }>;
  close(): void;
}

const page = (title: string, text: string) =>
  `<!doctype html><meta charset="utf-8"><title>subpool</title><body style="font-family:system-ui,sans-serif;margin:4em auto;max-width:36em"><h2>${title}</h2><p>${text}</p></body>`;

/** Listens on 127.0.0.1 and [::1] port 1455; null when the port is taken (the user pastes instead). */
async function listenForCallback(expectedState: string | null): Promise<Callback | null> {
  type Arrival = { address: string; reply(ok: boolean, text: string): void };
  const queue: Arrival[] = [];
  const waiting: ((v: Arrival) => void)[] = [];
  const handler = (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => {
    const u = new URL(req.url ?? "/", `http://localhost:${CALLBACK_PORT}`);
    const send = (status: number, body: string) => {
      res.writeHead(status, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store", connection: "close" });
      res.end(body);
    };
    if (u.pathname !== CALLBACK_PATH) return send(404, page("Not here", "This is subpool's sign-in listener."));
    const state = u.searchParams.get("state");
    if (!u.searchParams.get("code") && !u.searchParams.get("error")) return send(400, page("No code", "This address has no sign-in code."));
    if (expectedState && state !== expectedState) return send(400, page("Another sign-in", "This address belongs to another sign-in; go back to the terminal."));
    const address = `http://localhost:${CALLBACK_PORT}${u.pathname}${u.search}`;
    let answered = false;
    const reply = (ok: boolean, text: string) => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      send(ok ? 200 : 502, page(ok ? "Signed in" : "Not signed in", text));
    };
    const timer = setTimeout(() => reply(true, "subpool got the code and is finishing the sign-in: the terminal says how it went."), 60_000);
    timer.unref();
    const arrival = { address, reply };
    const w = waiting.shift();
    if (w) w(arrival);
    else queue.push(arrival);
  };
  const listen = (host: string) =>
    new Promise<Server | null>((resolve) => {
      const server = createServer(handler);
      server.once("error", () => resolve(null));
      server.listen(CALLBACK_PORT, host, () => resolve(server));
    });
  const v4 = await listen("127.0.0.1");
  if (!v4) return null;
  const v6 = await listen("::1");
  const servers = [v4, ...(v6 ? [v6] : [])];
  for (const s of servers) s.unref();
  return {
    next: () => {
      const queued = queue.shift();
      return queued !== undefined ? Promise.resolve(queued) : new Promise((resolve) => waiting.push(resolve));
    },
    close: () => {
      for (const s of servers) {
        s.close();
        s.closeAllConnections();
      }
    },
  };
}

// ---- the flows -----------------------------------------------------------------------------------

async function codeFlow(ctx: Ctx, start: Extract<LoginStart, { method: "code" | "redirect" }>, opts: LoginOptions): Promise<LoginDone> {
  const provider = start.provider;
  const redirect = start.method === "redirect";
  const state = new URL(start.url).searchParams.get("state");
  const callback = redirect && opts.callback ? await listenForCallback(state) : null;
  try {
    if (callback) say(`Sign in to ${infoOf(provider)?.loginSite ?? provider} in the browser: it then comes back to this terminal by itself (through localhost:${CALLBACK_PORT}).`);
    else if (start.instructions) say(start.instructions);
    const opened = opts.browser && (await openBrowser(start.url));
    say(opened ? "Your browser should open at this address (if it did not, open it yourself):" : "Open this address in a browser:");
    say(`  ${paint("cyan", start.url, process.stderr)}`);
    if (callback) say(`Waiting for the browser to come back to localhost:${CALLBACK_PORT}. If it runs on another machine, it ends on an error page: paste that page's address here.`);

    const message = redirect ? "Paste the address your browser ended on (http://localhost:1455/auth/callback?code=…)" : "Paste the code the page shows (code#state)";
    for (let attempt = 1; ; attempt++) {
      const ac = new AbortController();
      const pasted = ask({ message, signal: ac.signal, validate: (v) => (v ? undefined : "paste it here") }).then(
        (v) => ({ v, via: "paste" as const }),
        (e: unknown) => {
          // No terminal and stdin at its end: the browser can still come back to the listener.
          if (callback && !isAbort(e) && e instanceof CliError && !(e instanceof Cancelled)) return new Promise<never>(() => undefined);
          throw e;
        },
      );
      const races: Promise<{ v: string; via: "paste" | "browser" }>[] = [pasted];
      /** The browser's page, waiting to be told how the sign-in ended. */
      let browserReply: ((ok: boolean, text: string) => void) | undefined;
      if (callback) races.push(callback.next().then((a) => ((browserReply = a.reply), { v: a.address, via: "browser" as const })));
      if (start.expiresAt) {
        races.push(
          sleep(Math.max(0, start.expiresAt - Date.now()), ac.signal).then(() => {
            throw new CliError("the login expired before it was finished", again(provider));
          }),
        );
      }
      let got: { v: string; via: "paste" | "browser" };
      try {
        got = await Promise.race(races);
      } finally {
        ac.abort();
        for (const r of races) r.catch(() => undefined);
      }
      if (got.via === "browser") say("Got the sign-in from your browser.");
      const spin = await progress("Finishing the sign-in");
      try {
        const r = await ctx.api.call<LoginDone>("POST", `/api/oauth/${provider}/finish`, { loginId: start.loginId, code: got.v }, { timeoutMs: FINISH_TIMEOUT_MS });
        spin.stop("Signed in");
        browserReply?.(true, "subpool signed in. You can close this tab and go back to the terminal.");
        return r.data;
      } catch (e) {
        spin.fail("Not signed in");
        const f = fatal(e, provider);
        browserReply?.(false, "The gateway could not finish the sign-in; the terminal says why.");
        const retry = f instanceof ApiError && (f.status === 400 || f.status === 502 || f.status === 503) && isInteractive() && attempt < 5;
        if (!retry) throw f;
        say(`${paint("yellow", "!", process.stderr)} ${f.message}`);
      }
    }
  } finally {
    callback?.close();
  }
}

async function deviceFlow(ctx: Ctx, start: Extract<LoginStart, { method: "device" }>, opts: LoginOptions): Promise<LoginDone> {
  const provider = start.provider;
  say(`Open ${paint("cyan", start.verificationUri, process.stderr)} and enter the code:`);
  say();
  say(`    ${paint("bold", start.userCode, process.stderr)}`);
  say();
  if (opts.browser && browserUsable()) {
    // Give the user a moment to read the code before the browser takes the focus.
    await sleep(1000);
    await openBrowser(start.verificationUri);
  }
  const ac = new AbortController();
  const spin = await progress(`Waiting for the code to be entered at ${start.verificationUri}`, () => ac.abort());
  let interval = Math.max(1, start.interval || 5);
  let transient = 0;
  try {
    for (;;) {
      await sleep(interval * 1000, ac.signal);
      if (start.expiresAt && Date.now() > start.expiresAt + 5000) throw new CliError("the code was not entered in time", again(provider));
      let r: Answer<LoginDone | LoginPending>;
      try {
        r = await ctx.api.call<LoginDone | LoginPending>("POST", `/api/oauth/${provider}/finish`, { loginId: start.loginId }, { signal: ac.signal, timeoutMs: FINISH_TIMEOUT_MS });
      } catch (e) {
        if (isAbort(e) || ac.signal.aborted) throw e;
        const passing = (e instanceof ApiError && e.status >= 500 && e.status !== 501) || (!(e instanceof ApiError) && e instanceof CliError && e.message.startsWith("cannot reach"));
        if (passing && ++transient <= 3) continue;
        throw fatal(e, provider);
      }
      transient = 0;
      if (r.status === 202) {
        const next = (r.data as LoginPending).interval;
        if (typeof next === "number" && next > 0) interval = next;
        continue;
      }
      spin.stop("Signed in");
      return r.data as LoginDone;
    }
  } catch (e) {
    if (isAbort(e) || ac.signal.aborted) {
      spin.fail("Cancelled");
      throw new Cancelled();
    }
    spin.fail("Not signed in");
    throw e;
  }
}

export async function login(provider: Provider, opts: LoginOptions): Promise<void> {
  const ctx = context();
  const start = await ctx.api.post<LoginStart>(`/api/oauth/${provider}/start`, opts.label ? { label: opts.label } : {});
  const done = start.method === "device" ? await deviceFlow(ctx, start, opts) : await codeFlow(ctx, start, opts);
  if (opts.json) {
    printJson(done);
    return;
  }
  const a = done.account;
  out(done.created ? `Added ${describeAccount(a)}.` : `Signed in again: refreshed ${describeAccount(a)}; it is ${a.status} now.`);
  say(`\`${subpool()} accounts\` shows your pool; \`${subpool()} env list\` shows how to point your tools at it.`);
}
