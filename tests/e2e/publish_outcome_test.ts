// End to end: the index's publish outcomes as the peer's shell reports them (issue 10 item 15).
import assert from "node:assert/strict";
import { join } from "node:path";
import { spawnPeer, spawnServer, tempDir } from "./_programs.ts";

Deno.test("peer publish reports overwrite and conflict with their root hashes", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await using server = await spawnServer();
  const [repoA, repoB] = ["a", "b"].map((n) => join(dir.path, n));
  await Deno.mkdir(repoA!, { recursive: true });
  await Deno.mkdir(repoB!, { recursive: true });
  await Deno.writeTextFile(join(repoA!, "notes.txt"), "first version\n");
  await Deno.writeTextFile(join(repoB!, "notes.txt"), "another peer's notes\n");
  await using a = await spawnPeer({ repo: repoA!, hostname: "alpha", server });
  await using b = await spawnPeer({ repo: repoB!, hostname: "beta", server });

  const first = await a.command("publish notes.txt");
  assert.equal(first.status, "created", JSON.stringify(first));
  await Deno.writeTextFile(join(repoA!, "notes.txt"), "second, longer version\n");
  const second = await a.command("publish notes.txt");
  assert.equal(second.ok, true, JSON.stringify(second));
  assert.equal(second.status, "overwrite");
  assert.equal(second.previousRootHash, first.rootHash);
  assert.notEqual(second.rootHash, first.rootHash);

  const other = await b.command("publish notes.txt");
  assert.equal(other.ok, true, JSON.stringify(other));
  assert.equal(other.status, "conflict");
  assert.equal(other.conflictRootHash, second.rootHash);
  assert.equal(Object.hasOwn(other, "previousRootHash"), false);
});
