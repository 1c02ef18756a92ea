// The provider catalogue (src/providers/catalogue.ts, plain data the CLI compiles in) says what the
// registry (src/providers/index.ts) does: the same providers in the same order, with the same names,
// prefixes, account types, sign-in kinds, opencode keys and tool files. Until the provider modules
// read their facts from the catalogue, this is what keeps the two from drifting apart.
import { describe, expect, it } from "vitest";
import { findTool } from "../src/connect";
import { CATALOGUE_IDS, PROVIDER_CATALOGUE, providerFacts, type ProviderFacts } from "../src/providers/catalogue";
import { PROVIDERS } from "../src/providers/index";

const catalogue: readonly ProviderFacts[] = PROVIDER_CATALOGUE;

describe("the provider catalogue", () => {
  it("lists the registry's providers, in its order", () => {
    expect(CATALOGUE_IDS).toEqual(PROVIDERS.map((p) => p.id));
  });

  for (const p of PROVIDERS) {
    it(`${p.id}: name, prefix, account types, sign-in, opencode key and tool files as its module says`, () => {
      const c = catalogue.find((x) => x.id === p.id)!;
      expect(c).toBeDefined();
      expect(c.name).toBe(p.name);
      expect(c.prefix).toBe(p.prefix);
      expect([...c.types]).toEqual([...p.types]);
      expect(c.opencodeKey).toBe(p.imports.opencodeKey);
      // A device flow only polls; the code and redirect flows finish with what the user pastes.
      expect(p.login.needsCode).toBe(c.login !== "device");
      expect(c.toolFiles.map((f) => f.format)).toEqual((p.imports.files ?? []).map((f) => f.name));
      for (const f of c.toolFiles) {
        const format = p.imports.files!.find((x) => x.name === f.format)!;
        for (const key of Object.keys(f.entries)) expect(format.detect({ [key]: null }), `${f.format} is recognised by ${key}`).toBe(true);
      }
      expect(findTool(c.sdkTool), `${c.sdkTool} is a tool of src/connect.ts`).toBeDefined();
    });
  }

  it("every name people type names one provider", () => {
    const names = catalogue.flatMap((p) => [p.id, ...p.aliases]);
    expect(new Set(names).size).toBe(names.length);
    for (const p of catalogue) {
      for (const n of [p.id, ...p.aliases]) expect(providerFacts(` ${n.toUpperCase()} `)?.id).toBe(p.id);
    }
    expect(providerFacts("constructor")).toBeUndefined();
    expect(providerFacts("mistral")).toBeUndefined();
  });
});
