// Loopback case 4: the single-source fetch of case 1, over TLS (the default) and with
// --insecure-plaintext on every program, in the same run and interleaved, with the receiver's
// CPU per GiB, split by thread (which one limits the rate) and the machine's idle cores during the
// fetch. Issue 11's target: TLS at least 0.8× the plaintext rate.
import { type BenchTable, median, mibPerSecond, num, ratio, summary } from "./_lib.ts";
import { type LineProcess, readCpuSeconds } from "./_procs.ts";
import { readMachineCpu, readThreadCpu, splitThreadCpu } from "./_thread_cpu.ts";
import {
  COMMAND_TIMEOUT_MS,
  type Ctx,
  ensureRandomFile,
  Handover,
  SEED_BIG,
  startIndex,
  startPeer,
  stopAll,
  sync,
  TRANSFER_TIMEOUT_MS,
} from "./loopback_bench.ts";

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

/** One transport's programs: an index, a seeder and a fetcher. */
interface Trio {
  label: string;
  index: { proc: LineProcess; port: number };
  seeder: LineProcess;
  fetcher: LineProcess;
  fetchRepo: string;
  ms: number[];
  cpuReceiver: number[];
  cpuSender: number[];
  /** The fetcher's main thread (socket reads, TLS decryption), s. */
  cpuReceiverMain: number[];
  /** The fetcher's piece writer thread (SHA-256, file writes), s. */
  cpuReceiverWriter: number[];
  /** The seeder's main thread (file reads, TLS encryption, socket writes), s. */
  cpuSenderMain: number[];
  /** Cores idle on the whole machine during the fetch (of nproc). */
  idleCores: number[];
}

/** Runs case 4 and returns its table. */
export async function tlsVersusPlaintext(ctx: Ctx): Promise<BenchTable> {
  const fname = `big-${ctx.sizeBytes / MIB}m.bin`;
  const source = `${SEED_BIG}/${fname}`;
  await Deno.mkdir(SEED_BIG, { recursive: true, mode: 0o755 });
  ctx.out(`case 4: preparing ${source}`);
  await ensureRandomFile(source, ctx.sizeBytes);
  // The plaintext seeder shares the same file (a hard link: one page-cache copy) from a
  // repository of its own, so that two peers never share one repository's metadata.
  const plainSeed = `${ctx.runDir}/plain-seed`;
  await Deno.mkdir(plainSeed, { recursive: true });
  await Deno.link(source, `${plainSeed}/${fname}`);
  const trios: Trio[] = [];
  const handover = new Handover();
  try {
    for (
      const [label, flags, seedRepo] of [
        ["TLS 1.3 (default)", [], SEED_BIG],
        ["--insecure-plaintext", ["--insecure-plaintext"], plainSeed],
      ] as const
    ) {
      const index = await startIndex(ctx, [...flags]);
      const seeder = await startPeer(ctx, index.port, {
        hostname: "aseed",
        repo: seedRepo,
        extra: [...flags],
      });
      await seeder.command(`publish ${fname}`, "publish", TRANSFER_TIMEOUT_MS);
      const fetchRepo = `${ctx.runDir}/fetcher-${trios.length}`;
      const fetcher = await startPeer(ctx, index.port, {
        hostname: "fetcher",
        repo: fetchRepo,
        extra: [...flags],
      });
      trios.push({
        label,
        index,
        seeder,
        fetcher,
        fetchRepo,
        ms: [],
        cpuReceiver: [],
        cpuSender: [],
        cpuReceiverMain: [],
        cpuReceiverWriter: [],
        cpuSenderMain: [],
        idleCores: [],
      });
    }
    await sync();
    for (let rep = 1; rep <= ctx.reps; rep++) {
      const order = rep % 2 === 1 ? trios : [...trios].reverse();
      for (const trio of order) {
        await handover.now();
        const cpu0 = [readCpuSeconds(trio.seeder.pid), readCpuSeconds(trio.fetcher.pid)];
        const threads0 = [readThreadCpu(trio.seeder.pid), readThreadCpu(trio.fetcher.pid)];
        const machine0 = readMachineCpu();
        const at0 = performance.now();
        const { answer } = await trio.fetcher.command(
          `fetch ${fname}`,
          "fetch",
          TRANSFER_TIMEOUT_MS,
        );
        // The piece writer thread ends with the fetch: its seconds are read from the process
        // total minus the threads still alive (see below), so sample the threads first.
        const threads1 = [readThreadCpu(trio.seeder.pid), readThreadCpu(trio.fetcher.pid)];
        const machine1 = readMachineCpu();
        const wallS = (performance.now() - at0) / 1000;
        const cpu1 = [readCpuSeconds(trio.seeder.pid), readCpuSeconds(trio.fetcher.pid)];
        if (answer.ok !== true || answer.size !== ctx.sizeBytes) {
          throw new Error(`Cannot trust ${trio.label} rep ${rep}: ${JSON.stringify(answer)}`);
        }
        const ms = answer.durationMs as number;
        trio.ms.push(ms);
        trio.cpuSender.push(cpu1[0]! - cpu0[0]!);
        trio.cpuReceiver.push(cpu1[1]! - cpu0[1]!);
        const sender = splitThreadCpu(trio.seeder.pid, threads0[0]!, threads1[0]!);
        const receiver = splitThreadCpu(trio.fetcher.pid, threads0[1]!, threads1[1]!);
        trio.cpuSenderMain.push(sender.main);
        trio.cpuReceiverMain.push(receiver.main);
        // A writer thread that already ended is missing from threads1: what the process spent
        // beyond its live threads is that thread's.
        const lost = Math.max(
          0,
          cpu1[1]! - cpu0[1]! - (receiver.main + receiver.workers + receiver.other),
        );
        trio.cpuReceiverWriter.push(receiver.workers + lost);
        trio.idleCores.push((machine1.idle - machine0.idle) / wallS);
        ctx.out(
          `case 4 rep ${rep} ${trio.label}: ${num(mibPerSecond(ctx.sizeBytes, ms))} MiB/s; ` +
            `CPU s seeder ${num(cpu1[0]! - cpu0[0]!, 2)} (main ${num(sender.main, 2)}), fetcher ${
              num(cpu1[1]! - cpu0[1]!, 2)
            } (main ${num(receiver.main, 2)}, writer ${num(receiver.workers + lost, 2)}); idle ${
              num(trio.idleCores.at(-1)!, 2)
            } cores`,
        );
        await trio.fetcher.command(`unpublish ${fname}`, "unpublish", COMMAND_TIMEOUT_MS);
        handover.later(`${trio.fetchRepo}/${fname}`);
        await sync();
      }
    }
  } finally {
    for (const trio of trios) await stopAll(trio.fetcher, trio.seeder, trio.index.proc);
    await handover.now();
  }
  const [tls, plain] = trios as [Trio, Trio];
  const rate = (t: Trio) => t.ms.map((ms) => mibPerSecond(ctx.sizeBytes, ms));
  const perGib = (cpu: number[]) => cpu.map((s) => s * GIB / ctx.sizeBytes);
  const met = median(rate(tls)) / median(rate(plain)) >= 0.8;
  return {
    title: `Single source over TLS and in plaintext, ${ctx.sizeBytes / MIB} MiB on loopback`,
    columns: [
      "transport",
      "MiB/s, fetch's own clock",
      "ratio to plaintext",
      "CPU, sender (s per GiB)",
      "CPU, receiver (s per GiB)",
      "CPU per thread (s per GiB): sender main / receiver main / piece writer",
      "idle cores during the fetch",
    ],
    rows: [tls, plain].map((t) => [
      t.label,
      summary(rate(t)),
      ratio(rate(t), rate(plain)),
      summary(perGib(t.cpuSender), 2),
      summary(perGib(t.cpuReceiver), 2),
      [t.cpuSenderMain, t.cpuReceiverMain, t.cpuReceiverWriter]
        .map((cpu) => num(median(perGib(cpu)), 2)).join(" / "),
      summary(t.idleCores, 2),
    ]),
    notes: [
      `median (min–max) of ${ctx.reps} rep(s), interleaved (order alternates each rep); each transport has its own index, seeder and fetcher, started once.`,
      "The fetch's own clock is its answer's durationMs (index lookup, TLS handshake, transfer, verification, fsync, rename).",
      "Per thread: medians, from /proc/<pid>/task/*/stat (10 ms ticks). TLS is encrypted and decrypted inside Deno's write and read ops, on the thread that owns the connection: the main threads. Idle cores: /proc/stat over the fetch command's wall time (includes its start and end), all processes on the machine.",
      `Target (issue 11): TLS ≥ 0.8× plaintext: ${met ? "met" : "missed"} (${
        ratio(rate(tls), rate(plain))
      }).`,
    ],
  };
}
