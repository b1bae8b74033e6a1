// The peer's P2P server over a real repository folder: what it opens when the folder changes
// under it (a folder swapped for a symlink, a link into .lanshare/, a file edited in place), and
// what its error texts reveal.
import assert from "node:assert/strict";
import { join } from "node:path";
import { request } from "../../shared/encode.ts";
import { MsgType } from "../../shared/protocol.ts";
import { hashFile } from "../../peer/hashing.ts";
import type { ShareChange } from "../../peer/shares.ts";
import { askOnce, getRange, startP2pFixture } from "./_p2p.ts";

const SANITIZE = { sanitizeResources: true, sanitizeOps: true } as const;
const SIZE = 64 * 1024;
const INSIDE = new Uint8Array(SIZE).fill(0x69);
const OUTSIDE = new Uint8Array(SIZE).fill(0x58);

/**
 * A worker thread that swaps `dir/sub` between the real folder and a symlink to an outside
 * folder as fast as it can, until stopped; it leaves the real folder in place.
 */
function startSwapper(dir: string): { stop(): Promise<number> } {
  const flag = new SharedArrayBuffer(4);
  const source = `self.onmessage = (event) => {
    const { dir, flag } = event.data;
    const stop = new Int32Array(flag);
    let swaps = 0;
    while (Atomics.load(stop, 0) === 0) {
      // Each state holds for a few microseconds, so that requests meet every one of them.
      Deno.renameSync(dir + "/sub", dir + "/sub.real");
      Deno.renameSync(dir + "/sub.link", dir + "/sub");
      Atomics.wait(stop, 0, 0, 0.05);
      Deno.renameSync(dir + "/sub", dir + "/sub.link");
      Deno.renameSync(dir + "/sub.real", dir + "/sub");
      // Every 16th time the real folder stays for a millisecond: on a loaded machine the
      // 50 µs windows alone can refuse every request, and a run that served nothing proves
      // nothing about what is served.
      Atomics.wait(stop, 0, 0, ++swaps % 16 === 0 ? 1 : 0.05);
    }
    self.postMessage(swaps);
  };`;
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  const worker = new Worker(url, { type: "module" });
  const done = new Promise<number>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<number>) => resolve(event.data);
    worker.onerror = (event) => {
      event.preventDefault();
      reject(new Error(`swapper failed: ${event.message}`));
    };
  });
  worker.postMessage({ dir, flag });
  return {
    async stop() {
      Atomics.store(new Int32Array(flag), 0, 1);
      try {
        return await done;
      } finally {
        worker.terminate();
        URL.revokeObjectURL(url);
      }
    },
  };
}

Deno.test({
  name: "P2P server serves no outside byte while a folder is swapped for a symlink",
  ...SANITIZE,
  async fn() {
    await using peer = await startP2pFixture();
    const root = peer.repo.root;
    await Deno.mkdir(join(root, "sub"));
    await Deno.writeFile(join(root, "sub", "file.bin"), INSIDE);
    await Deno.mkdir(join(peer.dir, "secret"));
    await Deno.writeFile(join(peer.dir, "secret", "file.bin"), OUTSIDE);
    await Deno.symlink(join(peer.dir, "secret"), join(root, "sub.link"));
    await peer.publish("sub/file.bin", "file.bin");

    const swapper = startSwapper(root);
    let inside = 0;
    let outside = 0;
    let refused = 0;
    let revealing = "";
    const deadline = Date.now() + 20_000;
    try {
      for (let i = 0; i < 1500 && Date.now() < deadline; i++) {
        const answer = await getRange(peer.port, "file.bin", { offset: 0, bytes: SIZE });
        if (answer.kind === "error") {
          refused++;
          if (answer.message.includes(peer.dir)) revealing = answer.message;
        } else if (answer.bytes.every((b) => b === 0x69)) inside++;
        else outside++;
      }
    } finally {
      const swaps = await swapper.stop();
      console.log(
        `swaps ${swaps}: served inside ${inside}, outside ${outside}, refused ${refused}`,
      );
    }
    assert.equal(outside, 0, `${outside} answers carried bytes from outside the repository`);
    assert.ok(inside > 0, "no request was served at all");
    assert.equal(revealing, "", "an error text reveals the repository's path");
  },
});

Deno.test({
  name: "P2P server refuses a published name that became a symlink into .lanshare/",
  ...SANITIZE,
  async fn() {
    await using peer = await startP2pFixture();
    const path = join(peer.repo.root, "notes.txt");
    const published = join(peer.repo.metaDir, "published.json");
    await Deno.writeTextFile(path, "x".repeat(16));
    await peer.publish("notes.txt", "notes.txt");
    await Deno.remove(path);
    await Deno.symlink(published, path);
    const answer = await getRange(peer.port, "notes.txt", { offset: 0, bytes: 16 });
    assert.equal(answer.kind, "error");
  },
});

Deno.test({
  name: "P2P server error texts do not reveal the repository's absolute path",
  ...SANITIZE,
  async fn() {
    await using peer = await startP2pFixture();
    const path = join(peer.repo.root, "gone.txt");
    await Deno.writeTextFile(path, "bytes");
    await peer.publish("gone.txt", "gone.txt");
    await Deno.remove(path);
    const answer = await getRange(peer.port, "gone.txt", { offset: 0, bytes: 5 });
    assert.equal(answer.kind, "error");
    const text = answer.kind === "error" ? answer.message : "";
    assert.ok(!text.includes(peer.dir), `error text reveals a path: ${text}`);
    const info = await askOnce(peer.port, request(MsgType.GetInfo, 1, { fname: "gone.txt" }));
    assert.equal(info?.type, MsgType.Error, "GetInfo of a vanished file is refused too");
  },
});

Deno.test({
  name: "P2P server refuses a file edited in place and republishes all its names re-hashed",
  ...SANITIZE,
  async fn() {
    await using peer = await startP2pFixture();
    const path = join(peer.repo.root, "data.bin");
    await Deno.writeFile(path, INSIDE);
    await peer.publish("data.bin", "a.bin");
    await peer.publish("data.bin", "b.bin");
    const changed = Promise.withResolvers<ShareChange[]>();
    peer.shares.onChange = (changes) => changed.resolve(changes);

    // Same size, other bytes, a later mtime: what an editor saving in place leaves.
    await Deno.writeFile(path, OUTSIDE);
    await Deno.utime(path, new Date(), new Date(Date.now() + 5_000));
    const answer = await getRange(peer.port, "b.bin", { offset: 0, bytes: SIZE });
    assert.equal(answer.kind, "error");
    assert.match(answer.kind === "error" ? answer.message : "", /changed since it was published/);

    const timer = setTimeout(() => changed.reject(new Error("no change reported")), 10_000);
    const changes = await changed.promise.finally(() => clearTimeout(timer));
    assert.deepEqual(changes.map((c) => c.fname).sort(), ["a.bin", "b.bin"]);
    const fresh = await hashFile(path);
    for (const fname of ["a.bin", "b.bin"]) {
      assert.equal(peer.shares.get(fname)?.hashes.rootHash, fresh.rootHash, fname);
      const served = await getRange(peer.port, fname, { offset: 0, bytes: SIZE });
      assert.deepEqual(served, { kind: "data", bytes: OUTSIDE }, fname);
    }
  },
});

Deno.test({
  name: "Shares.rescan() re-hashes a file edited while nobody fetches it",
  ...SANITIZE,
  async fn() {
    await using peer = await startP2pFixture();
    const path = join(peer.repo.root, "quiet.bin");
    await Deno.writeFile(path, INSIDE);
    await peer.publish("quiet.bin", "quiet.bin");
    const changes: ShareChange[] = [];
    peer.shares.onChange = (c) => changes.push(...c);
    await Deno.writeFile(path, OUTSIDE.subarray(0, 100));
    await peer.shares.rescan();
    assert.deepEqual(changes, [{ fname: "quiet.bin", removed: false }]);
    assert.equal(peer.shares.get("quiet.bin")?.hashes.size, 100);
    await Deno.remove(path);
    await peer.shares.rescan();
    assert.deepEqual(changes.at(-1), { fname: "quiet.bin", removed: true });
    assert.equal(peer.shares.get("quiet.bin"), undefined);
  },
});
