// Per-thread CPU of a process and the machine's idle time, from /proc, for benchmarks that need
// to know which thread limits a transfer (process totals hide it: on 2 cores, a process at 1.1
// cores may have one thread saturated or none). Linux only; tick-based (CLK_TCK = 100 on Linux
// x86-64), so each figure is good to ~0.01 s per thread per sample.

/** CPU seconds (user + system) of every thread of `pid`, by thread ID, with its name. */
export function readThreadCpu(pid: number): Map<number, { name: string; seconds: number }> {
  const threads = new Map<number, { name: string; seconds: number }>();
  for (const entry of Deno.readDirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = Deno.readTextFileSync(`/proc/${pid}/task/${entry.name}/stat`);
    } catch {
      continue; // the thread ended between the listing and the read
    }
    const close = stat.lastIndexOf(")");
    // Fields after the ")" closing the thread name start at field 3 (state).
    const fields = stat.slice(close + 2).split(" ");
    threads.set(Number(entry.name), {
      name: stat.slice(stat.indexOf("(") + 1, close),
      seconds: (Number(fields[11]) + Number(fields[12])) / 100,
    });
  }
  return threads;
}

/** CPU a process spent between two readThreadCpu() samples, split by the kind of thread. */
export interface ThreadCpuSplit {
  /** The main thread (JavaScript, and Deno's ops: TLS encryption and decryption run here). */
  main: number;
  /** Web Worker threads (Deno names them "worker-N"): the fetcher's piece writer. */
  workers: number;
  /** Everything else: V8's garbage collection helpers, tokio's blocking pool. */
  other: number;
}

/**
 * Splits a process's CPU between two samples by thread kind. A thread that started after
 * `before` counts from zero; one that ended before `after` is lost (its seconds are then only
 * in the process total).
 */
export function splitThreadCpu(
  pid: number,
  before: Map<number, { name: string; seconds: number }>,
  after: Map<number, { name: string; seconds: number }>,
): ThreadCpuSplit {
  const split: ThreadCpuSplit = { main: 0, workers: 0, other: 0 };
  for (const [tid, { name, seconds }] of after) {
    const spent = seconds - (before.get(tid)?.seconds ?? 0);
    if (tid === pid) split.main += spent;
    else if (/^worker-\d+$/.test(name)) split.workers += spent;
    else split.other += spent;
  }
  return split;
}

/** The machine's idle and total CPU time so far, s (all CPUs summed; from /proc/stat). */
export function readMachineCpu(): { idle: number; total: number } {
  const line = Deno.readTextFileSync("/proc/stat").split("\n", 1)[0]!;
  const ticks = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already in user)
  const total = ticks.slice(0, 8).reduce((sum, t) => sum + t, 0);
  return { idle: (ticks[3]! + ticks[4]!) / 100, total: total / 100 };
}
