// MemoryStore's persistence: what it answers from memory must be what SQLite holds after a
// restart, and a batch with a bad write must keep the good ones.
import assert from "node:assert/strict";
import { MemoryStore } from "../../server/memory_store.ts";
import { SqliteStore } from "../../server/sqlite_store.ts";
import { openStore } from "../../server/open_store.ts";
import type { SessionRow, Store } from "../../server/store.ts";
import type { FileEntry } from "../../shared/protocol.ts";
import { sharesDigest } from "../../shared/shares_digest.ts";

const NOW = 1_700_000_000_000;
const LEASE = NOW + 60_000;
const PUBLISH = { nowMs: NOW, maxEntries: 100 };

function session(sessionId: string, hostname: string, port = 4000): SessionRow {
  return { sessionId, serverId: "srv", hostname, address: "10.0.0.7", port, openedAtMs: NOW };
}

/** The two ways a MemoryStore writes to SQLite, each test runs under both. */
const OPENERS = [
  ["on the event loop", (path: string) => new MemoryStore(new SqliteStore(path))],
  ["through the writer thread", (path: string) => openStore(path)],
] as const;

function entry(fname: string, extra: Partial<FileEntry> = {}): FileEntry {
  return { fname, size: 10, mtimeMs: NOW, rootHash: "ab".repeat(32), pieceSize: 65536, ...extra };
}

for (const [how, open] of OPENERS) {
  Deno.test(`MemoryStore writing ${how}: a restart finds every change, entries kept`, async () => {
    await restartKeepsEverything(open);
  });
}

async function restartKeepsEverything(open: (path: string) => Store): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "lanshare_memstore_" });
  try {
    const path = `${dir}/index.db`;
    const first = open(path);
    await first.migrate();
    await first.registerSession(session("a", "alpha"), LEASE);
    await first.registerSession(session("b", "bravo"), LEASE);
    await first.registerSession(session("gone", "charlie"), LEASE);
    await first.publish("a", entry("one.txt"), PUBLISH);
    await first.publish("a", entry("two.txt"), PUBLISH);
    await first.publish("a", entry("two.txt", { size: 20, have: "/w==" }), PUBLISH); // updated
    await first.unpublish("a", "one.txt");
    await first.publish("b", entry("one.txt"), PUBLISH);
    await first.publish("gone", entry("three.txt"), PUBLISH);
    await first.closeSession("gone");
    // bravo reconnects: the old session and its entry go, the new one publishes again.
    await first.registerSession(session("b2", "bravo"), LEASE);
    await first.publish("b2", entry("four.txt"), PUBLISH);
    const before = await first.search("", { offset: 0, limit: 100 }, NOW);
    await first.close();

    const raw = new SqliteStore(path);
    try {
      await raw.migrate();
      assert.deepEqual(await raw.entriesOf("a"), [entry("two.txt", { size: 20, have: "/w==" })]);
      assert.deepEqual(await raw.entriesOf("b"), []);
      assert.deepEqual(await raw.entriesOf("b2"), [entry("four.txt")]);
      assert.deepEqual(await raw.entriesOf("gone"), []);
    } finally {
      await raw.close();
    }

    const second = open(path);
    try {
      await second.migrate();
      assert.equal(await second.markOffline({}), 2);
      assert.deepEqual(await second.whoHas("four.txt", "", NOW), []);
      const after = await second.search("", { offset: 0, limit: 100, includeOffline: true }, NOW);
      assert.deepEqual(
        after.entries,
        before.entries.map((e) => ({ ...e, online: false })),
      );
      // Coming back: the peer registers again and its new session is live.
      await second.registerSession(session("a3", "alpha"), LEASE);
      assert.deepEqual(await second.entriesOf("a"), []);
      assert.deepEqual(await second.counts(NOW), { sessions: 1, entries: 1 });
    } finally {
      await second.close();
    }
    const third = new SqliteStore(path);
    try {
      await third.migrate();
      assert.deepEqual(await third.sessions(undefined, NOW), [session("a3", "alpha")]);
    } finally {
      await third.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

for (const [how, open] of OPENERS) {
  Deno.test(`MemoryStore writing ${how}: a resumed session's rows keep their id on disk`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "lanshare_memstore_" });
    try {
      const path = `${dir}/index.db`;
      const device = { deviceId: "d".repeat(52) };
      const first = open(path);
      await first.migrate();
      await first.registerSession({ ...session("a", "alpha"), ...device }, LEASE);
      await first.registerSession({ ...session("a-old-port", "alpha", 4001), ...device }, LEASE);
      await first.registerSession({ ...session("b", "bravo"), ...device }, LEASE);
      await first.publish("a", entry("one.txt"), PUBLISH);
      await first.publish("a", entry("two.txt", { have: "/w==" }), PUBLISH);
      await first.publish("a-old-port", entry("three.txt"), PUBLISH);
      await first.publish("b", entry("five.txt"), PUBLISH);
      await first.close();

      const second = open(path);
      await second.migrate();
      assert.equal(await second.markOffline({}), 3);
      const digest = sharesDigest([entry("one.txt"), entry("two.txt", { have: "/w==" })]);
      const resumed = { ...session("a2", "alpha"), ...device, address: "10.0.0.8" };
      const kept = { replaced: undefined, kept: true };
      assert.deepEqual(await second.registerSession(resumed, LEASE, digest), kept);
      const bravo = { ...session("b2", "bravo"), ...device };
      assert.deepEqual(
        await second.registerSession(bravo, LEASE, sharesDigest([entry("five.txt")])),
        kept,
      );
      // Changes through the new ids reach the rows under the old ones.
      await second.publish("a2", entry("four.txt"), PUBLISH);
      assert.equal(await second.unpublish("a2", "one.txt"), true);
      await second.closeSession("b2");
      assert.deepEqual(await second.entriesOf("a2"), [
        entry("four.txt"),
        entry("two.txt", { have: "/w==" }),
      ]);
      await second.close();

      // On disk: the session as resumed (address, lease), under the id its rows were written
      // with (moving 100 entry rows per returning peer cost more than writing them had).
      const raw = new SqliteStore(path);
      try {
        await raw.migrate();
        assert.deepEqual(await raw.sessions(undefined, NOW), [{ ...resumed, sessionId: "a" }]);
        assert.deepEqual(await raw.entriesOf("a"), [
          entry("four.txt"),
          entry("two.txt", { have: "/w==" }),
        ]);
        assert.deepEqual(await raw.counts(NOW), { sessions: 1, entries: 2 });
      } finally {
        await raw.close();
      }

      // And a restart after that resumes it again, by its stored id.
      const third = open(path);
      try {
        await third.migrate();
        assert.equal(await third.markOffline({}), 1);
        const again = { ...session("a3", "alpha"), ...device };
        const now = sharesDigest([entry("four.txt"), entry("two.txt", { have: "/w==" })]);
        assert.deepEqual(await third.registerSession(again, LEASE, now), {
          replaced: undefined,
          kept: true,
        });
        assert.deepEqual(await third.sessions(undefined, NOW), [again]);
        assert.equal((await third.entriesOf("a3")).length, 2);
      } finally {
        await third.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("SqliteStore.applyBatch() keeps the good writes of a batch with a bad one", async () => {
  const store = new SqliteStore(":memory:");
  try {
    await store.migrate();
    const failed = store.applyBatch([
      { kind: "open", session: session("a", "alpha"), leaseUntilMs: LEASE },
      { kind: "publish", sessionId: "a", entry: entry("ok.txt") },
      { kind: "publish", sessionId: "no-such-session", entry: entry("orphan.txt") },
      { kind: "publish", sessionId: "a", entry: entry("also-ok.txt") },
    ]);
    assert.equal(failed.length, 1);
    assert.equal(failed[0]!.write.kind, "publish");
    assert.match(failed[0]!.error.message, /FOREIGN KEY/i);
    assert.deepEqual(await store.entriesOf("a"), [entry("also-ok.txt"), entry("ok.txt")]);
    assert.deepEqual(await store.counts(NOW), { sessions: 1, entries: 2 });
  } finally {
    await store.close();
  }
});
