// sharesDigest(): one hash per published set, the same in any order, different for any change
// of a stored field.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { FileEntry } from "../../shared/protocol.ts";
import { sharesDigest } from "../../shared/shares_digest.ts";

function entry(fname: string, extra: Partial<FileEntry> = {}): FileEntry {
  return {
    fname,
    size: 1234,
    mtimeMs: 1_700_000_000_000,
    rootHash: "ab".repeat(32),
    pieceSize: 65536,
    sig: new Uint8Array(64).fill(7).toBase64(),
    ...extra,
  };
}

/** `e` without one of its optional fields. */
function without(e: FileEntry, field: "have" | "sig"): FileEntry {
  const copy = { ...e };
  delete copy[field];
  return copy;
}

const SET = [
  entry("b.txt"),
  entry("a.txt", { have: "gA==" }),
  entry("\u{1F600}.txt"), // above U+FFFF: a surrogate pair in UTF-16
  entry("\uFF01.txt"), // U+FF01: sorts before the pair in UTF-8, after it in UTF-16
  without(entry("c.txt"), "sig"),
];

Deno.test("sharesDigest() is 64 lowercase hex digits, and the documented hash of the lines", () => {
  const digest = sharesDigest(SET);
  assert.match(digest, /^[0-9a-f]{64}$/);
  // docs/PROTOCOL.md: the prefix line, then one JSON array per entry in UTF-8 byte order.
  const lines = [
    "lanshare shares v1\n",
    ...["a.txt", "b.txt", "c.txt", "\uFF01.txt", "\u{1F600}.txt"].map((fname) => {
      const e = SET.find((s) => s.fname === fname)!;
      return JSON.stringify([
        e.fname,
        e.size,
        e.mtimeMs,
        e.rootHash,
        e.pieceSize,
        e.have ?? null,
        e.sig ?? null,
      ]) + "\n";
    }),
  ];
  assert.equal(digest, createHash("sha256").update(lines.join("")).digest("hex"));
});

Deno.test("sharesDigest() does not depend on the order of the entries", () => {
  const digest = sharesDigest(SET);
  assert.equal(sharesDigest([...SET].reverse()), digest);
  assert.equal(sharesDigest([SET[2]!, SET[0]!, SET[4]!, SET[1]!, SET[3]!]), digest);
  assert.equal(sharesDigest(new Map(SET.map((e) => [e.fname, e])).values()), digest);
});

Deno.test("sharesDigest() changes with any stored field, and ignores the others", () => {
  const digest = sharesDigest(SET);
  const changes: [string, (e: FileEntry) => FileEntry][] = [
    ["fname", (e) => ({ ...e, fname: "a2.txt" })],
    ["size", (e) => ({ ...e, size: 1235 })],
    ["mtimeMs", (e) => ({ ...e, mtimeMs: 1_700_000_000_001 })],
    ["rootHash", (e) => ({ ...e, rootHash: "ac".repeat(32) })],
    ["pieceSize", (e) => ({ ...e, pieceSize: 131072 })],
    ["have", (e) => ({ ...e, have: "wA==" })],
    ["have absent", (e) => without(e, "have")],
    ["sig", (e) => ({ ...e, sig: new Uint8Array(64).fill(8).toBase64() })],
    ["sig absent", (e) => without(e, "sig")],
  ];
  const seen = new Set([digest]);
  for (const [field, change] of changes) {
    const changed = sharesDigest(SET.map((e) => e.fname === "a.txt" ? change(e) : e));
    assert.notEqual(changed, digest, field);
    seen.add(changed);
  }
  assert.equal(seen.size, changes.length + 1, "every change gives its own digest");
  // One entry fewer, or one more, is another set.
  assert.notEqual(sharesDigest(SET.slice(1)), digest);
  assert.notEqual(sharesDigest([...SET, entry("d.txt")]), digest);
  // A field the index does not store is not part of the set.
  const extra = SET.map((e) => ({ ...e, hostname: "elsewhere" }));
  assert.equal(sharesDigest(extra), digest);
  // The empty set has a digest too: a peer that shares nothing can be kept as well.
  assert.equal(sharesDigest([]), createHash("sha256").update("lanshare shares v1\n").digest("hex"));
});
