/**
 * Every secret a test creates is registered here; `assertNoSecrets` fails when one appears in a
 * response (headers or body) or in a captured log line (docs/ARCHITECTURE.md, invariant 6).
 */
import { expect, vi } from "vitest";

class SecretRegistry {
  private readonly all = new Set<string>();
  add<T extends string>(s: T): T {
    if (s.length >= 8) this.all.add(s);
    return s;
  }
  find(text: string): string | undefined {
    for (const s of this.all) if (text.includes(s)) return s;
    return undefined;
  }
  get size() {
    return this.all.size;
  }
}

export const secrets = new SecretRegistry();

export function assertNoSecrets(where: string, text: string) {
  const hit = secrets.find(text);
  expect(hit === undefined ? null : `${where} contains a secret: ${hit.slice(0, 12)}…`).toBeNull();
}

/** Captures console output of the test isolate (Worker and Durable Object log there too). */
export const logLines: string[] = [];
for (const level of ["log", "info", "warn", "error", "debug"] as const) {
  const orig = console[level].bind(console);
  vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
    logLines.push(args.map((a) => (a instanceof Error ? `${a.name}: ${a.message}\n${a.stack ?? ""}` : typeof a === "string" ? a : JSON.stringify(a))).join(" "));
    orig(...args);
  });
}
