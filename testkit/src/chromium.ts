/**
 * Headless Chromium for browser tests: Debian's /usr/bin/chromium driven by playwright-core
 * (no browser is ever downloaded), with the flags a shared, sandbox-less test machine needs.
 */
import { type Browser, chromium } from "playwright-core";

/** Where Debian's package installs Chromium. */
export const chromiumPath = "/usr/bin/chromium";

/** Headless, no sandbox (tests may run as root), no GPU, and no calls home of its own. */
export const chromiumArgs: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Starts a headless Chromium; close it with `browser.close()`. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath, args: [...chromiumArgs], timeout: 30_000 });
}
