/**
 * Editing Codex CLI's config.toml so that it uses the gateway, without a TOML library and without
 * disturbing anything else in the file (comments, order, formatting stay as they were):
 *
 * - `model_provider = "subpool"` must be a top-level key, so it goes ABOVE the first [table] line
 *   (in TOML a key after a table header belongs to that table: appending it would silently put it in
 *   whatever table the file ends with). An existing top-level model_provider is replaced.
 * - the `[model_providers.subpool]` table is replaced where it is, or appended at the end.
 *
 * The scanner knows enough TOML to find table headers: it skips comments, multi-line strings and
 * values that span lines (arrays, inline tables), so a line that starts with "[" inside a value is
 * not taken for a header.
 */

export interface CodexEdit {
  text: string;
  /** What changed, in words, for the user. */
  changes: string[];
  /** Things the user should know (e.g. a top-level `profile` that may override model_provider). */
  warnings: string[];
}

interface Line {
  text: string;
  /** The table this line opens (a header line), normalised: "model_providers.subpool". */
  header?: string;
  /** The key, when the line starts a key/value pair outside any value. */
  key?: string;
  /** True when the line is inside a value that started on an earlier line. */
  continuation?: boolean;
}

const unquote = (s: string): string => {
  const t = s.trim();
  if ((t.startsWith('"') && t.endsWith('"')) || (t.startsWith("'") && t.endsWith("'"))) return t.slice(1, -1);
  return t;
};

/** "a . 'b'" -> "a.b" (enough for comparing names; dots inside quoted keys are rare in config.toml). */
const normaliseName = (s: string): string =>
  s
    .split(".")
    .map((p) => unquote(p))
    .join(".");

/** Scans the value part of a line; returns the bracket depth left open and any open multi-line string. */
function scanValue(s: string, depth: number, open: string | null): { depth: number; open: string | null } {
  let i = 0;
  while (i < s.length) {
    if (open) {
      const end = s.indexOf(open, i);
      if (end < 0) return { depth, open };
      i = end + 3;
      open = null;
      continue;
    }
    const c = s[i]!;
    if (c === "#") break;
    if (s.startsWith('"""', i) || s.startsWith("'''", i)) {
      open = s.slice(i, i + 3);
      i += 3;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < s.length && s[j] !== c) j += c === '"' && s[j] === "\\" ? 2 : 1;
      i = j + 1;
      continue;
    }
    if (c === "[" || c === "{") depth++;
    else if (c === "]" || c === "}") depth = Math.max(0, depth - 1);
    i++;
  }
  return { depth, open };
}

function scan(lines: string[]): Line[] {
  const out: Line[] = [];
  let depth = 0;
  let open: string | null = null;
  for (const text of lines) {
    if (open || depth > 0) {
      ({ depth, open } = scanValue(text, depth, open));
      out.push({ text, continuation: true });
      continue;
    }
    const t = text.trim();
    if (t === "" || t.startsWith("#")) {
      out.push({ text });
      continue;
    }
    const header = /^\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$/.exec(t);
    if (header) {
      out.push({ text, header: normaliseName(header[1]!) });
      continue;
    }
    const eq = /^((?:"[^"]*"|'[^']*'|[^=])+?)\s*=(.*)$/.exec(t);
    if (eq) {
      ({ depth, open } = scanValue(eq[2]!, 0, null));
      out.push({ text, key: normaliseName(eq[1]!) });
      continue;
    }
    out.push({ text });
  }
  return out;
}

const stringValue = (line: string): string | null => {
  const m = /=\s*("([^"\\]|\\.)*"|'[^']*')/.exec(line);
  return m ? unquote(m[1]!) : null;
};

export const PROVIDER_NAME = "subpool";

/** The [model_providers.subpool] table's lines. */
export function providerTable(baseUrl: string, keyVar: string): string[] {
  return [`[model_providers.${PROVIDER_NAME}]`, `name = "${PROVIDER_NAME}"`, `base_url = ${JSON.stringify(`${baseUrl}/openai/v1`)}`, `env_key = "${keyVar}"`, `wire_api = "responses"`];
}

/** Makes `text` (a config.toml, possibly empty) use the gateway at `baseUrl` for every run of codex. */
export function useGatewayInCodexConfig(text: string, baseUrl: string, keyVar: string): CodexEdit {
  const eol = text.includes("\r\n") ? "\r\n" : "\n";
  const raw = text === "" ? [] : text.replace(/\r?\n$/, "").split(/\r?\n/);
  const lines = scan(raw);
  const changes: string[] = [];
  const warnings: string[] = [];
  const firstHeader = lines.findIndex((l) => l.header !== undefined);
  const topEnd = firstHeader < 0 ? lines.length : firstHeader;
  const table = providerTable(baseUrl, keyVar);
  const wanted = `model_provider = "${PROVIDER_NAME}"`;

  // Forms of model_providers.subpool this editor does not rewrite: refuse rather than guess.
  const odd = lines.find((l, i) => l.key !== undefined && i < topEnd && (l.key === `model_providers.${PROVIDER_NAME}` || l.key.startsWith(`model_providers.${PROVIDER_NAME}.`)));
  if (odd) throw new Error(`it defines model_providers.${PROVIDER_NAME} with dotted keys ("${odd.text.trim()}"); change that by hand`);
  let inProviders = false;
  for (const l of lines) {
    if (l.header !== undefined) inProviders = l.header === "model_providers";
    else if (inProviders && l.key !== undefined && (l.key === PROVIDER_NAME || l.key.startsWith(`${PROVIDER_NAME}.`))) {
      throw new Error(`its [model_providers] table defines ${PROVIDER_NAME} as "${l.text.trim()}"; change that by hand`);
    }
  }

  const result = lines.map((l) => l.text);

  // 1. The provider table: replaced in place (its key lines, up to the next header), or appended.
  const at = lines.findIndex((l) => l.header === `model_providers.${PROVIDER_NAME}`);
  if (at >= 0) {
    let end = lines.findIndex((l, i) => i > at && l.header !== undefined);
    if (end < 0) end = lines.length;
    while (end > at + 1 && result[end - 1]!.trim() === "") end--;
    const before = result.slice(at, end).join("\n");
    result.splice(at, end - at, ...table);
    changes.push(before === table.join("\n") ? `[model_providers.${PROVIDER_NAME}] was already there` : `[model_providers.${PROVIDER_NAME}] updated`);
  } else {
    while (result.length > 0 && result[result.length - 1]!.trim() === "") result.pop();
    if (result.length > 0) result.push("");
    result.push(...table);
    changes.push(`[model_providers.${PROVIDER_NAME}] added at the end`);
  }

  // 2. The top-level key (indices before topEnd are unchanged by step 1, which only touches tables).
  const existing = lines.findIndex((l, i) => i < topEnd && l.key === "model_provider");
  if (existing >= 0) {
    const prev = stringValue(lines[existing]!.text);
    if (prev === PROVIDER_NAME) changes.push(`model_provider was already "${PROVIDER_NAME}"`);
    else {
      result[existing] = wanted;
      changes.push(`model_provider = "${PROVIDER_NAME}" (was ${prev === null ? lines[existing]!.text.trim() : `"${prev}"`})`);
    }
  } else {
    // Above the first table, and above the comment lines that introduce that table.
    let pos = topEnd;
    if (firstHeader >= 0) while (pos > 0 && lines[pos - 1]!.text.trim().startsWith("#") && !lines[pos - 1]!.continuation) pos--;
    const insert = [wanted];
    if (firstHeader >= 0 && pos < result.length && result[pos]!.trim() !== "") insert.push("");
    result.splice(pos, 0, ...insert);
    changes.push(`model_provider = "${PROVIDER_NAME}" added as a top-level key${firstHeader >= 0 ? ", above the first table" : ""}`);
  }

  const profile = lines.find((l, i) => i < topEnd && l.key === "profile");
  if (profile) {
    warnings.push(`the file also sets ${profile.text.trim()}: a model_provider in that profile wins over the top-level one`);
  }
  return { text: `${result.join(eol)}${eol}`, changes, warnings };
}
