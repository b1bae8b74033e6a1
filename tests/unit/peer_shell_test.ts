import assert from "node:assert/strict";
import { publishLines } from "../../peer/shell.ts";

const base = {
  fname: "notes.txt",
  path: "notes.txt",
  size: 2048,
  rootHash: "1".repeat(64),
};

Deno.test("publishLines() says in words what the index did with a publish", () => {
  assert.deepEqual(publishLines({ ...base, status: "created" }), [
    "published notes.txt (2.00 KiB, 111111111111) from notes.txt",
  ]);
  assert.deepEqual(
    publishLines({ ...base, status: "overwrite", previousRootHash: "2".repeat(64) }),
    [
      "overwrote notes.txt (2.00 KiB, 111111111111) from notes.txt",
      "  replaced this peer's earlier content 222222222222 under this name",
    ],
  );
  assert.deepEqual(
    publishLines({ ...base, status: "conflict", conflictRootHash: "3".repeat(64) }),
    [
      "published notes.txt (2.00 KiB, 111111111111) from notes.txt",
      "  conflict: another peer shares different content 333333333333 under this name; fetchers choose with --hash",
    ],
  );
  assert.deepEqual(
    publishLines({ ...base, status: "pending", pendingReason: "looking for an index server" }),
    [
      "shared notes.txt (2.00 KiB, 111111111111) from notes.txt",
      "  not on the index yet, it is announced once connected: looking for an index server",
    ],
  );
});
