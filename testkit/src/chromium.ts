import { type Browser, chromium } from "playwright-core";

/**
 * Launches Debian's Chromium (/usr/bin/chromium) headless for the browser tests, through
 * playwright-core: no browser is ever downloaded. The flags keep it from talking to Google's
 * services (updates, sync, background requests) while a test runs.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    timeout: 30_000,
  });
}
