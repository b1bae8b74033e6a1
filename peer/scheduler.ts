// Which piece each source fetches next. Pure: no I/O, no timers.
//
// Pieces go rarest first: the fewest known holders (from the index's who-has, refreshed every
// quarter second) win, and ties follow a random permutation seeded per fetch, so fetchers of
// one file hold different pieces and can trade them (a flash crowd spreads as in BitTorrent).
// While some pieces exist on no fetcher yet (injection), a complete source (the seeder) is asked
// only for such pieces, and only for this fetcher's stripe (piece index mod the number of
// fetchers), lowest index first, so the seeder's uplink, the bottleneck, sends each piece once.
// A stripe is another fetcher's only while that fetcher is being served: once its share of the
// swarm stops growing for STRIPE_STALL_MS, the others take its stripe from the top down (the
// owner works from the bottom up, so they meet only at its last pieces). Taking other stripes
// at once sent pieces twice (the owner's in-flight pieces are not in the who-has yet); refusing
// them for good let connections idle on the seeder's few slots while the owner of the missing
// stripe had none (issue 10: a swarm deadlock). A fast source asks more often, so it does more.
// Only when every piece is verified or in flight do idle sources duplicate in-flight pieces
// (endgame); the first copy to verify wins.
import type { Bitfield } from "../shared/bitfield.ts";
import type { SwarmView } from "./swarm.ts";

/**
 * ms a fetcher may go without gaining a piece of its stripe before the others ask the seeder
 * for that stripe: several of its pieces at a fair share of a busy seeder, plus the who-has lag.
 */
export const STRIPE_STALL_MS = 2000;

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
  /** Per stripe: pieces of it its owner held at the last view, and when that last grew. */
  #ownerHeld: Uint32Array | undefined;
  #ownerGrewAtMs = new Float64Array(0);
  /** Per stripe: its owner has not gained a piece of it for STRIPE_STALL_MS. */
  #stalled = new Uint8Array(0);

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
   * other fetchers (partial sources); this fetcher's place among the fetchers, and how far each
   * stripe's owner has got.
   *
   * @param nowMs the time of this view (any monotonic clock), to tell a stalled stripe
   */
  setSwarm(view: SwarmView, nowMs: number): void {
    const stripes = Math.max(1, view.stripes);
    const renumbered = this.#ownerHeld === undefined || stripes !== this.#stripes ||
      view.stripe !== this.#stripe;
    this.#holders = view.holders;
    this.#partialHolders = view.partialHolders;
    this.#stripes = stripes;
    this.#stripe = view.stripe;
    if (renumbered) {
      // New owners: each gets a full STRIPE_STALL_MS from now.
      this.#ownerHeld = new Uint32Array(stripes);
      this.#ownerGrewAtMs = new Float64Array(stripes).fill(nowMs);
      this.#stalled = new Uint8Array(stripes);
    }
    const held = this.#ownerHeld!;
    for (let k = 0; k < stripes; k++) {
      const now = view.ownerHeld[k] ?? 0;
      if (now > held[k]!) this.#ownerGrewAtMs[k] = nowMs;
      held[k] = now;
      this.#stalled[k] = k !== this.#stripe && nowMs - this.#ownerGrewAtMs[k]! >= STRIPE_STALL_MS
        ? 1
        : 0;
    }
    let n = 0;
    for (let i = 0; i < this.count; i++) if (this.#unspread(i)) n++;
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
    const injected = complete && this.#stripes > 1 && this.#notInSwarm > 0
      ? this.#nextInjected(holds)
      : this.#nextRarest(holds);
    if (injected !== undefined) {
      this.#inflight.set(injected, new Set([source]));
      return injected;
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

  /**
   * Injection, from a complete source: this fetcher's stripe, lowest index first; then the
   * stripe of a stalled fetcher, from the top. A helper skips as many pieces there as it is
   * stripes away, less one, so that helpers with the same view take different pieces. Nothing
   * else: a piece of a served stripe or on some fetcher already would cross the seeder twice.
   */
  #nextInjected(holds: (i: number) => boolean): number | undefined {
    const stripes = this.#stripes;
    const fresh = (i: number) => this.#unspread(i) && !this.#inflight.has(i) && holds(i);
    for (let i = this.#stripe; i < this.count; i += stripes) if (fresh(i)) return i;
    for (let away = 1; away < stripes; away++) {
      const k = (this.#stripe + away) % stripes;
      if (this.#stalled[k] !== 1) continue;
      let skip = away - 1;
      let taken: number | undefined;
      const top = k + Math.floor((this.count - 1 - k) / stripes) * stripes;
      for (let i = top; i >= 0; i -= stripes) {
        if (!fresh(i)) continue;
        taken = i;
        if (skip-- === 0) break;
      }
      if (taken !== undefined) return taken;
    }
    return undefined;
  }

  /** Rarest first, ties in this fetch's random order; undefined when nothing fresh is held. */
  #nextRarest(holds: (i: number) => boolean): number | undefined {
    // Scan from the cursor so the common case is O(1). The cursor skips the prefix that is
    // verified or in flight; release() moves it back.
    while (this.#cursor < this.count) {
      const i = this.#order[this.#cursor]!;
      if (!this.#have.has(i) && !this.#inflight.has(i)) break;
      this.#cursor++;
    }
    let rarest: number | undefined;
    let fewestHolders = Infinity;
    for (let step = 0; this.#cursor + step < this.count; step++) {
      const i = this.#order[this.#cursor + step]!;
      if (this.#have.has(i) || this.#inflight.has(i) || !holds(i)) continue;
      const holders = this.#holders?.[i] ?? 0;
      const mine = i % this.#stripes === this.#stripe;
      const score = holders * 2 + (mine ? 0 : 1);
      if (score < fewestHolders) {
        rarest = i;
        fewestHolders = score;
        if ((holders <= 1 && mine) || this.#holders === undefined) break;
      }
    }
    return rarest;
  }

  /** Whether piece i is on no fetcher yet: neither verified here nor held by another. */
  #unspread(i: number): boolean {
    return !this.#have.has(i) && (this.#partialHolders?.[i] ?? 0) === 0;
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
