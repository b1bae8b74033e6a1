// Loopback case 4: the single-source fetch of case 1, over TLS (the default) and with
// --insecure-plaintext on every program, in the same run and interleaved, with the receiver's
// CPU per GiB. Issue 11's target: TLS at least 0.8× the plaintext rate.
import { type BenchTable, median, mibPerSecond, num, ratio, summary } from "./_lib.ts";
import { type LineProcess, readCpuSeconds } from "./_procs.ts";
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
      });
    }
    await sync();
    for (let rep = 1; rep <= ctx.reps; rep++) {
      const order = rep % 2 === 1 ? trios : [...trios].reverse();
      for (const trio of order) {
        await handover.now();
        const cpu0 = [readCpuSeconds(trio.seeder.pid), readCpuSeconds(trio.fetcher.pid)];
        const { answer } = await trio.fetcher.command(
          `fetch ${fname}`,
          "fetch",
          TRANSFER_TIMEOUT_MS,
        );
        const cpu1 = [readCpuSeconds(trio.seeder.pid), readCpuSeconds(trio.fetcher.pid)];
        if (answer.ok !== true || answer.size !== ctx.sizeBytes) {
          throw new Error(`Cannot trust ${trio.label} rep ${rep}: ${JSON.stringify(answer)}`);
        }
        const ms = answer.durationMs as number;
        trio.ms.push(ms);
        trio.cpuSender.push(cpu1[0]! - cpu0[0]!);
        trio.cpuReceiver.push(cpu1[1]! - cpu0[1]!);
        ctx.out(
          `case 4 rep ${rep} ${trio.label}: ${num(mibPerSecond(ctx.sizeBytes, ms))} MiB/s; ` +
            `CPU s seeder ${num(cpu1[0]! - cpu0[0]!, 2)}, fetcher ${num(cpu1[1]! - cpu0[1]!, 2)}`,
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
    ],
    rows: [tls, plain].map((t) => [
      t.label,
      summary(rate(t)),
      ratio(rate(t), rate(plain)),
      summary(perGib(t.cpuSender), 2),
      summary(perGib(t.cpuReceiver), 2),
    ]),
    notes: [
      `median (min–max) of ${ctx.reps} rep(s), interleaved (order alternates each rep); each transport has its own index, seeder and fetcher, started once.`,
      "The fetch's own clock is its answer's durationMs (index lookup, TLS handshake, transfer, verification, fsync, rename).",
      `Target (issue 11): TLS ≥ 0.8× plaintext: ${met ? "met" : "missed"} (${
        ratio(rate(tls), rate(plain))
      }).`,
    ],
  };
}
