// A restarted index: the sessions of its peers stay listed as offline (never served as sources)
// until each peer comes back, and go once they have been away for the configured time.
import assert from "node:assert/strict";
import { createIdentity } from "../../shared/identity.ts";
import type { SignedFileEntry } from "../../shared/protocol.ts";
import { sharesDigest } from "../../shared/shares_digest.ts";
import {
  connectRaw,
  fakeHash,
  fileEntry,
  pollUntil,
  startTestServer,
  testIdentity,
} from "./_server.ts";

const page = { offset: 0, limit: 100, includeOffline: true };

Deno.test({
  name: "restart: offline sessions are never sources, go when their peer returns, expire otherwise",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "lanshare_restart_" });
    try {
      const db = `${dir}/index.db`;
      const identity = await testIdentity();
      const first = await startTestServer({ db });
      // Two peers still connected when the server stops: kept as offline rows for the restart.
      const stay = await connectRaw(first.tcpPort, identity);
      await stay.hello("stay", 7000);
      await stay.publish(fileEntry("stay.txt"));
      const gone = await connectRaw(first.tcpPort, identity);
      await gone.hello("gone", 7000);
      await gone.publish(fileEntry("gone.txt"));
      await first.close();
      await stay[Symbol.asyncDispose]();
      await gone[Symbol.asyncDispose]();

      // Kept for 1 s here (minutes by default), so that the one that never comes back expires.
      await using second = await startTestServer({ db }, { offlineKeepMs: 1000 });
      const listed = await second.catalog.search("", page);
      assert.deepEqual(listed.entries.map((e) => [e.hostname, e.online]), [
        ["gone", false],
        ["stay", false],
      ]);
      await using asker = await connectRaw(second.tcpPort, identity);
      await asker.hello("asker", 7001);
      assert.deepEqual(await asker.whoHas("stay.txt"), [], "an offline row is never a source");

      // One peer comes back on another P2P port: its offline row goes at once.
      await using back = await connectRaw(second.tcpPort, identity);
      await back.hello("stay", 7002);
      assert.deepEqual((await second.catalog.search("stay", page)).entries, []);
      await back.publish(fileEntry("stay.txt"));
      assert.equal((await asker.whoHas("stay.txt")).length, 1);

      // The other never does: its row expires, instead of being listed and counted for ever.
      await pollUntil(
        async () => (await second.catalog.search("gone", page)).total === 0 || undefined,
        { timeoutMs: 10_000, what: "the offline row of a peer that never came back to expire" },
      );
      assert.deepEqual(await second.catalog.counts(), { sessions: 2, entries: 1 });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/**
 * Runs a first server on `db` where `alpha` (P2P port 7000, the test device) publishes
 * `entries`, then stops it with alpha still connected: alpha's session is kept offline.
 */
async function leaveOffline(db: string, entries: SignedFileEntry[]): Promise<void> {
  const first = await startTestServer({ db });
  await using alpha = await connectRaw(first.tcpPort);
  await alpha.hello("alpha", 7000);
  for (const entry of entries) assert.equal(await alpha.publish(entry), "created");
  await first.close();
}

/** A temporary directory for one test's database, removed afterwards. */
async function tempDb(): Promise<AsyncDisposable & { db: string }> {
  const dir = await Deno.makeTempDir({ prefix: "lanshare_restart_" });
  return {
    db: `${dir}/index.db`,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

const FILES = [fileEntry("a.txt"), fileEntry("b.txt", { rootHash: fakeHash("b"), have: "gA==" })];

Deno.test("restart: a peer back with the same files has its entries kept, nothing published", async () => {
  await using dir = await tempDb();
  await leaveOffline(dir.db, FILES);
  await using second = await startTestServer({ db: dir.db });
  await using asker = await connectRaw(second.tcpPort);
  await asker.hello("asker", 7001);

  await using back = await connectRaw(second.tcpPort);
  const welcome = await back.hello("alpha", 7000, { sharesDigest: sharesDigest(FILES) });
  assert.equal(welcome.body.kept, true, "Welcome says the entries were kept");
  // No publish: who-has answers with the session as it is now, search lists it live.
  const [source] = await asker.whoHas("b.txt");
  assert.deepEqual(source, {
    ...FILES[1],
    hostname: "alpha",
    address: "127.0.0.1",
    port: 7000,
    id: (await testIdentity()).id,
  });
  assert.equal((await asker.whoHas("a.txt")).length, 1);
  assert.deepEqual(
    (await second.catalog.search("", page)).entries.map((e) => [e.fname, e.online]),
    [
      ["a.txt", true],
      ["b.txt", true],
    ],
  );
  assert.deepEqual(await second.catalog.counts(), { sessions: 2, entries: 2 });
  // The entries are the new session's: publishing one again changes nothing.
  assert.equal(await back.publish(FILES[0]!), "unchanged");
  // And they go with it when it ends, as any session's.
  await back.close();
  await pollUntil(
    async () => (await second.catalog.counts()).entries === 0 || undefined,
    { timeoutMs: 5000, what: "the resumed session's entries to go with it" },
  );
});

Deno.test("restart: a peer back with other files starts empty and its republish replaces the old rows", async () => {
  await using dir = await tempDb();
  await leaveOffline(dir.db, FILES);
  await using second = await startTestServer({ db: dir.db });
  await using asker = await connectRaw(second.tcpPort);
  await asker.hello("asker", 7001);

  // The peer last published a.txt only (say, b.txt's Published never reached it): no match.
  await using back = await connectRaw(second.tcpPort);
  const welcome = await back.hello("alpha", 7000, {
    sharesDigest: sharesDigest(FILES.slice(0, 1)),
  });
  assert.equal(welcome.body.kept, undefined, "a session not kept: Welcome as before");
  assert.deepEqual(await asker.whoHas("a.txt"), [], "the old rows are gone");
  assert.deepEqual((await second.catalog.search("", page)).entries, []);
  // What the peer publishes is all there is: nothing stale.
  const changed = fileEntry("a.txt", { size: 2000 });
  assert.equal(await back.publish(changed), "created");
  assert.deepEqual((await asker.whoHas("a.txt")).map((s) => s.size), [2000]);
  assert.deepEqual(await asker.whoHas("b.txt"), []);
  assert.deepEqual(await second.catalog.counts(), { sessions: 2, entries: 1 });
});

Deno.test("restart: another device presenting the hostname, port and digest is not given the entries", async () => {
  await using dir = await tempDb();
  await leaveOffline(dir.db, FILES);
  await using second = await startTestServer({ db: dir.db });
  await using asker = await connectRaw(second.tcpPort);
  await asker.hello("asker", 7001);

  // The digest is no secret (anyone who fetched the files could compute it): the device is.
  const other = await createIdentity();
  await using intruder = await connectRaw(second.tcpPort, other);
  const welcome = await intruder.hello("alpha", 7000, { sharesDigest: sharesDigest(FILES) });
  assert.equal(welcome.body.kept, undefined);
  assert.deepEqual(await asker.whoHas("a.txt"), []);
  assert.deepEqual(await asker.whoHas("b.txt"), []);
  assert.deepEqual(await second.catalog.counts(), { sessions: 2, entries: 0 });
});

Deno.test("restart: a peer without a digest (an older one) starts empty, as before", async () => {
  await using dir = await tempDb();
  await leaveOffline(dir.db, FILES);
  await using second = await startTestServer({ db: dir.db });
  await using old = await connectRaw(second.tcpPort);
  const welcome = await old.hello("alpha", 7000);
  assert.equal("kept" in welcome.body, false);
  assert.deepEqual(await second.catalog.counts(), { sessions: 1, entries: 0 });
});
