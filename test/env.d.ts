// Types `env` from "cloudflare:test" as the Worker's Env.
type SubpoolEnv = import("../src/config").Env;
declare namespace Cloudflare {
  interface Env extends SubpoolEnv {}
}
