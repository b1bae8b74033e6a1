// `deno task bench:ui`: what the web UIs cost, each measured against its baseline in the same
// run: a single-source fetch with the peer page open in Chromium vs without; index lookups/s
// with the dashboard open vs without; first load of each UI; asset sizes; and the dashboard's
// API pages over 10,000 sessions and 1,000,000 entries. Loopback only.
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Browser } from "playwright-core";
import { type BenchTable, machineInfo, median, num, renderTable, summary } from "./_lib.ts";
import { launchChromium } from "../tests/browser/_browser.ts";
import { spawnPeer, spawnServer, tempDir, writeRandomFile } from "../tests/e2e/_programs.ts";
import {
  connectRaw,
  fileEntry,
  type RawClient,
  startTestServer,
} from "../tests/integration/_server.ts";
import { PEER_ASSETS, SERVER_ASSETS } from "../shared/http/ui_assets.gen.ts";
import { ServerOps } from "../server/ops.ts";
import { OPENER_POLICY, SECURITY_HEADERS } from "../shared/http/guard.ts";
import { startServerUi } from "../server/ui_server.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    reps: { type: "string", default: "5" },
    "file-mib": { type: "string", default: "512" },
    "lookup-seconds": { type: "string", default: "3" },
    "scale-sessions": { type: "string", default: "10000" },
    "scale-entries": { type: "string", default: "1000000" },
    only: { type: "string" },
  },
});
const reps = Number(values.reps);
const fileMib = Number(values["file-mib"]);
const lookupSeconds = Number(values["lookup-seconds"]);
const scaleSessions = Number(values["scale-sessions"]);
const scaleEntries = Number(values["scale-entries"]);
const log = (line: string) => console.error(line);
/** ms a freshly opened page is left to settle before a phase measures with it open. */
const SETTLE_MS = 2000;

/** CPU time (utime + stime) a process has used, ms, from /proc/PID/stat (10 ms ticks). */
async function processCpuMs(pid: number): Promise<number> {
  const fields = (await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Fetches with and without the peer page open, alternating which goes first. */
async function fetchWithUi(browser: Browser): Promise<BenchTable> {
  await using dir = await tempDir("lanshare-ui-bench-");
  await using server = await spawnServer();
  await using seeder = await spawnPeer({
    repo: join(dir.path, "seeder"),
    hostname: "seeder",
    server,
    direct: true,
  });
  await using fetcher = await spawnPeer({
    repo: join(dir.path, "fetcher"),
    hostname: "fetcher",
    server,
    direct: true,
    ui: true,
  });
  await writeRandomFile(join(seeder.repo, "big.bin"), fileMib * 1024 * 1024, 3);
  const published = await seeder.command("publish big.bin");
  if (!published.ok) throw new Error(`Cannot publish: ${published.error}`);
  const withUi: number[] = [];
  const without: number[] = [];
  let events = 0;
  const cpuWith: number[] = [];
  const cpuWithout: number[] = [];
  const fetchOnce = async (cpu: number[]) => {
    const before = await processCpuMs(fetcher.child.pid);
    const answer = await fetcher.command("fetch big.bin --force", { timeoutMs: 300_000 });
    if (!answer.ok) throw new Error(`Cannot fetch: ${answer.error}`);
    cpu.push(await processCpuMs(fetcher.child.pid) - before);
    return answer.durationMs as number;
  };
  const withStream: number[] = [];
  const cpuStream: number[] = [];
  /** A fetch while this process reads the peer's event stream as a page would, rendering nothing. */
  const fetchWithStream = async () => {
    const base = new URL(fetcher.uiUrl);
    const token = base.searchParams.get("token")!;
    const response = await fetch(new URL("/api/events", base), {
      headers: { authorization: `Bearer ${token}` },
    });
    const reader = response.body!.getReader();
    let bytes = 0;
    const reading = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        bytes += value.length;
      }
    })();
    withStream.push(await fetchOnce(cpuStream));
    await reader.cancel();
    await reading;
    return bytes;
  };
  let streamBytes = 0;
  const cases = ["none", "stream", "page"] as const;
  for (let rep = 0; rep < reps; rep++) {
    // Rotated: each case goes first, second and third in turn.
    const order = cases.map((_, i) => cases[(i + rep) % cases.length]!);
    for (const kind of order) {
      // Every case waits as long before its fetch as the page case does while the page settles:
      // on this VM a pause changes what the fetch's page-cache writes cost (memory handed back
      // to the host in the meantime must be faulted in again), and the cases must differ only
      // in the page.
      if (kind !== "page") await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
      if (kind === "none") {
        without.push(await fetchOnce(cpuWithout));
        continue;
      }
      if (kind === "stream") {
        streamBytes += await fetchWithStream();
        continue;
      }
      const page = await browser.newPage();
      await page.goto(fetcher.uiUrl);
      await page.locator("#transfers-title").waitFor();
      // Let the fresh page finish its start-up work: the fetch is measured against a page
      // that is open, not one still loading.
      await page.waitForLoadState("networkidle");
      await page.waitForTimeout(SETTLE_MS);
      // Count what the page receives: proof it is subscribed while the fetch runs.
      await page.evaluate(() => {
        const source = new EventSource("/api/events");
        (globalThis as unknown as { seen: number }).seen = 0;
        source.addEventListener(
          "transfers",
          () => (globalThis as unknown as { seen: number }).seen++,
        );
      });
      withUi.push(await fetchOnce(cpuWith));
      events += await page.evaluate(() => (globalThis as unknown as { seen: number }).seen);
      await page.close();
    }
    log(
      `fetch rep ${rep + 1}: without ${num(without.at(-1)!)} ms, stream ${
        num(withStream.at(-1)!)
      } ms, page ${num(withUi.at(-1)!)} ms`,
    );
  }
  const rate = (ms: number[]) => ms.map((t) => fileMib / (t / 1000));
  const slowdown = median(withUi) / median(without) - 1;
  const cpuChange = median(cpuWith) / median(cpuWithout) - 1;
  const paired = withUi.map((w, i) => w / without[i]! - 1);
  const streamSlowdown = median(withStream) / median(without) - 1;
  const streamCpu = median(cpuStream) / median(cpuWithout) - 1;
  return {
    title: `Single-source fetch of ${fileMib} MiB on loopback, peer UI open vs not`,
    columns: ["case", "time, ms", "MiB/s", "fetcher CPU, ms"],
    rows: [
      ["no page open", summary(without), summary(rate(without)), summary(cpuWithout)],
      [
        "event stream read (no rendering)",
        summary(withStream),
        summary(rate(withStream)),
        summary(cpuStream),
      ],
      [
        "difference, stream vs none (medians)",
        `${num(streamSlowdown * 100, 1)} % (${streamSlowdown <= 0.05 ? "within 5 %" : "over 5 %"})`,
        "",
        `${num(streamCpu * 100, 1)} % (${streamCpu <= 0.05 ? "within 5 %" : "over 5 %"})`,
      ],
      [
        "peer page open in Chromium, subscribed",
        summary(withUi),
        summary(rate(withUi)),
        summary(cpuWith),
      ],
      [
        "difference, page vs none (medians)",
        `${num(slowdown * 100, 1)} % (${slowdown <= 0.05 ? "within 5 %" : "over 5 %"})`,
        "",
        `${num(cpuChange * 100, 1)} % (${cpuChange <= 0.05 ? "within 5 %" : "over 5 %"})`,
      ],
      ["page vs none, median of same-round pairs", `${num(median(paired) * 100, 1)} %`, "", ""],
    ],
    notes: [
      `${reps} repetitions each, the order of the three cases rotated each round; median (min–max).`,
      `The stream reader received ${streamBytes} bytes of events in all: the peer's side of a subscribed page without a browser's rendering on the same cores.`,
      "Fetcher CPU: utime+stime of the fetching peer's process during the fetch (/proc), what the UI costs the peer itself; the time also includes Chromium competing for the 2 cores. Each fetch with the page open starts 2 s after it opened; the other cases wait 2 s before their fetch too.",
      `The open page received ${events} transfer snapshots in all (at most 5 per second).`,
    ],
  };
}

/** Lookups per second from 16 clients for a few seconds, dashboard open or not. */
async function lookupsWithDashboard(browser: Browser): Promise<BenchTable> {
  // Plaintext: the raw clients below write the protocol's frames without TLS.
  await using server = await spawnServer({ ui: true, args: ["--insecure-plaintext"] });
  const clients: RawClient[] = [];
  try {
    for (let i = 0; i < 16; i++) {
      const client = await connectRaw(server.tcpPort);
      await client.hello(`load-${i}`, 10_000 + i);
      for (let j = 0; j < 10; j++) await client.publish(fileEntry(`file-${i}-${j}.bin`));
      clients.push(client);
    }
    const cpuMs = () => processCpuMs(server.child.pid);
    const phase = async () => {
      let count = 0;
      const cpuBefore = await cpuMs();
      const endAt = performance.now() + lookupSeconds * 1000;
      await Promise.all(clients.map(async (client, i) => {
        let n = 0;
        while (performance.now() < endAt) {
          await client.whoHas(`file-${(i + n) % 16}-${n % 10}.bin`);
          n++;
        }
        count += n;
      }));
      serverCpu.push({ ms: await cpuMs() - cpuBefore, lookups: count });
      return count / lookupSeconds;
    };
    const serverCpu: { ms: number; lookups: number }[] = [];
    const open: number[] = [];
    const closed: number[] = [];
    const cpuOpen: number[] = [];
    const cpuClosed: number[] = [];
    /** Server CPU µs per lookup in the phase just run. */
    const lastCpuPerLookup = () => {
      const last = serverCpu.at(-1)!;
      return last.ms * 1000 / Math.max(1, last.lookups);
    };
    for (let rep = 0; rep < reps; rep++) {
      for (const withPage of rep % 2 === 0 ? [false, true] : [true, false]) {
        if (!withPage) {
          closed.push(await phase());
          cpuClosed.push(lastCpuPerLookup());
          continue;
        }
        const page = await browser.newPage();
        await page.goto(server.uiUrl);
        await page.locator("[data-stat=sessions]").waitFor();
        // Measured with the dashboard open, not while it opens (its first load, the browser's
        // script compilation and first collections, is measured on its own above).
        await page.waitForLoadState("networkidle");
        await page.waitForTimeout(SETTLE_MS);
        open.push(await phase());
        cpuOpen.push(lastCpuPerLookup());
        await page.close();
      }
      log(`lookups rep ${rep + 1}: closed ${num(closed.at(-1)!)}/s, open ${num(open.at(-1)!)}/s`);
    }
    const change = median(open) / median(closed) - 1;
    // Each open phase against the closed phase next to it: drift of the machine cancels out.
    const paired = open.map((o, i) => o / closed[i]! - 1);
    const cpuChange = median(cpuOpen) / median(cpuClosed) - 1;
    // The target bounds what the dashboard costs: fewer lookups or more CPU per lookup. A gain
    // with it open is the noise of two shared cores, not a miss.
    const verdict = (cost: number) =>
      cost > 0.05 ? "costs over 5 %" : cost < -0.05 ? "better with it open: noise" : "within 5 %";
    return {
      title: "Index lookups (who-has) with the dashboard open vs not",
      columns: ["case", "lookups/s", "server CPU per lookup, µs"],
      rows: [
        ["dashboard closed", summary(closed), summary(cpuClosed, 1)],
        ["dashboard open in Chromium (live stats, peers, log)", summary(open), summary(cpuOpen, 1)],
        [
          "difference (medians)",
          `${num(change * 100, 1)} % (${verdict(-change)})`,
          `${num(cpuChange * 100, 1)} % (${verdict(cpuChange)})`,
        ],
        ["difference (median of adjacent pairs)", `${num(median(paired) * 100, 1)} %`, ""],
      ],
      notes: [
        `16 clients, one request in flight each, ${lookupSeconds} s per phase, ${reps} phases each, alternating.`,
        "The server and the load generator are separate processes; Chromium, with the page open, competes with both for the 2 cores: lookups/s measures that competition too, server CPU per lookup (utime+stime from /proc) only what the dashboard costs the server. Each open phase starts 2 s after the page opened (its opening is the first-load table's).",
      ],
    };
  } finally {
    for (const client of clients) await client.close();
  }
}

/** The `elementtiming` identifier of the element that first shows data, in both UIs. */
const FIRST_DATA = "first-data";

/**
 * Run in the page: the renderTime (ms since the start of the navigation) of the first paint of
 * the FIRST_DATA element, as the browser's Element Timing API reports it (buffered, so the
 * paint may be long past). A page's own performance.mark after a requestAnimationFrame reads
 * earlier than the paint itself: the frame is still to be rasterized and shown.
 */
const FIRST_DATA_PAINT = `new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error("no element timing entry in 10 s")), 10000);
  new PerformanceObserver((list, observer) => {
    const entry = list.getEntries().find((e) => e.identifier === "${FIRST_DATA}");
    if (!entry) return;
    observer.disconnect();
    clearTimeout(timer);
    resolve(entry.renderTime || entry.loadTime);
  }).observe({ type: "element", buffered: true });
})`;

/** Time from navigation to the first data on screen, each UI, a fresh browser context each time. */
async function firstLoad(browser: Browser): Promise<BenchTable> {
  await using dir = await tempDir("lanshare-ui-bench-load-");
  await using server = await spawnServer({ ui: true });
  await using peer = await spawnPeer({
    repo: join(dir.path, "p"),
    hostname: "p",
    server,
    ui: true,
  });
  // The browser's own cost of a first visit in a fresh context (a renderer process, a
  // connection): a page of one paragraph, timed the same way; and the same page with the UIs'
  // security headers including Cross-Origin-Opener-Policy (as on the sign-in page and on a UI
  // page another page opened), which makes the browser start another renderer process for the
  // page once its answer is in (a new browsing context group).
  await using bare = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) =>
      new Response(`<!doctype html><p id=bare elementtiming=${FIRST_DATA}>bare</p>`, {
        headers: {
          "content-type": "text/html",
          ...new URL(req.url).pathname === "/headers"
            ? { ...SECURITY_HEADERS, [OPENER_POLICY]: "same-origin" }
            : {},
        },
      }),
  );
  /**
   * One first load in a new context. No Playwright locator: its injected script would compete
   * with the page's first paint; the buffered Element Timing entry is read once loaded.
   */
  const measureOnce = async (url: string) => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(url);
      return await page.evaluate<number>(FIRST_DATA_PAINT);
    } finally {
      await context.close();
    }
  };
  const bareTimes: number[] = [];
  const bareCoopTimes: number[] = [];
  const peerTimes: number[] = [];
  const dashTimes: number[] = [];
  // Interleaved: the four pages see the same state of the machine.
  for (let rep = 0; rep < reps; rep++) {
    bareTimes.push(await measureOnce(`http://127.0.0.1:${bare.addr.port}/`));
    bareCoopTimes.push(await measureOnce(`http://127.0.0.1:${bare.addr.port}/headers`));
    peerTimes.push(await measureOnce(peer.uiUrl));
    dashTimes.push(await measureOnce(server.uiUrl));
  }
  const row = (name: string, times: number[]) => [
    name,
    summary(times, 1),
    summary(times.map((t, i) => t - bareTimes[i]!), 1),
    median(times) < 200 ? "under 200 ms" : "over 200 ms",
  ];
  return {
    title: "First load on loopback (new browser context: no cache, no cookie)",
    columns: ["UI", "ms to first data on screen", "minus the bare page's", "target"],
    rows: [
      row("peer", peerTimes),
      row("server dashboard", dashTimes),
      [
        "bare page (one paragraph, same server kind: the browser's own cost)",
        summary(bareTimes, 1),
        "0",
        "",
      ],
      [
        "bare page with the UIs' security headers and COOP (a second renderer process)",
        summary(bareCoopTimes, 1),
        summary(bareCoopTimes.map((t, i) => t - bareTimes[i]!), 1),
        "",
      ],
    ],
    notes: [
      "Measured with the Element Timing API: the renderTime of the paint that first shows the element marked elementtiming=\"first-data\" (each UI's status line at the top: the peer's index server and round trip, the dashboard's peers and entries; the bare page's paragraph), from the start of the navigation to the URL with the token (the cookie is set on that answer). A fresh browser context each time: no cache, no cookie. The navigation is the browser's own (Sec-Fetch-Site: none), as when the user opens the printed address, so the UI pages come without Cross-Origin-Opener-Policy (docs/SECURITY.md, \"Web UIs\").",
    ],
  };
}

async function gzipBytes(text: string): Promise<number> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return (await new Response(stream).arrayBuffer()).byteLength;
}

async function assetSizes(): Promise<BenchTable> {
  const rows = [];
  for (const assets of [PEER_ASSETS, SERVER_ASSETS]) {
    const raw = assets.js.length + assets.css.length;
    const gz = await gzipBytes(assets.js) + await gzipBytes(assets.css);
    rows.push([
      assets.title,
      `${num(raw / 1024, 1)} KiB`,
      `${num(gz / 1024, 1)} KiB`,
      gz < 150_000 ? "under 150 KB" : "over",
    ]);
  }
  return {
    title: "UI assets (script + style sheet, Preact included)",
    columns: ["UI", "raw", "gzip", "target"],
    rows,
    notes: [
      "Inline in each page (shared/http/ui_assets.gen.ts: the script at the end of the body, the style sheet in the head), the page gzipped when the browser takes it; no other request before the first paint.",
    ],
  };
}

/** The dashboard's API pages over a catalogue of the issue's scale, timed in process. */
async function dashboardAtScale(browser: Browser): Promise<BenchTable> {
  await using dir = await tempDir("lanshare-ui-bench-scale-");
  // The test fixture's server: 127.0.0.1, ports 0, in-memory store, quiet timers; the
  // per-address and per-session caps raised to fit the whole catalogue from one address.
  await using server = await startTestServer({
    maxConnections: scaleSessions + 100,
    maxSessionsPerAddress: scaleSessions + 100,
    maxEntriesPerSession: Math.ceil(scaleEntries / scaleSessions) + 1,
  });
  const started = performance.now();
  const perSession = Math.ceil(scaleEntries / scaleSessions);
  for (let s = 0; s < scaleSessions; s++) {
    const { row } = await server.catalog.register({
      sessionId: crypto.randomUUID(),
      hostname: `host-${s}`,
      address: "127.0.0.1",
      port: 20_000 + (s % 40_000),
    });
    const publishes = [];
    for (let e = 0; e < perSession && s * perSession + e < scaleEntries; e++) {
      publishes.push(server.catalog.publish(row, fileEntry(`f-${s}-${e}.bin`)));
    }
    await Promise.all(publishes);
    if (s % 1000 === 999) log(`scale: ${s + 1} sessions filled`);
  }
  log(
    `scale: filled ${scaleSessions} sessions, ${scaleEntries} entries in ${
      num((performance.now() - started) / 1000, 1)
    } s`,
  );
  const ops = new ServerOps(server);
  await using ui = await startServerUi(ops, {
    hostname: "127.0.0.1",
    port: 0,
    nextPorts: 0,
    tokenPath: join(dir.path, "token"),
  });
  const base = `http://127.0.0.1:${ui.port}`;
  const time = async (path: string) => {
    const times: number[] = [];
    let bytes = 0;
    for (let rep = 0; rep < reps; rep++) {
      const t0 = performance.now();
      const r = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${ui.token}` } });
      bytes = (await r.arrayBuffer()).byteLength;
      if (!r.ok) throw new Error(`Cannot GET ${path}: ${r.status}`);
      times.push(performance.now() - t0);
    }
    return [path, summary(times, 1), `${num(bytes / 1024, 1)} KiB`];
  };
  const rows = [
    await time("/api/stats"),
    await time("/api/peers?offset=0&limit=25"),
    await time("/api/peers?offset=9975&limit=25"),
    await time("/api/peers?q=host-99&limit=25"),
    await time("/api/files?offset=0&limit=25"),
    await time("/api/files?offset=500000&limit=25"),
    await time("/api/files?q=f-4242-*&limit=25"),
  ];
  const context = await browser.newContext();
  const page = await context.newPage();
  const t0 = performance.now();
  await page.goto(ui.url);
  await page.locator(".peers-table tbody tr").first().waitFor();
  await page.locator(".catalogue-table tbody tr").first().waitFor();
  const loadMs = performance.now() - t0;
  await context.close();
  rows.push(["dashboard first load, both tables filled", num(loadMs, 1), ""]);
  return {
    title:
      `Dashboard over ${scaleSessions} sessions and ${scaleEntries} entries (in process, memory store)`,
    columns: ["request", "ms", "answer size"],
    rows,
    notes: [
      "Only pages cross the wire: 25 rows per table; the stats tiles are counts.",
      `${reps} requests each; median (min–max).`,
    ],
  };
}

const startedAt = new Date().toISOString();
const machine = await machineInfo();
await using browser = await launchChromium();
const tables: BenchTable[] = [];
const only = values.only?.split(",") ?? ["assets", "load", "fetch", "lookups", "scale"];
if (only.includes("assets")) tables.push(await assetSizes());
if (only.includes("load")) tables.push(await firstLoad(browser));
if (only.includes("fetch")) tables.push(await fetchWithUi(browser));
if (only.includes("lookups")) tables.push(await lookupsWithDashboard(browser));
if (only.includes("scale")) tables.push(await dashboardAtScale(browser));
const report = [
  `## UI benchmarks, ${startedAt}`,
  "",
  `Command: \`deno task bench:ui${Deno.args.length > 0 ? ` ${Deno.args.join(" ")}` : ""}\``,
  "",
  ...machine.map((l) => `- ${l}`),
  "",
  ...tables.map(renderTable).flatMap((t) => [t, ""]),
].join("\n");
console.log(report);
await Deno.mkdir(new URL("./out/", import.meta.url), { recursive: true });
await Deno.writeTextFile(
  new URL(`./out/ui_${startedAt.replaceAll(":", "-")}.md`, import.meta.url),
  report,
);
