/**
 * Pieces shared by the interactive logins (RFC 6749 authorization code + RFC 7636 PKCE, and
 * RFC 8628 device flow). Provider specifics stay in each provider's module.
 */
import { b64urlDecode, pkceChallenge, randomToken } from "../vault/envelope";
import type { LoginRefusal } from "./types";

export async function pkcePair(): Promise<{ verifier: string; challenge: string; state: string }> {
  const verifier = randomToken(48);
  return { verifier, challenge: await pkceChallenge(verifier), state: randomToken(24) };
}

export const refused = (status: number, message: string, field?: string, terminal = false): LoginRefusal => ({
  kind: "refused",
  status,
  message,
  ...(field ? { field } : {}),
  terminal,
});

/**
 * What the user pasted: a redirect address (…?code=…&state=…), "code#state" (Anthropic's callback
 * page), or a bare code.
 */
export function parsePastedCode(raw: string | undefined): { code: string; state: string | null; error: string | null } | null {
  const s = (raw ?? "").trim();
  if (!s) return null;
  if (/^https?:\/\//i.test(s)) {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      return null;
    }
    const p = new URLSearchParams(u.search || u.hash.replace(/^#/, ""));
    const code = p.get("code");
    const error = p.get("error");
    if (!code && !error) return null;
    return { code: code ?? "", state: p.get("state"), error: error ? error.replace(/[^\w.-]/g, "").slice(0, 64) : null };
  }
  const [code, state] = s.split("#", 2);
  return { code: code!.trim(), state: state?.trim() || null, error: null };
}

/** A JWT's claims, unverified (the issuer's token endpoint just handed it to us over TLS). */
export function jwtClaims(token: string | undefined): Record<string, unknown> | undefined {
  const part = token?.split(".")[1];
  if (!part) return undefined;
  try {
    const v = JSON.parse(new TextDecoder().decode(b64urlDecode(part))) as unknown;
    return v && typeof v === "object" ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
