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
  const fetchers = new Set([self]);
  for (const source of sources) {
    if (source.have === undefined) {
      for (let i = 0; i < pieces; i++) holders[i]!++;
      continue;
    }
    fetchers.add(`${source.hostname}:${source.port}`);
    let have: Bitfield;
    try {
      have = Bitfield.fromBase64(pieces, source.have);
    } catch (err) {
      // A wrong length or invalid base64: not a bitfield.
      if (err instanceof RangeError) continue;
      throw err;
    }
    for (let i = 0; i < pieces; i++) {
      if (have.has(i)) {
        holders[i]!++;
        partialHolders[i]!++;
      }
    }
  }
  const ranked = [...fetchers].sort();
  return { holders, partialHolders, stripes: ranked.length, stripe: ranked.indexOf(self) };
}
