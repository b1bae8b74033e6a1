// Chromium for the browser tests: Debian's /usr/bin/chromium driven by playwright-core (the
// Makefile installs the package when missing). Flags: headless, no sandbox (tests run as root),
// nothing that reaches the internet. The tests run with -A (deno task test:browser):
// playwright-core probes paths such as /proc/sys/fs/binfmt_misc/WSLInterop, which Deno lets
// only --allow-all read.
import { type Browser, chromium } from "playwright-core";

/** Where Debian's package puts the browser. */
export const CHROMIUM = "/usr/bin/chromium";

/** Launches a fresh headless Chromium profile; close it with `await using`. */
export async function launchChromium(): Promise<Browser & AsyncDisposable> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return Object.assign(browser, { [Symbol.asyncDispose]: () => browser.close() });
}
