// End to end: a peer's standing with the index, as the user sees it in its shell. A peer starts
// before any index exists and connects once one appears; a peer whose session the same device
// took over says so, and takes it back with `reconnect`; another device cannot take it over.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type PeerProgram,
  pollUntil,
  type ServerProgram,
  spawnPeer,
  spawnServer,
  tempDir,
} from "./_programs.ts";

/** Waits until the server's shell lists `n` live sessions. */
async function livePeers(server: ServerProgram, n: number): Promise<void> {
  await pollUntil(
    async () =>
      new RegExp(`^${n} peer\\(s\\)`).test((await server.command("peers", /peer\(s\)/)).at(-1)!),
    10_000,
  );
}

/** Waits for the peer's next `{"event":"index","state":state}` line after line `from`. */
async function indexEvent(peer: PeerProgram, state: string, from: number): Promise<void> {
  await peer.waitLine(
    (l) => l.includes('"event":"index"') && JSON.parse(l).state === state,
    `index state "${state}"`,
    { from },
  );
}

Deno.test("a peer started before the index keeps looking, then connects and publishes", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  // The UDP port the index will announce on, held (shared, as servers and peers share it) so
  // nothing else takes it before the server starts.
  const holder = Deno.listenDatagram({
    transport: "udp",
    hostname: "0.0.0.0",
    port: 0,
    reuseAddress: true,
  });
  using _closeHolder = { [Symbol.dispose]: () => holder.close() };
  const udpPort = (holder.addr as Deno.NetAddr).port;
  const repo = join(dir.path, "early");
  await Deno.mkdir(repo);
  await Deno.writeTextFile(join(repo, "early.txt"), "here first");
  await using early = await spawnPeer({
    repo,
    hostname: "early",
    server: { udpPort },
    args: ["--discover-timeout-ms", "300"],
  });

  const looking = await early.command("status");
  assert.equal(looking.ok, true, JSON.stringify(looking));
  assert.equal(looking.index.state, "looking");
  assert.match(looking.index.summary, /^looking for an index server/);
  const search = await early.command("search");
  assert.equal(search.ok, false);
  assert.match(
    search.error,
    new RegExp(
      `^Cannot search: no index server found yet \\(still looking on UDP ${udpPort}, .*` +
        "start one with `make server` or give --server HOST:PORT\\)$",
    ),
  );
  // Published while no index is known: kept, and sent once connected.
  const published = await early.command("publish early.txt");
  assert.equal(published.ok, true, JSON.stringify(published));
  assert.equal(published.status, "pending");
  assert.match(published.pendingReason, /looking for an index server/);

  const from = early.stdout.lines.length;
  await using server = await spawnServer({ announcePort: udpPort });
  await indexEvent(early, "connected", from);
  const connected = await early.command("status");
  assert.equal(connected.index.state, "connected");
  assert.equal(connected.index.summary, `connected to the index server ${connected.server}`);
  const found = await early.command("search");
  assert.equal(found.ok, true, JSON.stringify(found));
  assert.deepEqual(found.entries.map((e: { fname: string }) => e.fname), ["early.txt"]);
  await server.kill();
});

Deno.test("a peer given --server before that server runs keeps trying, then connects", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  // A port nothing listens on: bound by the OS, then released for the server started below.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  // And its discovery port, where the peer asks for the server's certificate.
  const udpProbe = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const udpPort = (udpProbe.addr as Deno.NetAddr).port;
  udpProbe.close();
  await using early = await spawnPeer({
    repo: join(dir.path, "early"),
    hostname: "early",
    server: { udpPort },
    args: ["--server", `127.0.0.1:${port}`],
  });
  const status = await early.command("status");
  assert.equal(status.index.state, "looking");
  assert.match(
    status.index.summary,
    new RegExp(`^looking for an index server.*127\\.0\\.0\\.1:${port}`),
  );
  const search = await early.command("search");
  assert.match(
    search.error,
    new RegExp(
      `^Cannot search: no index server answers yet \\(still trying 127\\.0\\.0\\.1:${port}, .*` +
        "last error: .*is it running\\? start one with `make server`\\)$",
    ),
  );

  const from = early.stdout.lines.length;
  await using server = await spawnServer({ port, announcePort: udpPort });
  await indexEvent(early, "connected", from);
  assert.equal((await early.command("search")).ok, true);
  await server.kill();
});

Deno.test("a peer replaced by the same device says so and how to recover, and `reconnect` takes it back", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await using server = await spawnServer();
  const repos = ["first", "second"].map((n) => join(dir.path, n));
  await using first = await spawnPeer({
    repo: repos[0]!,
    hostname: "twin",
    server,
    args: ["--host", "127.0.0.1"],
  });
  await livePeers(server, 1);
  // The same device (its key copied, as two processes sharing one identity, or the same peer
  // restarted), with the same hostname and P2P port (on another loopback address): the index
  // takes it for that peer come back, and closes the first one's session.
  const identity = join(".lanshare", "identity");
  await Deno.mkdir(join(repos[1]!, identity), { recursive: true });
  for (const file of ["key.pem", "cert.pem"]) {
    await Deno.copyFile(join(repos[0]!, identity, file), join(repos[1]!, identity, file));
  }
  await Deno.chmod(join(repos[1]!, identity, "key.pem"), 0o600);
  const port = first.p2pPort;
  await using second = await spawnPeer({
    repo: repos[1]!,
    hostname: "twin",
    server,
    args: ["--host", "127.0.0.2", "--port", String(port)],
  });
  assert.equal(second.id, first.id);
  // The index tells the first peer why it closes its session; the peer logs that it gives up.
  await pollUntil(
    () => Promise.resolve(/Not reconnecting to the index/.test(first.stderr)),
    10_000,
  );

  const recover = /run `reconnect` \(or restart\) to take it back$/;
  const search = await first.command("search");
  assert.equal(search.ok, false);
  assert.match(
    search.error,
    new RegExp(
      `^Cannot search: this peer's index session was replaced by another peer registering as ` +
        `twin:${port} \\(index 127\\.0\\.0\\.1:${server.tcpPort} says: replaced by a new one ` +
        `from 127\\.0\\.0\\.1:\\d+\\)`,
    ),
  );
  assert.match(search.error, recover);
  const status = await first.command("status");
  assert.equal(status.ok, true);
  assert.equal(status.index.state, "replaced");
  assert.match(status.index.summary, /^this peer's index session was replaced/);
  assert.match(status.index.summary, recover);
  const fetch = await first.command("fetch anything");
  assert.match(fetch.error, /^Cannot fetch "anything": this peer's index session was replaced/);

  // Taking the identity back replaces the other one in turn, which then says so.
  const fromSecond = second.stdout.lines.length;
  const reconnect = await first.command("reconnect");
  assert.equal(reconnect.ok, true, JSON.stringify(reconnect));
  assert.equal(reconnect.server, `127.0.0.1:${server.tcpPort}`);
  await indexEvent(second, "replaced", fromSecond);
  assert.equal((await first.command("search")).ok, true);
  assert.equal((await second.command("status")).index.state, "replaced");
});

Deno.test("another device registering as a live peer's hostname and port is refused; the owner stays", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await using server = await spawnServer();
  const repos = ["first", "second"].map((n) => join(dir.path, n));
  await Deno.mkdir(repos[0]!, { recursive: true });
  await Deno.writeTextFile(join(repos[0]!, "mine.txt"), "mine");
  await using first = await spawnPeer({
    repo: repos[0]!,
    hostname: "twin",
    server,
    args: ["--host", "127.0.0.1"],
  });
  assert.equal((await first.command("publish mine.txt")).status, "created");
  await livePeers(server, 1);
  // Same hostname, same P2P port (on another loopback address), but another device (its own
  // repository, so its own key): before protocol 2 it took the first peer's session over.
  const port = first.p2pPort;
  await using second = await spawnPeer({
    repo: repos[1]!,
    hostname: "twin",
    server,
    args: ["--host", "127.0.0.2", "--port", String(port)],
  });
  await indexEvent(second, "refused", 0);
  const status = await second.command("status");
  assert.equal(status.index.state, "refused");
  assert.match(
    status.index.summary,
    new RegExp(
      `^the index server 127\\.0\\.0\\.1:${server.tcpPort} refuses this peer: registering as twin:${port}: ` +
        "held by device [a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}; choose another --hostname or stop that peer",
    ),
  );
  const search = await second.command("search");
  assert.equal(search.ok, false);
  assert.match(search.error, /^Cannot search: the index server .* refuses this peer/);

  // The owner was not even disturbed: still connected, its file still listed.
  assert.equal((await first.command("status")).index.state, "connected");
  assert.doesNotMatch(first.stderr, /replaced|Not reconnecting/);
  const found = await second.command("status");
  assert.equal(found.index.state, "refused");
  const listed = await first.command("search mine");
  assert.deepEqual(listed.entries.map((e: { hostname: string }) => e.hostname), ["twin"]);
});
