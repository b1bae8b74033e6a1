// Which piece each source fetches next. Pure: no I/O, no timers.
//
// Pieces go rarest first: the fewest known holders (from the index's who-has, refreshed every
// quarter second) win, and ties follow a random permutation seeded per fetch, so fetchers of
// one file hold different pieces and can trade them (a flash crowd spreads as in BitTorrent).
// While some pieces exist on no fetcher yet, a complete source (the seeder) is asked first for
// such pieces in this fetcher's stripe (piece index mod the number of fetchers), so the seeder's
// uplink, the bottleneck, sends each piece about once. That is a preference, never a refusal: a
// seeder connection that refused other stripes idled while holding one of the seeder's few
// slots, and the fetcher owning that stripe could not get one (issue 10: a swarm deadlock). A fast source asks more
// often, so it does more. Only when every piece is verified or in flight do idle sources
// duplicate in-flight pieces (endgame); the first copy to verify wins.
import type { Bitfield } from "../shared/bitfield.ts";

/** Score added, in the injection phase, to a seeder piece of another fetcher's stripe. */
const INJECTION_STRIPE_PENALTY = 1 << 20;
/** Score added, in the injection phase, to a seeder piece some fetcher already holds. */
const INJECTION_SPREAD_PENALTY = 1 << 21;

/** The piece assignment state of one fetch. */
export class PieceScheduler {
  readonly count: number;
  readonly #have: Bitfield;
  /** A random permutation of the pieces (tie-break order) and each piece's place in it. */
  readonly #order: Uint32Array;
  readonly #rank: Uint32Array;
  /** piece → sources fetching it now */
  readonly #inflight = new Map<number, Set<string>>();
  /** Place in #order before which every piece is verified or in flight. */
  #cursor = 0;
  #holders: Uint16Array | undefined;
  #partialHolders: Uint16Array | undefined;
  /** Pieces not verified here that no other fetcher holds yet. */
  #notInSwarm = 0;
  #stripes = 1;
  #stripe = 0;

  /**
   * @param have pieces already verified (updated in place by `complete`)
   * @param seed seeds the tie-break permutation (e.g. random per fetch)
   */
  constructor(have: Bitfield, seed = 0) {
    this.count = have.size;
    this.#have = have;
    this.#order = new Uint32Array(this.count);
    this.#rank = new Uint32Array(this.count);
    for (let i = 0; i < this.count; i++) this.#order[i] = i;
    const random = mulberry32(seed);
    for (let i = this.count - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      const swap = this.#order[i]!;
      this.#order[i] = this.#order[j]!;
      this.#order[j] = swap;
    }
    for (let k = 0; k < this.count; k++) this.#rank[this.#order[k]!] = k;
  }

  /**
   * Tells who holds what: per piece, how many known sources hold it and how many of those are
   * other fetchers (partial sources); and this fetcher's place among `stripes` fetchers.
   */
  setSwarm(
    holders: Uint16Array,
    partialHolders: Uint16Array,
    stripes: number,
    stripe: number,
  ): void {
    this.#holders = holders;
    this.#partialHolders = partialHolders;
    this.#stripes = Math.max(1, stripes);
    this.#stripe = stripe;
    let n = 0;
    for (let i = 0; i < this.count; i++) if (!this.#have.has(i) && partialHolders[i] === 0) n++;
    this.#notInSwarm = n;
  }

  /** true once every piece is verified. */
  get done(): boolean {
    return this.#have.complete;
  }

  /** Pieces neither verified nor in flight. */
  get unassigned(): number {
    // In-flight pieces are never verified ones: complete() takes them out of the map.
    return this.count - this.#have.count - this.#inflight.size;
  }

  /**
   * The next piece for `source`, or undefined when it has nothing useful to do now.
   *
   * @param holds whether the source holds piece i
   * @param complete whether the source holds every piece (a seeder)
   */
  next(source: string, holds: (i: number) => boolean, complete = false): number | undefined {
    // Fresh pieces first, scanning from the cursor so the common case is O(1). The cursor
    // skips the prefix that is verified or in flight; release() moves it back.
    while (this.#cursor < this.count) {
      const i = this.#order[this.#cursor]!;
      if (!this.#have.has(i) && !this.#inflight.has(i)) break;
      this.#cursor++;
    }
    // Rarest first: of the fresh pieces this source holds, one the fewest known sources hold;
    // ties go to this fetch's random order, so fetchers pick different pieces.
    let rarest: number | undefined;
    let fewestHolders = Infinity;
    for (let step = 0; this.#cursor + step < this.count; step++) {
      const i = this.#order[this.#cursor + step]!;
      if (this.#have.has(i) || this.#inflight.has(i) || !holds(i)) continue;
      const holders = this.#holders?.[i] ?? 0;
      const mine = i % this.#stripes === this.#stripe;
      let score = holders * 2 + (mine ? 0 : 1);
      if (complete && this.#stripes > 1 && this.#notInSwarm > 0) {
        // Injection phase: the seeder's upload is the bottleneck; spend it on new pieces of
        // this stripe first, then other new pieces, then pieces fetchers already hold.
        if ((this.#partialHolders?.[i] ?? 0) > 0) score += INJECTION_SPREAD_PENALTY;
        else if (!mine) score += INJECTION_STRIPE_PENALTY;
      }
      if (score < fewestHolders) {
        rarest = i;
        fewestHolders = score;
        if ((holders <= 1 && mine) || this.#holders === undefined) break;
      }
    }
    if (rarest !== undefined) {
      this.#inflight.set(rarest, new Set([source]));
      return rarest;
    }
    // Endgame only when every piece is verified or in flight: a partial source that merely
    // holds nothing fresh waits rather than duplicating work other sources are doing.
    if (this.unassigned > 0) return undefined;
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
      const k = this.#rank[i]!;
      if (k < this.#cursor) this.#cursor = k;
    }
  }
}

/** A small seeded PRNG (mulberry32): the same seed gives the same piece order. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
