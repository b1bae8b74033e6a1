// Catalog over the in-memory store: requests that reach a session a newer one has replaced.
import assert from "node:assert/strict";
import { Catalog } from "../../server/catalog.ts";
import { MemoryStore } from "../../server/memory_store.ts";
import { SqliteStore } from "../../server/sqlite_store.ts";
import type { FileEntry } from "../../shared/protocol.ts";
import { RequestError } from "../../shared/rpc.ts";

function entry(fname: string): FileEntry {
  return { fname, size: 10, mtimeMs: 1, rootHash: "ab".repeat(32), pieceSize: 65536 };
}

Deno.test("Catalog.publish() on a replaced session is a not-registered RequestError", async () => {
  const store = new MemoryStore(new SqliteStore(":memory:"));
  await store.migrate();
  try {
    const catalog = new Catalog(store, { serverId: "server-1", leaseMs: 60_000 });
    const peer = { hostname: "alpha", address: "127.0.0.1", port: 4000 };
    await catalog.register({ ...peer, sessionId: "old" });
    const { replaced } = await catalog.register({ ...peer, sessionId: "new" });
    assert.equal(replaced?.sessionId, "old");
    await assert.rejects(
      catalog.publish("old", entry("late.txt")),
      (err: unknown) =>
        err instanceof RequestError && err.code === "not-registered" &&
        /^Cannot publish "late\.txt": this session has ended/.test(err.message),
    );
    assert.equal(await catalog.publish("new", entry("late.txt")), "created");
    assert.deepEqual((await catalog.whoHas("late.txt", "asker")).map((s) => s.port), [4000]);
  } finally {
    await store.close();
  }
});
