// End to end: the peer's repository on a disk that fills up, and on a read-only folder (a
// read-only mount, or no write permission). The mounts need root: without it those tests are
// skipped, saying so.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  exists,
  type PeerProgram,
  type ServerProgram,
  sha256File,
  spawnPeer,
  spawnServer,
  tempDir,
  writeRandomFile,
} from "./_programs.ts";

const MIB = 1024 * 1024;
const IS_ROOT = Deno.uid() === 0;
if (!IS_ROOT) console.warn("repo_disk_test.ts: not root, cannot mount a tmpfs: tests ignored");

/** Mounts a tmpfs of `sizeMib` MiB at `dir` (created) until disposed. */
async function mountTmpfs(dir: string, sizeMib: number): Promise<AsyncDisposable> {
  await Deno.mkdir(dir, { recursive: true });
  await run("mount", "-t", "tmpfs", "-o", `size=${sizeMib}m`, "tmpfs", dir);
  return {
    async [Symbol.asyncDispose]() {
      await run("umount", dir);
    },
  };
}

async function run(...argv: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    stderr: "piped",
  })
    .output();
  if (code !== 0) throw new Error(`${argv.join(" ")} failed: ${new TextDecoder().decode(stderr)}`);
}

/** A peer sharing 50 MiB big.bin and 2 MiB small.bin from its own (large) repository. */
async function startSeed(dir: string, server: ServerProgram): Promise<PeerProgram> {
  const repo = join(dir, "seed");
  await Deno.mkdir(repo);
  await writeRandomFile(join(repo, "big.bin"), 50 * MIB, 7);
  await writeRandomFile(join(repo, "small.bin"), 2 * MIB + 1, 8);
  const seed = await spawnPeer({ repo, hostname: "seed", server });
  assert.equal((await seed.command("publish big.bin")).ok, true);
  assert.equal((await seed.command("publish small.bin")).ok, true);
  return seed;
}

/** A fetcher's repository on a 20 MiB tmpfs, with a server and a seed sharing more than fits. */
interface SmallDisk extends AsyncDisposable {
  /** The repository folder on the tmpfs (not created). */
  repo: string;
  server: ServerProgram;
}

async function startSmallDisk(): Promise<SmallDisk> {
  await using stack = new AsyncDisposableStack();
  const dir = stack.use(await tempDir("lanshare-e2e-disk-"));
  const small = join(dir.path, "small");
  stack.use(await mountTmpfs(small, 20));
  const server = stack.use(await spawnServer());
  stack.use(await startSeed(dir.path, server));
  // Disposed in reverse: seed, server, unmount, remove the folder.
  const owned = stack.move();
  return { repo: join(small, "repo"), server, [Symbol.asyncDispose]: () => owned.disposeAsync() };
}

Deno.test({
  name: "fetch that fills the disk fails with 'not enough space'; the peer stays up and restarts",
  ignore: !IS_ROOT,
  async fn() {
    await using disk = await startSmallDisk();
    const { repo, server } = disk;
    // Without statfs the free space is unknown beforehand: the writes hit ENOSPC.
    const sys = "hostname,networkInterfaces";
    {
      await using fetcher = await spawnPeer({ repo, hostname: "fetcher", server, sys });
      const answer = await fetcher.command("fetch big.bin");
      assert.equal(answer.ok, false, JSON.stringify(answer));
      assert.match(answer.error, /not enough space: need \d+ bytes, have \d+/);
      assert.equal((await fetcher.command("status")).ok, true, "the peer answers after ENOSPC");
      await fetcher.kill();
    }
    // The partial download still fills the disk: the peer must start anyway.
    await using again = await spawnPeer({ repo, hostname: "fetcher", server, sys });
    const status = await again.command("status");
    assert.deepEqual(status.partials.map((p: { fname: string }) => p.fname), ["big.bin"]);
    assert.equal((await again.command("cancel big.bin")).ok, true);
    assert.equal((await again.command("fetch small.bin")).ok, true, again.context());
  },
});

Deno.test({
  name: "fetch larger than the free space is refused before it starts, saying how much",
  ignore: !IS_ROOT,
  async fn() {
    await using disk = await startSmallDisk();
    await using fetcher = await spawnPeer({
      repo: disk.repo,
      hostname: "fetcher",
      server: disk.server,
    });
    const answer = await fetcher.command("fetch big.bin");
    assert.equal(answer.ok, false, JSON.stringify(answer));
    assert.match(answer.error, new RegExp(`not enough space: need ${50 * MIB} bytes, have \\d+`));
    assert.equal((await fetcher.command("status")).partials.length, 0, "nothing was written");
    assert.equal((await fetcher.command("fetch small.bin")).ok, true, fetcher.context());
  },
});

Deno.test({
  name: "peer on a read-only repository shares its files and refuses to fetch",
  ignore: !IS_ROOT,
  async fn() {
    await using dir = await tempDir("lanshare-e2e-ro-");
    const mount = join(dir.path, "ro");
    await using _mount = await mountTmpfs(mount, 8);
    const repo = join(mount, "repo");
    await Deno.mkdir(repo);
    await writeRandomFile(join(repo, "shared.bin"), 3 * MIB, 11);
    await run("mount", "-o", "remount,ro", mount);
    await using server = await spawnServer();
    await using sharer = await spawnPeer({ repo, hostname: "sharer", server });
    assert.match(sharer.stderr, /read-only/);
    assert.equal((await sharer.command("publish shared.bin")).ok, true, sharer.context());

    const otherRepo = join(dir.path, "other");
    await using other = await spawnPeer({ repo: otherRepo, hostname: "other", server });
    assert.equal((await other.command("fetch shared.bin")).ok, true, other.context());
    assert.equal(
      await sha256File(join(otherRepo, "shared.bin")),
      await sha256File(join(repo, "shared.bin")),
    );
    await writeRandomFile(join(otherRepo, "back.bin"), MIB, 12);
    assert.equal((await other.command("publish back.bin")).ok, true);
    const refused = await sharer.command("fetch back.bin");
    assert.equal(refused.ok, false);
    assert.match(refused.error, /the repository is read-only/);
  },
});

Deno.test("peer without write permission for its repository shares and refuses to fetch", async () => {
  await using dir = await tempDir("lanshare-e2e-nowrite-");
  const repo = join(dir.path, "repo");
  await Deno.mkdir(repo);
  await writeRandomFile(join(repo, "shared.bin"), MIB + 5, 13);
  await using server = await spawnServer();
  await using sharer = await spawnPeer({ repo, hostname: "sharer", server, noWrite: true });
  assert.match(sharer.stderr, /read-only/);
  assert.equal((await sharer.command("publish shared.bin")).ok, true, sharer.context());
  const otherRepo = join(dir.path, "other");
  await using other = await spawnPeer({ repo: otherRepo, hostname: "other", server });
  assert.equal((await other.command("fetch shared.bin")).ok, true, other.context());
  const refused = await sharer.command("fetch shared.bin --force");
  assert.equal(refused.ok, false);
  assert.match(refused.error, /the repository is read-only/);
  assert.equal(await exists(join(repo, ".lanshare")), false, "nothing was written");
});
