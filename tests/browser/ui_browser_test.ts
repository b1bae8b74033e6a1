// The web UIs in a real browser: a real server and two real peers as processes, each with its
// UI, driven through Chromium. Also takes the screenshots shown in the README (docs/screenshots).
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { launchChromium } from "./_browser.ts";
import { sha256File, spawnPeer, spawnServer, tempDir, writeRandomFile } from "../e2e/_programs.ts";

const DOCS_SCREENSHOTS = new URL("../../docs/screenshots/", import.meta.url).pathname;
/**
 * Where the screenshots go: docs/screenshots/ (shown in the README) when
 * LANSHARE_UPDATE_SCREENSHOTS=1 (`make screenshots`), else a temporary folder, so that a test
 * run still takes them (and fails if it cannot) without leaving the work tree changed.
 */
const SCREENSHOTS = Deno.env.get("LANSHARE_UPDATE_SCREENSHOTS") === "1"
  ? DOCS_SCREENSHOTS
  : `${Deno.makeTempDirSync({ prefix: "lanshare-screenshots-" })}/`;
const WAIT = { timeout: 30_000 };

Deno.test({
  name: "web UIs: add with the file picker, search and fetch in another peer, dashboard live",
  // Playwright keeps its pipe to the browser and timers of its own between calls.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using dir = await tempDir("lanshare-ui-e2e-");
    await using server = await spawnServer({ ui: true });
    await using browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    // A refused inline script or style (CSP), a hydration error: each shows up here.
    const problems: string[] = [];
    context.on("page", (page) => {
      page.on("pageerror", (err) => problems.push(`${page.url()}: ${err.message}`));
      page.on("console", (message) => {
        if (message.type() === "error") problems.push(`${page.url()}: ${message.text()}`);
      });
    });

    // The dashboard is open before any peer exists: everything after arrives live.
    const dashboard = await context.newPage();
    await dashboard.goto(server.uiUrl);
    assert.equal(new URL(dashboard.url()).search, "", "the token left the address bar");
    await dashboard.getByText("No peer is connected").waitFor(WAIT);

    await using alpha = await spawnPeer({
      repo: join(dir.path, "alpha"),
      hostname: "alpha",
      server,
      ui: true,
    });
    await using beta = await spawnPeer({
      repo: join(dir.path, "beta"),
      hostname: "beta",
      server,
      ui: true,
    });
    await dashboard.locator('tr[data-host="alpha"]').waitFor(WAIT);
    await dashboard.locator('tr[data-host="beta"]').waitFor(WAIT);

    // Peer A adds a file from the desktop with the file picker: streamed in, published.
    const source = join(dir.path, "holiday-video.bin");
    await writeRandomFile(source, 3 * 1024 * 1024 + 12_345, 7);
    const pageA = await context.newPage();
    await pageA.goto(alpha.uiUrl);
    await pageA.getByText("The repository is empty").waitFor(WAIT);
    await pageA.locator('input[type="file"]').setInputFiles(source);
    await pageA.locator('tr[data-path="holiday-video.bin"] .badge').getByText("published")
      .waitFor(WAIT);

    // The dashboard's catalogue shows the entry without a reload.
    await dashboard.locator('.catalogue-table tr[data-fname="holiday-video.bin"]').waitFor(WAIT);

    // Peer B searches as it types, fetches with one click and watches the bar reach 100 %.
    const pageB = await context.newPage();
    await pageB.goto(beta.uiUrl);
    await pageB.getByLabel("search files").pressSequentially("holiday");
    const result = pageB.locator(".result").filter({ hasText: "holiday-video.bin" });
    await result.waitFor(WAIT);
    await result.getByRole("button", { name: /fetch holiday-video\.bin/ }).click();
    const done = pageB.locator('.transfer.done[data-fname="holiday-video.bin"]');
    await done.waitFor(WAIT);
    assert.equal((await done.locator(".percent").textContent())?.trim(), "100 %");
    assert.equal(await done.locator("progress").getAttribute("value"), "100");
    assert.equal(
      await sha256File(join(beta.repo, "holiday-video.bin")),
      await sha256File(source),
      "the fetched file is byte-exact",
    );

    // The dashboard's ping button shows a round trip.
    await dashboard.locator('tr[data-host="beta"]').getByRole("button", { name: "Ping" }).click();
    const answer = dashboard.locator('tr[data-answer-for="beta"] .ping-answer');
    await answer.getByText(/RTT [\d.]+ ms/).waitFor(WAIT);
    assert.match((await answer.textContent()) ?? "", /P2P port \d+ open/);

    await takeScreenshots(pageB, dashboard);
    assert.deepEqual(problems, [], "no script error, no CSP refusal");

    // Killing a peer removes its row.
    await alpha.kill();
    await dashboard.locator('tr[data-host="alpha"]').waitFor({ state: "detached", ...WAIT });
    await dashboard.locator('tr[data-host="beta"]').waitFor(WAIT);
    await context.close();
  },
});

/** Both UIs at 1280×800 and at phone width, into SCREENSHOTS. */
async function takeScreenshots(peer: Page, dashboard: Page): Promise<void> {
  await Deno.mkdir(SCREENSHOTS, { recursive: true });
  for (const [page, name] of [[peer, "peer"], [dashboard, "dashboard"]] as const) {
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.screenshot({ path: `${SCREENSHOTS}${name}-1280.png` });
    await page.setViewportSize({ width: 375, height: 812 });
    await page.screenshot({ path: `${SCREENSHOTS}${name}-375.png` });
    await page.setViewportSize({ width: 1280, height: 800 });
  }
}
