// The piece writers against real files: both put every byte at its offset, in any order, and
// the threaded one reports failures instead of losing them.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import {
  type PieceWriter,
  SyncPieceWriter,
  WorkerPieceWriter,
  WRITE_SLICE_BYTES,
} from "../../peer/piece_writer.ts";

const SANITIZE = { sanitizeResources: true, sanitizeOps: true } as const;
const PIECE = 3 * WRITE_SLICE_BYTES + 123; // several slices and a partial one

/** Piece i filled with a pattern of its own; the last piece is short. */
function piece(i: number, count: number, shared: boolean): Uint8Array {
  const length = i === count - 1 ? PIECE - 1000 : PIECE;
  const bytes = new Uint8Array(shared ? new SharedArrayBuffer(length) : new ArrayBuffer(length));
  for (let k = 0; k < length; k++) bytes[k] = (i * 31 + k) & 0xff;
  return bytes;
}

const sha256 = (bytes: Uint8Array) => new Uint8Array(createHash("sha256").update(bytes).digest());

async function writeShuffled(writer: PieceWriter, count: number, shared: boolean) {
  // A shuffled order: 3 is coprime to every count used here.
  const order = Array.from({ length: count }, (_, i) => (i * 3) % count);
  assert.equal(new Set(order).size, count);
  const stored = await Promise.all(order.map((i) => {
    const bytes = piece(i, count, shared);
    return writer.write(i * PIECE, bytes, sha256(bytes));
  }));
  assert.deepEqual(stored, order.map(() => true));
}

async function assertPieces(path: string, count: number) {
  const bytes = await Deno.readFile(path);
  assert.equal(bytes.length, (count - 1) * PIECE + PIECE - 1000);
  for (let i = 0; i < count; i++) {
    const expected = piece(i, count, false);
    assert.deepEqual(
      bytes.subarray(i * PIECE, i * PIECE + expected.length),
      expected,
      `piece ${i}`,
    );
  }
}

for (const shared of [true, false]) {
  Deno.test({
    name: `WorkerPieceWriter writes pieces in any order at their offsets (${
      shared ? "shared" : "plain"
    } buffers)`,
    ...SANITIZE,
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "lanshare-writer-" });
      try {
        const path = join(dir, "file.part");
        const count = 7;
        await Deno.writeFile(path, new Uint8Array(0));
        await Deno.truncate(path, (count - 1) * PIECE + PIECE - 1000);
        const writer = new WorkerPieceWriter(path);
        await writeShuffled(writer, count, shared);
        await writer.close();
        await assertPieces(path, count);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name: "SyncPieceWriter writes pieces in any order at their offsets",
  ...SANITIZE,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "lanshare-writer-" });
    try {
      const path = join(dir, "file.part");
      const count = 5;
      using file = await Deno.open(path, { write: true, create: true });
      const writer = new SyncPieceWriter(file);
      await writeShuffled(writer, count, true);
      await writer.close();
      await assertPieces(path, count);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

for (const threaded of [true, false]) {
  Deno.test({
    name: `${
      threaded ? "WorkerPieceWriter" : "SyncPieceWriter"
    } writes nothing when a piece does not match its hash`,
    ...SANITIZE,
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "lanshare-writer-" });
      try {
        const path = join(dir, "file.part");
        await Deno.writeFile(path, new Uint8Array(2 * PIECE));
        using file = await Deno.open(path, { write: true });
        const writer = threaded ? new WorkerPieceWriter(path) : new SyncPieceWriter(file);
        const good = piece(0, 2, true);
        const corrupt = good.slice();
        corrupt[100]! ^= 1;
        assert.equal(await writer.write(PIECE, corrupt, sha256(good)), false);
        assert.equal(await writer.write(0, good, sha256(good)), true);
        await writer.close();
        const bytes = await Deno.readFile(path);
        assert.deepEqual(bytes.subarray(0, PIECE), good);
        assert.deepEqual(bytes.subarray(PIECE), new Uint8Array(PIECE), "nothing written");
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name: "WorkerPieceWriter rejects writes when the file cannot be opened, and still closes",
  ...SANITIZE,
  async fn() {
    const writer = new WorkerPieceWriter("/nonexistent-lanshare-dir/file.part");
    await assert.rejects(
      writer.write(0, new Uint8Array(10), new Uint8Array(32)),
      /Cannot write to \/nonexistent-lanshare-dir\/file\.part: Cannot open/,
    );
    await writer.close();
    await assert.rejects(writer.write(0, new Uint8Array(10), new Uint8Array(32)), /closed/);
  },
});
