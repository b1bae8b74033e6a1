// Who can hold a reference to a UI's window, in Chromium: the signed-in page opened by the user
// goes without Cross-Origin-Opener-Policy (it saves a second renderer process); a page that
// opens the UI itself is cut off from it, cross-site (which only reaches the sign-in page: the
// cookie is SameSite=Strict) and same-site (another port of the same host, whose navigation
// carries the cookie and reaches the signed-in page). See docs/SECURITY.md ("Web UIs").
import assert from "node:assert/strict";
import type { BrowserContext, Page } from "playwright-core";
import { launchChromium } from "./_browser.ts";
import { startTestServer } from "../integration/_server.ts";
import { startDashboard } from "../integration/_ui.ts";
import { tempDir } from "../e2e/_programs.ts";

/** A page `opener` opens with window.open(url): what it shows and whether `opener` keeps it. */
async function openFrom(
  context: BrowserContext,
  opener: Page,
  url: string,
): Promise<{ signedIn: boolean; heldByOpener: boolean; coop: string | null }> {
  const popup = context.waitForEvent("page");
  const response = context.waitForEvent("response", (r) => r.url() === url);
  // Run in the page (a string: these tests have no DOM types).
  await opener.evaluate(`globalThis.opened = open(${JSON.stringify(url)}), 0`);
  const page = await popup;
  const coop = await (await response).headerValue("cross-origin-opener-policy");
  await page.waitForLoadState();
  // The data the first view shows only to a signed-in browser (the sign-in page has none).
  const signedIn = await page.locator("[elementtiming=first-data]").count() > 0;
  // COOP's browsing context group switch shows to the opener as a closed window.
  const heldByOpener = await opener.evaluate<boolean>("!globalThis.opened.closed");
  await page.close();
  return { signedIn, heldByOpener, coop };
}

Deno.test({
  name: "web UI: a page that opens the UI holds no reference to it; the user's own tab skips COOP",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using dir = await tempDir("lanshare-ui-opener-");
    await using server = await startTestServer();
    await using ui = await startDashboard(server, dir.path);
    // Another program on the same host: its pages open the UI from another port.
    await using other = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      () => new Response("<p>another program</p>", { headers: { "content-type": "text/html" } }),
    );
    await using browser = await launchChromium();
    const context = await browser.newContext();
    const uiPage = `http://127.0.0.1:${ui.ui.port}/`;

    // The user opens the printed address: signed in (the cookie set), no COOP.
    const own = await context.newPage();
    const first = await own.goto(ui.ui.url);
    assert.equal(first?.status(), 200);
    assert.equal(await first?.headerValue("cross-origin-opener-policy"), "unsafe-none");
    await own.locator("[elementtiming=first-data]").waitFor();

    // Control: a page of the other program opening one of its own (no COOP) keeps its
    // reference, so the checks below can see one.
    const sameSite = await context.newPage();
    await sameSite.goto(`http://127.0.0.1:${other.addr.port}/`);
    const control = await openFrom(context, sameSite, `http://127.0.0.1:${other.addr.port}/x`);
    assert.deepEqual(control, { signedIn: false, heldByOpener: true, coop: null });

    // Cross-site ("localhost" is another site than "127.0.0.1"): no cookie, the sign-in
    // page, and the opener is cut off from it.
    const crossSite = await context.newPage();
    await crossSite.goto(`http://localhost:${other.addr.port}/`);
    assert.deepEqual(await openFrom(context, crossSite, uiPage), {
      signedIn: false,
      heldByOpener: false,
      coop: "same-origin",
    });

    // Same site, another port: the cookie goes along and the signed-in page comes back, so
    // SameSite=Strict alone would leave the opener a reference; COOP cuts it off.
    assert.deepEqual(await openFrom(context, sameSite, uiPage), {
      signedIn: true,
      heldByOpener: false,
      coop: "same-origin",
    });
    await context.close();
  },
});
