// The real peer across an index restart: it sends the digest of what the index acknowledged,
// and when the restarted index kept those entries it sends only what changed meanwhile.
import assert from "node:assert/strict";
import { join } from "node:path";
import { resolvePeerConfig } from "../../peer/config.ts";
import { Peer } from "../../peer/peer.ts";
import type { FileEntry } from "../../shared/protocol.ts";
import { connectRaw, pollUntil, startTestServer } from "./_server.ts";

/** An in-process peer of the index on 127.0.0.1:`port` (plaintext, as the test server). */
async function startPeer(repo: string, port: number): Promise<Peer> {
  const parsed = resolvePeerConfig(
    [
      "--repo",
      repo,
      "--server",
      `127.0.0.1:${port}`,
      "--host",
      "127.0.0.1",
      "--hostname",
      "resumer",
      "--log-level",
      "error",
      "--insecure-plaintext",
    ],
    {},
    { hostname: () => "resumer", broadcast: () => ["127.255.255.255"] },
  );
  if (parsed.kind !== "run") throw new Error("Cannot build a peer config");
  return await Peer.start(parsed.config);
}

Deno.test("a peer whose entries the restarted index kept sends only what changed meanwhile", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lanshare_resume_" });
  try {
    const db = join(dir, "index.db");
    const repo = join(dir, "repo");
    await Deno.mkdir(repo);
    for (const name of ["keep", "old", "edited"]) {
      await Deno.writeTextFile(join(repo, `${name}.txt`), name);
    }
    const first = await startTestServer({ db });
    const port = first.tcpPort;
    await using peer = await startPeer(repo, port);
    for (const name of ["keep", "old", "edited"]) {
      assert.equal((await peer.publish(`${name}.txt`)).status, "created");
    }

    // The index stops; meanwhile the peer's shares change in ways it cannot tell the index
    // (as when a request timed out while no index answered).
    await first.close();
    await pollUntil(() => Promise.resolve(peer.index.connected ? undefined : true), {
      timeoutMs: 5000,
      what: "the peer to notice the index went away",
    });
    await peer.shares.delete("old.txt");
    await Deno.writeTextFile(join(repo, "edited.txt"), "edited, longer");
    await Deno.writeTextFile(join(repo, "new.txt"), "new");
    for (const name of ["edited", "new"]) {
      const path = await peer.repo.resolveFile(`${name}.txt`);
      await peer.shares.set({
        fname: `${name}.txt`,
        path,
        hashes: await peer.shares.hashesOf(path),
      });
    }

    await using second = await startTestServer({ db, port });
    // Every publish that reaches the restarted index, by fname (the real catalogue, counted).
    const published: string[] = [];
    const publish = second.catalog.publish.bind(second.catalog);
    second.catalog.publish = (session, entry: FileEntry) => {
      published.push(entry.fname);
      return publish(session, entry);
    };
    await pollUntil(() => Promise.resolve(peer.index.connected || undefined), {
      timeoutMs: 15_000,
      what: "the peer to register with the restarted index",
    });
    await using asker = await connectRaw(second.tcpPort);
    await asker.hello("asker", 7001);
    const sizes = async (fname: string) => (await asker.whoHas(fname)).map((s) => s.size);
    await pollUntil(async () => (await sizes("old.txt")).length === 0 || undefined, {
      timeoutMs: 5000,
      what: "old.txt to be unpublished",
    });
    assert.deepEqual(published.sort(), ["edited.txt", "new.txt"], "only the changes were sent");
    assert.deepEqual(await sizes("keep.txt"), [4], "kept without a publish");
    assert.deepEqual(await sizes("edited.txt"), [14]);
    assert.deepEqual(await sizes("new.txt"), [3]);
    assert.deepEqual(await second.catalog.counts(), { sessions: 2, entries: 3 });
    assert.deepEqual([...peer.index.published.keys()].sort(), [
      "edited.txt",
      "keep.txt",
      "new.txt",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
