// End to end: what a fetch waiting in a source's queue looks like to the user, in its progress
// events and in `status`.
import assert from "node:assert/strict";
import { join } from "node:path";
import { FramedConn } from "../../shared/framing.ts";
import { MsgType } from "../../shared/protocol.ts";
import { dialProgram, spawnPeer, spawnServer, tempDir } from "./_programs.ts";
import { getInfoRequest, ticketFrom } from "../_handshake.ts";

Deno.test("a fetch queued at its only source shows the source and its place", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await using server = await spawnServer();
  const repos = ["source", "fetcher"].map((n) => join(dir.path, n));
  await Deno.mkdir(repos[0]!);
  await Deno.writeTextFile(join(repos[0]!, "wanted.txt"), "worth the wait");
  await using source = await spawnPeer({
    repo: repos[0]!,
    hostname: "source",
    server,
    args: ["--max-sessions", "1"],
  });
  assert.equal((await source.command("publish wanted.txt")).ok, true);
  await using fetcher = await spawnPeer({ repo: repos[1]!, hostname: "fetcher", server });

  // A raw client takes the source's only session and keeps it.
  const holder = new FramedConn(await dialProgram(source, source.p2pPort));
  try {
    await holder.send(
      await getInfoRequest(
        holder,
        { fname: "wanted.txt", from: "holder:1" },
        await ticketFrom(await dialProgram(server, server.tcpPort)),
      ),
    );
    assert.equal((await holder.readMessage())?.type, MsgType.Info);

    const from = fetcher.stdout.lines.length;
    const answer = fetcher.command("fetch wanted.txt");
    const key = `127.0.0.1:${source.p2pPort}`;
    const { line } = await fetcher.waitLine(
      (l) => l.includes('"event":"progress"') && Object.keys(JSON.parse(l).queuedAt).length > 0,
      "a progress event while queued",
      { from },
    );
    const progress = JSON.parse(line);
    assert.deepEqual(progress.queuedAt, { [key]: 1 });
    assert.equal(progress.stalledMs, 0, "waiting in a queue is not a stall");
    const status = await fetcher.command("status");
    assert.deepEqual(status.fetches[0].queuedAt, { [key]: 1 });

    holder.close();
    const done = await answer;
    assert.equal(done.ok, true, JSON.stringify(done));
    assert.equal(await Deno.readTextFile(join(repos[1]!, "wanted.txt")), "worth the wait");
  } finally {
    holder.close();
  }
});
