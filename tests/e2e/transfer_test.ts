// End to end: the transfer engine under faults. Multi-source with a dying and a lying source,
// resume after kill -9, session slots (BUSY and queue positions), and rate limits.
import {
  getInfoRequest,
  helloRequest,
  signedEntry,
  type TestCredentials,
  ticketFrom,
} from "../_handshake.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { request } from "../../shared/encode.ts";
import { FramedConn } from "../../shared/framing.ts";
import { type Message, MsgType } from "../../shared/protocol.ts";
import { hashFile } from "../../peer/hashing.ts";
import { createIdentity } from "../../shared/identity.ts";
import {
  dialProgram,
  exists,
  type PeerProgram,
  sha256File,
  spawnPeer,
  spawnServer,
  tempDir,
  writeRandomFile,
} from "./_programs.ts";

const MIB = 1024 * 1024;

/** A raw P2P client asking a peer for a file, to see BUSY and queue answers directly. */
async function askInfo(
  peer: PeerProgram,
  fname: string,
  from: string,
  credentials: TestCredentials,
) {
  const framed = new FramedConn(await dialProgram(peer, peer.p2pPort));
  await framed.send(await getInfoRequest(framed, { fname, from }, credentials));
  return {
    framed,
    next: (): Promise<Message | null> => framed.readMessage(),
    [Symbol.dispose]: () => framed.close(),
  };
}

function progressAbove(bytes: number) {
  return (line: string) =>
    line.includes('"event":"progress"') && JSON.parse(line).doneBytes > bytes;
}

Deno.test("fetch from three sources survives one dying and one serving corrupt bytes", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await using server = await spawnServer();
  const size = 48 * MIB + 12345;
  const repos = ["good", "dying", "liar", "fetcher"].map((n) => join(dir.path, n));
  for (const repo of repos.slice(0, 3)) {
    await Deno.mkdir(repo, { recursive: true });
    await writeRandomFile(join(repo, "data.bin"), size, 42);
  }
  // Each source sends at most 6 MiB/s, so the fetch lasts long enough to kill one midway.
  const slow = ["--max-upload-rate", String(6 * MIB)];
  await using good = await spawnPeer({ repo: repos[0]!, hostname: "good", server, args: slow });
  await using dying = await spawnPeer({ repo: repos[1]!, hostname: "dying", server, args: slow });
  await using liar = await spawnPeer({
    repo: repos[2]!,
    hostname: "liar",
    server,
    args: slow,
    env: { LANSHARE_TEST_CORRUPT_PIECES: "1" },
  });
  for (const peer of [good, dying, liar]) {
    assert.equal((await peer.command("publish data.bin")).ok, true);
  }
  await using fetcher = await spawnPeer({ repo: repos[3]!, hostname: "fetcher", server });

  const from = fetcher.stdout.lines.length;
  const answer = fetcher.command("fetch data.bin", { timeoutMs: 90_000 });
  await fetcher.waitLine(progressAbove(8 * MIB), "a quarter of the file", {
    from,
    timeoutMs: 60_000,
  });
  await dying.kill();
  const result = await answer;
  assert.equal(result.ok, true, JSON.stringify(result));
  assert.equal(
    await sha256File(join(repos[3]!, "data.bin")),
    await sha256File(join(repos[0]!, "data.bin")),
  );
  assert.deepEqual(result.badSources, [`127.0.0.1:${liar.p2pPort}`]);
  assert.ok(result.bySource[`127.0.0.1:${good.p2pPort}`] > 0);
  assert.ok(
    result.bySource[`127.0.0.1:${dying.p2pPort}`] > 0,
    "the dying source delivered before it died",
  );
  assert.match(
    fetcher.stderr,
    new RegExp(`Dropping source 127\\.0\\.0\\.1:${liar.p2pPort}.*hash mismatch`),
  );
});

Deno.test("fetch resumes after the fetcher is killed with SIGKILL and refetches only the rest", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await using server = await spawnServer();
  const size = 40 * MIB;
  const sourceRepo = join(dir.path, "source");
  const fetchRepo = join(dir.path, "fetcher");
  await Deno.mkdir(sourceRepo, { recursive: true });
  await writeRandomFile(join(sourceRepo, "iso.bin"), size, 9);
  await using source = await spawnPeer({ repo: sourceRepo, hostname: "source", server });
  assert.equal((await source.command("publish iso.bin")).ok, true);
  // The fetcher limits its own download rate so that it can be killed halfway.
  const fetcherArgs = ["--max-download-rate", String(10 * MIB)];
  let fetcher: PeerProgram = await spawnPeer({
    repo: fetchRepo,
    hostname: "fetcher",
    server,
    args: fetcherArgs,
  });
  try {
    const from = fetcher.stdout.lines.length;
    void fetcher.command("fetch iso.bin", { timeoutMs: 60_000 }).catch(() => {});
    await fetcher.waitLine(progressAbove(size / 2), "half the file", { from });
    await fetcher.kill("SIGKILL");
    assert.equal(await exists(join(fetchRepo, "iso.bin")), false);

    fetcher = await spawnPeer({ repo: fetchRepo, hostname: "fetcher", server, args: fetcherArgs });
    const status = await fetcher.command("status");
    assert.equal(status.partials.length, 1);
    const result = await fetcher.command("fetch iso.bin");
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(
      await sha256File(join(fetchRepo, "iso.bin")),
      await sha256File(join(sourceRepo, "iso.bin")),
    );
    // Pieces verified and made durable before the kill are not fetched again; only what
    // arrived since the last checkpoint (a quarter second, ~2.5 MiB here) is fetched twice.
    assert.ok(result.resumedBytes >= size * 0.35, `resumed ${result.resumedBytes}`);
    assert.ok(result.fetchedBytes <= size * 0.65, `fetched again ${result.fetchedBytes}`);
    assert.equal(result.resumedBytes + result.fetchedBytes >= size, true);
    console.log(
      `resume: kept ${result.resumedBytes} B, fetched ${result.fetchedBytes} B of ${size}`,
    );
    assert.equal((await fetcher.command("status")).partials.length, 0);
  } finally {
    await fetcher.kill();
  }
});

Deno.test("a source with all k slots taken answers BUSY when its queue is full", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await using server = await spawnServer();
  const repo = join(dir.path, "source");
  await Deno.mkdir(repo, { recursive: true });
  await Deno.writeTextFile(join(repo, "a.txt"), "a");
  await using source = await spawnPeer({
    repo,
    hostname: "source",
    server,
    args: ["--max-sessions", "1", "--max-queue", "0"],
  });
  assert.equal((await source.command("publish a.txt")).ok, true);
  const credentials = await ticketFrom(await dialProgram(server, server.tcpPort));
  using first = await askInfo(source, "a.txt", "one:1", credentials);
  assert.equal((await first.next())?.type, MsgType.Info);
  using second = await askInfo(source, "a.txt", "two:2", credentials);
  const busy = await second.next();
  assert.equal(busy?.type, MsgType.Busy);
  assert.ok(busy.type === MsgType.Busy && busy.body.retryAfterMs > 0);
  assert.equal(await second.next(), null, "the source closes after BUSY");
});

Deno.test("past the k-1 upload slots, 3 requesters see queue positions 1..3 and move up", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await using server = await spawnServer();
  const repo = join(dir.path, "source");
  await Deno.mkdir(repo, { recursive: true });
  await Deno.writeTextFile(join(repo, "a.txt"), "a");
  // Uploads may hold k - 1 slots (one is kept for the peer's own downloads). Every client
  // connects from 127.0.0.1, so the per-address cap is lifted to k.
  const k = 3;
  const uploads = k - 1;
  await using source = await spawnPeer({
    repo,
    hostname: "source",
    server,
    args: ["--max-sessions", String(k), "--max-per-peer", String(k)],
  });
  assert.equal((await source.command("publish a.txt")).ok, true);
  const clients = [];
  const credentials = await ticketFrom(await dialProgram(server, server.tcpPort));
  try {
    for (let i = 0; i < uploads + 3; i++) {
      const client = await askInfo(source, "a.txt", `fetcher${i}:${i + 1}`, credentials);
      clients.push(client);
      const answer: Message | null = await client.next();
      if (i < uploads) assert.equal(answer?.type, MsgType.Info, `client ${i}`);
      else {assert.deepEqual(answer?.type === MsgType.Queued && answer.body, {
          position: i - uploads + 1,
        }, `client ${i}`);}
    }
    // The first holder leaves: queue head gets its slot, the others move up.
    clients[0]!.framed.close();
    assert.equal((await clients[uploads]!.next())?.type, MsgType.Info);
    for (let i = uploads + 1; i < uploads + 3; i++) {
      const update: Message | null = await clients[i]!.next();
      assert.deepEqual(
        update?.type === MsgType.Queued && update.body,
        { position: i - uploads },
        `client ${i}`,
      );
    }
    const status = await source.command("status");
    assert.deepEqual(status.slots, { active: uploads, max: k, queued: 2 });
  } finally {
    for (const client of clients) client.framed.close();
  }
});

Deno.test("an upload rate limit slows that source only, and every byte still arrives", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await using server = await spawnServer();
  const size = 6 * MIB;
  const repos = ["capped", "free", "fetcher"].map((n) => join(dir.path, n));
  for (const repo of repos.slice(0, 2)) {
    await Deno.mkdir(repo, { recursive: true });
  }
  await writeRandomFile(join(repos[0]!, "capped.bin"), size, 1);
  await writeRandomFile(join(repos[1]!, "free.bin"), size, 2);
  await using capped = await spawnPeer({
    repo: repos[0]!,
    hostname: "capped",
    server,
    args: ["--max-upload-rate", String(2 * MIB)],
  });
  await using free = await spawnPeer({ repo: repos[1]!, hostname: "free", server });
  assert.equal((await capped.command("publish capped.bin")).ok, true);
  assert.equal((await free.command("publish free.bin")).ok, true);
  await using fetcher = await spawnPeer({ repo: repos[2]!, hostname: "fetcher", server });
  const from = fetcher.stdout.lines.length;
  const [slow, fast] = await Promise.all([
    fetcher.command("fetch capped.bin"),
    fetcher.command("fetch free.bin"),
  ]);
  assert.equal(slow.ok && fast.ok, true);
  assert.equal(slow.fetchedBytes, size);
  assert.equal(fast.fetchedBytes, size);
  // Ordering, not seconds: the unlimited fetch answers before the 2 MiB/s one (≈3 s).
  const order = fetcher.stdout.lines.slice(from).filter((l) => l.startsWith('{"cmd":"fetch"')).map((
    l,
  ) => JSON.parse(l).fname);
  assert.deepEqual(order, ["free.bin", "capped.bin"]);
  console.log(`rate limit 2 MiB/s observed: ${(slow.bytesPerSecond / MIB).toFixed(2)} MiB/s`);
});

Deno.test("a source that accepts but never answers is skipped after the first-byte deadline", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await using server = await spawnServer();
  const repos = ["real", "fetcher"].map((n) => join(dir.path, n));
  await Deno.mkdir(repos[0]!, { recursive: true });
  await writeRandomFile(join(repos[0]!, "doc.bin"), 3 * MIB, 5);
  await using real = await spawnPeer({ repo: repos[0]!, hostname: "real", server });
  assert.equal((await real.command("publish doc.bin")).ok, true);

  // A fake peer registers the same content, sorted first, whose P2P port accepts and then
  // says nothing at all.
  using silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of silent) held.push(conn);
  })().catch(() => {});
  const hashes = await hashFile(join(repos[0]!, "doc.bin"));
  const index = new FramedConn(await dialProgram(server, server.tcpPort));
  // It names a device of its own, whose TLS handshake never comes.
  const device = await createIdentity();
  try {
    await index.send(
      await helloRequest(index, { hostname: "aaa-silent", p2pPort: silent.addr.port }, 1, device),
    );
    assert.equal((await index.readMessage())?.type, MsgType.Welcome);
    await index.send(request(
      MsgType.Publish,
      2,
      await signedEntry({
        fname: "doc.bin",
        size: hashes.size,
        mtimeMs: hashes.mtimeMs,
        rootHash: hashes.rootHash,
        pieceSize: hashes.pieceSize,
      }, device),
    ));
    assert.equal((await index.readMessage())?.type, MsgType.Published);

    await using fetcher = await spawnPeer({
      repo: repos[1]!,
      hostname: "fetcher",
      server,
      args: ["--ttfb-timeout-ms", "300"],
    });
    const result = await fetcher.command("fetch doc.bin");
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.versions[0].sources, 2);
    assert.deepEqual(Object.keys(result.bySource), [`127.0.0.1:${real.p2pPort}`]);
    // Its silence is met at the TLS handshake, before the Challenge every source sends first.
    assert.match(fetcher.stderr, /no first byte within 300 ms/);
    assert.equal(
      await sha256File(join(repos[1]!, "doc.bin")),
      await sha256File(join(repos[0]!, "doc.bin")),
    );
  } finally {
    index.close();
    silent.close();
    for (const conn of held) conn.close();
    await accepting;
  }
});

Deno.test("different contents under one name: fetch takes the most common unless --hash picks", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await using server = await spawnServer();
  const repos = ["v1a", "v1b", "v2", "fetcher"].map((n) => join(dir.path, n));
  for (const [i, repo] of repos.slice(0, 3).entries()) {
    await Deno.mkdir(repo, { recursive: true });
    await Deno.writeTextFile(
      join(repo, "report.txt"),
      i < 2 ? "version one" : "version two, longer",
    );
  }
  const peers: PeerProgram[] = [];
  try {
    for (const [i, repo] of repos.slice(0, 3).entries()) {
      const peer = await spawnPeer({ repo, hostname: `holder${i}`, server });
      peers.push(peer);
      assert.equal((await peer.command("publish report.txt")).ok, true);
    }
    const v2 = (await peers[2]!.command("list")).files[0].rootHash as string;
    await using fetcher = await spawnPeer({ repo: repos[3]!, hostname: "fetcher", server });
    const common = await fetcher.command("fetch report.txt");
    assert.equal(common.ok, true, JSON.stringify(common));
    assert.equal(common.versions.length, 2);
    assert.deepEqual(common.versions.map((v: { sources: number }) => v.sources), [2, 1]);
    assert.equal(await Deno.readTextFile(join(repos[3]!, "report.txt")), "version one");
    const picked = await fetcher.command(`fetch report.txt --hash ${v2.slice(0, 8)} --force`);
    assert.equal(picked.ok, true, JSON.stringify(picked));
    assert.equal(picked.rootHash, v2);
    assert.equal(await Deno.readTextFile(join(repos[3]!, "report.txt")), "version two, longer");
    const none = await fetcher.command("fetch report.txt --hash ffffffffff --force");
    assert.equal(none.ok, false);
    assert.match(none.error, /no version matches/);
  } finally {
    await Promise.all(peers.map((p) => p.kill()));
  }
});

Deno.test("a peer that is still fetching serves its verified pieces to others", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await using server = await spawnServer();
  const size = 24 * MIB;
  const repos = ["seed", "first", "second"].map((n) => join(dir.path, n));
  await Deno.mkdir(repos[0]!, { recursive: true });
  await writeRandomFile(join(repos[0]!, "crowd.bin"), size, 77);
  // The seed's uplink is slow, so the second fetcher gains from the first one's pieces.
  await using seed = await spawnPeer({
    repo: repos[0]!,
    hostname: "seed",
    server,
    args: ["--max-upload-rate", String(4 * MIB)],
  });
  assert.equal((await seed.command("publish crowd.bin")).ok, true);
  await using first = await spawnPeer({ repo: repos[1]!, hostname: "first", server });
  await using second = await spawnPeer({ repo: repos[2]!, hostname: "second", server });

  const from = first.stdout.lines.length;
  const firstDone = first.command("fetch crowd.bin", { timeoutMs: 60_000 });
  await first.waitLine(progressAbove(6 * MIB), "a quarter of the file", { from });
  const listed = await second.command("search crowd.bin");
  const partial = listed.entries.find((e: { hostname: string }) => e.hostname === "first");
  assert.ok(
    partial?.have,
    `the first fetcher is listed as a partial source: ${JSON.stringify(listed)}`,
  );

  const [a, b] = await Promise.all([
    firstDone,
    second.command("fetch crowd.bin", { timeoutMs: 60_000 }),
  ]);
  assert.equal(a.ok && b.ok, true, JSON.stringify([a, b]));
  assert.ok(
    b.bySource[`127.0.0.1:${first.p2pPort}`] > 0,
    `second got pieces from first: ${JSON.stringify(b.bySource)}`,
  );
  const original = await sha256File(join(repos[0]!, "crowd.bin"));
  assert.equal(await sha256File(join(repos[1]!, "crowd.bin")), original);
  assert.equal(await sha256File(join(repos[2]!, "crowd.bin")), original);
});
