// Catalog rules that need a store: requests that reach a session a newer one has replaced (in
// memory), and leases of servers whose clocks disagree (over one PostgreSQL).
import assert from "node:assert/strict";
import { Catalog } from "../../server/catalog.ts";
import { MemoryStore } from "../../server/memory_store.ts";
import { PostgresStore } from "../../server/postgres_store.ts";
import { SqliteStore } from "../../server/sqlite_store.ts";
import type { SignedFileEntry } from "../../shared/protocol.ts";
import { RequestError } from "../../shared/rpc.ts";
import { PG_URL, pgStep, tempSchema } from "../_pg.ts";

/** The device of these tests' sessions (who-has lists only sessions with a device). */
const DEVICE = { deviceId: "d".repeat(52), cert: "(cert)" };

function entry(fname: string): SignedFileEntry {
  return {
    fname,
    size: 10,
    mtimeMs: 1,
    rootHash: "ab".repeat(32),
    pieceSize: 1 << 20,
    // The index stores publish signatures unverified.
    sig: "c2ln",
  };
}

Deno.test("Catalog.publish() on a replaced session is a not-registered RequestError", async () => {
  const store = new MemoryStore(new SqliteStore(":memory:"));
  await store.migrate();
  try {
    const catalog = new Catalog(store, { serverId: "server-1", leaseMs: 60_000 });
    const peer = { hostname: "alpha", address: "127.0.0.1", port: 4000, ...DEVICE };
    await catalog.register({ ...peer, sessionId: "old" });
    const { replaced } = await catalog.register({ ...peer, sessionId: "new" });
    assert.equal(replaced?.sessionId, "old");
    await assert.rejects(
      catalog.publish({ ...peer, sessionId: "old" }, entry("late.txt")),
      (err: unknown) =>
        err instanceof RequestError && err.code === "not-registered" &&
        /^Cannot publish "late\.txt": this session has ended/.test(err.message),
    );
    assert.deepEqual(await catalog.publish({ ...peer, sessionId: "new" }, entry("late.txt")), {
      fname: "late.txt",
      status: "created",
    });
    assert.deepEqual((await catalog.whoHas("late.txt", "asker")).map((s) => s.port), [4000]);
  } finally {
    await store.close();
  }
});

Deno.test({
  name: "Catalogs whose clocks are 10 minutes apart agree on leases over one PostgreSQL",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t) {
    await pgStep(t, async () => {
      await using schema = await tempSchema();
      const slowStore = new PostgresStore(PG_URL, { schema: schema.name });
      const fastStore = new PostgresStore(PG_URL, { schema: schema.name });
      try {
        await slowStore.migrate();
        const skewMs = 10 * 60_000;
        // A lease of one minute, written by a server whose clock is 10 minutes slow, would
        // have ended long ago by the clock of one that is 10 minutes fast.
        const slow = new Catalog(slowStore, {
          serverId: "slow",
          leaseMs: 60_000,
          now: () => Date.now() - skewMs,
        });
        const fast = new Catalog(fastStore, {
          serverId: "fast",
          leaseMs: 60_000,
          now: () => Date.now() + skewMs,
        });
        assert.ok(Math.abs((await slow.syncClock()) - skewMs) < 5_000, "slow clock measured");
        assert.ok(Math.abs((await fast.syncClock()) + skewMs) < 5_000, "fast clock measured");
        assert.ok(Math.abs(slow.now() - fast.now()) < 5_000, "both on the database's clock");

        await slow.register({
          hostname: "alpha",
          address: "127.0.0.1",
          port: 4000,
          sessionId: "a",
          ...DEVICE,
        });
        await slow.publish({ hostname: "alpha", port: 4000, sessionId: "a" }, entry("shared.txt"));
        assert.deepEqual((await fast.whoHas("shared.txt", "asker")).map((s) => s.hostname), [
          "alpha",
        ]);
        assert.deepEqual((await fast.sessions("alpha")).map((s) => s.sessionId), ["a"]);
        assert.deepEqual(await slow.renewLeases(["a"]), []);
        assert.equal((await fast.whoHas("shared.txt", "asker")).length, 1);
      } finally {
        await slowStore.close();
        await fastStore.close();
      }
    });
  },
});
