/**
 * Opens an address in the user's browser where that makes sense; the caller always prints the
 * address too, so a failure here costs nothing. Not opened: SUBPOOL_NO_BROWSER=1, CI, an SSH
 * session, or a Linux machine without a display.
 */
import { release } from "node:os";

export function browserUsable(): boolean {
  const e = process.env;
  if (e.SUBPOOL_NO_BROWSER === "1" || e.SUBPOOL_NO_BROWSER === "true") return false;
  if (e.CI) return false;
  if (e.SSH_CONNECTION || e.SSH_TTY) return false;
  if (process.platform === "linux") {
    const wsl = /microsoft/i.test(release());
    if (!wsl && !e.DISPLAY && !e.WAYLAND_DISPLAY) return false;
  }
  return true;
}

export async function openBrowser(url: string): Promise<boolean> {
  if (!browserUsable()) return false;
  try {
    const { default: open } = await import("open");
    const child = await open(url);
    child.on("error", () => undefined);
    child.unref();
    return true;
  } catch {
    return false;
  }
}
