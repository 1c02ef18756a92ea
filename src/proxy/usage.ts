/**
 * Token usage of an answer, counted without holding it back: a JSON answer is read from a copy
 * (bounded), an SSE stream is read in batches from the paced copy of ./relay.ts, and only events
 * whose text holds a usage object are parsed. The provider module says what its figures mean
 * (Anthropic's message_delta usage is cumulative, not additive).
 *
 * A JSON answer's `usage` is read from its end: Anthropic and OpenAI put it after the content, so
 * finding it there costs the same for a 400-byte and a 40 KB answer, where decoding and parsing the
 * whole answer costs a few µs per KB on every request. When the end does not hold a well-formed
 * `"usage": {…}`, the whole answer is parsed.
 */
import type { Usage } from "../providers/telemetry";
import type { Provider } from "../providers/types";
import { concat, parseJsonBody } from "../util";
import { parseEvent } from "./sse";

/** JSON answers larger than this are not parsed for usage (an LLM answer is far smaller). */
const JSON_USAGE_LIMIT = 4 * 1024 * 1024;

/**
 * Usage of a JSON answer, from a copy of its body (a tee branch). With a declared length within the
 * limit the runtime reads it in one go (a JS read loop costs far more per request); without one,
 * a plain loop reads at most the limit and lets the rest go.
 */
export async function usageOfJson(provider: Provider, copy: ReadableStream<Uint8Array>, declaredLength: string | null): Promise<Usage | null> {
  let text: string;
  if (declaredLength !== null) {
    if (!(Number(declaredLength) <= JSON_USAGE_LIMIT)) {
      await copy.cancel();
      return null;
    }
    text = await new Response(copy).text();
  } else {
    const reader = copy.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      size += r.value.byteLength;
      if (size > JSON_USAGE_LIMIT) {
        await reader.cancel();
        return null;
      }
      chunks.push(r.value);
    }
    text = new TextDecoder().decode(concat(chunks));
  }
  return usageOfText(provider, text);
}

/** How much of a JSON answer's end is looked at first. */
const TAIL_BYTES = 4096;

/** Usage of a whole JSON answer already in memory. */
export function usageOf(provider: Provider, body: ArrayBuffer): Usage | null {
  const bytes = new Uint8Array(body);
  if (bytes.byteLength > TAIL_BYTES) {
    // A cut through a UTF-8 sequence at the tail's start decodes as U+FFFD, outside any "usage".
    const found = lastUsage(provider, new TextDecoder().decode(bytes.subarray(bytes.byteLength - TAIL_BYTES)));
    if (found !== undefined) return found;
  }
  return usageOfText(provider, new TextDecoder().decode(bytes));
}

function usageOfText(provider: Provider, text: string): Usage | null {
  const found = lastUsage(provider, text);
  if (found !== undefined) return found;
  return text.includes(`"${provider.usage.key}"`) ? provider.usage.fromJson(parseJsonBody(text)) : null;
}

/**
 * The top-level `"usage": {…}` of a JSON text when it is the last `"usage"` in it, or undefined
 * when it is not there in a readable form (the caller then parses the whole text). In valid JSON an
 * unescaped `"usage"` followed by a colon is a key (inside a string the quotes would be escaped); it
 * is the answer's own only when what follows its object closes exactly one level, the outermost
 * object's. A listing (`{"data": [{…, "usage": {…}}]}`) or a JSON Lines body fails that and is parsed
 * whole, where the top-level field is read (and there is none).
 */
function lastUsage(provider: Provider, text: string): Usage | null | undefined {
  const at = text.lastIndexOf(`"${provider.usage.key}"`);
  if (at < 0) return undefined;
  let i = skipSpace(text, at + provider.usage.key.length + 2);
  if (text[i] !== ":") return undefined;
  i = skipSpace(text, i + 1);
  if (text[i] !== "{") return undefined;
  const end = closer(text, i + 1);
  if (end < 0 || text[end] !== "}") return undefined;
  // After the usage object: the outermost object's remaining fields, then its closing brace, last.
  const outer = closer(text, end + 1);
  if (outer < 0 || text[outer] !== "}" || skipSpace(text, outer + 1) !== text.length) return undefined;
  const usage = parseJsonBody(text.slice(i, end + 1));
  return usage === undefined ? undefined : provider.usage.fromJson({ [provider.usage.key]: usage });
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && (text[i] === " " || text[i] === "\n" || text[i] === "\r" || text[i] === "\t")) i++;
  return i;
}

/**
 * The index of the first `}` or `]` from `from` that closes a level opened before `from` (strings and
 * their escapes skipped, nested objects and arrays matched), or -1.
 */
function closer(text: string, from: number): number {
  let depth = 0;
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // A string: jump to its closing quote.
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
    } else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) {
      if (depth === 0) return i;
      depth--;
    }
  }
  return -1;
}

/** An SSE event larger than this is not usage: dropped rather than held (memory per stream is bounded). */
const MAX_EVENT_CHARS = 1024 * 1024;

/**
 * Watches SSE bytes go by (in whatever batches the copy delivers); `end()` gives the usage seen (null
 * when the stream stated none). Only complete events whose text holds the provider's usage key are
 * parsed; what is held between batches is one incomplete event, at most MAX_EVENT_CHARS: a stream of
 * `data:` lines that never ends an event is dropped as it grows, not buffered.
 */
export class SseUsage {
  private decoder = new TextDecoder();
  private readonly key: string;
  /** Text after the last complete event. */
  private pending = "";
  /** An event over the limit was dropped: what precedes the next boundary is its tail. */
  private skipping = false;
  /** The last batch ended with a line end (a boundary may span two batches). */
  private newlineLast = false;
  private usage: Usage | null = null;
  /** Finds a usage object (Chat Completions chunks all carry `"usage": null`: those are not parsed). */
  private readonly usageObject: RegExp;
  /** The provider sent an `error` event after the stream began. */
  errored = false;

  constructor(private readonly provider: Provider) {
    this.key = `"${provider.usage.key}"`;
    this.usageObject = new RegExp(`"${provider.usage.key}"\\s*:\\s*\\{`);
  }

  observe(chunk: Uint8Array): void {
    if (this.skipping) {
      // The rest of a dropped event is not decoded: only its end is looked for, in the bytes.
      const at = eventEnd(chunk, this.newlineLast);
      if (at < 0) {
        const last = chunk[chunk.length - 1];
        this.newlineLast = last === 0x0a || last === 0x0d;
        return;
      }
      this.skipping = false;
      this.newlineLast = false;
      chunk = chunk.subarray(at);
    }
    let text = this.decoder.decode(chunk, { stream: true });
    if (text === "") return;
    // SSE allows CR LF and CR line ends (a CR LF split between two batches reads as one extra line
    // end: at worst one event is misread, and usage comes in the last events anyway).
    if (text.includes("\r")) text = text.replace(/\r\n?/g, "\n");
    // Only the new text is searched, plus the one boundary that can span two batches: the work per
    // batch is its own size, never the held event's (a stream of lines that never ends an event
    // would otherwise be searched again with every batch).
    const boundary = text.lastIndexOf("\n\n");
    const joins = this.newlineLast && text[0] === "\n";
    this.newlineLast = text[text.length - 1] === "\n";
    if (boundary < 0 && !joins) {
      this.pending += text;
      if (this.pending.length > MAX_EVENT_CHARS) this.drop();
      return;
    }
    const complete = boundary >= 0 ? this.pending + text.slice(0, boundary) : this.pending;
    const rest = boundary >= 0 ? text.slice(boundary + 2) : text.slice(1);
    if (complete.includes("event: error")) this.errored = true;
    if (complete.includes(this.key)) for (const block of complete.split("\n\n")) if (this.usageObject.test(block)) this.event(block);
    this.pending = rest;
    if (this.pending.length > MAX_EVENT_CHARS) this.drop();
  }

  private drop() {
    this.pending = "";
    this.skipping = true;
    this.decoder = new TextDecoder();
  }

  /** Characters held between batches (at most one incomplete event, bounded). */
  heldChars(): number {
    return this.pending.length;
  }

  end(): Usage | null {
    if (!this.skipping && this.usageObject.test(this.pending)) this.event(this.pending);
    if (this.pending.includes("event: error")) this.errored = true;
    this.pending = "";
    return this.usage;
  }

  private event(block: string) {
    const ev = parseEvent(block);
    if (ev) this.usage = this.provider.usage.fromSse(this.usage, ev.event, parseJsonBody(ev.data));
  }
}

/** Where the first event ends in `bytes` (just after its blank line), or -1; `newlineLast`: the previous batch ended a line. */
function eventEnd(bytes: Uint8Array, newlineLast: boolean): number {
  if (newlineLast && (bytes[0] === 0x0a || bytes[0] === 0x0d)) return bytes[0] === 0x0d && bytes[1] === 0x0a ? 2 : 1;
  // A line end is LF, CR LF or CR: a blank line is two of them in a row.
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (c !== 0x0a && c !== 0x0d) {
      const lf = bytes.indexOf(0x0a, i);
      const cr = bytes.indexOf(0x0d, i);
      if (lf < 0 && cr < 0) return -1;
      i = (lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr)) - 1;
      continue;
    }
    const next = c === 0x0d && bytes[i + 1] === 0x0a ? i + 2 : i + 1;
    if (bytes[next] === 0x0a || bytes[next] === 0x0d) return bytes[next] === 0x0d && bytes[next + 1] === 0x0a ? next + 2 : next + 1;
    i = next - 1;
  }
  return -1;
}
