// What a running fetch looks like to the user: its recent rate (not the average since the
// start, which decays to nonsense when a fetch stalls), ETA, queue places and stalls. Pure:
// the caller passes the time.
import { formatBytes, formatDuration, formatRate } from "../shared/format.ts";
import type { FetchInfo } from "./activity.ts";

/** The rate is measured over this much recent history, ms. */
const RATE_WINDOW_MS = 5000;
/** A fetch that received nothing for this long shows as stalled, ms. */
export const STALLED_AFTER_MS = 3000;

/** Recent bytes received by each fetch, to measure its current rate. */
export class RateWindows {
  readonly #samples = new Map<string, { atMs: number; bytes: number }[]>();

  /**
   * Records how much `fname` has received by `nowMs`.
   *
   * @returns bytes/s over the last few seconds (0 until two samples are apart)
   */
  sample(fname: string, receivedBytes: number, nowMs: number): number {
    const samples = this.#samples.get(fname) ?? [];
    samples.push({ atMs: nowMs, bytes: receivedBytes });
    while (samples.length > 2 && nowMs - samples[1]!.atMs >= RATE_WINDOW_MS) samples.shift();
    this.#samples.set(fname, samples);
    const first = samples[0]!;
    const seconds = (nowMs - first.atMs) / 1000;
    return seconds > 0 ? Math.max(0, receivedBytes - first.bytes) / seconds : 0;
  }

  /** Forgets a fetch that ended. */
  forget(fname: string): void {
    this.#samples.delete(fname);
  }
}

/** The fields of a progress report (the JSON event, and the TTY line's input). */
export interface ProgressFields {
  fname: string;
  doneBytes: number;
  size: number;
  percent: number;
  /** Over the last few seconds. */
  bytesPerSecond: number;
  etaSeconds: number | null;
  sources: number;
  queuedSources: number;
  /** Where this fetch waits in a source's queue: "host:port" → position. */
  queuedAt: Record<string, number>;
  /** ms since the last byte arrived, when that is long enough to call it stalled; else 0. */
  stalledMs: number;
}

/** Bytes received so far in this run, from every source. */
export function receivedBytes(info: FetchInfo): number {
  return Object.values(info.bySource).reduce((a, b) => a + b, 0);
}

/**
 * Progress of one fetch at `nowMs`.
 *
 * @param bytesPerSecond its recent rate (see RateWindows)
 */
export function progressFields(info: FetchInfo, bytesPerSecond: number, nowMs: number) {
  const silentMs = nowMs - info.lastByteAtMs;
  // Waiting in queues with no source sending is "queued", not stalled.
  const waiting = info.activeSources === 0 && Object.keys(info.queuedAt).length > 0;
  const stalledMs = !waiting && info.doneBytes < info.size && silentMs >= STALLED_AFTER_MS
    ? silentMs
    : 0;
  const rate = stalledMs > 0 ? 0 : bytesPerSecond;
  return {
    fname: info.fname,
    doneBytes: info.doneBytes,
    size: info.size,
    percent: info.size === 0 ? 100 : Math.floor(info.doneBytes * 1000 / info.size) / 10,
    bytesPerSecond: Math.round(rate),
    etaSeconds: rate > 0 ? Math.round((info.size - info.doneBytes) / rate) : null,
    sources: info.activeSources,
    queuedSources: info.queuedSources,
    queuedAt: { ...info.queuedAt },
    stalledMs,
  } satisfies ProgressFields;
}

/** "queued at host:port, position 3" for each queue the fetch waits in, or "". */
export function describeQueues(queuedAt: Record<string, number>): string {
  return Object.entries(queuedAt).map(([source, position]) =>
    `queued at ${source}, position ${position}`
  ).join("; ");
}

/** One line for a TTY. */
export function progressLine(p: ProgressFields): string {
  const head = `${p.fname} ${p.percent.toFixed(1)}% ${formatBytes(p.doneBytes)}/${
    formatBytes(p.size)
  }`;
  const queues = describeQueues(p.queuedAt);
  const state = p.stalledMs > 0
    ? `stalled for ${formatDuration(p.stalledMs)}`
    : `${formatRate(p.bytesPerSecond)} ETA ${
      p.etaSeconds === null ? "--" : formatDuration(p.etaSeconds * 1000)
    }`;
  return `${head} ${state} ${p.sources} source(s)${queues ? `, ${queues}` : ""}`;
}
