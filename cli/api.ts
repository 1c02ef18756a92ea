/**
 * The gateway's HTTP API, with every failure turned into a message that says what to do:
 * unreachable gateway, refused key, missing admin rights, an older gateway without a route.
 */
import { CliError } from "./errors.js";
import { subpool } from "./invocation.js";
import type { ResolvedConfig } from "./config.js";

export interface ApiErrorBody {
  type: string;
  message: string;
  field?: string;
}

/** A 4xx/5xx answer in subpool's JSON error format. */
export class ApiError extends CliError {
  constructor(
    readonly status: number,
    readonly body: ApiErrorBody,
    hint?: string,
    /** A 404 because the gateway has no such route (older than this CLI), not because a thing is missing. */
    readonly noRoute = false,
  ) {
    super(body.message, hint);
    this.name = "ApiError";
  }
}

export interface Answer<T> {
  status: number;
  data: T;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** Why fetch failed, from the error's cause chain (undici puts the socket error there). */
function networkCode(e: unknown): string | undefined {
  let cur: unknown = e;
  for (let i = 0; i < 5 && cur && typeof cur === "object"; i++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === "string" && code !== "UND_ERR_SOCKET") return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

export function unreachable(url: string, e: unknown): CliError {
  const name = (e as { name?: unknown } | null)?.name;
  if (name === "TimeoutError") return new CliError(`the gateway at ${url} did not answer in time`, `check the URL (\`${subpool()} setup\`) and your network, then try again`);
  if (name === "AbortError") return new CliError("cancelled", undefined, 130);
  const code = networkCode(e);
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return new CliError(`cannot reach the gateway at ${url}: the host name does not resolve (${code})`, `check the URL: run \`${subpool()} setup\``);
  if (code?.startsWith("ERR_TLS") || code?.includes("CERT")) return new CliError(`cannot reach the gateway at ${url}: TLS failed (${code})`, `check the URL: run \`${subpool()} setup\``);
  const how = code && code !== "ECONNREFUSED" ? ` (${code})` : "";
  if (isLocal(url)) return new CliError(`cannot reach the gateway at ${url}${how}: is it running? (npm run dev)`);
  return new CliError(`cannot reach the gateway at ${url}${how}`, `check the URL (\`${subpool()} setup\`) and your network`);
}

/** A gateway on this machine (`npm run dev`), as opposed to a deployed one. */
export function isLocal(url: string): boolean {
  try {
    return /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/i.test(new URL(url).hostname);
  } catch {
    return false;
  }
}

export class Api {
  constructor(
    readonly url: string,
    private readonly key: string,
    /** Where the key came from, to say which one to fix when it is refused. */
    private readonly keyFrom: "env" | "file" | "input" = "file",
    /** The profile the key was read from (null: the default) and the config file, to say which key to use instead. */
    private readonly where: { profile: string | null; profiles: string[] } | null = null,
  ) {}

  static from(cfg: ResolvedConfig): Api {
    return new Api(cfg.url, cfg.key, cfg.keyFrom, { profile: cfg.profile, profiles: cfg.profiles });
  }

  /**
   * Calls the gateway. `accept` lists the non-2xx statuses the caller handles itself (they come
   * back as answers); every other non-2xx becomes an ApiError with advice.
   */
  async call<T>(method: string, path: string, body?: unknown, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Answer<T>> {
    const signals = [AbortSignal.timeout(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS), ...(opts.signal ? [opts.signal] : [])];
    let res: Response;
    try {
      res = await fetch(this.url + path, {
        method,
        headers: {
          authorization: `Bearer ${this.key}`,
          accept: "application/json",
          "user-agent": "subpool-cli",
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
        },
        ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
        signal: AbortSignal.any(signals),
        redirect: "manual",
      });
    } catch (e) {
      throw unreachable(this.url, e);
    }
    if (res.status >= 300 && res.status < 400) {
      const to = res.headers.get("location");
      throw new CliError(`the gateway at ${this.url} redirects${to ? ` to ${to}` : ""}`, `run \`${subpool()} setup\` with the address it redirects to (the key is never sent along a redirect)`);
    }
    const text = await res.text().catch(() => "");
    let json: unknown;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
    }
    if (res.ok) {
      if (res.status !== 204 && text && json === undefined) throw this.notSubpool(res.status);
      return { status: res.status, data: json as T };
    }
    const err = (json as { error?: unknown } | undefined)?.error;
    if (!err || typeof err !== "object" || typeof (err as { message?: unknown }).message !== "string") throw this.notSubpool(res.status);
    const e = err as { type?: unknown; message: string; field?: unknown };
    const parsed: ApiErrorBody = { type: typeof e.type === "string" ? e.type : "error", message: e.message, ...(typeof e.field === "string" ? { field: e.field } : {}) };
    throw new ApiError(res.status, { ...parsed, message: this.rephrase(res.status, parsed, method, path) }, this.hintFor(res.status, parsed), res.status === 404 && parsed.message.startsWith("no route"));
  }

  get<T>(path: string, opts?: { signal?: AbortSignal }): Promise<T> {
    return this.call<T>("GET", path, undefined, opts).then((a) => a.data);
  }
  post<T>(path: string, body?: unknown): Promise<T> {
    return this.call<T>("POST", path, body ?? {}).then((a) => a.data);
  }
  patch<T>(path: string, body: unknown): Promise<T> {
    return this.call<T>("PATCH", path, body).then((a) => a.data);
  }
  put<T>(path: string, body: unknown): Promise<T> {
    return this.call<T>("PUT", path, body).then((a) => a.data);
  }
  async del(path: string): Promise<void> {
    await this.call<unknown>("DELETE", path);
  }

  private notSubpool(status: number): CliError {
    return new CliError(`the gateway at ${this.url} answered ${status} with something that is not subpool's JSON`, `is that the gateway's address? Check it with \`${subpool()} setup\``);
  }

  /**
   * What a member runs an admin command with: an admin's key, by the options this CLI reads it from
   * (--profile NAME, the profiles saved beside this one named; SUBPOOL_KEY, which only counts
   * without --profile), or the admin does it.
   */
  private adminHint(): string {
    const using = this.keyFrom === "env" ? "the key in SUBPOOL_KEY" : this.where?.profile ? `the profile "${this.where.profile}"` : this.keyFrom === "input" ? "this key" : "your saved key";
    const others = (this.where?.profiles ?? []).filter((p) => p !== this.where?.profile);
    const profile =
      others.length === 1
        ? `--profile ${others[0]}`
        : others.length > 1
          ? `--profile <name> (saved profiles: ${others.join(", ")})`
          : `save it with \`${subpool()} setup --profile admin\`, then add --profile admin`;
    const env = this.where?.profile ? "" : this.keyFrom === "env" ? ", or put an admin's key in SUBPOOL_KEY" : ", or SUBPOOL_KEY=<an admin's key>";
    return `${using} is a member's: ask your team's admin, or run it with an admin's key: ${profile}${env}`;
  }

  private rephrase(status: number, e: ApiErrorBody, method: string, path: string): string {
    if (status === 401) {
      return this.keyFrom === "env" ? "the key in SUBPOOL_KEY was refused" : "the key was refused";
    }
    if (status === 404 && e.message.startsWith("no route")) {
      return `the gateway at ${this.url} does not know ${method} ${path.split("?")[0]}: it is older than this CLI`;
    }
    return e.message;
  }

  private hintFor(status: number, e: ApiErrorBody): string | undefined {
    if (status === 401) {
      return this.keyFrom === "env"
        ? `fix or unset SUBPOOL_KEY, or run \`${subpool()} setup\``
        : this.keyFrom === "input"
          ? `check the key (an admin can issue a new one with \`${subpool()} users rotate <name>\`)`
          : `run \`${subpool()} setup\` (an admin can issue a new key with \`${subpool()} users rotate <name>\`)`;
    }
    if (status === 403 && /owns no accounts/.test(e.message)) return `the ADMIN_TOKEN only manages users: \`${subpool()} users add <you> --admin\`, then \`${subpool()} setup\` with that key`;
    if (status === 403 && /needs an admin/.test(e.message)) return this.adminHint();
    if (status === 403) return "this needs an admin's key";
    if (status === 404 && e.message.startsWith("no route")) return "update the gateway (git pull && npx wrangler deploy)";
    if (status === 429) return "the gateway is rate limiting: wait a moment and try again";
    if (status >= 500) {
      return isLocal(this.url)
        ? "the gateway failed: its terminal (npm run dev) shows why; try again"
        : "the gateway failed: try again; if it persists, its logs say why (npx wrangler tail, in the gateway's checkout)";
    }
    return undefined;
  }
}
