/**
 * Contract: which view the page shows. allowed() says whether the signed-in user may see a view;
 * currentView() reads it from the hash, keeping the shown one for hashes that name no view.
 */
import { S, VIEWS, type View } from "./state";

export function allowed(v: View): boolean {
  if (!S.me) return false;
  if (v === "admin") return S.me.role === "admin";
  if (S.me.id === null) return false;
  if (v === "settings") return S.settingsAvailable !== false;
  return true;
}


export function currentView(): View {
  const h = location.hash.slice(1) as View;
  if (VIEWS.includes(h) && allowed(h)) return h;
  if (S.shownView && allowed(S.shownView) && !VIEWS.includes(h)) return S.shownView;
  return S.me?.id === null ? "admin" : "accounts";
}
