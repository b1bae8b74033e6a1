// Content identity: piece layout and root hash. Pure computation, no I/O.
//
// A file is cut into pieces of `pieceSize` bytes (the last may be shorter). Each piece has a
// SHA-256 hash; the root hash is SHA-256 over (size u64 BE || pieceSize u32 BE || piece hashes),
// so it names the bytes and their layout. An empty file has no pieces.
//
// Piece size: 1 MiB, doubled until a file has at most MAX_PIECES pieces. 1 MiB keeps a lost or
// corrupt piece cheap to refetch and spreads work across sources finely, while one request per
// MiB costs a ~100-byte frame (0.01 % overhead) and the hash list of a 1 GiB file is 32 KiB.
import { createHash } from "node:crypto";

/** Smallest piece size, in bytes. */
export const MIN_PIECE_SIZE = 1024 * 1024;
/** Most pieces a file is cut into; larger files get larger pieces (hash list ≤ 256 KiB). */
export const MAX_PIECES = 8192;
/**
 * Largest piece size the wire allows (2 GiB). Not the file size limit: a fetcher asks for one
 * whole piece per GetRange, and a Data frame carries at most `maxDataBytes` (64 MiB), so files
 * are fetchable up to 64 MiB × MAX_PIECES = 512 GiB; larger files get pieces no source can send.
 */
export const MAX_PIECE_SIZE = 2 ** 31;
/** Bytes of one piece hash. */
export const HASH_BYTES = 32;

/** Piece size used for a file of `size` bytes. */
export function pieceSizeFor(size: number): number {
  let pieceSize = MIN_PIECE_SIZE;
  while (Math.ceil(size / pieceSize) > MAX_PIECES) pieceSize *= 2;
  return pieceSize;
}

/** Number of pieces of a file of `size` bytes. */
export function pieceCount(size: number, pieceSize: number): number {
  return Math.ceil(size / pieceSize);
}

/** Length in bytes of piece `index`. */
export function pieceLength(size: number, pieceSize: number, index: number): number {
  return Math.min(pieceSize, size - index * pieceSize);
}

/** SHA-256 of `bytes`. */
export function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(bytes).digest());
}

/**
 * Root hash of a file from its concatenated piece hashes.
 *
 * @example
 * ```ts
 * import { rootHash } from "./pieces.ts";
 * const root = rootHash(0, 1048576, new Uint8Array(0));
 * if (root.length !== 64) throw new Error("hex SHA-256");
 * ```
 */
export function rootHash(size: number, pieceSize: number, pieceHashes: Uint8Array): string {
  if (!Number.isSafeInteger(pieceSize) || pieceSize < 1 || pieceSize > MAX_PIECE_SIZE) {
    throw new RangeError(
      `Cannot compute root: piece size ${pieceSize} is not 1 to ${MAX_PIECE_SIZE}`,
    );
  }
  if (pieceHashes.length !== pieceCount(size, pieceSize) * HASH_BYTES) {
    throw new RangeError(
      `Cannot compute root: ${pieceHashes.length} hash bytes for ${
        pieceCount(size, pieceSize)
      } pieces`,
    );
  }
  const prefix = new Uint8Array(12);
  const view = new DataView(prefix.buffer);
  view.setBigUint64(0, BigInt(size));
  view.setUint32(8, pieceSize);
  return new Uint8Array(createHash("sha256").update(prefix).update(pieceHashes).digest()).toHex();
}
