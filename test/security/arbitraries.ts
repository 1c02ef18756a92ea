/**
 * fast-check arbitraries for hostile HTTP input: bodies (arbitrary JSON, objects with
 * prototype-named keys, deep nesting, huge strings, invalid UTF-8, non-JSON text, wrong
 * content types, streamed or not), headers, query strings and path ids.
 *
 * Reproduce a failure with the seed fast-check prints: `VITE_FC_SEED=<seed> npx vitest run test/security`
 * (Vite hands VITE_* variables to the workerd test isolate as import.meta.env). `VITE_FC_RUNS`
 * scales the number of runs.
 */
import fc from "fast-check";
import { concat } from "../../src/util";
import { secrets } from "../helpers/secrets";

/** The management API's body limit (src/api/validate.ts: 1 MiB). */
export const API_BODY_LIMIT = 1024 * 1024;

const env = (import.meta as unknown as { env?: Record<string, string | undefined> }).env ?? {};

/** fast-check parameters: random by default, fixed with VITE_FC_SEED; VITE_FC_RUNS overrides numRuns. */
export function fcParams(numRuns: number): fc.Parameters<unknown> {
  const seed = env.VITE_FC_SEED !== undefined && env.VITE_FC_SEED !== "" ? Number(env.VITE_FC_SEED) : undefined;
  const runs = env.VITE_FC_RUNS ? Number(env.VITE_FC_RUNS) : numRuns;
  return {
    numRuns: runs,
    ...(seed !== undefined && Number.isFinite(seed) ? { seed } : {}),
    // Each run is a few HTTP calls into workerd: keep shrinking bounded so a failure reports quickly.
    endOnFailure: false,
    maxSkipsPerRun: 10,
  };
}

/** Summaries instead of megabytes in fast-check's counterexample report. */
export function clip(s: string, max = 200): string {
  return s.length <= max ? s : `${s.slice(0, max)}… (${s.length} chars)`;
}

// ---------------------------------------------------------------------------------------------
// JSON values with own keys named like Object.prototype members

/** Keys that trip code which looks things up in plain objects, plus the fields routes read. */
export const NASTY_KEYS = [
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "valueOf",
  "hasOwnProperty",
  "isPrototypeOf",
  "propertyIsEnumerable",
  "toLocaleString",
  "__defineGetter__",
  "__lookupSetter__",
  "then",
  "length",
  "",
  " ",
  "\u0000",
  "a.b",
  "0",
  "-1",
] as const;

export const FIELD_KEYS = [
  "name",
  "role",
  "provider",
  "type",
  "key",
  "refresh",
  "access",
  "expires",
  "label",
  "position",
  "enabled",
  "loginId",
  "code",
  "claudeAiOauth",
  "refreshToken",
  "accessToken",
  "expiresAt",
  "tokens",
  "refresh_token",
  "access_token",
  "id_token",
  "account_id",
  "OPENAI_API_KEY",
  "anthropic",
  "openai",
  "github-copilot",
  "strategy",
  "quotaThreshold",
  "affinityTtlS",
] as const;

export const keyArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...NASTY_KEYS) },
  { weight: 3, arbitrary: fc.constantFrom(...FIELD_KEYS) },
  { weight: 2, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 12 }) },
);

/** Sets an own, enumerable property even for "__proto__" (plain assignment would set the prototype). */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

const specialValues = fc.constantFrom<unknown>(
  null,
  true,
  false,
  0,
  -1,
  1.5,
  1e308,
  -0,
  Number.MAX_SAFE_INTEGER + 2,
  "",
  " ",
  "null",
  "__proto__",
  "constructor",
  "\u0000",
  "\u2028",
  "\ud800",
  "é",
  "😀",
  "api",
  "oauth",
  "member",
  "admin",
  "anthropic",
  "openai",
  "github-copilot",
  [],
  {},
);

/** Arbitrary JSON values (objects may carry nasty own keys). */
export const valueArb: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
    { weight: 3, arbitrary: specialValues },
    { weight: 1, arbitrary: fc.array(tie("value"), { maxLength: 4 }) },
    {
      weight: 2,
      arbitrary: fc.array(fc.tuple(keyArb, tie("value")), { maxLength: 5 }).map((pairs) => {
        const o: Record<string, unknown> = {};
        for (const [k, v] of pairs) setOwn(o, k, v);
        return o;
      }),
    },
  ),
})).value;

// ---------------------------------------------------------------------------------------------
// Mutations of a near-valid body

type Path = (string | number)[];

function paths(v: unknown, at: Path = [], out: Path[] = []): Path[] {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out));
  else if (v && typeof v === "object") for (const k of Object.keys(v)) paths((v as Record<string, unknown>)[k], [...at, k], out);
  return out;
}

function clone(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(clone);
  if (v && typeof v === "object") {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v)) setOwn(o, k, clone((v as Record<string, unknown>)[k]));
    return o;
  }
  return v;
}

function getAt(v: unknown, p: Path): unknown {
  return p.reduce<unknown>((x, k) => (x as Record<string | number, unknown>)[k], v);
}

export type Mutation =
  | { op: "replace"; at: number; value: unknown }
  | { op: "delete"; at: number }
  | { op: "add"; at: number; key: string; value: unknown }
  | { op: "rename"; at: number; key: string }
  | { op: "wrap"; at: number };

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant("replace" as const), at: fc.nat(), value: valueArb }),
  fc.record({ op: fc.constant("delete" as const), at: fc.nat() }),
  fc.record({ op: fc.constant("add" as const), at: fc.nat(), key: keyArb, value: valueArb }),
  fc.record({ op: fc.constant("rename" as const), at: fc.nat(), key: keyArb }),
  fc.record({ op: fc.constant("wrap" as const), at: fc.nat() }),
);

/** Applies mutations to a copy of `base`; each picks its place among the value's paths. */
export function mutate(base: unknown, muts: Mutation[]): unknown {
  let root = clone(base);
  for (const m of muts) {
    const all = paths(root);
    const p = all[m.at % all.length]!;
    const parentPath = p.slice(0, -1);
    const last = p[p.length - 1];
    const parent = p.length ? (getAt(root, parentPath) as Record<string | number, unknown>) : undefined;
    const current = getAt(root, p);
    const put = (v: unknown) => {
      if (!parent || last === undefined) root = v;
      else if (Array.isArray(parent)) parent[last as number] = v;
      else setOwn(parent as Record<string, unknown>, String(last), v);
    };
    switch (m.op) {
      case "replace":
        put(clone(m.value));
        break;
      case "wrap":
        put([current]);
        break;
      case "delete":
        if (!parent || last === undefined) root = undefined;
        else if (Array.isArray(parent)) parent.splice(last as number, 1);
        else delete (parent as Record<string, unknown>)[last as string];
        break;
      case "add": {
        const target = current && typeof current === "object" && !Array.isArray(current) ? current : parent && !Array.isArray(parent) ? parent : null;
        if (target) setOwn(target as Record<string, unknown>, m.key, clone(m.value));
        break;
      }
      case "rename":
        if (parent && !Array.isArray(parent) && last !== undefined) {
          delete (parent as Record<string, unknown>)[last as string];
          setOwn(parent as Record<string, unknown>, m.key, current);
        }
        break;
    }
  }
  return root;
}

// ---------------------------------------------------------------------------------------------
// Bodies

export interface BodySpec {
  /** What kind of hostile body this is (shown in reports). */
  kind: string;
  bytes: Uint8Array;
  contentType: string | null;
  /** Sent as a ReadableStream (no Content-Length), in chunks of this size. */
  streamChunk: number | null;
}

const enc = new TextEncoder();
/** JSON.stringify(undefined) is undefined: send nothing then. */
const json = (v: unknown) => JSON.stringify(v) ?? "";

export const CONTENT_TYPES = [
  "application/json",
  "application/json; charset=utf-8",
  "application/json; charset=utf-16",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=xyz",
  "application/xml",
  "application/octet-stream",
  "*/*",
  ";;;",
  "",
] as const;

/** Whether fetch's Headers accept this field (no CR, LF, NUL; Latin-1 only). */
export function isHeaderSafe(name: string, value: string): boolean {
  try {
    new Headers([[name, value]]);
    return true;
  } catch {
    return false;
  }
}

/** Printable ASCII: workerd sends other Latin-1 as UTF-8 with a warning per request. */
const asciiText = (maxLength: number) => fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength });

const contentTypeArb: fc.Arbitrary<string | null> = fc.oneof(
  { weight: 6, arbitrary: fc.constant("application/json") },
  { weight: 3, arbitrary: fc.constantFrom<string | null>(null, ...CONTENT_TYPES) },
  { weight: 1, arbitrary: asciiText(30) },
);

const INVALID_UTF8: number[][] = [
  [0xff],
  [0xfe, 0xff],
  [0xc0, 0x80], // overlong NUL
  [0xed, 0xa0, 0x80], // a surrogate
  [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
  [0xe2, 0x82], // truncated
  [0x80], // lone continuation
  [0xc3],
  [0xf8, 0x88, 0x80, 0x80, 0x80], // 5-byte form
];

const NON_JSON = [
  "{",
  "}",
  "[1,2",
  "{name:1}",
  "{'name':'a'}",
  "undefined",
  "NaN",
  "Infinity",
  "-",
  "01",
  '{"a":1,}',
  '{"a" 1}',
  "\u0000",
  "name=alice&role=admin",
  "<xml/>",
  "--xyz\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nalice\r\n--xyz--",
  '"just a string"',
  "42",
  "null",
  "true",
  "[]",
  '[{"name":"x"}]',
  "\ufeff{}",
  '{"a":1}{"b":2}',
  '{"a":"\\ud800"}',
  '{"a":"\\u0000"}',
  '{"__proto__":{"admin":true}}',
] as const;

/** A value meant to be a credential: registered as a secret so any echo of it is caught. */
export const secretArb: fc.Arbitrary<string> = fc.uuid().map((u) => secrets.add(`sk-prop-${u}`));

/** A credential-looking value with characters a header cannot carry (docs/ARCHITECTURE.md, "Faults": 0x21–0x7E only). */
export const badSecretArb: fc.Arbitrary<string> = fc
  .tuple(fc.uuid(), fc.constantFrom(" ", "\n", "\r\n", "\t", "\u0000", "\u007f", "é", "\u2028", "😀", "\ud800"), fc.constantFrom("start", "middle", "end"))
  .map(([u, bad, where]) => {
    const s = `sk-bad-${u}`;
    const left = s.slice(0, 22);
    const right = s.slice(22);
    secrets.add(s);
    secrets.add(left);
    secrets.add(right);
    return where === "start" ? bad + s : where === "end" ? s + bad : left + bad + right;
  });

/**
 * A credential the credential rule (docs/ARCHITECTURE.md, "Faults") says must be refused: a character outside 0x21–0x7E inside it (or at an
 * end, when it is not whitespace a trim could drop), or more than 8 KiB.
 */
export const unsendableSecretArb: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(fc.uuid(), fc.constantFrom(" ", "\t", "\n", "\u0000", "\u007f", "é", "\u2028", "😀", "\ud800", "\u00a0")).map(([u, bad]) => {
    const s = `sk-bad-${u}`;
    const [left, right] = [s.slice(0, 22), s.slice(22)];
    secrets.add(left);
    secrets.add(right);
    return secrets.add(left + bad + right);
  }),
  fc.tuple(fc.uuid(), fc.constantFrom("\u0000", "\u007f", "é", "😀", "\ud800"), fc.boolean()).map(([u, bad, atStart]) => {
    const s = secrets.add(`sk-bad-${u}`);
    return secrets.add(atStart ? bad + s : s + bad);
  }),
  fc.tuple(fc.uuid(), fc.integer({ min: 8193, max: 16000 })).map(([u, len]) => secrets.add(`sk-long-${u}-`.padEnd(len, "x"))),
);

function nested(depth: number, kind: "array" | "object"): string {
  return kind === "array" ? "[".repeat(depth) + "]".repeat(depth) : '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
}

/** Places raw JSON text where a marker string sits in the serialized base. */
function placeRaw(base: unknown, raw: string, at: number): string {
  const MARK = "\u0001MARK\u0001";
  const all = paths(base);
  const inner = all.map((p, i) => [p, i] as const).filter(([p]) => p.length > 0);
  if (!inner.length) return raw;
  const withMark = mutate(base, [{ op: "replace", at: inner[at % inner.length]![1], value: MARK }]);
  return json(withMark).replace(json(MARK), () => raw);
}

function bytesOf(parts: (string | number[])[]): Uint8Array {
  return concat(parts.map((p) => (typeof p === "string" ? enc.encode(p) : Uint8Array.from(p))));
}

/**
 * Hostile bodies for a route. `valid` yields what a well-behaved client sends; most bodies are
 * derived from it (mutated, nested, padded, mis-encoded) so they get past the first checks.
 */
export function bodyArb(valid: fc.Arbitrary<unknown> | null): fc.Arbitrary<BodySpec> {
  const base: fc.Arbitrary<unknown> = valid ?? valueArb;
  const kinds: fc.WeightedArbitrary<{ kind: string; parts: (string | number[])[] }>[] = [
    // 1. what a client would send, unchanged (2xx paths get exercised too)
    { weight: 3, arbitrary: base.map((v) => ({ kind: "valid", parts: [json(v)] })) },
    // 2. near-valid: a few mutations (wrong types, missing/extra/prototype-named keys)
    {
      weight: 8,
      arbitrary: fc.tuple(base, fc.array(mutationArb, { minLength: 1, maxLength: 3 })).map(([v, m]) => ({ kind: "mutated", parts: [json(mutate(v, m))] })),
    },
    // 3. any JSON value
    { weight: 3, arbitrary: valueArb.map((v) => ({ kind: "json", parts: [json(v)] })) },
    // 4. deep nesting, at the top or inside a field
    {
      weight: 2,
      arbitrary: fc
        .tuple(base, fc.integer({ min: 50, max: 120_000 }), fc.constantFrom("array" as const, "object" as const), fc.nat(), fc.boolean())
        .map(([v, depth, kind, at, top]) => ({ kind: `nested-${kind}-${depth}`, parts: [top ? nested(depth, kind) : placeRaw(v, nested(depth, kind), at)] })),
    },
    // 5. huge strings in a field: around the credential limits, and just under / over the body limit
    {
      weight: 1,
      arbitrary: fc
        .tuple(base, fc.constantFrom(4097, 8193, 16385, 100_000, API_BODY_LIMIT - 200, API_BODY_LIMIT + 1), fc.nat(), fc.constantFrom("a", "é", "\u0000"))
        .map(([v, len, at, ch]) => ({ kind: `huge-${len}`, parts: [placeRaw(v, json(ch.repeat(len)), at)] })),
    },
    // 6. invalid UTF-8 bytes inside a string field, or anywhere
    {
      weight: 2,
      arbitrary: fc.tuple(base, fc.constantFrom(...INVALID_UTF8), fc.nat(), fc.boolean()).map(([v, bad, at, inString]) => {
        const text = inString ? placeRaw(v, '"\u0002"', at) : json(v);
        const [before, after] = inString && text.includes("\u0002") ? text.split("\u0002") as [string, string] : [text.slice(0, at % (text.length + 1)), text.slice(at % (text.length + 1))];
        return { kind: "invalid-utf8", parts: [before, bad, after] };
      }),
    },
    // 7. UTF-16 encoded JSON, with and without a BOM
    {
      weight: 1,
      arbitrary: fc.tuple(base, fc.boolean()).map(([v, bom]) => {
        const s = json(v);
        const bytes: number[] = bom ? [0xff, 0xfe] : [];
        for (let i = 0; i < s.length; i++) bytes.push(s.charCodeAt(i) & 0xff, s.charCodeAt(i) >> 8);
        return { kind: "utf16", parts: [bytes] };
      }),
    },
    // 8. not JSON at all
    { weight: 2, arbitrary: fc.constantFrom(...NON_JSON).map((t) => ({ kind: "non-json", parts: [t] })) },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 64 }).map((t) => ({ kind: "text", parts: [t] })) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => ({ kind: "bytes", parts: [[...b]] })) },
    // 9. empty
    { weight: 1, arbitrary: fc.constant({ kind: "empty", parts: [""] }) },
  ];
  return fc
    .tuple(fc.oneof(...kinds), contentTypeArb, fc.option(fc.integer({ min: 1, max: 4096 }), { freq: 4 }))
    .map(([b, contentType, streamChunk]) => ({ kind: b.kind, bytes: bytesOf(b.parts), contentType: contentType !== null && isHeaderSafe("content-type", contentType) ? contentType : null, streamChunk }));
}

export function describeBody(b: BodySpec | null): string {
  if (!b) return "(no body)";
  const text = new TextDecoder().decode(b.bytes);
  return `${b.kind} ${b.streamChunk ? `streamed/${b.streamChunk} ` : ""}${b.bytes.byteLength}B ct=${JSON.stringify(b.contentType)} ${JSON.stringify(clip(text, 300))}`;
}

/** The body as fetch takes it: bytes, or a stream in chunks (no Content-Length then). */
export function bodyInit(b: BodySpec): BodyInit {
  if (!b.streamChunk || b.bytes.byteLength === 0) return b.bytes;
  const { bytes } = b;
  // At most 256 chunks: many tiny chunks cost the test, not the gateway.
  const streamChunk = Math.max(b.streamChunk, Math.ceil(bytes.byteLength / 256));
  let off = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (off >= bytes.byteLength) return c.close();
      c.enqueue(bytes.slice(off, off + streamChunk));
      off += streamChunk;
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Headers, query strings, path segments

/** Header names a client may send; auth headers are chosen separately by each test. */
const HEADER_NAMES = [
  "accept",
  "accept-encoding",
  "accept-language",
  "content-encoding",
  "expect",
  "connection",
  "keep-alive",
  "upgrade",
  "te",
  "trailer",
  "cookie",
  "origin",
  "referer",
  "user-agent",
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-proto",
  "forwarded",
  "x-real-ip",
  "true-client-ip",
  "cf-connecting-ip",
  "cf-ray",
  "cf-worker",
  "x-subpool-session",
  "x-subpool-account",
  "anthropic-version",
  "anthropic-beta",
  "openai-organization",
  "api-key",
  "session_id",
  "conversation_id",
  "range",
  "if-none-match",
  "if-modified-since",
  "cache-control",
  "pragma",
  "x-http-method-override",
  "x-original-url",
  "x-rewrite-url",
  "__proto__",
  "constructor",
] as const;

const HEADER_VALUES = [
  "",
  " ",
  "gzip",
  "br",
  "100-continue",
  "close, authorization, x-api-key",
  "keep-alive, cookie",
  "websocket",
  "trailers",
  "bytes=0-1",
  "*",
  "DELETE",
  "/admin/users",
  "127.0.0.1, 10.0.0.1",
  "for=1.2.3.4;proto=https",
  "session=abc; admin=1",
  "oauth-2025-04-20",
  "2023-06-01",
  "\t",
  "a".repeat(8000),
] as const;

const headerNameArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...HEADER_NAMES) },
  { weight: 1, arbitrary: fc.stringMatching(/^[a-z][a-z0-9!#$%&'*+.^_`|~-]{0,24}$/) },
);

const headerValueArb = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...HEADER_VALUES) },
  { weight: 2, arbitrary: asciiText(60) },
);

export const headersArb: fc.Arbitrary<[string, string][]> = fc.array(fc.tuple(headerNameArb, headerValueArb), { maxLength: 6 }).map((hs) => hs.filter(([n, v]) => isHeaderSafe(n, v)));

export const queryArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constant("") },
  {
    weight: 2,
    arbitrary: fc.array(fc.tuple(fc.oneof(keyArb, fc.constantFrom("days", "id", "provider", "_method")), fc.string({ maxLength: 10 })), { maxLength: 3 }).map(
      (ps) => `?${ps.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&")}`,
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom("?", "?%", "?a=%zz", "?__proto__[admin]=1", "?days=-1", "?days=1e9") },
);

/** Raw path segments that stay within the segment (never "/", so the route stays the same). */
const RAW_SEGMENTS = ["%", "%zz", "%00", "%2F", "%2f..%2f", "..%2F..%2Fadmin", "%252e", "%E9", "%C0%AF", "%ED%A0%80", "a%20b", "~", "@", "%u0041", ":id", "*"] as const;

/** A path id as an attacker might send it: right shape but unknown, any text, or raw escapes. */
export function pathIdArb(prefix: string, known: string[] = [], knownWeight = 2): fc.Arbitrary<string> {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
  const wellFormed = fc.string({ unit: fc.constantFrom(...alphabet), minLength: 16, maxLength: 16 }).map((s) => `${prefix}_${s}`);
  const arbs: fc.WeightedArbitrary<string>[] = [
    { weight: 3, arbitrary: wellFormed },
    { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 40 }).map(encodeURIComponent) },
    { weight: 1, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 20 }).map(encodeURIComponent) },
    { weight: 1, arbitrary: fc.constantFrom(...RAW_SEGMENTS) },
    { weight: 1, arbitrary: fc.constantFrom("__proto__", "constructor", "toString", `${prefix}_`, `${prefix}_${"A".repeat(17)}`, `${prefix.toUpperCase()}_AAAAAAAAAAAAAAAA`, "x".repeat(5000)) },
    // a known id with something appended or its case changed
    ...(known.length
      ? [
          { weight: knownWeight, arbitrary: fc.constantFrom(...known) },
          { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...known), fc.constantFrom("%00", "%20", "x", ".", "%0A")).map(([k, s]) => k + s) },
          { weight: 1, arbitrary: fc.constantFrom(...known).map((k) => k.toUpperCase()) },
        ]
      : []),
  ];
  return fc.oneof(...arbs);
}
