/**
 * Worker vars -> one typed, validated config. Defaults are the real provider hosts (docs/ARCHITECTURE.md, "HTTP API"), so a
 * deploy needs only the two secrets; tests, staging and enterprise hosts override any address.
 * Parsed once per isolate per env object: env is stable for an isolate's lifetime.
 */
import { z } from "zod";

const url = z.string().url().transform((s) => s.replace(/\/+$/, ""));
const int = (def: number, min = 0) => z.coerce.number().int().min(min).default(def);

const ConfigSchema = z.object({
  MASTER_KEY: z
    .string({ error: "MASTER_KEY is not set: `wrangler secret put MASTER_KEY` (or .dev.vars locally)" })
    .min(1, "MASTER_KEY is empty"),
  MASTER_KEY_VERSION: int(1, 1),
  /** Older master keys kept during a rotation: "1:<base64>,2:<base64>". */
  OLD_MASTER_KEYS: z.string().default(""),
  ADMIN_TOKEN: z.string().default(""),
  ANTHROPIC_API_BASE: url.default("https://api.anthropic.com"),
  ANTHROPIC_TOKEN_URL: url.default("https://platform.claude.com/v1/oauth/token"),
  ANTHROPIC_AUTHORIZE_URL: url.default("https://claude.ai/oauth/authorize"),
  ANTHROPIC_REDIRECT_URI: url.default("https://platform.claude.com/oauth/code/callback"),
  OPENAI_AUTHORIZE_URL: url.default("https://auth.openai.com/oauth/authorize"),
  OPENAI_API_BASE: url.default("https://api.openai.com"),
  OPENAI_TOKEN_URL: url.default("https://auth.openai.com/oauth/token"),
  CODEX_API_BASE: url.default("https://chatgpt.com/backend-api/codex"),
  COPILOT_API_BASE: url.default("https://api.githubcopilot.com"),
  GITHUB_API_BASE: url.default("https://api.github.com"),
  GITHUB_BASE: url.default("https://github.com"),
  MAX_BODY_BYTES: int(32 * 1024 * 1024, 1),
  DEFAULT_COOLDOWN_S: int(30, 1),
  AUTH_COOLDOWN_S: int(300, 1),
  /** Time allowed until the upstream's response headers; streaming bodies are not limited. */
  UPSTREAM_TIMEOUT_MS: int(600_000, 1),
  /** Time allowed from an SSE response's headers to its first event (comments and pings do not count). */
  FIRST_EVENT_TIMEOUT_MS: int(60_000, 1),
  /** Once events flow, a stream silent this long is ended for the client and cancelled upstream (long thinking is quiet). */
  STREAM_IDLE_TIMEOUT_MS: int(300_000, 1),
  /** Time allowed for a whole token-endpoint call (headers and body). */
  TOKEN_TIMEOUT_MS: int(15_000, 1),
  /** After a failed renewal, the first wait before the token endpoint is tried again (doubles, 5 min at most). */
  REFRESH_RETRY_MS: int(30_000, 0),
  /** How long an isolate trusts its copy of a user's pool before asking the Durable Object. */
  SNAPSHOT_TTL_MS: int(1000, 0),
  /** How many accounts one member may keep: each one costs upstream calls (checks, quota probes). */
  MAX_ACCOUNTS_PER_USER: int(50, 1),
});

export type Config = z.infer<typeof ConfigSchema>;

/** The Worker's bindings, generated from wrangler.toml by `npm run types` (worker-configuration.d.ts). */
export type Env = CloudflareEnv;

const parsed = new WeakMap<object, Config>();

export function getConfig(env: Env): Config {
  let cfg = parsed.get(env);
  if (!cfg) {
    const r = ConfigSchema.safeParse(env);
    if (!r.success) {
      // Names the var, never its value.
      const issue = r.error.issues[0];
      const name = issue?.path.join(".") ?? "config";
      throw new Error(`subpool is misconfigured: ${name}: ${issue?.message ?? "invalid"}`);
    }
    cfg = r.data;
    parsed.set(env, cfg);
  }
  return cfg;
}
