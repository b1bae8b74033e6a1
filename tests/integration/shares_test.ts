// peer/shares.ts on a real repository folder: the published table and the hash cache survive
// a restart whole, however many publishes and hashings run at once.
import assert from "node:assert/strict";
import { join } from "node:path";
import { Repository } from "../../peer/repo.ts";
import { type ShareChange, Shares } from "../../peer/shares.ts";

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

Deno.test("Shares.set(): republishing an edited file gives its other names the new hashes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lanshare-shares-" });
  try {
    const repo = await Repository.open(dir);
    const path = join(repo.root, "doc.txt");
    await Deno.writeTextFile(path, "first version");
    const shares = await Shares.load(repo);
    const publish = async (fname: string) => {
      const real = await repo.resolveFile("doc.txt");
      await shares.set({ fname, path: real, hashes: await shares.hashesOf(real) });
    };
    await publish("a.txt");
    await publish("b.txt");
    const changes: ShareChange[] = [];
    shares.onChange = (c) => changes.push(...c);
    await Deno.writeTextFile(path, "second version, longer");
    await publish("a.txt");
    assert.equal(shares.get("b.txt")?.hashes.rootHash, shares.get("a.txt")?.hashes.rootHash);
    assert.deepEqual(changes, [{ fname: "b.txt", removed: false }]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
