// Piece layout and root hash of shared/pieces.ts.
import assert from "node:assert/strict";
import {
  HASH_BYTES,
  MAX_PIECES,
  MIN_PIECE_SIZE,
  pieceCount,
  pieceLength,
  pieceSizeFor,
  rootHash,
  sha256,
} from "../../shared/pieces.ts";
import { rng } from "./_rng.ts";
import { concat, FILE, hex } from "./_samples.ts";

const MiB = 1024 * 1024;
/** SHA-256 of 12 zero-initialised bytes with pieceSize 1 MiB: checked with `sha256sum`. */
const EMPTY_ROOT = "da1e758bead73354ccc8db47bde0fb99ee70fe3a07eb655486c9fce95ab68320";

Deno.test("piece constants keep their values", () => {
  assert.equal(MIN_PIECE_SIZE, MiB);
  assert.equal(MAX_PIECES, 8192);
  assert.equal(HASH_BYTES, 32);
});

Deno.test("pieceSizeFor() is 1 MiB up to MAX_PIECES pieces, then doubles", () => {
  const cases: [number, number][] = [
    [0, MiB],
    [1, MiB],
    [8192 * MiB, MiB],
    [8192 * MiB + 1, 2 * MiB],
    [16384 * MiB, 2 * MiB],
    [16384 * MiB + 1, 4 * MiB],
    [2 ** 40, 128 * MiB],
  ];
  for (const [size, expected] of cases) assert.equal(pieceSizeFor(size), expected, String(size));
});

Deno.test("pieceSizeFor() picks the smallest power of two that fits MAX_PIECES", () => {
  const rand = rng(42);
  for (let n = 0; n < 1000; n++) {
    const size = Math.floor(rand.next() * 2 ** rand.range(0, 46));
    const pieceSize = pieceSizeFor(size);
    assert.ok(pieceSize >= MIN_PIECE_SIZE && Number.isInteger(Math.log2(pieceSize)), `${size}`);
    assert.ok(pieceCount(size, pieceSize) <= MAX_PIECES, `${size}`);
    if (pieceSize > MIN_PIECE_SIZE) assert.ok(pieceCount(size, pieceSize / 2) > MAX_PIECES);
  }
});

Deno.test("pieceCount() rounds up and is 0 for an empty file", () => {
  assert.equal(pieceCount(0, MiB), 0);
  assert.equal(pieceCount(1, MiB), 1);
  assert.equal(pieceCount(MiB, MiB), 1);
  assert.equal(pieceCount(MiB + 1, MiB), 2);
});

Deno.test("pieceLength() of the last piece is the remainder", () => {
  assert.equal(pieceLength(FILE.size, FILE.pieceSize, 0), MiB);
  assert.equal(pieceLength(FILE.size, FILE.pieceSize, 1), 5);
  assert.equal(pieceLength(2 * MiB, MiB, 1), MiB);
  assert.equal(pieceLength(1, MiB, 0), 1);
});

Deno.test("rootHash() of an empty file is stable", () => {
  assert.equal(rootHash(0, MiB, new Uint8Array(0)), EMPTY_ROOT);
});

Deno.test("rootHash() is SHA-256 of size u64 BE, pieceSize u32 BE and the piece hashes", async () => {
  const hashes = concat([sha256(new Uint8Array([1])), sha256(new Uint8Array([2]))]);
  const size = 3 * MiB + 7;
  const prefix = new Uint8Array(12);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(size));
  new DataView(prefix.buffer).setUint32(8, 2 * MiB);
  const digest = await crypto.subtle.digest("SHA-256", concat([prefix, hashes]));
  assert.equal(rootHash(size, 2 * MiB, hashes), hex(new Uint8Array(digest)));
});

Deno.test("rootHash() of the sample file matches its golden hashes", () => {
  const content = new Uint8Array(FILE.size).map((_, i) => i % 251);
  const hashes = concat([
    sha256(content.subarray(0, FILE.pieceSize)),
    sha256(content.subarray(FILE.pieceSize)),
  ]);
  assert.deepEqual(hashes, Uint8Array.fromBase64(FILE.pieceHashes));
  assert.deepEqual(content.subarray(FILE.pieceSize), FILE.tail);
  assert.equal(rootHash(FILE.size, FILE.pieceSize, hashes), FILE.rootHash);
});

Deno.test("rootHash() changes with size, pieceSize and hashes", () => {
  const one = sha256(new Uint8Array([1]));
  const roots = new Set([
    rootHash(0, MiB, new Uint8Array(0)),
    rootHash(0, 2 * MiB, new Uint8Array(0)),
    rootHash(1, MiB, one),
    rootHash(2, MiB, one),
    rootHash(1, 2 * MiB, one),
    rootHash(1, MiB, sha256(new Uint8Array([2]))),
  ]);
  assert.equal(roots.size, 6);
});

Deno.test("rootHash() rejects a hash list that does not fit the piece count", () => {
  assert.throws(() => rootHash(0, MiB, new Uint8Array(32)), RangeError);
  assert.throws(() => rootHash(MiB + 1, MiB, new Uint8Array(32)), RangeError);
  assert.throws(() => rootHash(1, MiB, new Uint8Array(31)), RangeError);
});

Deno.test("sha256() matches a known digest", () => {
  assert.equal(
    sha256(new TextEncoder().encode("abc")).toHex(),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
});
