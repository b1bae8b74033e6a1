// End to end: the index across a restart, after a crash or a `quit`. The catalogue survives in
// SQLite, entries of peers that are gone stay listed as offline, live peers reconnect and have
// their entries kept (or publish again), and a peer back on another port replaces its offline rows.
import { helloRequest, signedEntry } from "../_handshake.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { request } from "../../shared/encode.ts";
import { FramedConn } from "../../shared/framing.ts";
import { type Message, MsgType } from "../../shared/protocol.ts";
import {
  dialProgram,
  pollUntil,
  type ServerProgram,
  spawnPeer,
  spawnServer,
  tempDir,
} from "./_programs.ts";

Deno.test("a restarted index keeps its catalogue and its peers come back", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  const db = join(dir.path, "index", "lanshare-index.db");
  await Deno.mkdir(join(dir.path, "index"));
  let server: ServerProgram = await spawnServer({
    db,
    args: ["--ping-interval-ms", "200", "--ping-timeout-ms", "1000"],
  });
  try {
    const repos = ["stays", "gone", "asker"].map((n) => join(dir.path, n));
    for (const repo of repos) await Deno.mkdir(repo, { recursive: true });
    await Deno.writeTextFile(join(repos[0]!, "kept.txt"), "kept");
    await Deno.writeTextFile(join(repos[1]!, "orphan.txt"), "orphan");
    await using stays = await spawnPeer({
      repo: repos[0]!,
      hostname: "stays",
      server,
      direct: true,
    });
    await using gone = await spawnPeer({ repo: repos[1]!, hostname: "gone", server, direct: true });
    await using asker = await spawnPeer({
      repo: repos[2]!,
      hostname: "asker",
      server,
      direct: true,
    });
    assert.equal((await stays.command("publish kept.txt")).ok, true);
    assert.equal((await gone.command("publish orphan.txt")).ok, true);

    // The index dies without a word, and so does one peer while the index is down.
    const { tcpPort, udpPort } = server;
    await server.kill("SIGKILL");
    await gone.kill("SIGKILL");
    const restartedAt = performance.now();
    server = await spawnServer({
      db,
      port: tcpPort,
      announcePort: udpPort,
      args: ["--ping-interval-ms", "200", "--ping-timeout-ms", "1000"],
    });

    // Live peers reconnect with backoff: both are back well within 10 s.
    await pollUntil(
      async () => /^2 peer\(s\)/.test((await server.command("peers", /peer\(s\)/)).at(-1)!),
      10_000,
    );
    console.log(`peers back ${(performance.now() - restartedAt).toFixed(0)} ms after the restart`);
    // The peer that stayed connected had its entries kept (same device, same published set):
    // it published nothing again. (The asker may have registered first with the new server.)
    await pollUntil(
      () => Promise.resolve(/which kept this peer's entries/.test(stays.stderr)),
      5000,
    )
      .catch(() => assert.fail(`stays was not kept:\n${stays.stderr.slice(-2000)}`));

    // The dead peer's entry is still listed, as offline; who-has never returns it.
    const files = await server.command("files", /orphan\.txt/);
    assert.match(files.join("\n"), /orphan\.txt .*@gone:\d+ \(offline\)/);
    const orphan = await asker.command("fetch orphan.txt");
    assert.equal(orphan.ok, false);
    assert.match(orphan.error, /no live peer shares it/);
    // The reconnected peer's file is fetchable again.
    await pollUntil(async () => (await asker.command("fetch kept.txt")).ok, 10_000);
    assert.equal(await Deno.readTextFile(join(repos[2]!, "kept.txt")), "kept");
  } finally {
    await server.kill();
  }
});

/** A peer's index session spoken by hand: Hello, then one Publish per name, each answered. */
async function registerRaw(
  server: ServerProgram,
  hostname: string,
  p2pPort: number,
  fnames: string[],
): Promise<FramedConn> {
  const framed = new FramedConn(await dialProgram(server, server.tcpPort));
  const ask = async (message: Message, want: MsgType) => {
    await framed.send(message);
    const answer = await framed.readMessage();
    assert.equal(answer?.type, want, JSON.stringify(answer));
  };
  await ask(await helloRequest(framed, { hostname, p2pPort }), MsgType.Welcome);
  for (const [i, fname] of fnames.entries()) {
    const entry = { fname, size: 10, mtimeMs: 1, rootHash: "ab".repeat(32), pieceSize: 1 << 20 };
    await ask(request(MsgType.Publish, i + 2, await signedEntry(entry)), MsgType.Published);
  }
  return framed;
}

/** The server shell's `files` listing: one line per entry, `fname @host:port [(offline)]`. */
async function listFiles(server: ServerProgram): Promise<string[]> {
  const from = server.stdout.lines.length;
  await server.send("files");
  const { line, index } = await server.waitLine((l) => /^\d+ file\(s\)$/.test(l), "files", {
    from,
  });
  const count = Number(line.split(" ")[0]);
  let seen = 0;
  if (count > 0) {
    await server.waitLine(() => ++seen === count, `${count} files`, { from: index + 1 });
  }
  return server.stdout.lines.slice(index + 1, index + 1 + count)
    .map((l) => l.replace(/^\s*(\S+)\s.*@(\S+)( \(offline\))?$/, "$1 @$2$3")).sort();
}

Deno.test("quit keeps sessions and entries as offline rows; a peer back on a new port drops its stale rows", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await Deno.mkdir(join(dir.path, "index"));
  const db = join(dir.path, "index", "lanshare-index.db");
  let server: ServerProgram = await spawnServer({ db });
  try {
    const sessions = [
      await registerRaw(server, "alpha", 4001, ["a1.txt", "a2.txt"]),
      await registerRaw(server, "bravo", 4002, ["b1.txt", "b2.txt", "b3.txt"]),
      await registerRaw(server, "charlie", 4003, ["c1.txt"]),
    ];
    assert.equal((await listFiles(server)).length, 6);
    await server.send("quit");
    assert.equal((await server.status).code, 0, server.context());
    for (const framed of sessions) framed.close();

    server = await spawnServer({ db });
    assert.deepEqual(await listFiles(server), [
      "a1.txt @alpha:4001 (offline)",
      "a2.txt @alpha:4001 (offline)",
      "b1.txt @bravo:4002 (offline)",
      "b2.txt @bravo:4002 (offline)",
      "b3.txt @bravo:4002 (offline)",
      "c1.txt @charlie:4003 (offline)",
    ]);

    using _back = await registerRaw(server, "alpha", 5001, ["back.txt"]);
    assert.deepEqual(await listFiles(server), [
      "b1.txt @bravo:4002 (offline)",
      "b2.txt @bravo:4002 (offline)",
      "b3.txt @bravo:4002 (offline)",
      "back.txt @alpha:5001",
      "c1.txt @charlie:4003 (offline)",
    ]);
  } finally {
    await server.kill();
  }
});
