import { mkdirSync } from "node:fs";
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// Tests run the real Worker and its Durable Object in workerd, with real (local) KV and SQLite
// storage. Upstreams are faked inside the test isolate (test/helpers/upstream.ts).
// wrangler.toml serves dist/public (the CLI bundle, built by `wrangler dev`/`deploy`); the workerd
// tests need the directory, not its files.
mkdirSync("dist/public", { recursive: true });

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: {
          MASTER_KEY: "dGVzdC1tYXN0ZXIta2V5LXRoYXQtaXMtMzItYnl0ZXMtbG9uZyE=",
          ADMIN_TOKEN: "test-admin-token-0123456789",
          ANTHROPIC_API_BASE: "https://anthropic.fake",
          ANTHROPIC_TOKEN_URL: "https://anthropic.fake/v1/oauth/token",
          ANTHROPIC_AUTHORIZE_URL: "https://claude.fake/oauth/authorize",
          OPENAI_AUTHORIZE_URL: "https://auth.openai.fake/oauth/authorize",
          OPENAI_API_BASE: "https://openai.fake",
          OPENAI_TOKEN_URL: "https://auth.openai.fake/oauth/token",
          CODEX_API_BASE: "https://chatgpt.fake/backend-api/codex",
          COPILOT_API_BASE: "https://copilot.fake",
          GITHUB_API_BASE: "https://api.github.fake",
          GITHUB_BASE: "https://github.fake",
          MAX_BODY_BYTES: "1048576",
          // Short, so the timeout test is quick; no other fake takes this long to answer.
          UPSTREAM_TIMEOUT_MS: "1000",
          // Likewise for the first SSE event and a whole token-endpoint call (defaults 60 s, 15 s).
          FIRST_EVENT_TIMEOUT_MS: "800",
          TOKEN_TIMEOUT_MS: "800",
          // A stream silent this long after its first event ends (default 300 s).
          STREAM_IDLE_TIMEOUT_MS: "2000",
          // A failed renewal is retried after this (default 30 s): short, so recovery tests are quick.
          REFRESH_RETRY_MS: "300",
        },
      },
    }),
  ],
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/e2e/**"],
  },
});
