/**
 * The bench scripts' command line: `--name value` options read by name with a default, and
 * comma-separated lists. Ten lines shared by run.mjs, team.mjs, isolate-cpu.mjs and profile.mjs.
 */
export const argv = process.argv.slice(2);

/** The value after `--name`, or `def` when the option is absent or has no value. */
export function opt(name, def) {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : def;
}

/** "a,b,,c" -> ["a", "b", "c"]; empty or missing -> []. */
export const list = (s) => (s || "").split(",").filter(Boolean);
