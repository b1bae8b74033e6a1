// Which piece each source fetches next. Pure: no I/O, no timers.
//
// Pieces are handed out in order from a per-fetch random starting point (so fetchers of one
// file spread over different pieces and can serve each other, as in a flash crowd), only to
// sources that hold them. A fast source simply asks more often, so it does more. When nothing
// is left unassigned, idle sources duplicate pieces still in flight elsewhere (endgame); the
// first copy to verify wins.
import type { Bitfield } from "../shared/bitfield.ts";

/** The piece assignment state of one fetch. */
export class PieceScheduler {
  readonly count: number;
  readonly #have: Bitfield;
  readonly #start: number;
  /** piece → sources fetching it now */
  readonly #inflight = new Map<number, Set<string>>();
  #cursor = 0;

  /**
   * @param have pieces already verified (updated in place by `complete`)
   * @param start index to hand out first (e.g. random)
   */
  constructor(have: Bitfield, start = 0) {
    this.count = have.size;
    this.#have = have;
    this.#start = this.count === 0 ? 0 : start % this.count;
  }

  /** true once every piece is verified. */
  get done(): boolean {
    return this.#have.complete;
  }

  /** Pieces neither verified nor in flight. */
  get unassigned(): number {
    let n = 0;
    for (let i = 0; i < this.count; i++) if (!this.#have.has(i) && !this.#inflight.has(i)) n++;
    return n;
  }

  /**
   * The next piece for `source`, or undefined when it has nothing useful to do now.
   *
   * @param holds whether the source holds piece i
   */
  next(source: string, holds: (i: number) => boolean): number | undefined {
    // Fresh pieces first, scanning from the cursor so the common case is O(1). The cursor
    // skips the prefix that is verified or in flight; release() moves it back.
    while (this.#cursor < this.count) {
      const i = (this.#start + this.#cursor) % this.count;
      if (!this.#have.has(i) && !this.#inflight.has(i)) break;
      this.#cursor++;
    }
    for (let step = 0; this.#cursor + step < this.count; step++) {
      const k = (this.#cursor + step) % this.count;
      const i = (this.#start + k) % this.count;
      if (this.#have.has(i) || this.#inflight.has(i) || !holds(i)) continue;
      this.#inflight.set(i, new Set([source]));
      return i;
    }
    // Endgame: duplicate the in-flight piece with the fewest fetchers that this source lacks.
    let best: number | undefined;
    let fewest = Infinity;
    for (const [i, sources] of this.#inflight) {
      if (sources.has(source) || !holds(i) || sources.size >= 2) continue;
      if (sources.size < fewest) {
        best = i;
        fewest = sources.size;
      }
    }
    if (best !== undefined) this.#inflight.get(best)!.add(source);
    return best;
  }

  /** Whether piece i is still wanted (not verified by another source meanwhile). */
  wanted(i: number): boolean {
    return !this.#have.has(i);
  }

  /** Piece i verified; returns false if another source verified it first. */
  complete(i: number): boolean {
    this.#inflight.delete(i);
    if (this.#have.has(i)) return false;
    this.#have.set(i);
    return true;
  }

  /** `source` will not deliver piece i (failed, dropped or bad): back to the pool. */
  release(i: number, source: string): void {
    const sources = this.#inflight.get(i);
    if (!sources) return;
    sources.delete(source);
    if (sources.size === 0) {
      this.#inflight.delete(i);
      // Let the cursor revisit it.
      const k = ((i - this.#start) % this.count + this.count) % this.count;
      if (k < this.#cursor) this.#cursor = k;
    }
  }
}
