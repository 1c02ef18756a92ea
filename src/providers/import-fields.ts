/**
 * Field schemas for credentials, shared by every way one comes in: POST /api/accounts, the
 * credential-file readers behind POST /api/import (each provider's own tools' files and opencode's
 * multi-provider auth.json) and the pasted code of a login. Refusal reasons name the field and the
 * kind of character at fault, never quote a value.
 *
 * The credential rule (docs/ARCHITECTURE.md, "Faults"): an API key or a refresh/access token is
 * sent as an HTTP header value, so it is printable ASCII without spaces (0x21-0x7E) and at most
 * 8 KiB. Surrounding whitespace (a pasted newline) is trimmed first; anything else is refused.
 */
import { z } from "zod";
import { isPrintableAscii } from "../util";

/** The longest credential accepted, in bytes (ASCII only, so also in characters). */
export const CREDENTIAL_MAX_BYTES = 8 * 1024;

/** What is wrong with the first character outside [lo, 0x7E], in words that quote nothing. */
function badCharacter(s: string, allowSpace: boolean): string | null {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x21 && c <= 0x7e) continue;
    if (c === 0x20) {
      if (allowSpace) continue;
      return "a space";
    }
    if (c === 0x0d || c === 0x0a) return "a line break (CR or LF)";
    if (c === 0x00) return "a NUL character";
    if (c < 0x20 || c === 0x7f) return "a control character";
    return "a non-ASCII character";
  }
  return null;
}

/**
 * Why `s` (already trimmed) cannot be a credential, or null when it can. Never quotes `s`. The
 * character range is util's isPrintableAscii, the same test the proxy applies before sending.
 */
export function credentialProblem(s: string): string | null {
  if (s.length === 0) return "is empty";
  if (s.length > CREDENTIAL_MAX_BYTES) return `is too long: at most ${CREDENTIAL_MAX_BYTES} bytes (8 KiB)`;
  if (isPrintableAscii(s)) return null;
  return `contains ${badCharacter(s, false) ?? "a character outside 0x21-0x7E"}: credentials are printable ASCII without spaces`;
}

/**
 * A credential field: trimmed, then held to the credential rule. `what` names it for people ("the
 * API key"); the caller's error path names the field itself.
 */
export const credential = (what = "credential") =>
  z
    .string({ error: `required: the ${what} as a string` })
    .trim()
    .check((ctx) => {
      const problem = credentialProblem(ctx.value);
      if (problem) ctx.issues.push({ code: "custom", message: `the ${what} ${problem}`, input: ctx.value, continue: false });
    });

/**
 * Something a person pastes that is not a credential but travels to a provider (a login's code or
 * redirect address): printable ASCII (spaces allowed inside), at most 8 KiB, no CR, LF or NUL.
 */
export const pasted = (what: string) =>
  z
    .string({ error: `required: the ${what} as a string` })
    .trim()
    .check((ctx) => {
      const s = ctx.value;
      const problem =
        s.length === 0
          ? "is empty"
          : s.length > CREDENTIAL_MAX_BYTES
            ? `is too long: at most ${CREDENTIAL_MAX_BYTES} bytes (8 KiB)`
            : (() => {
                const bad = badCharacter(s, true);
                return bad ? `contains ${bad}: paste it as one line of printable ASCII` : null;
              })();
      if (problem) ctx.issues.push({ code: "custom", message: `the ${what} ${problem}`, input: s, continue: false });
    });

/** A token in a credential file. */
export const token = credential("token");
export const epochMs = z.number().int().nonnegative();

export const why = (e: z.ZodError): string => {
  const i = e.issues[0]!;
  return `${i.path.length ? `${i.path.join(".")}: ` : ""}${i.message}`;
};
