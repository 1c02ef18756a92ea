/** Calling the real Worker in workerd, with every response scanned for secrets. */
import { SELF, env } from "cloudflare:test";
import { afterAll, afterEach, beforeEach, expect } from "vitest";
import type { AccountView, UserProfile } from "../../src/wire";
import { resetIsolateCaches } from "./isolate";
import { assertNoSecrets, logLines, secrets } from "./secrets";
import { Upstream } from "./upstream";

export const ADMIN = secrets.add(env.ADMIN_TOKEN as string);
secrets.add(env.MASTER_KEY as string);

export const BASE = "http://gw.test";

/**
 * The gateway's JSON answers, as one loose shape: each test reads the fields its route returns.
 * (Typed, so a misspelt field is a compile error; optional-free, so assertions read naturally.)
 */
export interface Body {
  type: string;
  error: { type: string; message: string; field?: string; code?: string; param?: string | null };
  id: string;
  name: string;
  role: string;
  key: string;
  createdAt: number;
  users: UserProfile[];
  accounts: AccountView[];
  account: AccountView;
  created: boolean;
  status: string;
  interval: number;
  loginId: string;
  provider: string;
  method: string;
  url: string;
  userCode: string;
  verificationUri: string;
  expiresAt: number;
  format: string;
  imported: { entry: string; provider: string; type: string; action: string; account: AccountView }[];
  refused: { entry: string; reason: string }[];
  isolate: { proxied: number; upstreamFetches: number; kv: Record<string, number>; do: { calls: number } };
}

/** A response whose body was read (and scanned); `body` is the text, `json` parses it. */
export interface Answer {
  status: number;
  headers: Headers;
  body: string;
  json<T = Body>(): T;
}

export async function call(path: string, init: RequestInit & { key?: string } = {}): Promise<Answer> {
  const headers = new Headers(init.headers);
  if (init.key && !headers.has("authorization") && !headers.has("x-api-key")) headers.set("authorization", `Bearer ${init.key}`);
  const res = await SELF.fetch(BASE + path, { ...init, headers });
  const body = await res.text();
  assertNoSecrets(`response to ${init.method ?? "GET"} ${path}`, body + JSON.stringify([...res.headers]));
  return { status: res.status, headers: res.headers, body, json: () => JSON.parse(body) };
}

/** The raw streaming response (the caller reads it); headers are scanned. */
export async function callRaw(path: string, init: RequestInit & { key?: string } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.key) headers.set("authorization", `Bearer ${init.key}`);
  const res = await SELF.fetch(BASE + path, { ...init, headers });
  assertNoSecrets(`headers of ${path}`, JSON.stringify([...res.headers]));
  return res;
}

export const postJson = (path: string, key: string, body: unknown, method = "POST") =>
  call(path, { method, key, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

export async function createUser(name: string, role: "member" | "admin" = "member"): Promise<{ id: string; key: string }> {
  const r = await postJson("/admin/users", ADMIN, { name, role });
  expect(r.status).toBe(201);
  const u = r.json<{ id: string; key: string }>();
  secrets.add(u.key);
  return u;
}

/**
 * Adds an account without the provider check (`?check=false`): most tests script the fake provider
 * after adding, and count its calls. Tests of the check itself pass `{ check: true }`.
 */
export async function addAccount(key: string, body: Record<string, unknown>, opts: { check?: boolean } = {}): Promise<AccountView> {
  const r = await postJson(opts.check ? "/api/accounts" : "/api/accounts?check=false", key, body);
  expect(r.status, r.body).toBe(201);
  return r.json();
}

export async function listAccounts(key: string): Promise<AccountView[]> {
  const r = await call("/api/accounts", { key });
  expect(r.status).toBe(200);
  return r.json().accounts;
}

/** An Anthropic Messages request as the SDK sends it, with the gateway key in x-api-key. */
export const messages = (key: string, body: unknown = { model: "claude-sonnet-4-5", max_tokens: 16, messages: [{ role: "user", content: "hi" }] }, headers: Record<string, string> = {}) =>
  call("/anthropic/v1/messages", {
    method: "POST",
    headers: { "x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });

/** Per test: a fresh fake upstream and empty isolate caches; per file: no secret in any log line. */
export function useGateway(): { up: () => Upstream } {
  let upstream: Upstream | null = null;
  beforeEach(() => {
    resetIsolateCaches();
    upstream = new Upstream().install();
  });
  afterEach(() => {
    // Every call the gateway made (proxy, refresh, check, probe, login) declined to follow redirects.
    const following = upstream?.seen.filter((s) => s.redirect !== "manual").map((s) => `${s.method} ${s.url}`) ?? [];
    upstream?.uninstall();
    expect(following, "calls that would follow a redirect with a credential").toEqual([]);
  });
  afterAll(() => {
    for (const line of logLines) assertNoSecrets("a log line", line);
  });
  return { up: () => upstream! };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
