// peer/shares.ts on a real repository folder: the published table and the hash cache survive
// a restart whole, however many publishes and hashings run at once.
import assert from "node:assert/strict";
import { join } from "node:path";
import { Repository } from "../../peer/repo.ts";
import { Shares } from "../../peer/shares.ts";

Deno.test("Shares: 40 files hashed and published at once are all published after a reload", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lanshare-shares-" });
  try {
    const repo = await Repository.open(dir);
    const names = Array.from({ length: 40 }, (_, i) => `file-${i}.bin`);
    for (const [i, name] of names.entries()) {
      await Deno.writeFile(join(repo.root, name), new Uint8Array(1000 + i).fill(i));
    }
    const shares = await Shares.load(repo);
    // As the peer publishes: hash (cache write), then add the share (table write), all at once.
    await Promise.all(names.map(async (name) => {
      const path = await repo.resolveFile(name);
      const hashes = await shares.hashesOf(path);
      await shares.set({ fname: name, path, hashes });
    }));

    const table = await repo.readMeta<Record<string, string>>("published.json");
    assert.deepEqual(Object.keys(table ?? {}).sort(), [...names].sort());
    const cache = await repo.readMeta<Record<string, unknown>>("hashes.json");
    assert.deepEqual(Object.keys(cache ?? {}).sort(), [...names].sort());
    const reloaded = await Shares.load(repo);
    assert.deepEqual(reloaded.list().map((s) => s.fname), [...names].sort());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
