// Frames and entries the attacks send, built with the project's own encoder. Pure: no I/O.
import { encodeMessage, request } from "../shared/encode.ts";
import type { Bodies, MsgType, SignedFileEntry } from "../shared/protocol.ts";

/**
 * One request frame from the project's encoder, copied out of its shared slab so that it can
 * be kept and joined with others.
 */
export function frame<T extends MsgType>(type: T, requestId: number, body: Bodies[T]): Uint8Array {
  return encodeMessage(request(type, requestId, body)).slice();
}

/** The concatenation of `parts`, for sending several frames in one write. */
export function joinBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * A made-up but well-formed file entry. The index checks neither root hashes nor publish
 * signatures (fetchers do), so a signature of zeros passes it.
 */
export function fakeEntry(fname: string, size = 1): SignedFileEntry {
  return {
    fname,
    size,
    mtimeMs: 0,
    rootHash: "ab".repeat(32),
    pieceSize: 1024 * 1024,
    sig: ZERO_SIG,
  };
}

/** A well-formed Ed25519 signature (64 bytes) that verifies under no key. */
export const ZERO_SIG = new Uint8Array(64).toBase64();
