// Catalog rules that need a store: requests that reach a session a newer one has replaced (in
// memory), leases of servers whose clocks disagree (over one PostgreSQL), and what a Hello's
// register costs PostgreSQL.
import assert from "node:assert/strict";
import { Catalog } from "../../server/catalog.ts";
import { MemoryStore } from "../../server/memory_store.ts";
import { PostgresStore } from "../../server/postgres_store.ts";
import { SqliteStore } from "../../server/sqlite_store.ts";
import type { SignedFileEntry } from "../../shared/protocol.ts";
import { RequestError } from "../../shared/rpc.ts";
import { sharesDigest } from "../../shared/shares_digest.ts";
import { ConflictError } from "../../server/store.ts";
import { PG_URL, pgStep, statementTap, tempSchema, transactions } from "../_pg.ts";

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

Deno.test({
  name: "Catalog.register() over PostgreSQL is one transaction: resumed, opened afresh or refused",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t) {
    await pgStep(t, async () => {
      await using schema = await tempSchema();
      // What the store sends, read on the wire: other users of the database do not count.
      await using tap = statementTap();
      // One connection: no pool connection opens (with its own queries) during a register.
      const store = new PostgresStore(tap.url, { schema: schema.name, maxConnections: 1 });
      try {
        await store.migrate();
        const before = new Catalog(store, { serverId: "before", leaseMs: 60_000 });
        const after = new Catalog(store, { serverId: "after", leaseMs: 60_000 });
        const peer = (hostname: string, sessionId: string, deviceId = DEVICE.deviceId) => ({
          hostname,
          address: "127.0.0.1",
          port: 4000,
          sessionId,
          ...DEVICE,
          deviceId,
        });
        // Before a restart, alpha and bravo published a file each; their server went away.
        for (const [hostname, id] of [["alpha", "a1"], ["bravo", "b1"]] as const) {
          await before.register(peer(hostname, id));
          await before.publish(peer(hostname, id), entry(`${hostname}.txt`));
        }
        await store.markOffline({ serverId: "before" });
        // Charlie is back already, live.
        await after.register(peer("charlie", "c1"));

        const digest = (fname: string) => sharesDigest([entry(fname)]);
        const registers: [string, () => Promise<unknown>][] = [
          ["alpha resumes", async () => {
            const { kept } = await after.register(peer("alpha", "a2"), digest("alpha.txt"));
            assert.equal(kept, true);
          }],
          ["bravo with another set opens afresh", async () => {
            const { kept } = await after.register(peer("bravo", "b2"), digest("other.txt"));
            assert.equal(kept, false);
          }],
          ["another device as charlie is refused", async () => {
            const intruder = peer("charlie", "c2", "e".repeat(52));
            await assert.rejects(after.register(intruder, digest("x.txt")), ConflictError);
          }],
          ["a new peer without a digest opens", async () => {
            const { kept, replaced } = await after.register(peer("delta", "d1"));
            assert.deepEqual([kept, replaced], [false, undefined]);
          }],
        ];
        for (const [what, register] of registers) {
          const from = tap.statements.length;
          await register();
          const sent = tap.statements.slice(from);
          const said = `${what}: ${JSON.stringify(sent)}`;
          assert.equal(transactions(sent), 1, said);
          const locks = sent.filter((statement) => statement.includes("pg_advisory_xact_lock"));
          assert.equal(locks.length, 1, said);
        }
        // The refused register left charlie as it was.
        assert.deepEqual((await after.sessions("charlie")).map((s) => s.sessionId), ["c1"]);
        assert.deepEqual((await store.entriesOf("a2")).map((e) => e.fname), ["alpha.txt"]);
      } finally {
        await store.close();
      }
    });
  },
});
