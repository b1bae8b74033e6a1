// Whose content, with the real programs: a source that the index lists for a file but that
// cannot prove (by its publish signature) that its device published that content is dropped by
// the fetcher before it is used.
import assert from "node:assert/strict";
import { join } from "node:path";
import { request } from "../../shared/encode.ts";
import { FramedConn } from "../../shared/framing.ts";
import { createIdentity } from "../../shared/identity.ts";
import { type FileEntry, MsgType, type SignedFileEntry } from "../../shared/protocol.ts";
import { hashFile } from "../../peer/hashing.ts";
import { helloRequest, signedEntry } from "../_handshake.ts";
import {
  dialProgram,
  type ServerProgram,
  sha256File,
  spawnPeer,
  spawnServer,
  tempDir,
  writeRandomFile,
} from "./_programs.ts";

const MIB = 1024 * 1024;

/** Registers a fake peer by hand as `hostname` with its P2P port at `p2pPort`, publishing `entry`. */
async function fakeSource(
  server: ServerProgram,
  hostname: string,
  p2pPort: number,
  entry: FileEntry,
): Promise<FramedConn> {
  const index = new FramedConn(await dialProgram(server, server.tcpPort));
  await index.send(await helloRequest(index, { hostname, p2pPort }, 1, await createIdentity()));
  assert.equal((await index.readMessage())?.type, MsgType.Welcome);
  // Typed as signed to send it at all: an unsigned Publish is what a careless or lying peer sends.
  await index.send(request(MsgType.Publish, 2, entry as SignedFileEntry));
  return index;
}

Deno.test("a source whose publish signature does not verify is dropped, and named in badSources", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await using server = await spawnServer();
  const [realRepo, fetcherRepo] = ["real", "fetcher"].map((n) => join(dir.path, n));
  await Deno.mkdir(realRepo!, { recursive: true });
  await writeRandomFile(join(realRepo!, "doc.bin"), 2 * MIB, 9);
  await using real = await spawnPeer({ repo: realRepo!, hostname: "real", server });
  assert.equal((await real.command("publish doc.bin")).ok, true);

  // A liar sorted first claims the same content with a signature of another device (the
  // test's), and a second claims it with no signature at all. Their P2P port accepts and
  // counts connections: a dropped source is never even connected to.
  using trap = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let connections = 0;
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of trap) {
      connections++;
      held.push(conn);
    }
  })().catch(() => {});
  const hashes = await hashFile(join(realRepo!, "doc.bin"));
  const entry: FileEntry = {
    fname: "doc.bin",
    size: hashes.size,
    mtimeMs: hashes.mtimeMs,
    rootHash: hashes.rootHash,
    pieceSize: hashes.pieceSize,
  };
  const forged = await fakeSource(server, "aaa-forged", trap.addr.port, await signedEntry(entry));
  assert.equal((await forged.readMessage())?.type, MsgType.Published);
  // Protocol 2 requires the signature: the index refuses an unsigned publish outright.
  const unsigned = await fakeSource(server, "aab-unsigned", trap.addr.port, entry);
  const refusal = await unsigned.readMessage();
  assert.ok(refusal?.type === MsgType.Error && refusal.body.code === "bad-body", String(refusal));
  try {
    await using fetcher = await spawnPeer({ repo: fetcherRepo!, hostname: "fetcher", server });
    const result = await fetcher.command("fetch doc.bin");
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.deepEqual(result.badSources, [
      `127.0.0.1:${trap.addr.port}`,
    ]);
    assert.deepEqual(Object.keys(result.bySource), [`127.0.0.1:${real.p2pPort}`]);
    assert.equal(result.versions[0].sources, 1, "only the real publisher counts");
    assert.equal(connections, 0);
    assert.match(fetcher.stderr, /publish signature does not verify/);
    assert.equal(
      await sha256File(join(fetcherRepo!, "doc.bin")),
      await sha256File(join(realRepo!, "doc.bin")),
    );
  } finally {
    forged.close();
    unsigned.close();
    trap.close();
    for (const conn of held) conn.close();
    await accepting;
  }
});

Deno.test("a name only liars claim cannot be fetched: the error says no source proves it", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await using server = await spawnServer();
  const entry: FileEntry = {
    fname: "bait.bin",
    size: 10,
    mtimeMs: 1,
    rootHash: "ab".repeat(32),
    pieceSize: MIB,
  };
  const liar = await fakeSource(server, "liar", 9, await signedEntry(entry));
  assert.equal((await liar.readMessage())?.type, MsgType.Published);
  try {
    await using fetcher = await spawnPeer({
      repo: join(dir.path, "fetcher"),
      hostname: "fetcher",
      server,
    });
    const result = await fetcher.command("fetch bait.bin");
    assert.equal(result.ok, false);
    assert.match(
      result.error,
      /^Cannot fetch "bait\.bin": no source proves it published this content \(dropped 127\.0\.0\.1:9: publish signature missing or invalid\)$/,
    );
  } finally {
    liar.close();
  }
});
