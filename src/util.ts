/**
 * Small generic helpers with no knowledge of providers, pools or HTTP: reading untrusted JSON,
 * durations for people, bounded isolate-level maps. Anything provider-shaped belongs in src/providers/.
 */

/** Parses a small JSON text; undefined when it is absent or not JSON (never throws). */
export function parseJsonBody(text: string | null | undefined): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A non-empty string, else undefined: for reading fields of untrusted JSON. */
export const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);

/** A finite number, else undefined. */
export const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/** An object's own property (never one inherited from Object.prototype, such as `constructor`). */
export function own<T>(record: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** "45s", "3m 20s", "2h 5m", "3d 4h". */
export function humanDuration(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h}h ${m % 60}m` : `${Math.floor(h / 24)}d ${h % 24}h`;
}

/**
 * Characters no account label may hold: C0 and C1 controls (ESC, BEL, a newline, DEL …), which a
 * terminal acts on when the CLI prints a label, the line and paragraph separators, and the
 * bidirectional controls (U+061C, U+200E/F, U+202A–E, U+2066–9), which reorder the text shown around
 * them, and invisible format characters (soft hyphen, zero-width spaces and joiners, word joiner,
 * BOM, tag characters), with which two labels that look the same would differ. One rule for every label (docs/ARCHITECTURE.md, "Labels"): a label a person sends with one
 * is refused (labelProblem), one that comes from elsewhere (a provider's answer, an older release's
 * storage) is cleaned (cleanLabel).
 */
const LABEL_UNSAFE = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u{e0000}-\u{e007f}]/gu;

/** Labels are at most this many characters. */
export const LABEL_MAX = 100;

/** Why a label typed by a person cannot be used, or null when it can. */
export function labelProblem(label: string): string | null {
  if (new RegExp(LABEL_UNSAFE.source, "u").test(label)) return "must not contain control characters (such as ESC, BEL or a line break), bidirectional text controls or invisible characters (zero-width space, soft hyphen)";
  if (label.trim() === "") return "must not be empty";
  if (label.trim().length > LABEL_MAX) return `at most ${LABEL_MAX} characters`;
  return null;
}

/** A label from elsewhere made safe: unsafe characters dropped, trimmed, at most LABEL_MAX characters. */
export const cleanLabel = (label: string): string => label.replace(LABEL_UNSAFE, "").trim().slice(0, LABEL_MAX);

/** Bound on every isolate-level map: a team gateway has few users; beyond this is an attack or a leak. */
export const MAX_ISOLATE_ENTRIES = 10_000;

/** Sets k in an isolate-level map, first evicting the oldest entry when the map is full. */
export function bounded<K, V>(m: Map<K, V>, k: K, v: V, cap = MAX_ISOLATE_ENTRIES): void {
  if (m.size >= cap && !m.has(k)) m.delete(m.keys().next().value as K);
  m.set(k, v);
}

/**
 * Whether a string can be sent as an HTTP header value the way credentials are: printable ASCII
 * without spaces (0x21-0x7E). A CR/LF, NUL or non-ASCII character would make the runtime refuse
 * the header (and print the value in its warning).
 */
export const isPrintableAscii = (s: string): boolean => /^[\x21-\x7e]+$/.test(s);

/**
 * Reads at most `limit` bytes of a stream, within a deadline for the whole read (`within` ms, or a
 * promise that resolves "timeout": the caller's own timer). Returns what it
 * read, whether more follows (then `reader` holds the rest, unread), or "timeout". A read error
 * (a reset, a cut) is thrown to the caller.
 */
export async function readHead(
  body: ReadableStream<Uint8Array>,
  limit: number,
  within: number | Promise<"timeout">,
): Promise<{ chunks: Uint8Array[]; more: boolean; reader: ReadableStreamDefaultReader<Uint8Array> } | "timeout"> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = typeof within === "number" ? new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), within))) : within;
  try {
    while (size < limit) {
      const r = await Promise.race([reader.read(), deadline]);
      if (r === "timeout") {
        void reader.cancel().catch(() => {});
        return "timeout";
      }
      if (r.done) return { chunks, more: false, reader };
      chunks.push(r.value);
      size += r.value.byteLength;
    }
    return { chunks, more: true, reader };
  } catch (e) {
    void reader.cancel().catch(() => {});
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/** The chunks of a stream as one byte array. */
export function concat(chunks: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}
