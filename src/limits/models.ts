/**
 * Which model a request asks for, and whether a member's allow-list (globs) admits it.
 *
 * Every provider's API here names the model in the body's top-level `model` field (Anthropic
 * Messages, OpenAI Chat Completions and Responses, Copilot). The field is read by a scan of the
 * JSON's top level, not a regex over the text: a `"model"` inside a message, a tool result or
 * `metadata` must not decide, and a body naming `model` twice is refused (JSON parsers keep the
 * last one, and a member must not slip a second name past the check). The scan is linear, without
 * building the document, and runs only for members who have a model allow-list.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJ = 0x7b;
const CLOSE_OBJ = 0x7d;
const OPEN_ARR = 0x5b;
const CLOSE_ARR = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
const MODEL_KEY = "model";

/** The top-level `model` values of a JSON object body ([] if none, or if the body is not an object). */
export function topLevelModels(bytes: Uint8Array): string[] {
  const found: string[] = [];
  let i = 0;
  const n = bytes.length;
  while (i < n && isSpace(bytes[i]!)) i++;
  if (bytes[i] !== OPEN_OBJ) return found;
  let depth = 0;
  let expectKey = false;
  /** 0: not after a model key; 1: the key was "model", its colon not yet passed; 2: its value is next. */
  let modelValue = 0;
  for (; i < n; i++) {
    const b = bytes[i]!;
    if (b === QUOTE) {
      const start = i;
      i = stringEnd(bytes, i);
      if (i < 0) return found; // cut off inside a string
      if (depth === 1 && expectKey) {
        expectKey = false;
        modelValue = isModelKey(bytes, start, i) ? 1 : 0;
      } else if (depth === 1 && modelValue === 2) {
        found.push(decode(bytes, start, i));
        modelValue = 0;
      }
      continue;
    }
    if (isSpace(b)) continue;
    if (b === COLON) {
      if (depth === 1 && modelValue === 1) modelValue = 2;
      continue;
    }
    if (depth === 1 && modelValue === 2) {
      // A value that is not a string (null, a number, an object): named, but not a model name.
      found.push("");
      modelValue = 0;
    }
    if (b === OPEN_OBJ || b === OPEN_ARR) {
      depth++;
      if (depth === 1) expectKey = true;
    } else if (b === CLOSE_OBJ || b === CLOSE_ARR) {
      depth--;
      if (depth === 0) break;
    } else if (b === COMMA && depth === 1) expectKey = true;
  }
  return found;
}

/**
 * Whether the key between two quotes is `model`, escapes resolved: `"mod\u0065l"` is the same key
 * to every JSON parser, so it must be to this check. Escaped, the name is at most 6 bytes a letter.
 */
function isModelKey(bytes: Uint8Array, open: number, close: number): boolean {
  const raw = close - open - 1;
  if (raw === MODEL_KEY.length) return decode(bytes, open, close) === MODEL_KEY;
  return raw > MODEL_KEY.length && raw <= MODEL_KEY.length * 6 && bytes.subarray(open + 1, close).includes(BACKSLASH) && decode(bytes, open, close) === MODEL_KEY;
}

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/**
 * The index of the closing quote of the string opening at `i`, or -1 when the body ends first. Jumps
 * from quote to quote (indexOf runs natively, about 3x faster over a 300 KB prompt than a byte
 * loop): a quote closes the string unless an odd run of backslashes escapes it.
 */
function stringEnd(bytes: Uint8Array, i: number): number {
  for (let from = i + 1; ; ) {
    const q = bytes.indexOf(QUOTE, from);
    if (q < 0) return -1;
    let escapes = 0;
    for (let k = q - 1; k > i && bytes[k] === BACKSLASH; k--) escapes++;
    if (escapes % 2 === 0) return q;
    from = q + 1;
  }
}

/** The JSON string between two quotes, escapes resolved. */
function decode(bytes: Uint8Array, open: number, close: number): string {
  const raw = new TextDecoder().decode(bytes.subarray(open, close + 1));
  try {
    const v: unknown = JSON.parse(raw);
    return typeof v === "string" ? v : "";
  } catch {
    return "";
  }
}

/** Model names longer than this match no glob (real names are under 100 characters). */
export const MODEL_NAME_MAX = 256;

/**
 * Whether `name` matches `glob` whole (`*` any run of characters, `?` one), case-insensitively.
 * Not a RegExp: `.*` runs backtrack, and a member chooses the name (`claude-*-*-*` against a long
 * run of dashes took seconds). This is the greedy match that remembers only the last star: at most
 * name × glob steps, and both are short (MODEL_NAME_MAX, and a glob of at most 100).
 */
function globMatch(glob: string, name: string): boolean {
  const g = glob.toLowerCase();
  const n = name.toLowerCase();
  let gi = 0;
  let ni = 0;
  let star = -1;
  let from = 0;
  while (ni < n.length) {
    if (gi < g.length && (g[gi] === "?" || g[gi] === n[ni])) {
      gi++;
      ni++;
    } else if (gi < g.length && g[gi] === "*") {
      star = gi++;
      from = ni;
    } else if (star >= 0) {
      gi = star + 1;
      ni = ++from;
    } else return false;
  }
  while (gi < g.length && g[gi] === "*") gi++;
  return gi === g.length;
}

export function modelAllowed(model: string, globs: readonly string[]): boolean {
  return model.length <= MODEL_NAME_MAX && globs.some((g) => globMatch(g, model));
}

/** What a model glob may hold: model names' characters, `*` and `?` (checked when an admin sets it). */
export const MODEL_GLOB = /^[A-Za-z0-9._:/@*?-]{1,100}$/;
