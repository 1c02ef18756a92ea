/**
 * Field schemas shared by the credential-file readers (each provider's own tools' files and
 * opencode's multi-provider auth.json). Refusal reasons name the field, never quote a value.
 */
import { z } from "zod";

export const token = z.string().trim().min(1).max(16384);
export const epochMs = z.number().int().nonnegative();

export const why = (e: z.ZodError): string => {
  const i = e.issues[0]!;
  return `${i.path.length ? `${i.path.join(".")}: ` : ""}${i.message}`;
};
