// Memory and CPU of a process the suite started, read from /proc (Linux); sampled in the
// background so that a peak between two checks is not missed.

const MIB = 1024 * 1024;
/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** Resident set size of `pid` in bytes, or undefined when the process is gone. */
export function readRssBytes(pid: number): number | undefined {
  const status = readProc(`/proc/${pid}/status`);
  const match = status === undefined ? null : /^VmRSS:\s+(\d+) kB$/m.exec(status);
  return match ? Number(match[1]) * 1024 : undefined;
}

/** User + system CPU time of `pid` in ms, or undefined when the process is gone. */
export function readCpuMs(pid: number): number | undefined {
  const stat = readProc(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
  return ticks * 1000 / TICKS_PER_SECOND;
}

function readProc(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/** Megabytes for figures, or "gone" for a process that no longer exists. */
export function mb(bytes: number | undefined): string {
  return bytes === undefined ? "gone" : `${(bytes / MIB).toFixed(0)} MB`;
}

/** RSS before, at its peak during, and after an attack. */
export interface RssFigures {
  beforeBytes: number | undefined;
  peakBytes: number;
  afterBytes: number | undefined;
}

/** "rss before/peak/after 50/900/60 MB" */
export function formatRss(rss: RssFigures): string {
  const n = (bytes: number | undefined) => bytes === undefined ? "gone" : (bytes / MIB).toFixed(0);
  return `rss before/peak/after ${n(rss.beforeBytes)}/${n(rss.peakBytes)}/${n(rss.afterBytes)} MB`;
}

/** Samples one process's RSS every `intervalMs` until stopped, keeping the peak. */
export class RssWatch implements Disposable {
  readonly pid: number;
  readonly beforeBytes: number | undefined;
  #peakBytes: number;
  readonly #timer: ReturnType<typeof setInterval>;

  /** Starts sampling `pid` now. */
  constructor(pid: number, intervalMs = 100) {
    this.pid = pid;
    this.beforeBytes = readRssBytes(pid);
    this.#peakBytes = this.beforeBytes ?? 0;
    this.#timer = setInterval(() => this.sample(), intervalMs);
  }

  /** Takes one sample now; returns it. */
  sample(): number | undefined {
    const rss = readRssBytes(this.pid);
    if (rss !== undefined && rss > this.#peakBytes) this.#peakBytes = rss;
    return rss;
  }

  /** The highest RSS seen so far. */
  get peakBytes(): number {
    return this.#peakBytes;
  }

  /** Growth of the peak over the first sample, in bytes. */
  get growthBytes(): number {
    return this.#peakBytes - (this.beforeBytes ?? 0);
  }

  /** Stops sampling and returns the figures, with a last sample as "after". */
  stop(): RssFigures {
    clearInterval(this.#timer);
    const afterBytes = this.sample();
    return { beforeBytes: this.beforeBytes, peakBytes: this.#peakBytes, afterBytes };
  }

  [Symbol.dispose](): void {
    clearInterval(this.#timer);
  }
}
