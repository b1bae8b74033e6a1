// The digest of a peer's published set: what the index holds for one session, as one hash. A
// peer sends the digest of what it last published successfully in its Hello; the index compares
// it with the digest of the entries it kept for that device, and keeps them when both agree
// (docs/PROTOCOL.md, "Resuming a session"). Pure: no I/O.
import { createHash } from "node:crypto";
import { compareBytewise } from "./compare_bytewise.ts";
import type { FileEntry } from "./protocol.ts";

/** Domain separation: a digest of some other list of lines never equals a shares digest. */
const PREFIX = "lanshare shares v1\n";

/**
 * SHA-256, in 64 lowercase hex digits, over every field the index stores of each entry
 * (fname, size, mtimeMs, rootHash, pieceSize, have, sig), in a canonical order: entries sorted
 * by fname in UTF-8 byte order (fnames are unique within a session), each written as the JSON
 * array `[fname, size, mtimeMs, rootHash, pieceSize, have, sig]` (`null` for an absent `have`
 * or `sig`) and a line feed, after the line `lanshare shares v1`. Fields beyond these (a
 * decoded body may carry more) are ignored, as the index ignores them.
 *
 * Synchronous (node:crypto): the index computes it inside a store operation that must not
 * yield.
 *
 * @param entries one session's entries, in any order
 */
export function sharesDigest(entries: Iterable<FileEntry>): string {
  const sorted = [...entries].sort((a, b) => compareBytewise(a.fname, b.fname));
  // One string, hashed in one call: a call per line took 1.5 times as long (0.8 s against
  // 0.53 s for 10,000 sets of 100 here, which a restarted index computes as its peers return).
  let text = PREFIX;
  for (const e of sorted) {
    text += JSON.stringify([
      e.fname,
      e.size,
      e.mtimeMs,
      e.rootHash,
      e.pieceSize,
      e.have ?? null,
      e.sig ?? null,
    ]) + "\n";
  }
  return createHash("sha256").update(text).digest("hex");
}
