// What the index says about the swarm of one fetch, as the piece scheduler needs it. Pure.
import { Bitfield } from "../shared/bitfield.ts";
import type { SourceInfo } from "../shared/protocol.ts";

/** Per-piece holder counts and this fetcher's stripe, for `PieceScheduler.setSwarm()`. */
export interface SwarmView {
  /** Per piece: the listed sources holding it. */
  holders: Uint16Array;
  /** Per piece: the listed partial sources (other fetchers) holding it. */
  partialHolders: Uint16Array;
  /** Fetchers of this content, this one included. */
  stripes: number;
  /** This fetcher's place among them. */
  stripe: number;
  /**
   * Per stripe: how many of its pieces (index mod `stripes`) the fetcher owning it holds; 0 for
   * this fetcher's own stripe. Whether that grows tells whether the owner is being served.
   */
  ownerHeld: Uint32Array;
}

/**
 * Counts who holds each piece, and ranks the fetchers (partial sources, and `self`) by
 * "hostname:port" so that each one knows its stripe. A source whose have bitfield is malformed
 * counts for nothing.
 *
 * @param sources the index's sources of this content
 * @param pieces the content's piece count
 * @param self this peer as "hostname:port"
 */
export function swarmView(sources: readonly SourceInfo[], pieces: number, self: string): SwarmView {
  const holders = new Uint16Array(pieces);
  const partialHolders = new Uint16Array(pieces);
  /** Every fetcher by "hostname:port", with its pieces when its bitfield is well formed. */
  const fetchers = new Map<string, Bitfield | undefined>([[self, undefined]]);
  for (const source of sources) {
    if (source.have === undefined) {
      for (let i = 0; i < pieces; i++) holders[i]!++;
      continue;
    }
    const key = `${source.hostname}:${source.port}`;
    let have: Bitfield;
    try {
      have = Bitfield.fromBase64(pieces, source.have);
    } catch (err) {
      // A wrong length or invalid base64: not a bitfield.
      if (err instanceof RangeError) {
        if (!fetchers.has(key)) fetchers.set(key, undefined);
        continue;
      }
      throw err;
    }
    fetchers.set(key, have);
    for (let i = 0; i < pieces; i++) {
      if (have.has(i)) {
        holders[i]!++;
        partialHolders[i]!++;
      }
    }
  }
  const ranked = [...fetchers.keys()].sort();
  const stripes = ranked.length;
  const ownerHeld = new Uint32Array(stripes);
  for (const [k, key] of ranked.entries()) {
    const have = fetchers.get(key);
    if (have === undefined) continue;
    for (let i = k; i < pieces; i += stripes) if (have.has(i)) ownerHeld[k]!++;
  }
  return { holders, partialHolders, stripes, stripe: ranked.indexOf(self), ownerHeld };
}
