// Loopback benchmark of lanshare against nginx (sendfile) + curl, in the same run, interleaved:
// 1. one large file from one source to disk, 2. latency of small fetches, 3. the seeder's memory
// while it serves concurrent downloads. Spawns the real server/main.ts and peer/main.ts; only
// 127.0.0.1 is used; every wait is bounded; it stops what it started and removes its run folder.
import { parseArgs } from "node:util";
import { ensurePrograms } from "./_netns.ts";
import {
  type BenchTable,
  machineInfo,
  median,
  mibPerSecond,
  num,
  quantile,
  ratio,
  renderTable,
  summary,
} from "./_lib.ts";
import { tlsVersusPlaintext } from "./tls_bench.ts";
import {
  LineProcess,
  readCpuSeconds,
  readRssKib,
  RssSampler,
  runCommand,
  type RunningNginx,
  startNginx,
  stopAllProcesses,
} from "./_procs.ts";

/** Options of runLoopbackBench(). */
export interface LoopbackBenchOptions {
  /** Repetitions of each measurement (interleaved: lanshare and its reference alternate). */
  reps: number;
  /** Receives progress lines while the benchmark runs. */
  out: (line: string) => void;
  /** Size of the large file, MiB. @default env BENCH_SIZE_MIB, else 1024 */
  sizeMib?: number;
  /**
   * Which cases to run (1 single source, 2 small-file latency, 3 memory, 4 single source over
   * TLS and in plaintext). @default env BENCH_CASES, else all
   */
  cases?: number[];
  /** Small files in case 2. @default env BENCH_SMALL_FILES, else 200 */
  smallFiles?: number;
  /** Concurrent downloads in case 3. @default env BENCH_CONCURRENT, else 16 */
  concurrent?: number;
}

/** Data (reused between runs) and per-run folders live here (other benches use its parent). */
export const BENCH_DIR = "/tmp/lanshare-bench/loopback";
export const SEED_BIG = `${BENCH_DIR}/seed-big`;
const SEED_SMALL = `${BENCH_DIR}/seed-small`;
const SMALL_FILE_BYTES = 4096;
const ROOT = new URL("..", import.meta.url).pathname;
const MIB = 1024 * 1024;

/** Per-transfer bound: a 1 GiB loopback transfer takes seconds; this only catches hangs. */
export const TRANSFER_TIMEOUT_MS = 600_000;
const START_TIMEOUT_MS = 60_000;
export const COMMAND_TIMEOUT_MS = 30_000;

/** What every case gets. */
export interface Ctx {
  reps: number;
  out: (line: string) => void;
  runDir: string;
  sizeBytes: number;
  deno: string;
}

/**
 * Runs the loopback cases and returns their tables (the first describes the machine).
 *
 * @example
 * ```ts ignore
 * const tables = await runLoopbackBench({ reps: 1, out: console.error, sizeMib: 64 });
 * console.log(tables.map(renderTable).join("\n\n"));
 * ```
 */
export async function runLoopbackBench(opts: LoopbackBenchOptions): Promise<BenchTable[]> {
  const sizeMib = opts.sizeMib ?? envNumber("BENCH_SIZE_MIB", 1024);
  const cases = opts.cases ??
    (Deno.env.get("BENCH_CASES")?.split(",").map(Number) ?? [1, 2, 3, 4]);
  const smallFiles = opts.smallFiles ?? envNumber("BENCH_SMALL_FILES", 200);
  const concurrent = opts.concurrent ?? envNumber("BENCH_CONCURRENT", 16);
  if (!(opts.reps >= 1 && sizeMib >= 1 && smallFiles >= 1 && concurrent >= 1)) {
    throw new RangeError("Cannot run the loopback bench: reps and sizes must be at least 1");
  }
  // The reference programs, installed on a fresh machine as the swarm bench installs its own.
  const installed = await ensurePrograms({ nginx: "nginx", curl: "curl" });
  if (installed.length > 0) opts.out(`installed ${installed.join(", ")}`);
  await Deno.mkdir(BENCH_DIR, { recursive: true, mode: 0o755 });
  const runDir = await Deno.makeTempDir({ dir: BENCH_DIR, prefix: "run-" });
  runDirs.add(runDir);
  const ctx: Ctx = {
    reps: opts.reps,
    out: opts.out,
    runDir,
    sizeBytes: sizeMib * MIB,
    deno: Deno.execPath(),
  };
  const tables: BenchTable[] = [{
    title: "Loopback benchmark: machine",
    columns: ["fact", "value"],
    rows: (await machineInfo()).map((line) => {
      const at = line.indexOf(": ");
      return [line.slice(0, at), line.slice(at + 2)];
    }),
    notes: [
      `reps = ${opts.reps}, large file = ${sizeMib} MiB of random bytes, ${smallFiles} small files of ${SMALL_FILE_BYTES} B, ${concurrent} concurrent downloads`,
      "Other work running on this 2-core VM at the same time adds noise; compare rows of one table only.",
    ],
  }];
  try {
    if (cases.includes(1)) tables.push(await singleSource(ctx));
    if (cases.includes(2)) tables.push(await smallFileLatency(ctx, smallFiles));
    if (cases.includes(3)) tables.push(await seederMemory(ctx, concurrent));
    if (cases.includes(4)) tables.push(await tlsVersusPlaintext(ctx));
    const load = await Deno.readTextFile("/proc/loadavg").catch(() => "unavailable");
    tables[0]!.rows.push(["load average at end", load.split(" ").slice(0, 3).join(" ")]);
  } finally {
    await removeRunDir(runDir).catch((err) =>
      opts.out(`Cannot remove ${runDir}: ${(err as Error).message}`)
    );
  }
  return tables;
}

/** Run folders not yet removed, so that an interrupted run can remove them. */
const runDirs = new Set<string>();

async function removeRunDir(dir: string): Promise<void> {
  await Deno.remove(dir, { recursive: true });
  runDirs.delete(dir);
}

function envNumber(name: string, fallback: number): number {
  const text = Deno.env.get(name);
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`Cannot use ${name}="${text}": expected a positive integer`);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Processes

/** Starts an index server on 127.0.0.1 (its identity in the run folder), with `extra` flags. */
export async function startIndex(
  ctx: Ctx,
  extra: string[] = [],
): Promise<{ proc: LineProcess; port: number }> {
  const proc = new LineProcess({
    name: "index server",
    cmd: ctx.deno,
    cwd: ROOT,
    stdin: false,
    args: [
      "run",
      "-A",
      `${ROOT}server/main.ts`,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--announce-port",
      "0",
      "--db",
      ":memory:",
      "--broadcast",
      "127.255.255.255",
      "--ui",
      "off",
      "--identity",
      `${ctx.runDir}/index-identity-${crypto.randomUUID().slice(0, 8)}`,
      ...extra,
    ],
  });
  try {
    const line = await proc.next((j) => j.event === "listening", START_TIMEOUT_MS, "its address");
    return { proc, port: line.json!.tcp as number };
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

/** Starts a peer on 127.0.0.1 using the index at `indexPort`, with `peer.extra` flags. */
export async function startPeer(
  ctx: Ctx,
  indexPort: number,
  peer: { hostname: string; repo: string; extra?: string[] },
): Promise<LineProcess & { p2pPort: number }> {
  const proc = new LineProcess({
    name: `peer ${peer.hostname}`,
    cmd: ctx.deno,
    cwd: ROOT,
    args: [
      "run",
      "-A",
      ...cpuProfileFlags(),
      `${ROOT}peer/main.ts`,
      "--repo",
      peer.repo,
      "--server",
      `127.0.0.1:${indexPort}`,
      "--host",
      "127.0.0.1",
      "--hostname",
      peer.hostname,
      "--json",
      "--ui",
      "off",
      ...peer.extra ?? [],
    ],
  });
  try {
    const line = await proc.next((j) => j.event === "listening", START_TIMEOUT_MS, "its address");
    // A publish before the peer is registered with the index stays pending, and a fetch right
    // after it finds no source (seen on a loaded machine, where the TLS handshake and Hello take
    // longer): the peer is ready once its index connection is up.
    if (line.json!.index !== "connected") {
      await proc.next(
        (j) => j.event === "index" && j.state === "connected",
        START_TIMEOUT_MS,
        "its index connection",
      );
    }
    return Object.assign(proc, { p2pPort: line.json!.p2p as number });
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

/**
 * V8 CPU-profile flags for the peers when BENCH_CPU_PROF_DIR names a folder (one .cpuprofile per
 * peer, written when it exits), to see where a transfer's CPU goes.
 */
function cpuProfileFlags(): string[] {
  const dir = Deno.env.get("BENCH_CPU_PROF_DIR");
  return dir ? ["--cpu-prof", `--cpu-prof-dir=${dir}`] : [];
}

/** Stops processes in order, even when one fails to stop. */
export async function stopAll(...procs: ({ stop(): Promise<void> } | undefined)[]): Promise<void> {
  for (const proc of procs) await proc?.stop();
}

// ---------------------------------------------------------------------------------------------
// Data

/** Creates `path` with `sizeBytes` random bytes unless it already has that size. */
export async function ensureRandomFile(path: string, sizeBytes: number): Promise<boolean> {
  try {
    if ((await Deno.stat(path)).size === sizeBytes) return false;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const tmp = `${path}.tmp-${Deno.pid}`;
  {
    using file = await Deno.open(tmp, { write: true, create: true, truncate: true, mode: 0o644 });
    const buffer = new Uint8Array(Math.min(sizeBytes, 4 * MIB));
    let written = 0;
    while (written < sizeBytes) {
      const block = buffer.subarray(0, Math.min(buffer.length, sizeBytes - written));
      // getRandomValues fills at most 64 KiB per call.
      for (let at = 0; at < block.length; at += 65536) {
        crypto.getRandomValues(block.subarray(at, Math.min(block.length, at + 65536)));
      }
      let done = 0;
      while (done < block.length) done += file.writeSync(block.subarray(done));
      written += block.length;
    }
  }
  await Deno.rename(tmp, path);
  return true;
}

async function sameBytes(a: string, b: string): Promise<boolean> {
  return (await runCommand("cmp", ["-s", a, b], { timeoutMs: 300_000, allowFailure: true }))
    .code === 0;
}

/** Flushes dirty pages so that one transfer's writeback does not slow the next one. */
export async function sync(): Promise<void> {
  await runCommand("sync", [], { timeoutMs: 300_000 });
}

/**
 * Received files waiting to be deleted. They are deleted right before the next transfer, not
 * right after theirs: this VM (Firecracker) has virtio-balloon free page reporting, so memory
 * freed for about 2 s goes back to the host, and page-cache writes into it then fault on the
 * host and run several times slower (measured: ~220 MiB/s instead of >1 GiB/s). Deleting just
 * before a transfer hands it clean, already-backed pages, as on a real machine and as the
 * anchors measured (`rm; sync; transfer`).
 */
export class Handover {
  #paths: string[] = [];

  /** Deletes `path` just before the next transfer. */
  later(path: string): void {
    this.#paths.push(path);
  }

  /** Deletes every waiting file now. */
  async now(): Promise<void> {
    for (const path of this.#paths.splice(0)) await removeFile(path);
  }
}

async function removeFile(path: string): Promise<void> {
  await Deno.remove(path).catch((err) => {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  });
}

function curlArgs(url: string, outPath: string): string[] {
  return [
    "-sS",
    "--fail",
    "--max-time",
    String(TRANSFER_TIMEOUT_MS / 1000),
    "-o",
    outPath,
    "-w",
    "%{time_starttransfer} %{time_total} %{size_download}",
    url,
  ];
}

/** Runs curl; returns its own timings (ms) and the wall time including its process start. */
async function curl(
  url: string,
  outPath: string,
): Promise<{ startMs: number; totalMs: number; bytes: number; wallMs: number }> {
  const r = await runCommand("curl", curlArgs(url, outPath), {
    timeoutMs: TRANSFER_TIMEOUT_MS + 10_000,
  });
  const [start, total, bytes] = r.stdout.trim().split(" ").map(Number);
  return { startMs: start! * 1000, totalMs: total! * 1000, bytes: bytes!, wallMs: r.wallMs };
}

/** Starts the bare Deno copy's sender (the ceiling row of case 1) serving `path`. */
async function startBareSender(
  ctx: Ctx,
  path: string,
): Promise<LineProcess & { port: number }> {
  const proc = new LineProcess({
    name: "bare Deno sender",
    cmd: ctx.deno,
    cwd: ROOT,
    stdin: false,
    args: ["run", "-A", `${ROOT}bench/_bare_copy.ts`, "send", path],
  });
  try {
    const line = await proc.next((j) => j.event === "listening", START_TIMEOUT_MS, "its address");
    return Object.assign(proc, { port: line.json!.port as number });
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

/** Runs the bare Deno copy's receiver once; returns its own timing and CPU, and the wall time. */
async function bareReceive(
  ctx: Ctx,
  port: number,
  outPath: string,
): Promise<{ bytes: number; ms: number; cpuSeconds: number; wallMs: number }> {
  const r = await runCommand(
    ctx.deno,
    ["run", "-A", `${ROOT}bench/_bare_copy.ts`, "receive", String(port), outPath],
    { timeoutMs: TRANSFER_TIMEOUT_MS + 10_000 },
  );
  const answer = JSON.parse(r.stdout.trim()) as { bytes: number; ms: number; cpuSeconds: number };
  return { ...answer, wallMs: r.wallMs };
}

// ---------------------------------------------------------------------------------------------
// Case 1: one source, one large file, written to disk

async function singleSource(ctx: Ctx): Promise<BenchTable> {
  const fname = `big-${ctx.sizeBytes / MIB}m.bin`;
  const source = `${SEED_BIG}/${fname}`;
  await Deno.mkdir(SEED_BIG, { recursive: true, mode: 0o755 });
  ctx.out(`case 1: preparing ${source}`);
  await ensureRandomFile(source, ctx.sizeBytes);
  const fetchRepo = `${ctx.runDir}/single-fetcher`;
  const curlDir = `${ctx.runDir}/single-curl`;
  await Deno.mkdir(curlDir, { recursive: true });

  let index: { proc: LineProcess; port: number } | undefined;
  let seeder: LineProcess | undefined;
  let fetcher: LineProcess | undefined;
  let nginx: RunningNginx | undefined;
  const lan = { durationMs: [] as number[], wallMs: [] as number[], cpuSeed: [] as number[] };
  const lanCpuFetch: number[] = [];
  const ngx = { totalMs: [] as number[], wallMs: [] as number[], cpuWorker: [] as number[] };
  const bare = { ms: [] as number[], wallMs: [] as number[], cpuSend: [] as number[] };
  const bareCpuReceive: number[] = [];
  let bareSender: (LineProcess & { port: number }) | undefined;
  const handover = new Handover();
  try {
    index = await startIndex(ctx);
    seeder = await startPeer(ctx, index.port, { hostname: "aseed", repo: SEED_BIG });
    // The first publish hashes the file (later runs hit the hash cache); it also reads the
    // file into the page cache, where nginx finds it too.
    await seeder.command(`publish ${fname}`, "publish", TRANSFER_TIMEOUT_MS);
    await runCommand("dd", [`if=${source}`, "of=/dev/null", "bs=1M", "status=none"], {
      timeoutMs: 300_000,
    });
    fetcher = await startPeer(ctx, index.port, { hostname: "fetcher", repo: fetchRepo });
    nginx = await startNginx(BENCH_DIR, `${ctx.runDir}/nginx-single`);
    bareSender = await startBareSender(ctx, source);
    const url = `http://127.0.0.1:${nginx.port}/seed-big/${fname}`;
    // An unmeasured copy, so that the first transfer, too, writes into memory freed just before.
    const scratch = `${ctx.runDir}/warmup-${fname}`;
    await runCommand("dd", [`if=${source}`, `of=${scratch}`, "bs=1M", "status=none"], {
      timeoutMs: 300_000,
    });
    handover.later(scratch);
    await sync();

    for (let rep = 1; rep <= ctx.reps; rep++) {
      const order = rep % 2 === 1 ? ["lanshare", "nginx", "bare"] : ["bare", "nginx", "lanshare"];
      for (const method of order) {
        await handover.now();
        if (method === "bare") {
          const got = `${curlDir}/bare-${fname}`;
          const cpu0 = readCpuSeconds(bareSender.pid);
          const r = await bareReceive(ctx, bareSender.port, got);
          const cpu = readCpuSeconds(bareSender.pid) - cpu0;
          if (r.bytes !== ctx.sizeBytes) {
            throw new Error(`Cannot trust the bare copy rep ${rep}: wrong size ${r.bytes}`);
          }
          if (rep === 1 && !await sameBytes(got, source)) {
            throw new Error(`Cannot trust the bare copy rep ${rep}: ${got} differs from ${source}`);
          }
          bare.ms.push(r.ms);
          bare.wallMs.push(r.wallMs);
          bare.cpuSend.push(cpu);
          bareCpuReceive.push(r.cpuSeconds);
          ctx.out(
            `case 1 rep ${rep} bare Deno copy: ${num(mibPerSecond(ctx.sizeBytes, r.ms))} MiB/s ` +
              `(wall ${num(mibPerSecond(ctx.sizeBytes, r.wallMs))}); CPU s sender ${
                num(cpu, 2)
              }, receiver ${num(r.cpuSeconds, 2)}`,
          );
          handover.later(got);
        } else if (method === "lanshare") {
          const cpu0 = [readCpuSeconds(seeder.pid), readCpuSeconds(fetcher.pid)];
          const { answer, sentAtMs, atMs } = await fetcher.command(
            `fetch ${fname}`,
            "fetch",
            TRANSFER_TIMEOUT_MS,
          );
          const cpu1 = [readCpuSeconds(seeder.pid), readCpuSeconds(fetcher.pid)];
          const got = `${fetchRepo}/${fname}`;
          if (answer.size !== ctx.sizeBytes || (await Deno.stat(got)).size !== ctx.sizeBytes) {
            throw new Error(`Cannot trust lanshare rep ${rep}: wrong size ${answer.size}`);
          }
          if (rep === 1 && !await sameBytes(got, source)) {
            throw new Error(`Cannot trust lanshare rep ${rep}: ${got} differs from ${source}`);
          }
          const durationMs = answer.durationMs as number;
          lan.durationMs.push(durationMs);
          lan.wallMs.push(atMs - sentAtMs);
          lan.cpuSeed.push(cpu1[0]! - cpu0[0]!);
          lanCpuFetch.push(cpu1[1]! - cpu0[1]!);
          ctx.out(
            `case 1 rep ${rep} lanshare: ${num(mibPerSecond(ctx.sizeBytes, durationMs))} MiB/s ` +
              `(wall ${num(mibPerSecond(ctx.sizeBytes, atMs - sentAtMs))}); CPU s seeder ${
                num(cpu1[0]! - cpu0[0]!, 2)
              }, fetcher ${num(cpu1[1]! - cpu0[1]!, 2)}; from ${JSON.stringify(answer.bySource)}`,
          );
          await fetcher.command(`unpublish ${fname}`, "unpublish", COMMAND_TIMEOUT_MS);
          handover.later(got);
        } else {
          const got = `${curlDir}/${fname}`;
          const cpu0 = readCpuSeconds(nginx.workerPid);
          const r = await curl(url, got);
          const cpu = readCpuSeconds(nginx.workerPid) - cpu0;
          if (r.bytes !== ctx.sizeBytes || (await Deno.stat(got)).size !== ctx.sizeBytes) {
            throw new Error(`Cannot trust nginx rep ${rep}: wrong size ${r.bytes}`);
          }
          if (rep === 1 && !await sameBytes(got, source)) {
            throw new Error(`Cannot trust nginx rep ${rep}: ${got} differs from ${source}`);
          }
          ngx.totalMs.push(r.totalMs);
          ngx.wallMs.push(r.wallMs);
          ngx.cpuWorker.push(cpu);
          ctx.out(
            `case 1 rep ${rep} nginx+curl: ${num(mibPerSecond(ctx.sizeBytes, r.totalMs))} MiB/s ` +
              `(wall ${num(mibPerSecond(ctx.sizeBytes, r.wallMs))}); CPU s nginx worker ${
                num(cpu, 2)
              }`,
          );
          handover.later(got);
        }
        await sync();
      }
    }
  } finally {
    await stopAll(fetcher, seeder, index?.proc, nginx, bareSender);
    await handover.now();
  }

  const rate = (ms: number[]) => ms.map((t) => mibPerSecond(ctx.sizeBytes, t));
  const lanRate = rate(lan.durationMs);
  const ngxRate = rate(ngx.totalMs);
  const target = median(lanRate) / median(ngxRate) >= 1.5;
  const pct = (cpu: number[], ms: number[]) => cpu.map((c, i) => 100 * c / (ms[i]! / 1000));
  return {
    title: `Single source, ${ctx.sizeBytes / MIB} MiB random file on loopback, written to disk`,
    columns: [
      "method",
      "MiB/s, program's own clock",
      "MiB/s, wall",
      "ratio to nginx+curl (own clock / wall)",
      "CPU, sender (s, % of one core)",
      "CPU, receiver (s, % of one core)",
    ],
    rows: [
      [
        "lanshare: seeding peer → fetching peer",
        summary(lanRate),
        summary(rate(lan.wallMs)),
        `${ratio(lanRate, ngxRate)} / ${ratio(rate(lan.wallMs), rate(ngx.wallMs))}`,
        `${summary(lan.cpuSeed, 2)} s, ${summary(pct(lan.cpuSeed, lan.durationMs))} %`,
        `${summary(lanCpuFetch, 2)} s, ${summary(pct(lanCpuFetch, lan.durationMs))} %`,
      ],
      [
        "nginx (sendfile) → curl -o file",
        summary(ngxRate),
        summary(rate(ngx.wallMs)),
        "1.00× / 1.00×",
        `${summary(ngx.cpuWorker, 2)} s, ${summary(pct(ngx.cpuWorker, ngx.totalMs))} %`,
        "n/a (curl exits)",
      ],
      [
        "bare Deno TCP copy, no verification, no fsync (ceiling)",
        summary(rate(bare.ms)),
        summary(rate(bare.wallMs)),
        `${ratio(rate(bare.ms), ngxRate)} / ${ratio(rate(bare.wallMs), rate(ngx.wallMs))}`,
        `${summary(bare.cpuSend, 2)} s, ${summary(pct(bare.cpuSend, bare.ms))} %`,
        `${summary(bareCpuReceive, 2)} s, ${summary(pct(bareCpuReceive, bare.ms))} %`,
      ],
    ],
    notes: [
      `median (min–max) of ${ctx.reps} rep(s), interleaved (order alternates each rep); MiB = 2^20 B.`,
      "The bare Deno copy (bench/_bare_copy.ts) is a reference, not lanshare: one TCP connection, 1 MiB blocks, readSync on the sender, conn.read + writeSync on the receiver, no frames, no hashing, no fsync. Its own clock runs from connect to the last byte written; its wall time includes Deno's start-up; its receiver CPU is measured inside the process from before connect. Its 1 MiB writes make it noisy on this VM: page-cache writes that large took 0.65–2.0 s of CPU per GiB in a side test, 64 KiB ones 0.22–0.25 s every time (lanshare writes 64 KiB at a time, see peer/piece_writer.ts).",
      "lanshare's own clock is the fetch answer's durationMs (asking the index, verifying every piece, fsync, rename, announcing the copy); the peer process was already running, so no Deno start-up is included. Its wall time runs from writing `fetch` to its stdin to reading the answer.",
      "nginx+curl's own clock is curl's time_total; its wall time runs from spawning curl to its exit, so it includes curl's process start.",
      `Each received file is checked in rep 1 (cmp against the source), \`sync\` is run after each transfer, and the copy is deleted (lanshare: \`unpublish\` first) right before the next transfer, which so writes into memory just freed: this Firecracker VM hands memory freed for ~2 s back to the host, and page-cache writes into such memory ran at only ~220 MiB/s (plain Deno writeSync loop) in a side test, for any writer. An unmeasured ${
        ctx.sizeBytes / MIB
      } MiB \`dd\` copy precedes the first transfer for the same reason. The source file is in the page cache; curl does not fsync, lanshare fsyncs (checkpoints and at the end).`,
      `Target: lanshare ≥ 1.5× nginx+curl (own clocks): ${target ? "met" : "missed"} (${
        ratio(lanRate, ngxRate)
      }).`,
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// Case 2: latency of small fetches

async function smallFileLatency(ctx: Ctx, count: number): Promise<BenchTable> {
  await Deno.mkdir(SEED_SMALL, { recursive: true, mode: 0o755 });
  const names = Array.from({ length: count }, (_, i) => `s${String(i).padStart(4, "0")}.bin`);
  ctx.out(`case 2: preparing ${count} files of ${SMALL_FILE_BYTES} B in ${SEED_SMALL}`);
  for (const name of [...names, "warmup.bin"]) {
    await ensureRandomFile(`${SEED_SMALL}/${name}`, SMALL_FILE_BYTES);
  }
  let index: { proc: LineProcess; port: number } | undefined;
  let seeder: LineProcess | undefined;
  let nginx: RunningNginx | undefined;
  const lanDuration: number[][] = [];
  const lanFirstByte: number[][] = [];
  const lanWall: number[][] = [];
  const curlStart: number[][] = [];
  const curlTotal: number[][] = [];
  const curlWall: number[][] = [];
  try {
    index = await startIndex(ctx);
    seeder = await startPeer(ctx, index.port, { hostname: "aseed", repo: SEED_SMALL });
    for (const name of [...names, "warmup.bin"]) {
      await seeder.command(`publish ${name}`, "publish", COMMAND_TIMEOUT_MS);
    }
    nginx = await startNginx(BENCH_DIR, `${ctx.runDir}/nginx-small`);
    for (let rep = 1; rep <= ctx.reps; rep++) {
      const order = rep % 2 === 1 ? ["lanshare", "nginx"] : ["nginx", "lanshare"];
      for (const method of order) {
        if (method === "lanshare") {
          const repo = `${ctx.runDir}/small-fetcher-${rep}`;
          const fetcher = await startPeer(ctx, index.port, { hostname: "fetcher", repo });
          const durations: number[] = [];
          const firstBytes: number[] = [];
          const walls: number[] = [];
          try {
            // One fetch first, so that the measured ones run on warm (JIT-compiled) code.
            await fetcher.command("fetch warmup.bin", "fetch", COMMAND_TIMEOUT_MS);
            for (const name of names) {
              const { answer, sentAtMs, atMs } = await fetcher.command(
                `fetch ${name}`,
                "fetch",
                COMMAND_TIMEOUT_MS,
              );
              durations.push(answer.durationMs as number);
              firstBytes.push(answer.firstByteMs as number);
              walls.push(atMs - sentAtMs);
            }
          } finally {
            await fetcher.stop();
          }
          if (rep === 1) await checkCopies(repo, names, "lanshare");
          await Deno.remove(repo, { recursive: true });
          lanDuration.push(durations);
          lanFirstByte.push(firstBytes);
          lanWall.push(walls);
          ctx.out(
            `case 2 rep ${rep} lanshare: firstByteMs p99 ${
              num(quantile(firstBytes, 0.99), 1)
            }; durationMs p50 ${num(quantile(durations, 0.5), 1)} p99 ${
              num(quantile(durations, 0.99), 1)
            }; wall p50 ${num(quantile(walls, 0.5), 1)} p99 ${num(quantile(walls, 0.99), 1)}`,
          );
        } else {
          const dir = `${ctx.runDir}/small-curl-${rep}`;
          await Deno.mkdir(dir, { recursive: true });
          const starts: number[] = [];
          const totals: number[] = [];
          const walls: number[] = [];
          const base = `http://127.0.0.1:${nginx.port}/seed-small`;
          await curl(`${base}/warmup.bin`, `${dir}/warmup.bin`);
          for (const name of names) {
            const r = await curl(`${base}/${name}`, `${dir}/${name}`);
            starts.push(r.startMs);
            totals.push(r.totalMs);
            walls.push(r.wallMs);
          }
          if (rep === 1) await checkCopies(dir, names, "nginx+curl");
          await Deno.remove(dir, { recursive: true });
          curlStart.push(starts);
          curlTotal.push(totals);
          curlWall.push(walls);
          ctx.out(
            `case 2 rep ${rep} nginx+curl: starttransfer p50 ${num(quantile(starts, 0.5), 1)} p99 ${
              num(quantile(starts, 0.99), 1)
            }; wall p50 ${num(quantile(walls, 0.5), 1)} p99 ${num(quantile(walls, 0.99), 1)}`,
          );
        }
      }
    }
  } finally {
    await stopAll(seeder, index?.proc, nginx);
  }
  const row = (label: string, perRep: number[][]) => [
    label,
    summary(perRep.map((v) => quantile(v, 0.5)), 2),
    summary(perRep.map((v) => quantile(v, 0.99)), 2),
    summary(perRep.map((v) => Math.max(...v)), 2),
  ];
  const p99 = median(lanFirstByte.map((v) => quantile(v, 0.99)));
  return {
    title: `Small fetches: ${count} files of ${SMALL_FILE_BYTES} B, one after another, on loopback`,
    columns: ["measure (ms)", "p50", "p99", "max"],
    rows: [
      row(
        "lanshare fetch, firstByteMs: `fetch` start → first verified piece on disk",
        lanFirstByte,
      ),
      row(
        "lanshare fetch, durationMs: whole fetch, to fsynced, renamed and announced",
        lanDuration,
      ),
      row("lanshare fetch, wall: `fetch` written → answer read", lanWall),
      row("nginx → curl, time_starttransfer (first byte received)", curlStart),
      row("nginx → curl, time_total (file written)", curlTotal),
      row("nginx → curl, wall incl. curl process start", curlWall),
    ],
    notes: [
      `Each cell: median (min–max) over ${ctx.reps} rep(s) of that rep's percentile over ${count} fetches (nearest rank).`,
      "lanshare: a fresh fetching peer per rep, one unmeasured warm-up fetch, then each `fetch` waits for the previous answer. durationMs covers the whole fetch: asking the index, connecting, GetInfo, the piece, SHA-256 check, fsync, rename and announcing the copy to the index, so it bounds the time to the first byte on disk from above.",
      "curl: one process per file (one warm-up first); time_starttransfer is measured from curl's own start of the request, so it excludes process start; wall includes it.",
      "firstByteMs is measured inside the fetching peer from the start of the fetch (asking the index, connecting, GetInfo, the piece request, its SHA-256 check) to the write of the first verified piece; it is the issue's time to first byte on disk.",
      `Target: lanshare time to first byte on disk p99 < 20 ms: ${p99 < 20 ? "met" : "missed"} (${
        num(p99, 2)
      } ms).`,
    ],
  };
}

async function checkCopies(dir: string, names: string[], label: string): Promise<void> {
  for (const name of names) {
    const [a, b] = await Promise.all([
      Deno.readFile(`${dir}/${name}`),
      Deno.readFile(`${SEED_SMALL}/${name}`),
    ]);
    if (a.length !== b.length || a.some((byte, i) => byte !== b[i])) {
      throw new Error(`Cannot trust ${label}: ${dir}/${name} differs from its source`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Case 3: the seeder's memory while it serves concurrent downloads

async function seederMemory(ctx: Ctx, concurrent: number): Promise<BenchTable> {
  const fname = `big-${ctx.sizeBytes / MIB}m.bin`;
  const source = `${SEED_BIG}/${fname}`;
  await Deno.mkdir(SEED_BIG, { recursive: true, mode: 0o755 });
  ctx.out(`case 3: preparing ${source}`);
  await ensureRandomFile(source, ctx.sizeBytes);
  const curlDir = `${ctx.runDir}/memory-curl`;
  await Deno.mkdir(curlDir, { recursive: true });

  let index: { proc: LineProcess; port: number } | undefined;
  let seeder: (LineProcess & { p2pPort: number }) | undefined;
  let nginx: RunningNginx | undefined;
  const fetchers: LineProcess[] = [];
  const lan = {
    idleMib: [] as number[],
    peakMib: [] as number[],
    allMs: [] as number[],
    cpu: [] as number[],
    fetcherPeakMib: [] as number[],
    fromSeeder: [] as number[],
  };
  const ngx = { idleMib: [] as number[], peakMib: [] as number[], allMs: [] as number[] };
  const ngxCpu: number[] = [];
  const handover = new Handover();
  try {
    index = await startIndex(ctx);
    const k = String(concurrent);
    // "aseed" sorts first in the index's answer, and --max-sources 1 keeps each fetcher on
    // that first source, so the seeder really serves every byte (no fetcher-to-fetcher swarm).
    seeder = await startPeer(ctx, index.port, {
      hostname: "aseed",
      repo: SEED_BIG,
      extra: ["--max-sessions", k, "--max-per-peer", k, "--max-queue", k],
    });
    await seeder.command(`publish ${fname}`, "publish", TRANSFER_TIMEOUT_MS);
    const seederPort = seeder.p2pPort;
    ctx.out(`case 3: starting ${concurrent} fetching peers`);
    for (let i = 1; i <= concurrent; i++) {
      // Started one at a time: 16 Deno start-ups at once on 2 cores can exceed timeouts.
      fetchers.push(
        await startPeer(ctx, index.port, {
          hostname: `fetch-${String(i).padStart(2, "0")}`,
          repo: `${ctx.runDir}/memory-fetcher-${i}`,
          extra: ["--max-sources", "1"],
        }),
      );
    }
    nginx = await startNginx(BENCH_DIR, `${ctx.runDir}/nginx-memory`);
    const url = `http://127.0.0.1:${nginx.port}/seed-big/${fname}`;
    await sync();

    for (let rep = 1; rep <= ctx.reps; rep++) {
      const order = rep % 2 === 1 ? ["lanshare", "nginx"] : ["nginx", "lanshare"];
      for (const method of order) {
        await handover.now();
        if (method === "lanshare") {
          const idle = readRssKib(seeder.pid)! / 1024;
          const cpu0 = readCpuSeconds(seeder.pid);
          const sampler = new RssSampler([seeder.pid, ...fetchers.map((f) => f.pid)]);
          const started = performance.now();
          const answers = await Promise.all(
            fetchers.map((f) => f.command(`fetch ${fname}`, "fetch", TRANSFER_TIMEOUT_MS)),
          );
          const allMs = performance.now() - started;
          const { peakKib, samples } = sampler.stop();
          const cpu = readCpuSeconds(seeder.pid) - cpu0;
          const peak = peakKib.get(seeder.pid)! / 1024;
          const fetcherPeak = Math.max(...fetchers.map((f) => peakKib.get(f.pid) ?? 0)) / 1024;
          const fromSeeder = answers.reduce(
            (sum, a) =>
              sum +
              Object.entries(a.answer.bySource as Record<string, number>)
                .filter(([key]) => key.endsWith(`:${seederPort}`))
                .reduce((n, [, bytes]) => n + bytes, 0),
            0,
          );
          for (const [i, f] of fetchers.entries()) {
            const got = `${ctx.runDir}/memory-fetcher-${i + 1}/${fname}`;
            if ((await Deno.stat(got)).size !== ctx.sizeBytes) {
              throw new Error(`Cannot trust lanshare rep ${rep}: ${got} has the wrong size`);
            }
            if (rep === 1 && i === 0 && !await sameBytes(got, source)) {
              throw new Error(`Cannot trust lanshare rep ${rep}: ${got} differs from ${source}`);
            }
            await f.command(`unpublish ${fname}`, "unpublish", COMMAND_TIMEOUT_MS);
            handover.later(got);
          }
          lan.idleMib.push(idle);
          lan.peakMib.push(peak);
          lan.allMs.push(allMs);
          lan.cpu.push(cpu);
          lan.fetcherPeakMib.push(fetcherPeak);
          lan.fromSeeder.push(fromSeeder / (concurrent * ctx.sizeBytes));
          ctx.out(
            `case 3 rep ${rep} lanshare: seeder RSS idle ${num(idle, 1)} MiB, peak ${
              num(peak, 1)
            } MiB (${samples} samples); all done in ${num(allMs / 1000, 2)} s; seeder CPU ${
              num(cpu, 2)
            } s; ${
              num(100 * fromSeeder / (concurrent * ctx.sizeBytes), 1)
            } % of bytes from the seeder`,
          );
        } else {
          const idle = readRssKib(nginx.workerPid)! / 1024;
          const cpu0 = readCpuSeconds(nginx.workerPid);
          const sampler = new RssSampler([nginx.workerPid, nginx.pid]);
          const started = performance.now();
          const results = await Promise.all(
            Array.from({ length: concurrent }, (_, i) => curl(url, `${curlDir}/${i}-${fname}`)),
          );
          const allMs = performance.now() - started;
          const { peakKib, samples } = sampler.stop();
          const cpu = readCpuSeconds(nginx.workerPid) - cpu0;
          const peak = peakKib.get(nginx.workerPid)! / 1024;
          for (const [i, r] of results.entries()) {
            const got = `${curlDir}/${i}-${fname}`;
            if (r.bytes !== ctx.sizeBytes) {
              throw new Error(`Cannot trust nginx rep ${rep}: ${got} has the wrong size`);
            }
            if (rep === 1 && i === 0 && !await sameBytes(got, source)) {
              throw new Error(`Cannot trust nginx rep ${rep}: ${got} differs from ${source}`);
            }
            handover.later(got);
          }
          ngx.idleMib.push(idle);
          ngx.peakMib.push(peak);
          ngx.allMs.push(allMs);
          ngxCpu.push(cpu);
          ctx.out(
            `case 3 rep ${rep} nginx: worker RSS idle ${num(idle, 1)} MiB, peak ${
              num(peak, 1)
            } MiB (${samples} samples); all done in ${num(allMs / 1000, 2)} s; worker CPU ${
              num(cpu, 2)
            } s`,
          );
        }
        await sync();
      }
    }
  } finally {
    await stopAll(...fetchers, seeder, index?.proc, nginx);
    await handover.now();
  }
  const aggregate = (ms: number[]) => ms.map((t) => mibPerSecond(concurrent * ctx.sizeBytes, t));
  const peak = median(lan.peakMib);
  return {
    title: `Memory: one source serving ${concurrent} concurrent downloads of a ${
      ctx.sizeBytes / MIB
    } MiB file on loopback`,
    columns: [
      "source",
      "RSS idle (MiB)",
      "RSS peak (MiB)",
      `all ${concurrent} done (s)`,
      "aggregate MiB/s",
      "source CPU (s)",
    ],
    rows: [
      [
        `lanshare seeding peer (--max-sessions ${concurrent} --max-per-peer ${concurrent})`,
        summary(lan.idleMib, 1),
        summary(lan.peakMib, 1),
        summary(lan.allMs.map((t) => t / 1000), 2),
        summary(aggregate(lan.allMs)),
        summary(lan.cpu, 2),
      ],
      [
        "nginx worker (sendfile), one curl per download",
        summary(ngx.idleMib, 1),
        summary(ngx.peakMib, 1),
        summary(ngx.allMs.map((t) => t / 1000), 2),
        summary(aggregate(ngx.allMs)),
        summary(ngxCpu, 2),
      ],
    ],
    notes: [
      `median (min–max) of ${ctx.reps} rep(s), interleaved. RSS = VmRSS from /proc/PID/status, sampled every 100 ms during the transfers; idle = just before.`,
      `lanshare: ${concurrent} fetching peers (separate processes, started beforehand) are sent \`fetch\` at the same moment; each writes its copy to its own repository. They run with --max-sources 1, and the seeder sorts first in the index's answer, so every byte comes from the seeder: ${
        summary(lan.fromSeeder.map((f) => 100 * f), 1)
      } % did. Peak RSS of the largest fetching peer: ${summary(lan.fetcherPeakMib, 1)} MiB.`,
      `nginx: ${concurrent} curl processes started at once, each writing its own file. Both write ${concurrent}× the file to the page cache, so the elapsed times are bounded by page-cache writes and disk writeback (lanshare also fsyncs); the received copies are deleted right before the next transfer (see Handover in the source), but the very first transfer of the case writes into cold memory. The times are only indicative; the RSS is the measure here.`,
      `Target: lanshare seeder peak RSS < 150 MiB: ${peak < 150 ? "met" : "missed"} (${
        num(peak, 1)
      } MiB).`,
    ],
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { reps: { type: "string", default: "3" }, help: { type: "boolean" } },
  });
  if (values.help) {
    console.log(
      "usage: deno run -A bench/loopback_bench.ts [--reps N]\n" +
        "env: BENCH_SIZE_MIB (1024), BENCH_CASES (1,2,3), BENCH_SMALL_FILES (200), BENCH_CONCURRENT (16)",
    );
    Deno.exit(0);
  }
  const reps = Number(values.reps);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, () => {
      console.error(`${sig}: stopping child processes`);
      void stopAllProcesses()
        .then(() => Promise.allSettled([...runDirs].map(removeRunDir)))
        .finally(() => Deno.exit(130));
    });
  }
  const tables = await runLoopbackBench({ reps, out: (line) => console.error(line) });
  console.log(
    `Command: \`${
      ["BENCH_SIZE_MIB", "BENCH_CASES", "BENCH_SMALL_FILES", "BENCH_CONCURRENT"]
        .filter((n) => Deno.env.get(n)).map((n) => `${n}=${Deno.env.get(n)} `).join("")
    }deno run -A bench/loopback_bench.ts --reps ${reps}\`\n`,
  );
  console.log(tables.map(renderTable).join("\n\n"));
  Deno.exit(0);
}
