// Who may join, with the real programs: a --join key index refuses a peer with the wrong network
// key (and the key appears in no output), a --join approve index makes a new peer wait until the
// operator approves it, and revoke disconnects it.
import assert from "node:assert/strict";
import { join } from "node:path";
import { type PeerProgram, spawnPeer, spawnServer, tempDir } from "./_programs.ts";

/** Waits for the peer's index state event `state` written after line `from`. */
async function indexEvent(peer: PeerProgram, state: string, from = 0): Promise<void> {
  await peer.waitLine(
    (l) => l.includes('"event":"index"') && JSON.parse(l).state === state,
    `index state "${state}"`,
    { from },
  );
}

Deno.test("--join key: a peer with the wrong network key is refused; the key is in no output", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  const secret = `lanshare-e2e-network-key-${crypto.randomUUID()}`;
  const serverKey = join(dir.path, "network.key");
  await Deno.writeTextFile(serverKey, secret);
  await using server = await spawnServer({
    args: ["--join", "key", "--network-key-file", serverKey],
    readable: [serverKey],
  });

  const wrongRepo = join(dir.path, "wrong");
  await Deno.mkdir(wrongRepo);
  await Deno.writeTextFile(join(wrongRepo, "key"), "a different key, as long as the real one");
  await using wrong = await spawnPeer({
    repo: wrongRepo,
    hostname: "wrong",
    server,
    args: ["--network-key-file", join(wrongRepo, "key")],
  });
  await indexEvent(wrong, "refused");
  const status = await wrong.command("status");
  assert.equal(status.index.state, "refused");
  assert.match(status.index.summary, /refuses this peer: wrong network key/);

  const rightRepo = join(dir.path, "right");
  await Deno.mkdir(rightRepo);
  await Deno.writeTextFile(join(rightRepo, "key"), secret);
  await using right = await spawnPeer({
    repo: rightRepo,
    hostname: "right",
    server,
    args: ["--network-key-file", join(rightRepo, "key"), "--log-level", "debug"],
  });
  await indexEvent(right, "connected");

  await server.command("peers", /right/);
  for (const program of [server, wrong, right]) {
    const output = program.stdout.lines.join("\n") + program.stderr;
    assert.ok(!output.includes(secret), `${program.name} wrote the network key`);
  }
});

Deno.test("--join approve: a new peer waits, the operator approves it, then revokes it", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await using server = await spawnServer({ args: ["--join", "approve"] });
  const repo = join(dir.path, "newcomer");
  await Deno.mkdir(repo);
  await Deno.writeTextFile(join(repo, "hello.txt"), "hello");
  await using peer = await spawnPeer({ repo, hostname: "newcomer", server });
  await indexEvent(peer, "refused");
  const waiting = await peer.command("status");
  const asked = /waiting for approval: ask the operator to run `approve ([a-z2-7-]{14})`/.exec(
    waiting.index.summary,
  );
  assert.ok(asked, waiting.index.summary);
  const shortId = asked[1]!;
  const pending = await server.command("pending", new RegExp(shortId));
  assert.match(pending.join("\n"), new RegExp(`${shortId}  newcomer from 127\\.0\\.0\\.1`));

  let from = peer.stdout.lines.length;
  await server.command(`approve ${shortId}`, /approved/);
  await indexEvent(peer, "connected", from);
  assert.equal((await peer.command("publish hello.txt")).status, "created");

  from = peer.stdout.lines.length;
  const revoked = await server.command(`revoke ${shortId}`, /revoked/);
  assert.match(revoked.join("\n"), /1 session\(s\) closed/);
  await indexEvent(peer, "refused", from);
  const refused = await peer.command("status");
  assert.match(refused.index.summary, /revoked by the operator/);
  const files = await server.command("files", /file\(s\)/);
  assert.deepEqual(files.slice(-1), ["0 file(s)"]);
});
