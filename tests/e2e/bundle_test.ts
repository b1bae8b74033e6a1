// End to end: `deno bundle` output (what `make bundle` ships where `deno compile` cannot fetch
// its runtime) runs as the real programs: a bundled server (with its SQLite writer worker) and
// two bundled peers share a file.
import assert from "node:assert/strict";
import { join } from "node:path";
import { sha256File, spawnPeer, spawnServer, tempDir, writeRandomFile } from "./_programs.ts";

async function bundle(entry: string, out: string): Promise<void> {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", "-o", out, entry],
    cwd: new URL("../../", import.meta.url).pathname,
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
}

Deno.test("bundled server and peers publish and fetch like the sources", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  const server = join(dir.path, "lanshare-server.js");
  const peer = join(dir.path, "lanshare-peer.js");
  await bundle("server/main.ts", server);
  await bundle("peer/main.ts", peer);
  // A database file, so that the bundle also starts itself as the SQLite writer worker.
  await Deno.mkdir(join(dir.path, "index"));
  await using index = await spawnServer({ script: server, db: join(dir.path, "index", "i.db") });
  const repos = ["one", "two"].map((n) => join(dir.path, n));
  await Deno.mkdir(repos[0]!, { recursive: true });
  await writeRandomFile(join(repos[0]!, "payload.bin"), 5 * 1024 * 1024 + 3, 11);
  await using one = await spawnPeer({
    repo: repos[0]!,
    hostname: "one",
    server: index,
    script: peer,
  });
  await using two = await spawnPeer({
    repo: repos[1]!,
    hostname: "two",
    server: index,
    script: peer,
  });
  assert.equal((await one.command("publish payload.bin")).ok, true);
  const fetched = await two.command("fetch payload.bin");
  assert.equal(fetched.ok, true, JSON.stringify(fetched));
  assert.equal(
    await sha256File(join(repos[1]!, "payload.bin")),
    await sha256File(join(repos[0]!, "payload.bin")),
  );
});
