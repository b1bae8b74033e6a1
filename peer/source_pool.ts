// The sources of one fetch: which to connect to, the connections open now, what failed and why.
// Each connection holds a local download slot only while the source admits it (never while it
// waits in the source's queue), and ends when it fails, is dropped as slow, or has nothing to do;
// the pool then releases its slot. It knows nothing of pieces: the fetch supplies `run`.
import { formatRate } from "../shared/format.ts";
import { logger } from "../shared/log.ts";
import type { SourceInfo } from "../shared/protocol.ts";
import type { FetchInfo } from "./activity.ts";
import type { SlotLease, Slots } from "./slots.ts";
import { type OpenParams, SourceConnection, SourceError, sourceKey } from "./source.ts";

const log = logger("peer", "pool");

/**
 * A source delivering less than this while it has requests outstanding, with other sources
 * working, is dropped and its pieces go to the others, bytes/s.
 */
export const MIN_SOURCE_RATE = 64 * 1024;
/** Shortest span a source's rate is judged over, ms: a fair share of a busy seeder is bursty. */
const RATE_WINDOW_MS = 3000;
/**
 * Longest a Busy answer's retryAfterMs keeps a source aside, ms: the source's wish is honoured,
 * but a source (or an attacker in its place) cannot park a fetch for longer than this.
 */
export const MAX_RETRY_AFTER_MS = 30_000;

/** An admitted connection and the local slot it holds. */
export interface OpenSource {
  conn: SourceConnection;
  lease: SlotLease;
}

/** What a source pool needs from its fetch. */
export interface SourcePoolOptions {
  slots: Slots;
  /** Aborts every connection and wait of the pool. */
  signal: AbortSignal;
  /** Most connections at once. */
  maxSources: number;
  /** What to ask a source for when opening a connection. */
  open: OpenParams & { rootHash: string };
  /** The fetch's live counters (active and queued sources, bytes by source). */
  info: FetchInfo;
  /** Uses an admitted connection until it has nothing more to do; throws SourceError. */
  run(conn: SourceConnection): Promise<void>;
  /** Called whenever a connection ends. */
  ended(): void;
}

type SourceState = "active" | "busy" | "bad" | "gone";

/** The connections of one fetch to its sources. */
export class SourcePool {
  readonly #options: SourcePoolOptions;
  readonly #states = new Map<string, SourceState>();
  readonly #workers = new Set<Promise<void>>();
  /** Sources whose BUSY answer was logged already. */
  readonly #busyLogged = new Set<string>();
  /** Busy sources and when they asked to be tried again (performance.now() ms). */
  readonly #notBefore = new Map<string, number>();
  /** Open connections, and the bytes each had delivered at the last rate check. */
  readonly #connections = new Map<string, { conn: SourceConnection; bytesAtCheck: number }>();
  #lastRateCheck = performance.now();
  /** Sources dropped for sending corrupt data, in order. */
  readonly badSources: string[] = [];
  /** The last failure, for the fetch's error message. */
  lastError = "";

  /** @param options what the pool works for */
  constructor(options: SourcePoolOptions) {
    this.#options = options;
  }

  /** What the pool asks sources for when it opens a connection. */
  get openParams(): SourcePoolOptions["open"] {
    return this.#options.open;
  }

  /** Connections working now. */
  get working(): number {
    return this.#workers.size;
  }

  /** Whether the source was dropped for corrupt data. */
  isBad(source: SourceInfo): boolean {
    return this.#states.get(sourceKey(source)) === "bad";
  }

  /**
   * How long until the first source set aside by a Busy answer may be tried again, ms; 0 when
   * none is set aside. A fetch with nothing else to do waits this long before its next round.
   */
  retryInMs(): number {
    const now = performance.now();
    let soonest = Infinity;
    for (const [key, at] of this.#notBefore) {
      if (at <= now) this.#notBefore.delete(key);
      else soonest = Math.min(soonest, at - now);
    }
    return soonest === Infinity ? 0 : Math.ceil(soonest);
  }

  /** Whether `key` answered Busy and asked to be left alone a while longer. */
  #heldBack(key: string): boolean {
    const at = this.#notBefore.get(key);
    if (at === undefined) return false;
    if (at > performance.now()) return true;
    this.#notBefore.delete(key);
    return false;
  }

  /** The open connection to `key`, if any. */
  connection(key: string): SourceConnection | undefined {
    return this.#connections.get(key)?.conn;
  }

  /**
   * Opens a connection to the first source whose description `check` accepts (undefined), for
   * a fetch that does not know the content's piece hashes yet.
   *
   * @param check a problem with the source's Info; that source is dropped as bad
   */
  async describe(
    sources: readonly SourceInfo[],
    check: (conn: SourceConnection) => Promise<string | undefined>,
  ): Promise<OpenSource | undefined> {
    for (const source of sources) {
      if (this.isBad(source) || this.#options.signal.aborted) continue;
      const key = sourceKey(source);
      if (this.#heldBack(key)) continue;
      let opened: OpenSource;
      try {
        opened = await this.#open(source);
      } catch (err) {
        this.#noteFailure(key, err);
        continue;
      }
      const problem = await check(opened.conn).catch((err) => {
        opened.conn.close();
        opened.lease.release();
        throw err;
      });
      if (problem === undefined) return opened;
      opened.conn.close();
      opened.lease.release();
      this.#markBad(key, problem);
    }
    return undefined;
  }

  /** Starts connections to sources not in use, up to the limit; `first` is used as it is. */
  launch(sources: readonly SourceInfo[], first?: OpenSource): void {
    if (first) this.#spawn(first.conn.source, first);
    for (const source of sources) {
      if (this.#active() >= this.#options.maxSources) break;
      const key = sourceKey(source);
      const state = this.#states.get(key);
      if (state === "active" || state === "bad" || this.#heldBack(key)) continue;
      this.#spawn(source, undefined);
    }
  }

  /** Resolves when a connection ends or `changed` settles. */
  async settle(changed: Promise<void>): Promise<void> {
    await Promise.race([...this.#workers, changed]);
  }

  /** Waits for every connection to end (after the signal aborted them). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.#workers]);
  }

  #active(): number {
    let n = 0;
    for (const state of this.#states.values()) if (state === "active") n++;
    return n;
  }

  #spawn(source: SourceInfo, opened: OpenSource | undefined): void {
    this.#states.set(sourceKey(source), "active");
    const worker = this.#work(source, opened).finally(() => this.#workers.delete(worker));
    this.#workers.add(worker);
  }

  /**
   * Connects with a local slot, waiting for one if needed. While the source keeps us in its
   * queue the slot is given back: a wait there transfers nothing, and holding the slot blocked
   * this peer's uploads, so others' fetches, which could in turn hold the slots we waited for.
   * Once admitted, a slot must be free at once, else the connection is closed (busy: retried
   * later) rather than holding the source's slot while waiting for ours.
   */
  async #open(source: SourceInfo): Promise<OpenSource> {
    const { slots, signal, info } = this.#options;
    const key = sourceKey(source);
    let lease: SlotLease | undefined = await slots.acquireDownload(key, signal);
    let queued = false;
    try {
      const conn = await SourceConnection.open(source, this.#options.open, {
        queued: (position) => {
          info.queuedAt[key] = position;
          if (queued) return;
          queued = true;
          info.queuedSources++;
          lease?.release();
          lease = undefined;
        },
      }, signal);
      lease ??= slots.tryAcquireDownload(key);
      if (!lease) {
        conn.close();
        throw new SourceError(
          "busy",
          `Cannot fetch from ${key}: admitted from its queue, but no local transfer slot is free`,
        );
      }
      return { conn, lease };
    } catch (err) {
      lease?.release();
      throw err;
    } finally {
      if (queued) info.queuedSources--;
      delete info.queuedAt[key];
    }
  }

  async #work(source: SourceInfo, opened: OpenSource | undefined): Promise<void> {
    const key = sourceKey(source);
    const { info, signal } = this.#options;
    let open = opened;
    try {
      open ??= await this.#open(source);
      const conn = open.conn;
      info.activeSources++;
      this.#connections.set(key, { conn, bytesAtCheck: info.bySource[key] ?? 0 });
      const onAbort = () => conn.close();
      signal.addEventListener("abort", onAbort, { once: true });
      try {
        await this.#options.run(conn);
      } finally {
        this.#connections.delete(key);
        info.activeSources--;
        signal.removeEventListener("abort", onAbort);
      }
      this.#states.set(key, "gone"); // done for now; may be asked again
    } catch (err) {
      if (!signal.aborted) this.#noteFailure(key, err);
      else this.#states.set(key, "gone");
    } finally {
      open?.conn.close();
      open?.lease.release();
      this.#options.ended();
    }
  }

  /**
   * Drops working sources that deliver less than MIN_SOURCE_RATE while others work; judged
   * over RATE_WINDOW_MS at least. The only complete source is never dropped: slow as it may
   * be, the others may lack pieces.
   */
  dropSlowSources(): void {
    const now = performance.now();
    const seconds = (now - this.#lastRateCheck) / 1000;
    if (seconds * 1000 < RATE_WINDOW_MS) return;
    this.#lastRateCheck = now;
    const bySource = this.#options.info.bySource;
    const complete = [...this.#connections.values()].filter((c) => c.conn.have === undefined);
    const working = [...this.#connections].filter(([, c]) =>
      c.conn.outstanding > 0 && !(complete.length === 1 && complete[0] === c)
    );
    for (const [key, entry] of working) {
      const bytes = bySource[key] ?? 0;
      const rate = (bytes - entry.bytesAtCheck) / seconds;
      entry.bytesAtCheck = bytes;
      if (working.length > 1 && rate < MIN_SOURCE_RATE && entry.conn.outstanding > 0) {
        log.warn("Dropping slow source {key} for {fname}: {rate}", {
          key,
          fname: this.#options.open.fname,
          rate: formatRate(rate),
        });
        entry.conn.close();
      }
    }
  }

  #noteFailure(key: string, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.lastError = message;
    if (err instanceof SourceError && err.kind === "bad") {
      this.#markBad(key, message);
      return;
    }
    const busy = err instanceof SourceError && err.kind === "busy";
    this.#states.set(key, busy ? "busy" : "gone");
    const retryAfterMs = busy ? err.retryAfterMs ?? 0 : 0;
    if (retryAfterMs > 0) {
      this.#notBefore.set(key, performance.now() + Math.min(retryAfterMs, MAX_RETRY_AFTER_MS));
    }
    // A busy source is asked again every refresh: say so once per fetch, not 4 times a second.
    const repeated = busy && this.#busyLogged.has(key);
    if (busy) this.#busyLogged.add(key);
    const fields = { key, fname: this.#options.open.fname, error: message };
    if (repeated) log.debug("Source {key} for {fname} failed: {error}", fields);
    else log.warn("Source {key} for {fname} failed: {error}", fields);
  }

  #markBad(key: string, reason: string): void {
    this.#states.set(key, "bad");
    if (!this.badSources.includes(key)) this.badSources.push(key);
    this.lastError = reason;
    log.error("Dropping source {key} for the rest of the fetch of {fname}: {reason}", {
      key,
      fname: this.#options.open.fname,
      reason,
    });
  }
}
