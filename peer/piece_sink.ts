// Where the pieces of one fetch go: the scheduler hands them out, the partial file verifies and
// stores what arrives, and the fetch's counters show the progress. Gives each source connection
// its hooks. No sockets here: the connections are the source pool's.
import type { FetchInfo } from "./activity.ts";
import type { PartialDownload } from "./partial.ts";
import type { TokenBucket } from "./rate.ts";
import { PieceScheduler } from "./scheduler.ts";
import type { SourceHooks } from "./source.ts";

/** What a piece sink needs from its fetch. */
export interface PieceSinkOptions {
  /** The fetch's live counters: done bytes and bytes by source are kept here. */
  info: FetchInfo;
  /** The download rate limit. */
  download: TokenBucket;
  /** The fetch is over once aborted. */
  signal: AbortSignal;
  /** Called after each verified piece is stored. */
  stored(): void;
}

/** The pieces of one fetch, and the hooks its source connections use. */
export class PieceSink {
  readonly scheduler: PieceScheduler;
  readonly partial: PartialDownload;
  readonly #options: PieceSinkOptions;
  /** Pieces being verified and written (not yet counted as verified). */
  readonly #storing = new Set<number>();
  #changed = Promise.withResolvers<void>();
  /** Bytes received in this run, from every source. */
  fetchedBytes = 0;

  /**
   * @param partial the partial file, with the pieces already verified
   * @param options counters, limits and callbacks of the fetch
   */
  constructor(partial: PartialDownload, options: PieceSinkOptions) {
    this.partial = partial;
    this.#options = options;
    // A random tie-break order per fetch, so that fetchers of one file hold different pieces.
    this.scheduler = new PieceScheduler(partial.have, Math.floor(Math.random() * 2 ** 32));
  }

  /** Resolves at the next change: a piece stored or released, a connection ended, new sources. */
  get changed(): Promise<void> {
    return this.#changed.promise;
  }

  /** Wakes whoever waits on `changed`. */
  notify(): void {
    const old = this.#changed;
    this.#changed = Promise.withResolvers<void>();
    old.resolve();
  }

  /**
   * The hooks of the connection to source `key`.
   *
   * @param isComplete whether that source holds every piece (asked afresh each time)
   */
  hooks(key: string, isComplete: () => boolean): SourceHooks {
    const { scheduler, partial } = this;
    const { info, signal } = this.#options;
    return {
      next: (holds) => scheduler.next(key, holds, isComplete()),
      wanted: (i) => scheduler.wanted(i) && !this.#storing.has(i),
      deliver: async (i, bytes) => {
        // Two sources may bring the same piece in the endgame: the first one stores it.
        if (!scheduler.wanted(i) || this.#storing.has(i)) return true;
        this.#storing.add(i);
        try {
          if (!await partial.storePiece(i, bytes)) return false;
        } finally {
          this.#storing.delete(i);
        }
        scheduler.complete(i);
        info.doneBytes += bytes.length;
        this.#options.stored();
        this.notify();
        return true;
      },
      release: (i) => {
        scheduler.release(i, key);
        this.notify();
      },
      changed: () => this.#changed.promise,
      finished: () => scheduler.done || signal.aborted,
      received: (bytes) => {
        info.bySource[key] = (info.bySource[key] ?? 0) + bytes;
        info.lastByteAtMs = Date.now();
        this.fetchedBytes += bytes;
      },
      throttle: (bytes) => this.#options.download.take(bytes),
      queued: () => {},
    };
  }
}
