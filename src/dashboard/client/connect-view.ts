/**
 * Contract: the Connect your tools view. Fills the setup texts with the placeholder, or with the
 * person's key only while "Show with my key" is on.
 */
import { $ } from "./dom";
import { S } from "./state";

// ---- connect your tools ----------------------------------------------------------------------------

/** The key goes into the texts only while "Show with my key" is on; the placeholder otherwise. */
export function applyKeyToConnect(withKey: boolean) {
  const placeholder = document.body.dataset.keyPlaceholder ?? "";
  const shell = (document.getElementById("connect-shell") as HTMLSelectElement | null)?.value ?? "sh";
  // A key is one word of printable ASCII; one with quotes or backslashes would need escaping per format.
  const usable = withKey && S.key !== null && placeholder !== "" && /^[A-Za-z0-9_.~+/=-]+$/.test(S.key);
  for (const code of document.querySelectorAll<HTMLElement>("code[data-texts]")) {
    let texts: Record<string, { plain: string; withKey: string }>;
    try {
      texts = JSON.parse(code.dataset.texts!);
    } catch {
      continue;
    }
    const t = texts[shell] ?? texts.sh;
    if (!t) continue;
    code.textContent = usable ? t.withKey.split(placeholder).join(S.key!) : t.plain;
  }
  $("connect-key-note").textContent = withKey && !usable ? "Your key cannot be filled in here: copy the text and put the key in by hand." : "";
}
