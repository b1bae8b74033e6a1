// A restarted index: the sessions of its peers stay listed as offline (never served as sources)
// until each peer comes back, and go once they have been away for the configured time.
import assert from "node:assert/strict";
import { connectRaw, fileEntry, pollUntil, startTestServer, testIdentity } from "./_server.ts";

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
