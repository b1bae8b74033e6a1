// Swarm benchmark: lanshare against aria2c BitTorrent + opentracker in a private namespace LAN
// with tbf-capped uplinks (the anchors' topology). A: one fetcher, four capped seeders. B: flash
// crowd, one capped seeder and eight capped fetchers. Needs root; always removes what it made.
//
//   deno run -A bench/swarm_bench.ts [--reps 3]
//   env: BENCH_SIZE_MIB (512), BENCH_CAP_A_MBIT (200), BENCH_CAP_B_MBIT (100),
//        BENCH_CASES (A,B), BENCH_TOOLS (lanshare,aria2c), BENCH_REPS (3),
//        tool "plaintext": lanshare with --insecure-plaintext on every program (the TLS
//        comparison of issue 11),
//        BENCH_LANSHARE_VARIANT=DIR: also run tool "variant", the server/ and peer/ of a patched
//        copy of the code in DIR, interleaved with the others (to measure a change before it lands)
import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import { type BenchTable, machineInfo, median, renderTable, summary } from "./_lib.ts";
import {
  ensurePrograms,
  type Lan,
  type NsProcess,
  removeStaleNamespaces,
  run,
  startLan,
  type StopOptions,
} from "./_netns.ts";

export type { BenchTable };

/** Which implementation a run measures. */
export type SwarmTool = "lanshare" | "plaintext" | "variant" | "aria2c";
/** A: many seeders to one fetcher; B: flash crowd. */
export type SwarmCase = "A" | "B";

/** Options of `runSwarmBench`; unset fields come from BENCH_* env vars, then defaults. */
export interface SwarmBenchOptions {
  /** Repetitions of every case and tool, interleaved. */
  reps: number;
  /** Progress lines for humans. */
  out: (line: string) => void;
  /** File size, MiB. @default 512 (env BENCH_SIZE_MIB) */
  sizeMiB?: number;
  /** Uplink cap of every host in case A, Mbit/s. @default 200 (env BENCH_CAP_A_MBIT) */
  capAMbit?: number;
  /** Uplink cap of every host in case B, Mbit/s. @default 100 (env BENCH_CAP_B_MBIT) */
  capBMbit?: number;
  /** @default ["A", "B"] (env BENCH_CASES, comma-separated) */
  cases?: SwarmCase[];
  /**
   * @default ["lanshare", "aria2c"], plus "variant" when a variant is given (env BENCH_TOOLS,
   * comma-separated)
   */
  tools?: SwarmTool[];
  /** A patched copy of the code (with server/ and peer/), run as tool "variant". */
  variantDir?: string;
}

const ROOT_DIR = "/tmp/lanshare-bench";
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
const PREFIX = "lsb-";
const NET = "10.66.0";
const REPO_ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const SEEDERS = ["s1", "s2", "s3", "s4"];
const FETCHERS = ["l1", "l2", "l3", "l4", "l5", "l6", "l7", "l8"];
const TRACKER_PORT = 6969;
/** BitTorrent piece size 2^18 = 256 KiB, as in the anchors. */
const PIECE_EXP = 18;
/** TCP payload per full frame (MTU 1500, timestamps on) over the bytes tbf counts (with L2). */
const WIRE_EFFICIENCY = 1448 / 1514;
/**
 * Seeder: one session per fetcher (8 in B) plus headroom; 2 per peer is more than a fetcher
 * ever opens to one source (one connection each), so nobody waits in the queue.
 */
const SEEDER_FLAGS = ["--max-sessions", "16", "--max-per-peer", "2", "--max-queue", "16"];
/**
 * Fetcher: up to 8 downloads (the seeder + 7 other fetchers) and 7 uploads at once share the
 * k session slots, so k must be at least 15; 32 leaves room.
 */
const FETCHER_FLAGS = [
  "--max-sessions",
  "32",
  "--max-per-peer",
  "2",
  "--max-queue",
  "16",
  "--max-sources",
  "8",
];
const ARIA_COMMON = [
  "--enable-dht=false",
  "--enable-dht6=false",
  "--bt-enable-lpd=false",
  "--enable-peer-exchange=false",
  "--disable-ipv6=true",
  "--listen-port=6881",
  "--summary-interval=0",
  "--console-log-level=notice",
  "--enable-color=false",
  "--auto-save-interval=0",
  "--bt-stop-timeout=120",
];

interface Settings {
  reps: number;
  sizeMiB: number;
  capAMbit: number;
  capBMbit: number;
  cases: SwarmCase[];
  tools: SwarmTool[];
  variantDir: string | undefined;
}

function resolveSettings(options: SwarmBenchOptions): Settings {
  const env = (name: string) => Deno.env.get(name);
  const num = (value: number | undefined, name: string, fallback: number) => {
    const v = value ?? (env(name) === undefined ? fallback : Number(env(name)));
    if (!(v > 0)) throw new RangeError(`Cannot run the swarm bench: ${name} must be > 0, got ${v}`);
    return v;
  };
  const list = <T extends string>(
    value: T[] | undefined,
    name: string,
    all: T[],
    fallback: T[] = all,
  ): T[] => {
    const v = value ?? (env(name)?.split(",").map((s) => s.trim()) as T[] | undefined) ??
      fallback;
    const bad = v.filter((x) => !all.includes(x));
    if (bad.length > 0) {
      throw new RangeError(`Cannot run the swarm bench: ${name} has unknown "${bad.join(",")}"`);
    }
    return v;
  };
  const variantDir = options.variantDir ?? env("BENCH_LANSHARE_VARIANT");
  const tools = list(
    options.tools,
    "BENCH_TOOLS",
    ["lanshare", "plaintext", "variant", "aria2c"],
    variantDir === undefined ? ["lanshare", "aria2c"] : ["lanshare", "variant", "aria2c"],
  );
  if (tools.includes("variant") && variantDir === undefined) {
    throw new RangeError("Cannot run the swarm bench: tool variant needs BENCH_LANSHARE_VARIANT");
  }
  return {
    reps: num(options.reps, "reps", 3),
    sizeMiB: num(options.sizeMiB, "BENCH_SIZE_MIB", 512),
    capAMbit: num(options.capAMbit, "BENCH_CAP_A_MBIT", 200),
    capBMbit: num(options.capBMbit, "BENCH_CAP_B_MBIT", 100),
    cases: list(options.cases, "BENCH_CASES", ["A", "B"]),
    tools,
    variantDir,
  };
}

/** Everything a run needs. */
interface Context {
  lan: Lan;
  settings: Settings;
  out: (line: string) => void;
  deno: string;
  size: number;
  dataName: string;
  dataPath: string;
  dataSha: string;
  torrent: string;
  infoHash: string;
  hook: string;
  logDir: string;
  results: Results;
}

/** One timed run's measurements, collected by metric name. */
class Results {
  readonly values = new Map<string, number[]>();
  readonly failures: string[] = [];
  /** A: per rep, MiB received from each seeder (lanshare) and the seeders' uplink bytes. */
  readonly splitA: {
    tool: string;
    rep: number;
    bySeeder: Record<string, number>;
    seedersTx: number;
  }[] = [];
  /** B: per rep, uplink bytes, and for lanshare bytes from the seeder and from other fetchers. */
  readonly spreadB: {
    tool: string;
    rep: number;
    seederTx: number;
    fetchersTx: number;
    seederBytes?: number;
    peerBytes?: number;
    fromSeeder?: number[];
    halfS?: number[];
    doneS: number[];
  }[] = [];

  add(metric: string, value: number): void {
    const list = this.values.get(metric) ?? [];
    list.push(value);
    this.values.set(metric, list);
  }
}

/**
 * Runs both swarm cases for lanshare and aria2c, `reps` times, interleaved (the tool order
 * alternates per rep).
 *
 * @returns the result tables (markdown-ready)
 */
export async function runSwarmBench(opts: SwarmBenchOptions): Promise<BenchTable[]> {
  const settings = resolveSettings(opts);
  const out = opts.out;
  const loadAtStart = await loadAverage();
  if (Deno.uid() !== 0) throw new Error("Cannot run the swarm bench: needs root (ip netns, tc)");
  const installed = await ensurePrograms({
    ip: "iproute2",
    tc: "iproute2",
    aria2c: "aria2",
    opentracker: "opentracker",
    mktorrent: "mktorrent",
    curl: "curl",
  });
  if (installed.length > 0) out(`installed ${installed.join(", ")}`);
  const stale = await removeStaleNamespaces(PREFIX);
  if (stale.length > 0) out(`removed stale namespaces ${stale.join(", ")}`);

  const size = settings.sizeMiB * 1024 * 1024;
  const dataName = `rand${settings.sizeMiB}m.bin`;
  const dataPath = `${ROOT_DIR}/data/${dataName}`;
  await ensureRandomFile(dataPath, size, out);
  const dataSha = await sha256File(dataPath);
  const torrent = `${ROOT_DIR}/data/rand${settings.sizeMiB}m.p${PIECE_EXP}.torrent`;
  const infoHash = await ensureTorrent(dataPath, torrent);
  const hook = await writeDoneHook();
  const logDir = `${ROOT_DIR}/logs/${new Date().toISOString().replace(/[:.]/g, "-")}`;
  out(`data ${dataPath} sha256 ${dataSha.slice(0, 16)}…; torrent info_hash ${infoHash}`);
  out(`logs in ${logDir}`);

  const hosts = [
    { name: "ix", address: `${NET}.2` },
    { name: "tr", address: `${NET}.3` },
    ...SEEDERS.map((name, i) => ({ name, address: `${NET}.${11 + i}` })),
    ...FETCHERS.map((name, i) => ({ name, address: `${NET}.${21 + i}` })),
  ];
  // Signals: stop what runs, delete the namespaces, exit 130 (the LAN may still be starting).
  let lan: Lan | undefined;
  let starting = true;
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    out("interrupted: stopping processes and deleting namespaces");
    if (!starting) void (lan?.close() ?? Promise.resolve()).finally(() => Deno.exit(130));
  };
  for (const sig of SIGNALS) Deno.addSignalListener(sig, onSignal);
  const results = new Results();
  try {
    lan = await startLan({ prefix: PREFIX, hosts, logDir });
    starting = false;
    if (interrupted) throw new Error("Cannot run the swarm bench: interrupted");
    const ctx: Context = {
      lan,
      settings,
      out,
      deno: Deno.execPath(),
      size,
      dataName,
      dataPath,
      dataSha,
      torrent,
      infoHash,
      hook,
      logDir,
      results,
    };
    if (settings.tools.includes("aria2c")) await startTracker(ctx);
    for (let rep = 1; rep <= settings.reps; rep++) {
      const tools = rep % 2 === 1 ? settings.tools : [...settings.tools].reverse();
      for (const c of settings.cases) {
        for (const tool of tools) {
          const name = `${c} rep ${rep} ${tool}`;
          try {
            ctx.out(`${name}: load average ${await loadAverage()}`);
            if (tool === "aria2c") await (c === "A" ? aria2A : aria2B)(ctx, rep);
            else await (c === "A" ? lanshareA : lanshareB)(ctx, rep, tool);
          } catch (err) {
            const message = err instanceof Error ? err.message : String(err);
            results.failures.push(`${name}: ${message.split("\n")[0]}`);
            out(`${name} FAILED: ${message}`);
          }
        }
      }
    }
  } finally {
    starting = false;
    for (const sig of SIGNALS) Deno.removeSignalListener(sig, onSignal);
    await lan?.close();
    if (interrupted) Deno.exit(130);
  }
  await Deno.writeTextFile(
    `${logDir}/results.json`,
    JSON.stringify({ settings, ...results, values: Object.fromEntries(results.values) }),
  ).catch((err) => out(`warning: cannot save results.json: ${err}`));
  return await buildTables(settings, size, results, loadAtStart);
}

// ---------------------------------------------------------------------------------------------
// Setup: data, torrent, hook, tracker

async function ensureRandomFile(path: string, size: number, out: (l: string) => void) {
  try {
    if ((await Deno.stat(path)).size === size) return;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  out(`writing ${size} random bytes to ${path}`);
  await Deno.mkdir(`${ROOT_DIR}/data`, { recursive: true });
  const tmp = `${path}.tmp`;
  {
    using file = Deno.openSync(tmp, { write: true, create: true, truncate: true });
    const buffer = new Uint8Array(1 << 20);
    for (let done = 0; done < size; done += buffer.length) {
      for (let i = 0; i < buffer.length; i += 65536) {
        crypto.getRandomValues(buffer.subarray(i, i + 65536));
      }
      const chunk = buffer.subarray(0, Math.min(buffer.length, size - done));
      let written = 0;
      while (written < chunk.length) written += file.writeSync(chunk.subarray(written));
    }
  }
  await Deno.rename(tmp, path);
}

async function sha256File(path: string): Promise<string> {
  using file = await Deno.open(path, { read: true });
  const hash = createHash("sha256");
  const buffer = new Uint8Array(4 << 20);
  for (;;) {
    const n = file.readSync(buffer);
    if (n === null || n === 0) break;
    hash.update(buffer.subarray(0, n));
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  return hash.digest("hex");
}

async function ensureTorrent(dataPath: string, torrent: string): Promise<string> {
  const announce = `http://${NET}.3:${TRACKER_PORT}/announce`;
  const show = async () => (await run("aria2c", ["-S", torrent])).stdout;
  let text = "";
  try {
    await Deno.stat(torrent);
    text = await show();
  } catch {
    // missing or unreadable: made below
  }
  if (!text.includes(announce)) {
    await Deno.remove(torrent).catch(() => {});
    await run("mktorrent", ["-p", "-l", `${PIECE_EXP}`, "-a", announce, "-o", torrent, dataPath], {
      timeoutMs: 300_000,
    });
    text = await show();
  }
  const m = /Info Hash:\s*([0-9a-f]{40})/i.exec(text);
  if (!m) throw new Error(`Cannot read the info hash of ${torrent}`);
  return m[1]!.toLowerCase();
}

/** aria2's --on-bt-download-complete hook: stamps the completion time of $LSB_TAG. */
async function writeDoneHook(): Promise<string> {
  const path = `${ROOT_DIR}/aria2_done.sh`;
  await Deno.mkdir(`${ROOT_DIR}/work/done`, { recursive: true });
  await Deno.writeTextFile(
    path,
    '#!/bin/bash\necho "$EPOCHREALTIME" > "$LSB_DONE_DIR/$LSB_TAG.tmp" && ' +
      'mv "$LSB_DONE_DIR/$LSB_TAG.tmp" "$LSB_DONE_DIR/$LSB_TAG"\n',
  );
  await Deno.chmod(path, 0o755);
  return path;
}

/** opentracker in its own namespace; the Debian build only tracks whitelisted info hashes. */
async function startTracker(ctx: Context): Promise<void> {
  const dir = `${ROOT_DIR}/tracker`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.chmod(dir, 0o755);
  await Deno.writeTextFile(`${dir}/whitelist.txt`, `${ctx.infoHash}\n`);
  await Deno.chmod(`${dir}/whitelist.txt`, 0o644);
  const address = ctx.lan.address("tr");
  ctx.lan.spawn("tr", "opentracker", [
    "-i",
    address,
    "-p",
    `${TRACKER_PORT}`,
    "-d",
    dir,
    "-w",
    "whitelist.txt",
    "-u",
    "nobody",
  ], { label: "opentracker", cwd: dir });
  await waitSwarm(ctx, 0, 0, 10_000);
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the runs

/** Processes of one run. */
class RunProcesses {
  readonly #list: { proc: NsProcess; stop: StopOptions }[] = [];

  add(proc: NsProcess, stop: StopOptions): NsProcess {
    this.#list.push({ proc, stop });
    return proc;
  }

  /** Peers first (they say goodbye to the index), then the rest. */
  async stopAll(): Promise<void> {
    const peers = this.#list.filter((p) => p.stop.quitLine !== undefined);
    const others = this.#list.filter((p) => p.stop.quitLine === undefined);
    await Promise.all(peers.map(({ proc, stop }) => proc.stop(stop)));
    await Promise.all(others.map(({ proc, stop }) => proc.stop(stop)));
    this.#list.length = 0;
  }
}

const PEER_STOP: StopOptions = { quitLine: "quit", signal: "SIGTERM", graceMs: 5000 };
/** aria2c: one SIGINT (graceful, sends event=stopped), never two; see anchors RESULTS.md. */
const ARIA_STOP: StopOptions = { signal: "SIGINT", graceMs: 10_000 };

function timeLimitMs(boundS: number): number {
  return Math.max(60_000, boundS * 10_000);
}

async function freshDir(path: string): Promise<string> {
  await Deno.remove(path, { recursive: true }).catch((err) => {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  });
  await Deno.mkdir(path, { recursive: true });
  return path;
}

/** A directory holding a hard link to the data file (kept across runs: hash caches stay warm). */
async function seedDir(ctx: Context, path: string): Promise<string> {
  await Deno.mkdir(path, { recursive: true });
  const link = `${path}/${ctx.dataName}`;
  const [a, b] = await Promise.all([
    Deno.stat(ctx.dataPath),
    Deno.stat(link).catch(() => undefined),
  ]);
  if (b?.ino !== a.ino) {
    await Deno.remove(link).catch(() => {});
    await Deno.link(ctx.dataPath, link);
  }
  return path;
}

async function checkCopy(ctx: Context, path: string, rep: number): Promise<string> {
  const size = (await Deno.stat(path)).size;
  if (size !== ctx.size) throw new Error(`Cannot accept ${path}: ${size} bytes, want ${ctx.size}`);
  if (rep !== 1) return "size ok";
  const sha = await sha256File(path);
  if (sha !== ctx.dataSha) throw new Error(`Cannot accept ${path}: sha256 ${sha} differs`);
  return `sha256 ok (${sha.slice(0, 12)}…)`;
}

async function capHosts(ctx: Context, rateMbit: number, hosts: string[]): Promise<void> {
  await Promise.all(hosts.map((h) => ctx.lan.cap(h, rateMbit)));
}

// ---------------------------------------------------------------------------------------------
// lanshare

/** Where server/ and peer/ of a lanshare flavour live. */
function codeDir(ctx: Context, tool: SwarmTool): string {
  return tool === "variant" ? ctx.settings.variantDir! : REPO_ROOT;
}

/** Flags every program of a lanshare flavour gets: tool "plaintext" turns TLS off. */
function transportFlags(tool: SwarmTool): string[] {
  return tool === "plaintext" ? ["--insecure-plaintext"] : [];
}

async function startIndex(
  ctx: Context,
  procs: RunProcesses,
  label: string,
  code: string,
  extra: string[],
): Promise<string> {
  const address = ctx.lan.address("ix");
  const proc = procs.add(
    ctx.lan.spawn("ix", ctx.deno, [
      "run",
      "-A",
      `${code}/server/main.ts`,
      "--host",
      address,
      "--port",
      "0",
      "--announce-port",
      "0",
      "--db",
      ":memory:",
      "--broadcast",
      ctx.lan.broadcast,
      ...extra,
    ], { label, stdin: true, lines: true, cwd: code }),
    { signal: "SIGTERM", graceMs: 5000 },
  );
  const line = await proc.waitLine((l) => l.includes('"event":"listening"'), 30_000);
  return `${address}:${(JSON.parse(line) as { tcp: number }).tcp}`;
}

async function startPeer(
  ctx: Context,
  procs: RunProcesses,
  peer: {
    host: string;
    repo: string;
    server: string;
    flags: string[];
    label: string;
    code: string;
  },
): Promise<NsProcess> {
  const proc = procs.add(
    ctx.lan.spawn(peer.host, ctx.deno, [
      "run",
      "-A",
      `${peer.code}/peer/main.ts`,
      "--repo",
      peer.repo,
      "--server",
      peer.server,
      "--hostname",
      peer.host,
      "--broadcast",
      ctx.lan.broadcast,
      "--json",
      ...peer.flags,
    ], { label: peer.label, stdin: true, lines: true, cwd: peer.code }),
    PEER_STOP,
  );
  const listening = await proc.waitLine((l) => l.includes('"event":"listening"'), 30_000);
  // Ready once registered with the index: a publish before that stays pending, and a fetch
  // right after it would find no source.
  if ((JSON.parse(listening) as { index: string }).index !== "connected") {
    await proc.waitLine((l) => l.includes('"event":"index"') && l.includes('"connected"'), 30_000);
  }
  return proc;
}

type Answer = Record<string, unknown>;

/** Sends a shell command and waits for its answer; `onEvent` gets the events before it. */
async function command(
  proc: NsProcess,
  line: string,
  timeoutMs: number,
  onEvent?: (event: Answer) => void,
): Promise<Answer> {
  const cmd = line.split(" ")[0]!;
  await proc.send(line);
  const parse = (text: string): Answer | undefined => {
    try {
      const v = JSON.parse(text);
      return typeof v === "object" && v !== null ? v as Answer : undefined;
    } catch {
      return undefined;
    }
  };
  const text = await proc.waitLine((l) => parse(l)?.cmd === cmd, timeoutMs, (l) => {
    const event = parse(l);
    if (event) onEvent?.(event);
  });
  const answer = parse(text)!;
  if (answer.ok !== true) throw new Error(`Cannot "${line}" on ${proc.label}: ${answer.error}`);
  return answer;
}

/** Index server + publishing seeders; returns the server address. */
async function startLanshareSeeders(
  ctx: Context,
  procs: RunProcesses,
  seeders: string[],
  tag: string,
  code: string,
  extra: string[],
): Promise<string> {
  const server = await startIndex(ctx, procs, `${tag}-ix`, code, extra);
  await Promise.all(seeders.map(async (host) => {
    const repo = await seedDir(ctx, `${ROOT_DIR}/work/ls-${host}`);
    const proc = await startPeer(ctx, procs, {
      host,
      repo,
      server,
      flags: [...SEEDER_FLAGS, ...extra],
      label: `${tag}-${host}`,
      code,
    });
    await command(proc, `publish ${ctx.dataName}`, 300_000);
  }));
  return server;
}

function bySourceHosts(ctx: Context, bySource: unknown): Record<string, number> {
  const hosts: Record<string, number> = {};
  for (const [key, bytes] of Object.entries(bySource as Record<string, number>)) {
    const host = ctx.lan.hostOf(key.split(":")[0]!) ?? key;
    hosts[host] = (hosts[host] ?? 0) + bytes;
  }
  return hosts;
}

async function lanshareA(ctx: Context, rep: number, tool: SwarmTool): Promise<void> {
  const { settings, results } = ctx;
  const tag = `A-r${rep}-${tool}`;
  const code = codeDir(ctx, tool);
  const boundS = ctx.size * 8 / (SEEDERS.length * settings.capAMbit * 1e6);
  await capHosts(ctx, settings.capAMbit, [...SEEDERS, "l1"]);
  const procs = new RunProcesses();
  const repo = `${ROOT_DIR}/work/ls-l1`;
  try {
    const server = await startLanshareSeeders(
      ctx,
      procs,
      SEEDERS,
      tag,
      code,
      transportFlags(tool),
    );
    const fetcher = await startPeer(ctx, procs, {
      host: "l1",
      repo: await freshDir(repo),
      server,
      flags: [...FETCHER_FLAGS, ...transportFlags(tool)],
      label: `${tag}-l1`,
      code,
    });
    await run("sync", []);
    const tx0 = await txAll(ctx, SEEDERS);
    const t0 = performance.now();
    const answer = await command(fetcher, `fetch ${ctx.dataName}`, timeLimitMs(boundS));
    const seconds = (performance.now() - t0) / 1000;
    const seedersTx = sum(await txAll(ctx, SEEDERS)) - sum(tx0);
    const check = await checkCopy(ctx, answer.path as string, rep);
    const split = bySourceHosts(ctx, answer.bySource);
    results.add(`A ${tool} fetch`, seconds);
    results.add(`A ${tool} durationMs`, (answer.durationMs as number) / 1000);
    if (typeof answer.firstByteMs === "number") {
      results.add(`A ${tool} firstByteMs`, answer.firstByteMs / 1000);
    }
    results.splitA.push({ tool, rep, bySeeder: split, seedersTx });
    ctx.out(
      `A rep ${rep} ${tool}: ${seconds.toFixed(2)} s (durationMs ${
        ((answer.durationMs as number) / 1000).toFixed(2)
      } s, bound ${boundS.toFixed(2)} s) split ${formatSplit(split)} MiB; ${check}`,
    );
  } finally {
    await procs.stopAll();
    await Deno.remove(repo, { recursive: true }).catch(() => {});
  }
}

function formatSplit(split: Record<string, number>): string {
  return Object.entries(split).sort().map(([h, b]) => `${h} ${(b / 2 ** 20).toFixed(0)}`)
    .join(", ");
}

interface Progress {
  t: number;
  done: number;
}

async function lanshareB(ctx: Context, rep: number, tool: SwarmTool): Promise<void> {
  const { settings, results } = ctx;
  const tag = `B-r${rep}-${tool}`;
  const code = codeDir(ctx, tool);
  const boundS = flashBoundS(ctx.size, settings.capBMbit);
  await capHosts(ctx, settings.capBMbit, ["s1", ...FETCHERS]);
  const procs = new RunProcesses();
  const repos = FETCHERS.map((h) => `${ROOT_DIR}/work/ls-${h}`);
  try {
    const server = await startLanshareSeeders(
      ctx,
      procs,
      ["s1"],
      tag,
      code,
      transportFlags(tool),
    );
    const fetchers = await Promise.all(FETCHERS.map(async (host, i) =>
      startPeer(ctx, procs, {
        host,
        repo: await freshDir(repos[i]!),
        server,
        flags: [...FETCHER_FLAGS, ...transportFlags(tool)],
        label: `${tag}-${host}`,
        code,
      })
    ));
    await run("sync", []);
    const tx0 = await txAll(ctx, ["s1", ...FETCHERS]);
    const progress: Progress[][] = FETCHERS.map(() => []);
    const t0 = performance.now();
    const answers = await Promise.all(fetchers.map(async (proc, i) => {
      const answer = await command(proc, `fetch ${ctx.dataName}`, timeLimitMs(boundS), (e) => {
        if (e.event === "progress") {
          progress[i]!.push({ t: (performance.now() - t0) / 1000, done: e.doneBytes as number });
        }
      });
      return { answer, seconds: (performance.now() - t0) / 1000 };
    }));
    const tx = (await txAll(ctx, ["s1", ...FETCHERS])).map((b, i) => b - tx0[i]!);
    const doneS = answers.map((a) => a.seconds);
    const durations = answers.map((a) => (a.answer.durationMs as number) / 1000);
    const check = await checkCopy(ctx, answers[0]!.answer.path as string, rep);
    for (const a of answers.slice(1)) await checkCopy(ctx, a.answer.path as string, 2);
    const splits = answers.map((a) => bySourceHosts(ctx, a.answer.bySource));
    const fromSeeder = splits.map((s) => s.s1 ?? 0);
    const seederBytes = fromSeeder.reduce((a, b) => a + b, 0);
    const total = splits.reduce((a, s) => a + Object.values(s).reduce((x, y) => x + y, 0), 0);
    const halfS = progress.map((p) => p.find((x) => x.done >= ctx.size / 2)?.t ?? NaN);
    results.add(`B ${tool} all`, Math.max(...doneS));
    results.add(`B ${tool} first`, Math.min(...doneS));
    results.add(`B ${tool} mean`, mean(doneS));
    results.add(`B ${tool} durationMs all`, Math.max(...durations));
    results.spreadB.push({
      tool,
      rep,
      seederTx: tx[0]!,
      fetchersTx: sum(tx.slice(1)),
      seederBytes,
      peerBytes: total - seederBytes,
      fromSeeder,
      doneS,
      halfS,
    });
    await Deno.writeTextFile(
      `${ctx.logDir}/${tag}-progress.json`,
      JSON.stringify({ doneS, durations, splits, progress }),
    );
    ctx.out(
      `B rep ${rep} ${tool}: all done ${Math.max(...doneS).toFixed(2)} s (first ${
        Math.min(...doneS).toFixed(2)
      }, bound ${boundS.toFixed(2)} s); seeder sent ${(seederBytes / ctx.size).toFixed(2)}×S ` +
        `(uplink ${(tx[0]! / ctx.size).toFixed(2)}×S); ` +
        `per fetcher from seeder ${
          fromSeeder.map((b) => (b / 2 ** 20).toFixed(0)).join("/")
        } MiB; ` +
        `done [s] ${doneS.map((s) => s.toFixed(1)).join(" ")}; ${check}`,
    );
  } finally {
    await procs.stopAll();
    for (const repo of repos) await Deno.remove(repo, { recursive: true }).catch(() => {});
  }
}

/** Uplink byte counters of these hosts. */
function txAll(ctx: Context, hosts: string[]): Promise<number[]> {
  return Promise.all(hosts.map((h) => ctx.lan.txBytes(h)));
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

function flashBoundS(size: number, capMbit: number): number {
  const u = capMbit * 1e6;
  const n = FETCHERS.length;
  return Math.max(size * 8 / u, n * size * 8 / (u + n * u));
}

// ---------------------------------------------------------------------------------------------
// aria2c BitTorrent + opentracker

async function scrape(ctx: Context): Promise<{ complete: number; incomplete: number }> {
  const hash = ctx.infoHash.match(/../g)!.map((b) => `%${b}`).join("");
  const url = `http://${ctx.lan.address("tr")}:${TRACKER_PORT}/scrape?info_hash=${hash}`;
  const r = await ctx.lan.exec("tr", "curl", ["-s", "--max-time", "2", url], {
    check: false,
    timeoutMs: 5000,
  });
  if (r.code !== 0) throw new Error(`Cannot scrape the tracker: curl exit ${r.code}`);
  const complete = /8:completei(\d+)e/.exec(r.stdout);
  const incomplete = /10:incompletei(\d+)e/.exec(r.stdout);
  return { complete: Number(complete?.[1] ?? 0), incomplete: Number(incomplete?.[1] ?? 0) };
}

/** Waits until the tracker counts exactly these seeders and leechers. */
async function waitSwarm(ctx: Context, complete: number, incomplete: number, timeoutMs: number) {
  const deadline = performance.now() + timeoutMs;
  let last = "no answer";
  while (performance.now() < deadline) {
    try {
      const s = await scrape(ctx);
      if (s.complete === complete && s.incomplete === incomplete) return;
      last = `complete=${s.complete} incomplete=${s.incomplete}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(
    `Cannot get the swarm to complete=${complete} incomplete=${incomplete}: tracker says ${last}`,
  );
}

function startAriaSeeder(
  ctx: Context,
  procs: RunProcesses,
  host: string,
  tag: string,
  dir: string,
) {
  procs.add(
    ctx.lan.spawn(host, "aria2c", [
      ...ARIA_COMMON,
      "--stop=3600",
      `--dir=${dir}`,
      "--seed-ratio=0.0",
      "--bt-seed-unverified=true",
      "--check-integrity=false",
      "--file-allocation=none",
      ctx.torrent,
    ], { label: `${tag}-${host}` }),
    ARIA_STOP,
  );
}

function startAriaLeecher(
  ctx: Context,
  procs: RunProcesses,
  host: string,
  tag: string,
  dir: string,
  keepSeeding: boolean,
): NsProcess {
  return procs.add(
    ctx.lan.spawn(host, "aria2c", [
      ...ARIA_COMMON,
      "--stop=900",
      `--dir=${dir}`,
      keepSeeding ? "--seed-ratio=0.0" : "--seed-time=0",
      "--file-allocation=falloc",
      `--on-bt-download-complete=${ctx.hook}`,
      ctx.torrent,
    ], {
      label: `${tag}-${host}`,
      env: { LSB_TAG: host, LSB_DONE_DIR: `${ROOT_DIR}/work/done` },
    }),
    ARIA_STOP,
  );
}

/** Waits for the completion stamps of `hosts`; returns epoch seconds per host. */
async function waitDone(
  hosts: string[],
  leechers: NsProcess[],
  timeoutMs: number,
): Promise<number[]> {
  const deadline = performance.now() + timeoutMs;
  const stamps: (number | undefined)[] = hosts.map(() => undefined);
  for (;;) {
    for (const [i, host] of hosts.entries()) {
      if (stamps[i] !== undefined) continue;
      try {
        stamps[i] = Number(await Deno.readTextFile(`${ROOT_DIR}/work/done/${host}`));
      } catch {
        if (leechers[i]!.exited) {
          throw new Error(`Cannot complete on ${host}: aria2c exited; log ${leechers[i]!.logPath}`);
        }
      }
    }
    if (stamps.every((s) => s !== undefined)) return stamps as number[];
    if (performance.now() > deadline) {
      throw new Error(
        `Cannot complete within ${timeoutMs} ms: ${stamps.filter((s) => s).length} done`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function prepareLeechers(hosts: string[]): Promise<string[]> {
  const dirs = [];
  for (const host of hosts) {
    await Deno.remove(`${ROOT_DIR}/work/done/${host}`).catch(() => {});
    dirs.push(await freshDir(`${ROOT_DIR}/work/bt-${host}`));
  }
  return dirs;
}

async function aria2A(ctx: Context, rep: number): Promise<void> {
  const { settings, results } = ctx;
  const tag = `A-r${rep}-aria2c`;
  const boundS = ctx.size * 8 / (SEEDERS.length * settings.capAMbit * 1e6);
  await capHosts(ctx, settings.capAMbit, [...SEEDERS, "l1"]);
  const procs = new RunProcesses();
  const [dir] = await prepareLeechers(["l1"]);
  try {
    for (const host of SEEDERS) {
      startAriaSeeder(ctx, procs, host, tag, await seedDir(ctx, `${ROOT_DIR}/work/bt-${host}`));
    }
    await waitSwarm(ctx, SEEDERS.length, 0, 30_000);
    await run("sync", []);
    const tx0 = await txAll(ctx, SEEDERS);
    const t0 = Date.now() / 1000;
    const p0 = performance.now();
    const leecher = startAriaLeecher(ctx, procs, "l1", tag, dir!, false);
    const [done] = await waitDone(["l1"], [leecher], timeLimitMs(boundS));
    const seedersTx = sum(await txAll(ctx, SEEDERS)) - sum(tx0);
    const complete = done! - t0;
    let exitS = NaN;
    const exited = await Promise.race([
      leecher.status.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 30_000)),
    ]);
    if (exited) exitS = (performance.now() - p0) / 1000;
    const check = await checkCopy(ctx, `${dir}/${ctx.dataName}`, rep);
    results.add("A aria2c complete", complete);
    results.splitA.push({ tool: "aria2c", rep, bySeeder: {}, seedersTx });
    if (exited) results.add("A aria2c exit", exitS);
    ctx.out(
      `A rep ${rep} aria2c: complete ${complete.toFixed(2)} s (exit ${exitS.toFixed(2)} s, ` +
        `bound ${boundS.toFixed(2)} s); ${check}`,
    );
  } finally {
    await procs.stopAll();
    await Deno.remove(dir!, { recursive: true }).catch(() => {});
    await waitSwarm(ctx, 0, 0, 30_000).catch((err) => ctx.out(`warning: ${err.message}`));
  }
}

async function aria2B(ctx: Context, rep: number): Promise<void> {
  const { settings, results } = ctx;
  const tag = `B-r${rep}-aria2c`;
  const boundS = flashBoundS(ctx.size, settings.capBMbit);
  await capHosts(ctx, settings.capBMbit, ["s1", ...FETCHERS]);
  const procs = new RunProcesses();
  const dirs = await prepareLeechers(FETCHERS);
  try {
    startAriaSeeder(ctx, procs, "s1", tag, await seedDir(ctx, `${ROOT_DIR}/work/bt-s1`));
    await waitSwarm(ctx, 1, 0, 30_000);
    await run("sync", []);
    const tx0 = await txAll(ctx, ["s1", ...FETCHERS]);
    const t0 = Date.now() / 1000;
    const leechers = FETCHERS.map((host, i) =>
      startAriaLeecher(ctx, procs, host, tag, dirs[i]!, true)
    );
    const stamps = await waitDone(FETCHERS, leechers, timeLimitMs(boundS));
    const tx = (await txAll(ctx, ["s1", ...FETCHERS])).map((b, i) => b - tx0[i]!);
    const doneS = stamps.map((s) => s - t0);
    const check = await checkCopy(ctx, `${dirs[0]}/${ctx.dataName}`, rep);
    for (const dir of dirs.slice(1)) await checkCopy(ctx, `${dir}/${ctx.dataName}`, 2);
    results.add("B aria2c all", Math.max(...doneS));
    results.add("B aria2c first", Math.min(...doneS));
    results.add("B aria2c mean", mean(doneS));
    results.spreadB.push({
      tool: "aria2c",
      rep,
      seederTx: tx[0]!,
      fetchersTx: sum(tx.slice(1)),
      doneS,
    });
    ctx.out(
      `B rep ${rep} aria2c: all done ${Math.max(...doneS).toFixed(2)} s (first ${
        Math.min(...doneS).toFixed(2)
      }, bound ${boundS.toFixed(2)} s); seeder uplink ${(tx[0]! / ctx.size).toFixed(2)}×S; ` +
        `done [s] ${doneS.map((s) => s.toFixed(1)).join(" ")}; ` +
        check,
    );
  } finally {
    await procs.stopAll();
    for (const dir of dirs) await Deno.remove(dir, { recursive: true }).catch(() => {});
    await waitSwarm(ctx, 0, 0, 30_000).catch((err) => ctx.out(`warning: ${err.message}`));
  }
}

// ---------------------------------------------------------------------------------------------
// Tables

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

async function loadAverage(): Promise<string> {
  const text = await Deno.readTextFile("/proc/loadavg").catch(() => "?");
  return text.split(" ").slice(0, 3).join(" ");
}

async function machineNotes(settings: Settings, loadAtStart: string): Promise<string[]> {
  const text = async (program: string, args: string[]) =>
    (await run(program, args, { check: false }).catch(() => ({ stdout: "?" }))).stdout.trim();
  const aria = (await text("aria2c", ["--version"])).split("\n")[0] ?? "?";
  const ot = await text("dpkg-query", ["-W", "-f", "${Version}", "opentracker"]);
  const envs = [
    `BENCH_SIZE_MIB=${settings.sizeMiB}`,
    `BENCH_CAP_A_MBIT=${settings.capAMbit}`,
    `BENCH_CAP_B_MBIT=${settings.capBMbit}`,
    `BENCH_CASES=${settings.cases.join(",")}`,
    `BENCH_TOOLS=${settings.tools.join(",")}`,
    ...(settings.variantDir === undefined ? [] : [`BENCH_LANSHARE_VARIANT=${settings.variantDir}`]),
  ].join(" ");
  return [
    `command: \`${envs} deno run -A bench/swarm_bench.ts --reps ${settings.reps}\``,
    ...(await machineInfo()).filter((line) => !line.startsWith("nginx")),
    `${aria}; opentracker ${ot}; mktorrent piece size 2^${PIECE_EXP} B`,
    `load average when the bench started ${loadAtStart}, at its end ${await loadAverage()} ` +
    "(other work shares this 2-core machine)",
    `topology: namespaces ${PREFIX}sw (bridge br0) + one per host on ${NET}.0/24, IPv6 off, ` +
    "uplinks `tbf rate R burst 256kb latency 50ms` on every host's eth0, downlinks uncapped",
  ];
}

const TOOL_LABELS: Record<SwarmTool, string> = {
  lanshare: "lanshare",
  plaintext: "lanshare --insecure-plaintext",
  variant: "lanshare variant",
  aria2c: "aria2c",
};

function verdict(
  r: Results,
  metric: string,
  boundS: number,
  what: string,
): string | undefined {
  const v = r.values.get(metric);
  if (!v) return undefined;
  const ratio = median(v) / boundS;
  const tool = TOOL_LABELS[metric.split(" ")[1] as SwarmTool];
  return `${tool}: median ${ratio.toFixed(2)}× the ${what}; target ≤ 1.10× ` +
    (ratio <= 1.1 ? "met" : "MISSED");
}

async function buildTables(
  settings: Settings,
  size: number,
  r: Results,
  loadAtStart: string,
): Promise<BenchTable[]> {
  const tables: BenchTable[] = [];
  const mib = size / 2 ** 20;
  const header = await machineNotes(settings, loadAtStart);
  const failures = r.failures.map((f) => `FAILED: ${f}`);
  const flavours = settings.tools.filter((t) => t !== "aria2c");
  const variantNote = settings.variantDir === undefined
    ? []
    : [`"lanshare variant" runs server/ and peer/ from ${settings.variantDir}`];
  const row = (label: string, metric: string, boundS: number): string[] => {
    const v = r.values.get(metric);
    return [
      label,
      summary(v ?? [], 2),
      v ? (mib / median(v)).toFixed(1) : "—",
      v ? (median(v) / boundS).toFixed(2) : "—",
    ];
  };
  if (settings.cases.includes("A")) {
    const boundS = size * 8 / (SEEDERS.length * settings.capAMbit * 1e6);
    const wireS = boundS / WIRE_EFFICIENCY;
    tables.push({
      title: `Swarm A: one fetcher, ${SEEDERS.length} seeders × ${settings.capAMbit} Mbit/s, ` +
        `${mib} MiB (n=${settings.reps})`,
      columns: ["method", "time s, median (min–max)", "MiB/s", "× payload bound"],
      rows: [
        ...flavours.flatMap((t) => [
          row(`${TOOL_LABELS[t]}: \`fetch\` sent → answer`, `A ${t} fetch`, boundS),
          row(`${TOOL_LABELS[t]}: durationMs in the answer`, `A ${t} durationMs`, boundS),
          ...(r.values.has(`A ${t} firstByteMs`)
            ? [[
              `${TOOL_LABELS[t]}: firstByteMs (first verified byte on disk)`,
              summary(r.values.get(`A ${t} firstByteMs`)!, 3),
              "",
              "",
            ]]
            : []),
        ]),
        ...(settings.tools.includes("aria2c")
          ? [
            row("aria2c BitTorrent: leecher start → completion hook", "A aria2c complete", boundS),
            row("aria2c BitTorrent: leecher start → exit", "A aria2c exit", boundS),
          ]
          : []),
        ["payload bound S / (4 × cap)", boundS.toFixed(2), (mib / boundS).toFixed(1), "1.00"],
        [
          "wire bound (1448 B TCP payload per 1514 B frame)",
          wireS.toFixed(2),
          (mib / wireS).toFixed(1),
          (wireS / boundS).toFixed(2),
        ],
      ],
      notes: [
        ...header,
        ...variantNote,
        ...flavours.map((t) => verdict(r, `A ${t} fetch`, boundS, "payload bound")).filter(
          (x): x is string => x !== undefined,
        ),
        ...failures,
      ],
    });
    tables.push({
      title: "Swarm A: where the bytes came from (MiB received per source, from lanshare's " +
        "`bySource`; seeders' uplink bytes from the kernel counters)",
      columns: ["tool", "rep", ...SEEDERS, "max/min", "seeders' uplinks, × S"],
      rows: r.splitA.map(({ tool, rep, bySeeder, seedersTx }) => {
        const v = SEEDERS.map((h) => (bySeeder[h] ?? 0) / 2 ** 20);
        const known = Object.keys(bySeeder).length > 0;
        return [
          TOOL_LABELS[tool as SwarmTool],
          `${rep}`,
          ...v.map((x) => known ? x.toFixed(1) : "—"),
          known ? (Math.max(...v) / Math.max(1e-9, Math.min(...v))).toFixed(2) : "—",
          (seedersTx / size).toFixed(3),
        ];
      }),
      notes: [
        "Uplink bytes: the kernel's tx counters of the seeders' eth0 while the fetch ran. " +
        "veth sends GSO super-packets (one set of headers per up to 64 KiB), so they run " +
        "about 1 % above the payload; any piece sent twice or cut off adds to them.",
      ],
    });
  }
  if (settings.cases.includes("B")) {
    const boundS = flashBoundS(size, settings.capBMbit);
    const wireS = boundS / WIRE_EFFICIENCY;
    const line = (label: string, tool: string): string[] => {
      const v = r.values.get(`B ${tool} all`);
      return [
        label,
        summary(v ?? [], 1),
        summary(r.values.get(`B ${tool} first`) ?? [], 1),
        summary(r.values.get(`B ${tool} mean`) ?? [], 1),
        v ? (median(v) / boundS).toFixed(2) : "—",
      ];
    };
    tables.push({
      title: `Swarm B: flash crowd, 1 seeder + ${FETCHERS.length} fetchers, every uplink ` +
        `${settings.capBMbit} Mbit/s, ${mib} MiB (n=${settings.reps})`,
      columns: ["method", "all done s", "first done s", "mean s", "× bound (all done)"],
      rows: [
        ...flavours.flatMap((t) => {
          const d = r.values.get(`B ${t} durationMs all`);
          return [line(`${TOOL_LABELS[t]}: \`fetch\` sent to all → last answer`, t), [
            `${TOOL_LABELS[t]}: largest durationMs`,
            summary(d ?? [], 1),
            "",
            "",
            d ? (median(d) / boundS).toFixed(2) : "—",
          ]];
        }),
        ...(settings.tools.includes("aria2c")
          ? [line("aria2c BitTorrent (leechers keep seeding): start → last hook", "aria2c")]
          : []),
        ["lower bound max(S/u_s, N·S/(u_s+N·u_l))", boundS.toFixed(1), "", "", "1.00"],
        [
          "wire bound (1448 B per 1514 B frame)",
          wireS.toFixed(1),
          "",
          "",
          (wireS / boundS)
            .toFixed(2),
        ],
      ],
      notes: [
        ...(settings.cases.includes("A") ? [] : header),
        ...(settings.cases.includes("A") ? [] : variantNote),
        ...flavours.map((t) => verdict(r, `B ${t} all`, boundS, "lower bound")).filter(
          (x): x is string => x !== undefined,
        ),
        "lanshare flags: seeder " + SEEDER_FLAGS.join(" ") + "; fetchers " +
        FETCHER_FLAGS.join(" "),
        ...(settings.cases.includes("A") ? [] : failures),
      ],
    });
    tables.push({
      title: "Swarm B: piece spreading (uplink bytes from the kernel counters; lanshare's " +
        "`bySource` and progress events)",
      columns: [
        "tool",
        "rep",
        "seeder uplink, × S",
        "fetchers' uplinks, × 7·S",
        "received from seeder, × S",
        "from seeder per fetcher MiB (min–max)",
        "50 % reached s (min–max)",
        "done s (min–max)",
      ],
      rows: r.spreadB.map((b) => {
        const range = (v: number[] | undefined, scale = 1, digits = 1) =>
          v
            ? `${(Math.min(...v) / scale).toFixed(digits)}–${
              (Math.max(...v) / scale).toFixed(digits)
            }`
            : "—";
        return [
          TOOL_LABELS[b.tool as SwarmTool],
          `${b.rep}`,
          (b.seederTx / size).toFixed(3),
          (b.fetchersTx / (FETCHERS.length - 1) / size).toFixed(3),
          b.seederBytes === undefined ? "—" : (b.seederBytes / size).toFixed(3),
          range(b.fromSeeder, 2 ** 20, 0),
          range(b.halfS),
          range(b.doneS),
        ];
      }),
      notes: [
        "The bound here is S/u_s: the seeder must send every byte once, at full rate; every " +
        "byte it sends twice adds to the time. Uplink bytes: the kernel's tx counters of each " +
        "eth0 from the start until the last fetcher is done (GSO super-packets: about 1 % " +
        "above the payload); the fetchers' also carry the ACKs of what they download and the " +
        "GetInfo answers (piece hashes) of their partial-source polling. Ideal: seeder ≈ 1.0× S.",
      ],
    });
  }
  return tables;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { reps: { type: "string" }, help: { type: "boolean" } },
  });
  if (values.help) {
    console.log(
      "usage: deno run -A bench/swarm_bench.ts [--reps N]\n" +
        "env: BENCH_SIZE_MIB BENCH_CAP_A_MBIT BENCH_CAP_B_MBIT BENCH_CASES BENCH_TOOLS BENCH_REPS",
    );
    Deno.exit(0);
  }
  const reps = Number(values.reps ?? Deno.env.get("BENCH_REPS") ?? 3);
  const tables = await runSwarmBench({ reps, out: (line) => console.error(line) });
  console.log(tables.map(renderTable).join("\n\n"));
}
