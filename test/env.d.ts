// `env` from "cloudflare:test" is Cloudflare.Env, generated from wrangler.toml in
// worker-configuration.d.ts (`npm run types`). Secrets are not in wrangler.toml: the ones
// vitest.config.ts binds for the tests are declared here.
declare namespace Cloudflare {
  interface Env {
    MASTER_KEY: string;
    ADMIN_TOKEN: string;
  }
}

// Documents imported as text (Vite's ?raw), for the tests that keep them true.
declare module "*.md?raw" {
  const text: string;
  export default text;
}
