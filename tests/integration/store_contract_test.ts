// The Store contract: one suite, run against SqliteStore (file and :memory:) and PostgresStore
// (a fresh schema per case). Both must give the same answers to the same calls.
import assert from "node:assert/strict";
import { MemoryStore } from "../../server/memory_store.ts";
import { openStore } from "../../server/open_store.ts";
import { PostgresStore } from "../../server/postgres_store.ts";
import { SqliteStore } from "../../server/sqlite_store.ts";
import {
  ConflictError,
  EntryLimitError,
  type PublishOptions,
  type SessionRow,
  type Store,
  UnknownSessionError,
} from "../../server/store.ts";
import type { CatalogEntry, FileEntry, PublishStatus, SourceInfo } from "../../shared/protocol.ts";
import { sharesDigest } from "../../shared/shares_digest.ts";
import { PG_URL, pgStep, tempSchema } from "../_pg.ts";

/** A migrated, empty store, released on dispose. */
interface StoreFixture extends AsyncDisposable {
  store: Store;
}

type OpenStore = () => Promise<StoreFixture>;

async function migrated(store: Store, release: () => Promise<void>): Promise<StoreFixture> {
  try {
    await store.migrate();
  } catch (err) {
    await release();
    throw err;
  }
  return { store, [Symbol.asyncDispose]: release };
}

async function openSqliteFile(): Promise<StoreFixture> {
  const dir = await Deno.makeTempDir({ prefix: "lanshare_store_" });
  const store = new SqliteStore(`${dir}/index.db`);
  return migrated(store, async () => {
    try {
      await store.close();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

async function openMemoryOverFile(): Promise<StoreFixture> {
  const dir = await Deno.makeTempDir({ prefix: "lanshare_store_" });
  const store = new MemoryStore(new SqliteStore(`${dir}/index.db`));
  return migrated(store, async () => {
    try {
      await store.close();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

/** What a server opens for a database file: MemoryStore with a writer worker. */
async function openStoreFile(): Promise<StoreFixture> {
  const dir = await Deno.makeTempDir({ prefix: "lanshare_store_" });
  const store = openStore(`${dir}/index.db`);
  return migrated(store, async () => {
    try {
      await store.close();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

function openSqliteMemory(): Promise<StoreFixture> {
  const store = new SqliteStore(":memory:");
  return migrated(store, () => store.close());
}

async function openPostgres(): Promise<StoreFixture> {
  const schema = await tempSchema();
  const store = new PostgresStore(PG_URL, { schema: schema.name });
  return migrated(store, async () => {
    try {
      await store.close();
    } finally {
      await schema[Symbol.asyncDispose]();
    }
  });
}

const NOW = 1_700_000_000_000;
const LEASE = NOW + 60_000;

function session(
  sessionId: string,
  hostname: string,
  port: number,
  serverId = "server-a",
): SessionRow {
  const last = port % 250;
  return {
    sessionId,
    serverId,
    hostname,
    address: `10.0.0.${last}`,
    port,
    openedAtMs: NOW - 5,
    // One device for every session unless a test says otherwise (the replace rule applies).
    deviceId: DEVICE_ID,
    cert: DEVICE_CERT,
  };
}

/** The device of session()'s rows (stores keep IDs and certificates as given). */
const DEVICE_ID = "d".repeat(52);
const DEVICE_CERT = "-----BEGIN CERTIFICATE-----\n(test)\n-----END CERTIFICATE-----\n";

function entry(fname: string, extra: Partial<FileEntry> = {}): FileEntry {
  return {
    fname,
    size: 1234,
    mtimeMs: NOW - 1000,
    rootHash: "ab".repeat(32),
    pieceSize: 65536,
    // Stores keep the publish signature unverified.
    sig: "c2ln",
    ...extra,
  };
}

/** What registerSession() answers for a session opened afresh, replacing no live one. */
const OPENED = { replaced: undefined, kept: false };
/** What registerSession() answers for a session resumed with its entries. */
const RESUMED = { replaced: undefined, kept: true };

/** Opens each session with `leaseUntilMs` (LEASE by default), a new pair each. */
async function open(store: Store, rows: SessionRow[], leaseUntilMs = LEASE): Promise<void> {
  for (const row of rows) assert.deepEqual(await store.registerSession(row, leaseUntilMs), OPENED);
}

/** Publishes with a generous entry limit at NOW; returns the status. */
async function publish(
  store: Store,
  sessionId: string,
  fileEntry: FileEntry,
  options: Partial<PublishOptions> = {},
): Promise<PublishStatus> {
  const outcome = await store.publish(sessionId, fileEntry, {
    nowMs: NOW,
    maxEntries: 100,
    ...options,
  });
  return outcome.status;
}

const page = { offset: 0, limit: 100 };

async function fnames(store: Store, pattern: string, nowMs = NOW): Promise<string[]> {
  const result = await store.search(pattern, page, nowMs);
  assert.equal(result.total, result.entries.length, `total of "${pattern}"`);
  return result.entries.map((e) => e.fname);
}

/** The contract every Store must meet; each case gets a fresh store from `openFixture`. */
async function storeContract(t: Deno.TestContext, openFixture: OpenStore): Promise<void> {
  const it = (name: string, fn: (store: Store) => Promise<void>) =>
    t.step(name, async () => {
      await using fixture = await openFixture();
      await fn(fixture.store);
    });

  await it("migrate() again on a store in use changes nothing", async (store) => {
    const s = session("s1", "alpha", 4000);
    await open(store, [s]);
    assert.equal(await publish(store, "s1", entry("a.txt")), "created");
    await store.migrate();
    assert.deepEqual(await store.sessions(undefined, NOW), [s]);
    assert.deepEqual(await store.entriesOf("s1"), [entry("a.txt")]);
  });

  await it("registerSession() records a session, live until its lease ends", async (store) => {
    const s = session("s1", "alpha", 4000);
    assert.deepEqual(await store.registerSession(s, LEASE), OPENED);
    assert.deepEqual(await store.sessions(undefined, NOW), [s]);
    assert.deepEqual(await store.sessions(undefined, LEASE - 1), [s]);
    assert.deepEqual(await store.sessions(undefined, LEASE), []);
    assert.deepEqual(await store.counts(NOW), { sessions: 1, entries: 0 });
  });

  await it("registerSession() takes over {hostname, port}, dropping the old entries", async (store) => {
    const old = session("old", "alpha", 4000, "server-a");
    const otherPort = session("other-port", "alpha", 4001);
    const otherHost = session("other-host", "beta", 4000);
    await open(store, [old, otherPort, otherHost]);
    await publish(store, "old", entry("a.txt"));
    await publish(store, "old", entry("b.txt"));
    await publish(store, "other-port", entry("c.txt"));
    await publish(store, "other-host", entry("d.txt"));

    const fresh = { ...session("new", "alpha", 4000, "server-b"), address: "10.9.9.9" };
    // Another set than the one held (one entry fewer): taken over, its entries dropped.
    const digest = sharesDigest([entry("a.txt")]);
    assert.deepEqual(await store.registerSession(fresh, LEASE, digest), {
      replaced: old,
      kept: false,
    });
    assert.deepEqual(await store.entriesOf("old"), []);
    assert.deepEqual(await store.entriesOf("new"), []);
    assert.deepEqual(await store.entriesOf("other-port"), [entry("c.txt")]);
    assert.deepEqual(await store.sessions("alpha", NOW), [fresh, otherPort]);
    assert.deepEqual(await store.counts(NOW), { sessions: 3, entries: 2 });
    assert.deepEqual(await fnames(store, ""), ["c.txt", "d.txt"]);

    // The replaced session's own disconnect must not touch its successor.
    await store.closeSession("old");
    assert.deepEqual(await store.sessions("alpha", NOW), [fresh, otherPort]);
    assert.equal(await publish(store, "new", entry("a.txt")), "created");
  });

  await it("registerSession() refuses a live {hostname, port} of another device with ConflictError", async (store) => {
    const owner = { ...session("owner", "alpha", 4000), deviceId: "a".repeat(52) };
    const otherPort = session("other-port", "alpha", 4001, "dead-server");
    await open(store, [owner, otherPort]);
    await publish(store, "owner", entry("a.txt"));
    await publish(store, "other-port", entry("b.txt"));
    await store.markOffline({ serverId: "dead-server" });
    const intruder = { ...session("intruder", "alpha", 4000), deviceId: "b".repeat(52) };
    // With a digest or without: one refusal, however far the register got.
    for (const digest of [undefined, sharesDigest([entry("a.txt")])]) {
      await assert.rejects(store.registerSession(intruder, LEASE, digest), (err) => {
        assert.ok(err instanceof ConflictError, String(err));
        assert.deepEqual(err.owner, owner);
        assert.match(err.message, /^Cannot register as alpha:4000: held by another device/);
        return true;
      });
      // Nothing changed: the owner keeps its session and entries, and the hostname's offline
      // session on another port stays too.
      assert.deepEqual(await store.sessions("alpha", NOW), [owner]);
      assert.deepEqual(await store.entriesOf("owner"), [entry("a.txt")]);
      assert.deepEqual(await store.entriesOf("other-port"), [entry("b.txt")]);
    }
    // The same device takes it over (a reconnect); an offline session goes to anyone.
    const again = { ...session("again", "alpha", 4000), deviceId: owner.deviceId };
    assert.deepEqual(await store.registerSession(again, LEASE), { replaced: owner, kept: false });
    assert.equal(await store.markOffline({}), 1);
    assert.deepEqual(await store.registerSession(intruder, LEASE), OPENED);
    assert.deepEqual(await store.sessions("alpha", NOW), [intruder]);
  });

  await it("registerSession() resumes an offline session's entries for the same device and digest", async (store) => {
    const old = session("old", "alpha", 4000, "dead-server");
    const otherPort = session("other-port", "alpha", 4001, "dead-server");
    await open(store, [old, otherPort, session("asker", "beta", 4000)]);
    await publish(store, "old", entry("a.txt"));
    await publish(store, "old", entry("b.txt", { have: "gA==" }));
    await publish(store, "other-port", entry("c.txt"));
    await store.markOffline({ serverId: "dead-server" });
    const held = [entry("a.txt"), entry("b.txt", { have: "gA==" })];

    const fresh = { ...session("new", "alpha", 4000, "server-b"), address: "10.9.9.9" };
    assert.deepEqual(await store.registerSession(fresh, LEASE, sharesDigest(held)), RESUMED);
    assert.deepEqual(await store.sessions("alpha", NOW), [fresh]);
    assert.deepEqual(await store.sessions("alpha", LEASE), [], "live until the new lease");
    assert.deepEqual(await store.entriesOf("new"), held);
    assert.deepEqual(await store.entriesOf("old"), []);
    // The hostname's other offline session goes, as when a session is opened afresh.
    assert.deepEqual(await store.entriesOf("other-port"), []);
    assert.deepEqual(await store.counts(NOW), { sessions: 2, entries: 2 });
    const sources = await store.whoHas("a.txt", "asker", NOW);
    assert.deepEqual(sources.map((s) => [s.hostname, s.address, s.port, s.id]), [
      ["alpha", "10.9.9.9", 4000, DEVICE_ID],
    ]);
    assert.deepEqual(await fnames(store, ""), ["a.txt", "b.txt"]);

    // The entries are the new session's: publish knows them, close removes them; the old id
    // (a late disconnect of the session before) touches nothing.
    assert.equal(await publish(store, "new", entry("a.txt")), "unchanged");
    await store.closeSession("old");
    assert.deepEqual(await store.entriesOf("new"), held);
    await store.closeSession("new");
    assert.deepEqual(await store.counts(NOW), { sessions: 1, entries: 0 });
  });

  await it("registerSession() resumes a live session of the same device and digest, replacing it", async (store) => {
    // The same device back before its old session ended: a reconnect the server has not
    // noticed yet, or a restarted server whose predecessor's lease still runs in a shared store.
    const old = session("old", "alpha", 4000, "server-a");
    const otherPort = session("other-port", "alpha", 4001, "server-a");
    await open(store, [old, otherPort, session("asker", "beta", 4000)]);
    await publish(store, "old", entry("a.txt"));
    await publish(store, "old", entry("b.txt"));
    await publish(store, "other-port", entry("c.txt"));
    const held = [entry("a.txt"), entry("b.txt")];

    const fresh = { ...session("new", "alpha", 4000, "server-b"), address: "10.9.9.9" };
    assert.deepEqual(await store.registerSession(fresh, LEASE, sharesDigest(held)), {
      replaced: old,
      kept: true,
    });
    assert.deepEqual(await store.entriesOf("new"), held);
    assert.deepEqual(await store.entriesOf("old"), []);
    // A live session on another port is another peer of the host: it stays.
    assert.deepEqual(await store.entriesOf("other-port"), [entry("c.txt")]);
    assert.deepEqual(await store.sessions("alpha", NOW), [fresh, otherPort]);
    const sources = await store.whoHas("a.txt", "asker", NOW);
    assert.deepEqual(sources.map((s) => [s.hostname, s.address, s.port]), [
      ["alpha", "10.9.9.9", 4000],
    ]);
    // The replaced connection's late disconnect touches nothing of its successor.
    await store.closeSession("old");
    assert.deepEqual(await store.entriesOf("new"), held);
    assert.deepEqual(await store.counts(NOW), { sessions: 3, entries: 3 });
  });

  await it("registerSession() with another digest opens the session empty, as without one", async (store) => {
    const old = session("old", "alpha", 4000, "dead-server");
    const otherPort = session("other-port", "alpha", 4001, "dead-server");
    await open(store, [old, otherPort]);
    await publish(store, "old", entry("a.txt"));
    await publish(store, "old", entry("b.txt"));
    await publish(store, "other-port", entry("c.txt"));
    await store.markOffline({ serverId: "dead-server" });
    // Another set than the one held (one entry fewer): the offline session was not live, so
    // it is not reported as replaced; its entries go, and so does the other port's session.
    const fresh = session("new", "alpha", 4000, "server-b");
    const digest = sharesDigest([entry("a.txt")]);
    assert.deepEqual(await store.registerSession(fresh, LEASE, digest), OPENED);
    assert.deepEqual(await store.sessions(undefined, NOW), [fresh]);
    assert.deepEqual(await store.entriesOf("new"), []);
    assert.deepEqual(await store.entriesOf("old"), []);
    assert.deepEqual(await store.entriesOf("other-port"), []);
    assert.deepEqual(await store.counts(NOW), { sessions: 1, entries: 0 });
  });

  await it("registerSession() resumes for no other device, pair or device-less Hello or row", async (store) => {
    const digest = sharesDigest([entry("a.txt")]);
    const { deviceId: _, ...anonymous } = session("anonymous", "alpha", 4000);
    const { deviceId: __, ...unowned } = session("old", "alpha", 4000);
    const cases: [string, SessionRow, SessionRow][] = [
      // Another device with the same hostname, port and digest: never given these entries.
      ["another device", session("old", "alpha", 4000), {
        ...session("intruder", "alpha", 4000),
        deviceId: "b".repeat(52),
      }],
      // A Hello without a device ID never resumes, nor does anyone resume a row without one.
      ["a Hello without a device", session("old", "alpha", 4000), anonymous],
      ["a row without a device", unowned, session("back", "alpha", 4000)],
    ];
    for (const [what, before, hello] of cases) {
      await open(store, [before]);
      await publish(store, "old", entry("a.txt"));
      await store.markOffline({});
      // Not resumed: opened afresh, taking the offline session's pair and dropping its entries.
      assert.deepEqual(await store.registerSession(hello, LEASE, digest), OPENED, what);
      assert.deepEqual(await store.sessions(undefined, NOW), [hello], what);
      assert.deepEqual(await store.counts(NOW), { sessions: 1, entries: 0 }, what);
      await store.closeSession(hello.sessionId);
    }

    // The same device on another port, or under another hostname: another pair.
    await open(store, [session("old", "alpha", 4000)]);
    await publish(store, "old", entry("a.txt"));
    await store.markOffline({});
    const renamed = session("renamed", "gamma", 4000);
    assert.deepEqual(await store.registerSession(renamed, LEASE, digest), OPENED);
    assert.deepEqual(await store.entriesOf("old"), [entry("a.txt")], "another hostname's");
    const moved = session("moved", "alpha", 4001);
    assert.deepEqual(await store.registerSession(moved, LEASE, digest), OPENED);
    // The hostname's offline session on another port goes, as for any new session.
    assert.deepEqual(await store.entriesOf("old"), []);
    assert.deepEqual(await store.sessions(undefined, NOW), [moved, renamed]);
    assert.deepEqual(await store.counts(NOW), { sessions: 2, entries: 0 });
  });

  await it("registerSession() of a session without entries resumes it empty", async (store) => {
    await open(store, [session("old", "alpha", 4000)]);
    await store.markOffline({});
    const fresh = session("new", "alpha", 4000, "server-b");
    assert.deepEqual(await store.registerSession(fresh, LEASE, sharesDigest([])), RESUMED);
    assert.deepEqual(await store.sessions(undefined, NOW), [fresh]);
    assert.equal(await publish(store, "new", entry("a.txt")), "created");
  });

  await it("whoHas() and search() return the publisher's ID and signature, not its certificate", async (store) => {
    const id = "c".repeat(52);
    const cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    await open(store, [{ ...session("owner", "alpha", 4000), deviceId: id, cert }]);
    await open(store, [session("asker", "beta", 4000)]);
    const sig = new Uint8Array(64).fill(9).toBase64();
    assert.equal(await publish(store, "owner", entry("a.txt", { sig })), "created");
    assert.equal(await publish(store, "owner", entry("a.txt", { sig })), "unchanged");
    const other = new Uint8Array(64).fill(8).toBase64();
    assert.equal(await publish(store, "owner", entry("a.txt", { sig: other })), "updated");
    const [source] = await store.whoHas("a.txt", "asker", NOW);
    // The fetcher pins the ID itself (shared/pin_cert.ts): the certificate stays at the index.
    assert.deepEqual(source, { ...source, id, sig: other });
    assert.equal(source !== undefined && "cert" in source, false, "no certificate in a source");
    const page = await store.search("a.txt", { offset: 0, limit: 10 }, NOW);
    assert.deepEqual(
      page.entries.map((e) => [e.id, e.sig]),
      [[id, other]],
    );
    assert.deepEqual(await store.entriesOf("owner"), [entry("a.txt", { sig: other })]);
  });

  await it("setDeviceStatus() records decisions that deviceStatuses() reads back", async (store) => {
    assert.deepEqual(await store.deviceStatuses(), new Map());
    await store.setDeviceStatus("a".repeat(52), "approved");
    await store.setDeviceStatus("b".repeat(52), "approved");
    await store.setDeviceStatus("b".repeat(52), "revoked");
    assert.deepEqual(
      await store.deviceStatuses(),
      new Map([["a".repeat(52), "approved"], ["b".repeat(52), "revoked"]]),
    );
  });

  await it("registerSession() returns nothing when the replaced session was offline", async (store) => {
    await open(store, [session("old", "alpha", 4000)]);
    await publish(store, "old", entry("a.txt"));
    assert.equal(await store.markOffline({}), 1);
    assert.deepEqual(await store.registerSession(session("new", "alpha", 4000), LEASE), OPENED);
    assert.deepEqual(await store.entriesOf("old"), []);
    const all = await store.search("", { ...page, includeOffline: true }, NOW);
    assert.deepEqual(all, { entries: [], total: 0 });
    assert.deepEqual(await store.sessions(undefined, NOW), [session("new", "alpha", 4000)]);
  });

  await it("closeSession() removes the session and its entries; unknown ids are a no-op", async (store) => {
    const s1 = session("s1", "alpha", 4000);
    const s2 = session("s2", "beta", 4000);
    await open(store, [s1, s2]);
    await publish(store, "s1", entry("a.txt"));
    await publish(store, "s1", entry("b.txt"));
    await publish(store, "s2", entry("c.txt"));
    await store.closeSession("s1");
    assert.deepEqual(await store.sessions(undefined, NOW), [s2]);
    assert.deepEqual(await store.entriesOf("s1"), []);
    assert.deepEqual(await store.counts(NOW), { sessions: 1, entries: 1 });
    assert.deepEqual(await fnames(store, ""), ["c.txt"]);
    await store.closeSession("s1");
    await store.closeSession("no-such-session");
    assert.deepEqual(await store.sessions(undefined, NOW), [s2]);
  });

  await it("renewLeases() extends the leases of one server's sessions only", async (store) => {
    const a1 = session("a1", "alpha", 4000, "server-a");
    const a2 = session("a2", "beta", 4000, "server-a");
    const b1 = session("b1", "gamma", 4000, "server-b");
    await open(store, [a1, a2, b1], NOW + 1000);
    assert.deepEqual(await store.renewLeases("server-a", ["a1", "a2"], NOW + 5000), []);
    assert.deepEqual(await store.sessions(undefined, NOW + 2000), [a1, a2]);
    assert.deepEqual(await store.sessions(undefined, NOW + 5000), []);
    assert.deepEqual(await store.renewLeases("server-b", ["b1"], NOW + 9000), []);
    assert.deepEqual(await store.sessions(undefined, NOW + 6000), [b1]);
    assert.deepEqual(await store.renewLeases("no-such-server", [], NOW + 9000), []);
    assert.deepEqual(await store.counts(NOW + 6000), { sessions: 1, entries: 0 });
  });

  await it("renewLeases() names held sessions that were taken over elsewhere", async (store) => {
    await open(store, [
      session("a1", "alpha", 4000, "server-a"),
      session("a2", "beta", 4000, "server-a"),
    ]);
    // beta:4000 registers again through server B: server A's session a2 is gone.
    await store.registerSession(session("b9", "beta", 4000, "server-b"), LEASE);
    assert.deepEqual(await store.renewLeases("server-a", ["a1", "a2"], LEASE), ["a2"]);
  });

  await it("markOffline({}) takes every session offline and keeps the entries", async (store) => {
    await open(store, [session("s1", "alpha", 4000, "a"), session("s2", "beta", 4000, "b")]);
    await publish(store, "s1", entry("a.txt"));
    await publish(store, "s2", entry("a.txt"));
    assert.equal(await store.markOffline({}), 2);
    assert.equal(await store.markOffline({}), 0);
    assert.deepEqual(await store.sessions(undefined, NOW), []);
    assert.deepEqual(await store.counts(NOW), { sessions: 0, entries: 2 });
    assert.deepEqual(await store.whoHas("a.txt", "x", NOW), []);
    assert.deepEqual(await store.entriesOf("s1"), [entry("a.txt")]);
    const offline = await store.search("a", { ...page, includeOffline: true }, NOW);
    assert.equal(offline.total, 2);
    assert.deepEqual(offline.entries.map((e) => [e.hostname, e.online]), [
      ["alpha", false],
      ["beta", false],
    ]);
  });

  await it("dropOffline() removes offline sessions and their entries, never live ones", async (store) => {
    const live = session("live", "alpha", 4000, "server-b");
    await open(store, [session("gone", "beta", 4000, "server-a"), live]);
    await publish(store, "gone", entry("a.txt"));
    await publish(store, "live", entry("a.txt"));
    assert.equal(await store.markOffline({ serverId: "server-a" }), 1);
    // Nothing offline ended before the epoch: kept, listed as offline only.
    assert.equal(await store.dropOffline(0), 0);
    const kept = await store.search("a", { ...page, includeOffline: true }, NOW);
    assert.deepEqual(kept.entries.map((e) => [e.hostname, e.online]), [
      ["alpha", true],
      ["beta", false],
    ]);
    assert.deepEqual(await store.counts(NOW), { sessions: 1, entries: 2 });
    // Everything offline is older than the end of time: dropped, the live session stays.
    assert.equal(await store.dropOffline(Number.MAX_SAFE_INTEGER), 1);
    assert.equal(await store.dropOffline(Number.MAX_SAFE_INTEGER), 0);
    assert.deepEqual(await store.counts(NOW), { sessions: 1, entries: 1 });
    assert.deepEqual(await store.entriesOf("gone"), []);
    const left = await store.search("a", { ...page, includeOffline: true }, NOW);
    assert.deepEqual(left.entries.map((e) => [e.hostname, e.online]), [["alpha", true]]);
  });

  await it("markOffline({serverId}) takes one server's sessions offline", async (store) => {
    const a1 = session("a1", "alpha", 4000, "server-a");
    const b1 = session("b1", "beta", 4000, "server-b");
    const a2 = session("a2", "gamma", 4000, "server-a");
    await open(store, [a1, b1, a2]);
    assert.equal(await store.markOffline({ serverId: "server-a" }), 2);
    assert.equal(await store.markOffline({ serverId: "server-a" }), 0);
    assert.deepEqual(await store.sessions(undefined, NOW), [b1]);
    // A server that still holds them (it stalled past its lease) brings them back online.
    assert.deepEqual(await store.renewLeases("server-a", ["a1", "a2"], LEASE + 1000), []);
    assert.deepEqual(
      await store.sessions(undefined, NOW),
      [a1, b1, a2].sort((x, y) => x.hostname < y.hostname ? -1 : 1),
    );
  });

  await it("markOffline({leaseEndedBeforeMs}) takes sessions whose lease ended offline", async (store) => {
    const early = session("early", "alpha", 4000, "a");
    const edge = session("edge", "beta", 4000, "b");
    const late = session("late", "gamma", 4000, "a");
    await store.registerSession(early, NOW + 1000);
    await store.registerSession(edge, NOW + 3000);
    await store.registerSession(late, NOW + 5000);
    // Strictly before: a lease ending at the limit itself stays.
    assert.equal(await store.markOffline({ leaseEndedBeforeMs: NOW + 3000 }), 1);
    assert.deepEqual(await store.sessions(undefined, NOW), [edge, late]);
    // Both filters: this server's sessions AND an ended lease.
    assert.equal(await store.markOffline({ serverId: "a", leaseEndedBeforeMs: NOW + 9000 }), 1);
    assert.deepEqual(await store.sessions(undefined, NOW), [edge]);
  });

  await it("publish() reports created, unchanged and updated (same content), and stores every field", async (store) => {
    await open(store, [session("s1", "alpha", 4000), session("s2", "beta", 4000)]);
    const big = entry("docs/a.txt", { size: 2 ** 40 + 1, mtimeMs: NOW + 1, pieceSize: 2 ** 31 });
    assert.equal(await publish(store, "s1", big), "created");
    assert.deepEqual(await store.entriesOf("s1"), [big]);
    assert.equal(await publish(store, "s1", big), "unchanged");
    const changes: Partial<FileEntry>[] = [
      { size: 2 ** 40 + 2 },
      { mtimeMs: NOW + 2 },
      { pieceSize: 2 ** 20 },
      { have: "/w==" },
      { have: "/38=" },
    ];
    let current = big;
    for (const change of changes) {
      current = { ...current, ...change };
      assert.equal(await publish(store, "s1", current), "updated", JSON.stringify(change));
      assert.equal(await publish(store, "s1", current), "unchanged", JSON.stringify(change));
      assert.deepEqual(await store.entriesOf("s1"), [current]);
    }
    // Dropping the bitfield (the source became complete) is an update too.
    const { have: _, ...complete } = current;
    assert.equal(await publish(store, "s1", complete), "updated");
    assert.deepEqual(await store.entriesOf("s1"), [complete]);
    assert.equal(Object.hasOwn((await store.entriesOf("s1"))[0]!, "have"), false);
    // Entries belong to a session: the same name elsewhere is a new entry.
    assert.equal(await publish(store, "s2", complete), "created");
    assert.deepEqual(await store.counts(NOW), { sessions: 2, entries: 2 });
  });

  await it("publish() reports overwrite, with the previous root hash, when the content changes", async (store) => {
    await open(store, [session("s1", "alpha", 4000)]);
    const options = { nowMs: NOW, maxEntries: 10 };
    assert.deepEqual(await store.publish("s1", entry("a.txt"), options), { status: "created" });
    const changed = entry("a.txt", { rootHash: "cd".repeat(32), size: 99 });
    assert.deepEqual(await store.publish("s1", changed, options), {
      status: "overwrite",
      previousRootHash: "ab".repeat(32),
    });
    assert.deepEqual(await store.publish("s1", changed, options), { status: "unchanged" });
    assert.deepEqual(await store.entriesOf("s1"), [changed]);
  });

  await it("publish() reports conflict when another live session has other content, and stores it", async (store) => {
    const others = [session("b2", "bravo", 2), session("b1", "bravo", 1)];
    await open(store, [session("s1", "alpha", 4000), ...others]);
    await open(store, [session("dead", "delta", 1, "dead-server")]);
    await store.registerSession(session("expired", "echo", 1), NOW + 10);
    const at = (nowMs: number) => ({ nowMs, maxEntries: 10 });
    const root = (digit: string) => digit.repeat(64);
    await store.publish("b2", entry("f.bin", { rootHash: root("2") }), at(NOW));
    await store.publish("b1", entry("f.bin", { rootHash: root("1") }), at(NOW));
    // The first other holder by hostname, port is named.
    assert.deepEqual(await store.publish("s1", entry("f.bin"), at(NOW)), {
      status: "conflict",
      conflictRootHash: root("1"),
    });
    assert.deepEqual(
      (await store.whoHas("f.bin", "x", NOW)).map((s) => `${s.hostname}:${s.port}`),
      ["alpha:4000", "bravo:1", "bravo:2"],
    );
    // Still in conflict when republished unchanged; with a changed root, both are said.
    assert.equal(await publish(store, "s1", entry("f.bin")), "conflict");
    assert.deepEqual(
      await store.publish("s1", entry("f.bin", { rootHash: root("2") }), at(NOW)),
      { status: "conflict", previousRootHash: "ab".repeat(32), conflictRootHash: root("1") },
    );
    // The same content elsewhere is no conflict; offline and expired holders do not count.
    assert.equal(await publish(store, "b2", entry("g.bin")), "created");
    assert.equal(await publish(store, "s1", entry("g.bin")), "created");
    await store.publish("dead", entry("h.bin", { rootHash: root("d") }), at(NOW));
    await store.publish("expired", entry("h.bin", { rootHash: root("e") }), at(NOW));
    await store.markOffline({ serverId: "dead-server" });
    assert.deepEqual(await store.publish("s1", entry("h.bin"), at(NOW + 100)), {
      status: "created",
    });
  });

  await it("publish() refuses a new fname beyond maxEntries, still updating held ones", async (store) => {
    await open(store, [session("s1", "alpha", 4000), session("s2", "beta", 4000)]);
    const limited = { nowMs: NOW, maxEntries: 2 };
    await store.publish("s1", entry("a.txt"), limited);
    await store.publish("s1", entry("b.txt"), limited);
    await assert.rejects(
      store.publish("s1", entry("c.txt"), limited),
      (err: unknown) =>
        err instanceof EntryLimitError && err.maxEntries === 2 &&
        /^Cannot publish "c\.txt": this session already publishes 2 files, the limit$/.test(
          err.message,
        ),
    );
    assert.equal(
      (await store.publish("s1", entry("a.txt", { size: 5 }), limited)).status,
      "updated",
    );
    assert.equal((await store.publish("s2", entry("c.txt"), limited)).status, "created");
    assert.equal(await store.unpublish("s1", "a.txt"), true);
    assert.equal((await store.publish("s1", entry("c.txt"), limited)).status, "created");
    assert.deepEqual((await store.entriesOf("s1")).map((e) => e.fname), ["b.txt", "c.txt"]);
    assert.deepEqual(await store.counts(NOW), { sessions: 2, entries: 3 });
  });

  await it("publish() rejects an unknown session with UnknownSessionError", async (store) => {
    // The async wrapper: SqliteStore throws synchronously here (reported), which callers
    // awaiting in an async function see as a rejection anyway.
    await assert.rejects(
      async () => await publish(store, "no-such-session", entry("a.txt")),
      UnknownSessionError,
    );
    // A publish on its way while its session ended (a quick reconnect replaced it, or the
    // peer left): on PostgreSQL a foreign key refuses it, which is the same answer.
    await open(store, [session("gone", "alpha", 4000)]);
    await store.closeSession("gone");
    await assert.rejects(
      async () => await publish(store, "gone", entry("a.txt")),
      UnknownSessionError,
    );
    assert.deepEqual(await store.counts(NOW), { sessions: 0, entries: 0 });
  });

  await it("unpublish() removes one entry and says whether it existed", async (store) => {
    await open(store, [session("s1", "alpha", 4000), session("s2", "beta", 4000)]);
    await publish(store, "s1", entry("a.txt"));
    await publish(store, "s1", entry("b.txt"));
    await publish(store, "s2", entry("a.txt"));
    assert.equal(await store.unpublish("s1", "a.txt"), true);
    assert.equal(await store.unpublish("s1", "a.txt"), false);
    assert.equal(await store.unpublish("s1", "A.TXT"), false);
    assert.equal(await store.unpublish("no-such-session", "b.txt"), false);
    assert.deepEqual(await store.entriesOf("s1"), [entry("b.txt")]);
    assert.deepEqual(await store.entriesOf("s2"), [entry("a.txt")]);
    assert.deepEqual((await store.whoHas("a.txt", "x", NOW)).map((s) => s.hostname), ["beta"]);
  });

  await it("whoHas() lists live holders by hostname, port; never the asker, offline or expired ones", async (store) => {
    const asker = session("asker", "mallory", 1000);
    const b2 = session("b2", "bravo", 2002);
    const b1 = session("b1", "bravo", 2001);
    const a9 = session("a9", "alpha", 9000);
    const off = session("off", "charlie", 3000, "dead-server");
    const other = session("other", "echo", 5000);
    await open(store, [asker, b2, b1, a9, off, other]);
    const expired = session("expired", "delta", 4000);
    await store.registerSession(expired, NOW + 10);
    for (const s of [asker, b2, b1, a9, off, expired]) {
      await publish(store, s.sessionId, entry("f.bin", s === b1 ? { have: "/w==" } : {}));
    }
    await publish(store, "other", entry("g.bin"));
    assert.equal(await store.markOffline({ serverId: "dead-server" }), 1);

    const source = (s: SessionRow, extra: Partial<FileEntry> = {}): SourceInfo => ({
      ...entry("f.bin", extra),
      hostname: s.hostname,
      address: s.address,
      port: s.port,
      id: DEVICE_ID,
      sig: "c2ln",
    });
    assert.deepEqual(await store.whoHas("f.bin", "asker", NOW + 100), [
      source(a9),
      source(b1, { have: "/w==" }),
      source(b2),
    ]);
    assert.deepEqual(
      (await store.whoHas("f.bin", "nobody", NOW + 100)).map((s) => s.hostname),
      ["alpha", "bravo", "bravo", "mallory"],
    );
    assert.deepEqual(
      (await store.whoHas("f.bin", "nobody", NOW - 100)).map((s) => s.hostname),
      ["alpha", "bravo", "bravo", "delta", "mallory"],
    );
    // Exact names only: no case folding, no LIKE wildcards.
    assert.deepEqual(await store.whoHas("F.BIN", "asker", NOW), []);
    assert.deepEqual(await store.whoHas("f.bi_", "asker", NOW), []);
    assert.deepEqual(await store.whoHas("f.bi%", "asker", NOW), []);
  });

  await it("search() matches a case-insensitive substring, in byte order of fname", async (store) => {
    await open(store, [session("s1", "alpha", 4000)]);
    for (const f of ["music/other.mp3", "photos/img_01.JPG", "Music/Song.MP3", "docs/readme.txt"]) {
      await publish(store, "s1", entry(f));
    }
    assert.deepEqual(await fnames(store, ""), [
      "Music/Song.MP3",
      "docs/readme.txt",
      "music/other.mp3",
      "photos/img_01.JPG",
    ]);
    assert.deepEqual(await fnames(store, "mp3"), ["Music/Song.MP3", "music/other.mp3"]);
    assert.deepEqual(await fnames(store, "SONG"), ["Music/Song.MP3"]);
    assert.deepEqual(await fnames(store, "usic/"), ["Music/Song.MP3", "music/other.mp3"]);
    assert.deepEqual(await fnames(store, "img_01.jpg"), ["photos/img_01.JPG"]);
    assert.deepEqual(await fnames(store, "nothing"), []);
  });

  await it("search() treats * and ? as a glob anchored at both ends", async (store) => {
    await open(store, [session("s1", "alpha", 4000)]);
    for (const f of ["music/other.mp3", "Music/Song.MP3", "docs/readme.txt", "docs/readme.tx"]) {
      await publish(store, "s1", entry(f));
    }
    assert.deepEqual(await fnames(store, "*.mp3"), ["Music/Song.MP3", "music/other.mp3"]);
    assert.deepEqual(await fnames(store, "MUSIC/*"), ["Music/Song.MP3", "music/other.mp3"]);
    assert.deepEqual(await fnames(store, "docs/readme.tx?"), ["docs/readme.txt"]);
    assert.deepEqual(await fnames(store, "docs/readme.tx*"), ["docs/readme.tx", "docs/readme.txt"]);
    assert.deepEqual(await fnames(store, "readme*"), []);
    assert.deepEqual(await fnames(store, "*readme"), []);
    assert.deepEqual(await fnames(store, "*readme*"), ["docs/readme.tx", "docs/readme.txt"]);
    assert.deepEqual(await fnames(store, "?????/*.mp3"), ["Music/Song.MP3", "music/other.mp3"]);
    assert.deepEqual(await fnames(store, "????/*.mp3"), []);
  });

  await it("search() matches %, _ and \\ literally", async (store) => {
    await open(store, [session("s1", "alpha", 4000)]);
    for (const f of ["100%.txt", "100x.txt", "a_b.txt", "axb.txt", "back\\slash", "backxslash"]) {
      await publish(store, "s1", entry(f));
    }
    assert.deepEqual(await fnames(store, "%"), ["100%.txt"]);
    assert.deepEqual(await fnames(store, "100%"), ["100%.txt"]);
    assert.deepEqual(await fnames(store, "_"), ["a_b.txt"]);
    assert.deepEqual(await fnames(store, "a_b"), ["a_b.txt"]);
    assert.deepEqual(await fnames(store, "k\\s"), ["back\\slash"]);
    assert.deepEqual(await fnames(store, "\\"), ["back\\slash"]);
    assert.deepEqual(await fnames(store, "a_?.txt"), ["a_b.txt"]);
    assert.deepEqual(await fnames(store, "*%*"), ["100%.txt"]);
    assert.deepEqual(await fnames(store, "back\\*"), ["back\\slash"]);
  });

  await it("search() orders by fname, hostname, port and pages with offset, limit, total", async (store) => {
    const b2 = session("b2", "bravo", 2);
    const a5 = session("a5", "alpha", 5);
    const b1 = session("b1", "bravo", 1);
    await open(store, [b2, a5, b1]);
    for (const s of [b2, a5, b1]) {
      await publish(store, s.sessionId, entry("y.dat"));
      await publish(store, s.sessionId, entry("x.dat", { have: "/w==" }));
      await publish(store, s.sessionId, entry("z.txt"));
    }
    const all = await store.search(".dat", page, NOW);
    assert.equal(all.total, 6);
    assert.deepEqual(all.entries.map((e) => `${e.fname} ${e.hostname}:${e.port}`), [
      "x.dat alpha:5",
      "x.dat bravo:1",
      "x.dat bravo:2",
      "y.dat alpha:5",
      "y.dat bravo:1",
      "y.dat bravo:2",
    ]);
    const first: CatalogEntry = {
      ...entry("x.dat", { have: "/w==" }),
      hostname: "alpha",
      port: 5,
      online: true,
      id: DEVICE_ID,
    };
    assert.deepEqual(all.entries[0], first);

    const middle = await store.search(".dat", { offset: 2, limit: 3 }, NOW);
    assert.deepEqual(middle, { entries: all.entries.slice(2, 5), total: 6 });
    const tail = await store.search(".dat", { offset: 4, limit: 100 }, NOW);
    assert.deepEqual(tail, { entries: all.entries.slice(4), total: 6 });
    assert.deepEqual(await store.search(".dat", { offset: 6, limit: 10 }, NOW), {
      entries: [],
      total: 6,
    });
    assert.deepEqual(await store.search(".dat", { offset: 2 ** 40, limit: 10 }, NOW), {
      entries: [],
      total: 6,
    });
    assert.deepEqual(await store.search(".dat", { offset: 0, limit: 0 }, NOW), {
      entries: [],
      total: 6,
    });
  });

  await it('search("") and "*" list every entry in order; each offset gives the same page', async (store) => {
    const sessions = [
      session("b2", "bravo", 2),
      session("a5", "alpha", 5),
      session("off", "delta", 1, "dead-server"),
    ];
    await open(store, sessions);
    await store.registerSession(session("expired", "charlie", 1), NOW + 10);
    // Out of order, several holders per name, a name gone and back, a session gone.
    const names = ["m.bin", "B.bin", "a.bin", "z.bin", "é.bin", "k.bin"];
    for (const [i, s] of ["b2", "a5", "off", "expired"].entries()) {
      for (const fname of names.slice(i)) await publish(store, s, entry(fname));
    }
    await store.registerSession(session("gone", "echo", 1), LEASE);
    await publish(store, "gone", entry("gone.bin"));
    await store.closeSession("gone");
    assert.equal(await store.unpublish("b2", "m.bin"), true);
    assert.equal(await store.unpublish("a5", "B.bin"), true);
    assert.equal(await store.unpublish("b2", "B.bin"), true);
    await publish(store, "b2", entry("B.bin"));
    await store.markOffline({ serverId: "dead-server" });

    const listed = (e: CatalogEntry) => `${e.fname} ${e.hostname} ${e.online}`;
    const live = await store.search("", page, NOW + 100);
    assert.deepEqual(live.entries.map(listed), [
      "B.bin bravo true",
      "a.bin alpha true",
      "a.bin bravo true",
      "k.bin alpha true",
      "k.bin bravo true",
      "z.bin alpha true",
      "z.bin bravo true",
      "é.bin alpha true",
      "é.bin bravo true",
    ]);
    assert.equal(live.total, 9);
    const every = await store.search("*", { ...page, includeOffline: true }, NOW + 100);
    assert.equal(every.total, 9 + 4 + 3);
    assert.deepEqual(every.entries.map(listed).slice(0, 4), [
      "B.bin bravo true",
      "a.bin alpha true",
      "a.bin bravo true",
      "a.bin delta false",
    ]);
    for (const [pattern, includeOffline, all] of [["", false, live], ["*", true, every]] as const) {
      for (let offset = 0; offset <= all.total + 1; offset++) {
        assert.deepEqual(
          await store.search(pattern, { offset, limit: 3, includeOffline }, NOW + 100),
          { entries: all.entries.slice(offset, offset + 3), total: all.total },
          `"${pattern}" offset ${offset}`,
        );
      }
    }
    assert.deepEqual(await store.search("", { offset: 0, limit: 0 }, NOW + 100), {
      entries: [],
      total: 9,
    });
  });

  await it("search() hides offline and expired owners unless includeOffline (online false)", async (store) => {
    const live = session("live", "alpha", 1);
    const off = session("off", "bravo", 1, "dead-server");
    await open(store, [live, off]);
    await store.registerSession(session("expired", "charlie", 1), NOW + 10);
    for (const id of ["live", "off", "expired"]) await publish(store, id, entry("f.txt"));
    await store.markOffline({ serverId: "dead-server" });

    const visible = await store.search("f", page, NOW + 100);
    assert.deepEqual(visible, {
      entries: [{ ...entry("f.txt"), hostname: "alpha", port: 1, online: true, id: DEVICE_ID }],
      total: 1,
    });
    const every = await store.search("f", { ...page, includeOffline: true }, NOW + 100);
    assert.equal(every.total, 3);
    assert.deepEqual(every.entries.map((e) => [e.hostname, e.online]), [
      ["alpha", true],
      ["bravo", false],
      ["charlie", false],
    ]);
    const paged = await store.search("f", { offset: 1, limit: 1, includeOffline: true }, NOW);
    assert.deepEqual(paged.entries.map((e) => [e.hostname, e.online]), [["bravo", false]]);
    assert.equal(paged.total, 3);
  });

  await it("sessions() lists live sessions of all hosts or of one, ordered", async (store) => {
    const b2 = session("b2", "bravo", 2);
    const a1 = session("a1", "alpha", 1);
    const b1 = session("b1", "bravo", 1);
    await open(store, [b2, a1, b1, session("c1", "charlie", 1, "dead-server")]);
    await store.registerSession(session("b3", "bravo", 3), NOW + 10);
    await store.markOffline({ serverId: "dead-server" });
    assert.deepEqual(await store.sessions(undefined, NOW + 100), [a1, b1, b2]);
    assert.deepEqual(await store.sessions("bravo", NOW + 100), [b1, b2]);
    assert.deepEqual(await store.sessions("bravo", NOW), [b1, b2, session("b3", "bravo", 3)]);
    assert.deepEqual(await store.sessions("charlie", NOW), []);
    assert.deepEqual(await store.sessions("BRAVO", NOW), []);
    assert.deepEqual(await store.sessions("nobody", NOW), []);
  });

  await it("registerSession() drops the offline sessions of its hostname on other ports", async (store) => {
    await open(store, [
      session("stale", "alpha", 4000),
      session("twin", "alpha", 4001, "server-b"),
      session("other", "bravo", 4000),
    ]);
    for (const id of ["stale", "twin", "other"]) await publish(store, id, entry(`${id}.txt`));
    await store.markOffline({ serverId: "server-a" });
    await store.registerSession(session("back", "alpha", 5000), LEASE);
    await publish(store, "back", entry("back.txt"));
    const listed = await store.search("", { ...page, includeOffline: true }, NOW);
    assert.deepEqual(
      listed.entries.map((e) => `${e.fname} ${e.hostname}:${e.port} ${e.online}`),
      ["back.txt alpha:5000 true", "other.txt bravo:4000 false", "twin.txt alpha:4001 true"],
    );
    assert.deepEqual(await store.entriesOf("stale"), []);
  });

  await it("entriesOf() lists one session's entries in byte order of fname", async (store) => {
    await open(store, [session("s1", "alpha", 1), session("s2", "bravo", 1)]);
    for (const f of ["b.txt", "a.txt", "C.txt"]) await publish(store, "s1", entry(f));
    await publish(store, "s2", entry("d.txt"));
    assert.deepEqual(await store.entriesOf("s1"), [
      entry("C.txt"),
      entry("a.txt"),
      entry("b.txt"),
    ]);
    assert.deepEqual(await store.entriesOf("no-such-session"), []);
  });

  await it("counts() counts live sessions and every entry", async (store) => {
    assert.deepEqual(await store.counts(NOW), { sessions: 0, entries: 0 });
    await open(store, [session("a", "alpha", 1), session("b", "bravo", 1, "dead-server")]);
    await store.registerSession(session("c", "charlie", 1), NOW + 10);
    await store.registerSession(session("d", "delta", 1), LEASE);
    await store.markOffline({ serverId: "dead-server" });
    for (const id of ["a", "b", "c", "d"]) await publish(store, id, entry("f.txt"));
    await publish(store, "a", entry("g.txt"));
    assert.deepEqual(await store.counts(NOW + 100), { sessions: 2, entries: 5 });
    assert.deepEqual(await store.counts(NOW), { sessions: 3, entries: 5 });
  });
}

Deno.test({
  name: "Store contract",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t) {
    await t.step("sqlite", async (t) => {
      await t.step("file", (t) => storeContract(t, openSqliteFile));
      await t.step(":memory:", (t) => storeContract(t, openSqliteMemory));
    });
    await t.step("memory over sqlite", (t) => storeContract(t, openMemoryOverFile));
    await t.step("memory over sqlite, writer thread", (t) => storeContract(t, openStoreFile));
    await pgStep(t, (t) => storeContract(t, openPostgres));
  },
});

Deno.test({
  name: "PostgresStore reports driver errors as Cannot <action>",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t) {
    await pgStep(t, async () => {
      await using fixture = await openPostgres();
      await open(fixture.store, [session("s1", "alpha", 4000)]);
      // A size beyond BIGINT: the database refuses it (the protocol's decoder never lets one in).
      await assert.rejects(
        publish(fixture.store, "s1", entry("a.txt", { size: 1e21 })),
        (err: unknown) => {
          assert.ok(err instanceof Error);
          assert.match(err.message, /^Cannot publish "a\.txt": .*bigint.*\[SQLSTATE 22\w{3}\]$/);
          assert.ok(err.cause instanceof Error);
          return true;
        },
      );
      const unreachable = new PostgresStore("postgres://postgres@127.0.0.1:1/test");
      try {
        await assert.rejects(unreachable.counts(NOW), (err: unknown) => {
          assert.ok(err instanceof Error);
          assert.match(err.message, /^Cannot count sessions and entries: \S/);
          return true;
        });
      } finally {
        await unreachable.close();
      }
    });
  },
});

Deno.test({
  name: "PostgresStore.registerSession() from two servers at once leaves one session per pair",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t) {
    await pgStep(t, async () => {
      await using schema = await tempSchema();
      const one = new PostgresStore(PG_URL, { schema: schema.name });
      const two = new PostgresStore(PG_URL, { schema: schema.name });
      try {
        await one.migrate();
        await open(one, [session("first", "alpha", 4000)]);
        await publish(one, "first", entry("a.txt"));
        const rounds = 20;
        const replaced = await Promise.all(
          Array.from(
            { length: rounds },
            (_, i) =>
              (i % 2 ? one : two).registerSession(
                session(`s${i}`, "alpha", 4000, `srv${i % 2}`),
                LEASE,
              ),
          ),
        );
        // Every takeover found a predecessor, so none failed on UNIQUE (hostname, port).
        assert.equal(replaced.filter((r) => r.replaced !== undefined).length, rounds);
        const live = await one.sessions("alpha", NOW);
        assert.equal(live.length, 1);
        assert.deepEqual(await two.counts(NOW), { sessions: 1, entries: 0 });
      } finally {
        await Promise.all([one.close(), two.close()]);
      }
    });
  },
});

Deno.test("openStore() picks PostgreSQL for postgres:// URLs, else SQLite", async () => {
  for (const url of ["postgres://u@127.0.0.1:1/db", "postgresql://u@127.0.0.1:1/db"]) {
    const store = openStore(url);
    try {
      assert.ok(store instanceof PostgresStore, url);
      assert.equal(store.shared, true);
    } finally {
      await store.close();
    }
  }
  const store = openStore(":memory:");
  try {
    assert.ok(store instanceof MemoryStore);
    assert.equal(store.shared, false);
  } finally {
    await store.close();
  }
});
