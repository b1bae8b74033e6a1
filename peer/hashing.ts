// Piece hashing of files in the repository. Reads synchronously in piece-size blocks (on Deno a
// synchronous read loop with large buffers measured fastest: no thread-pool hop per read, while
// `file.readable` yields 64 KiB chunks) and yields to the event loop between pieces so the peer
// keeps serving while it hashes.
import { HASH_BYTES, pieceCount, pieceSizeFor, rootHash } from "../shared/pieces.ts";
import { createHash } from "node:crypto";

/** The content identity of one file. */
export interface FileHashes {
  size: number;
  mtimeMs: number;
  pieceSize: number;
  /** Concatenated SHA-256 piece hashes. */
  pieceHashes: Uint8Array;
  rootHash: string;
}

/** Progress callback: bytes hashed so far of `size`. */
export type HashProgress = (hashedBytes: number, size: number) => void;

/**
 * Hashes a file piece by piece.
 *
 * @throws {Error} "Cannot hash …: file changed while hashing" when size or mtime moved
 */
export async function hashFile(path: string, onProgress?: HashProgress): Promise<FileHashes> {
  using file = await Deno.open(path, { read: true });
  const before = await file.stat();
  const size = before.size;
  const pieceSize = pieceSizeFor(size);
  const count = pieceCount(size, pieceSize);
  const pieceHashes = new Uint8Array(count * HASH_BYTES);
  const buffer = new Uint8Array(pieceSize);
  for (let index = 0; index < count; index++) {
    const length = Math.min(pieceSize, size - index * pieceSize);
    let filled = 0;
    while (filled < length) {
      const n = file.readSync(buffer.subarray(filled, length));
      if (n === null) throw new Error(`Cannot hash ${path}: file shrank while hashing`);
      filled += n;
    }
    pieceHashes.set(
      createHash("sha256").update(buffer.subarray(0, length)).digest(),
      index * HASH_BYTES,
    );
    onProgress?.((index + 1) * pieceSize > size ? size : (index + 1) * pieceSize, size);
    if (index % 16 === 15) await new Promise((resolve) => setTimeout(resolve, 0));
  }
  const after = await file.stat();
  const mtimeMs = after.mtime?.getTime() ?? 0;
  if (after.size !== size || mtimeMs !== (before.mtime?.getTime() ?? 0)) {
    throw new Error(`Cannot hash ${path}: file changed while hashing`);
  }
  return {
    size,
    mtimeMs,
    pieceSize,
    pieceHashes,
    rootHash: rootHash(size, pieceSize, pieceHashes),
  };
}
