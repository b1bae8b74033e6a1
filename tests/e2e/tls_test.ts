// End to end: the transport's promises with the real programs. A man in the middle with its
// own identity is refused and named; a forged announce from a pinned address is ignored; the
// keys on disk are 0600; a plaintext side meeting a TLS side fails clearly on both.
import assert from "node:assert/strict";
import { join } from "node:path";
import { decodeBeacon, encodeAnnounce, encodeProbe, signedPart } from "../../shared/beacon.ts";
import { createIdentity, shortId, sign } from "../../shared/identity.ts";
import { derOfPem } from "../../shared/beacon.ts";
import { answerProbes, startRelay } from "../_relay.ts";
import { pollUntil, type Program, spawnPeer, spawnServer, tempDir } from "./_programs.ts";

/** Waits until the program's logs match `pattern`. */
async function logsMatch(program: Program, pattern: RegExp, timeoutMs = 20_000): Promise<void> {
  try {
    await pollUntil(() => Promise.resolve(pattern.test(program.stderr)), timeoutMs);
  } catch (err) {
    throw new Error(`${program.name}: no log line matching ${pattern}\n${program.context()}`, {
      cause: err,
    });
  }
}

/** The server's own announce, as its discovery port answers a probe. */
async function recordAnnounce(udpPort: number): Promise<Uint8Array> {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  // A server that does not answer closes the socket, and receive() then rejects.
  const timer = setTimeout(() => socket.close(), 5000);
  await socket.send(encodeProbe(), { transport: "udp", hostname: "127.0.0.1", port: udpPort });
  const [bytes] = await socket.receive();
  clearTimeout(timer);
  socket.close();
  assert.equal(decodeBeacon(bytes).kind, "announce");
  return bytes;
}

Deno.test("a TLS-terminating proxy in the pinned index's place is refused, naming both IDs", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  const db = join(dir.path, "index", "i.db");
  await Deno.mkdir(join(dir.path, "index"));
  const server = await spawnServer({ db });
  const { tcpPort, udpPort, id } = server;
  const announce = await recordAnnounce(udpPort);
  await using peer = await spawnPeer({ repo: join(dir.path, "p"), hostname: "p", server });
  await peer.waitLine((l) => l.includes('"state":"connected"'), "connected to the index");
  await server.kill();

  // Mallory takes the index's address: her own certificate on its TCP port, relaying to an
  // index of her own, and the index's genuine (signed) announce replayed on its UDP port.
  await using elsewhere = await spawnServer();
  const mallory = await createIdentity();
  await using proxy = startRelay(
    { port: elsewhere.tcpPort, pin: { id: elsewhere.id, certPem: elsewhere.certPem } },
    { identity: mallory },
    tcpPort,
  );
  using replayer = Object.assign(
    Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port: 0 }),
    { [Symbol.dispose]() {} },
  );
  const replaying = setInterval(() => {
    void replayer.send(announce, { transport: "udp", hostname: "127.255.255.255", port: udpPort })
      .catch(() => {});
  }, 100);
  try {
    await logsMatch(
      peer,
      new RegExp(`presents device ${shortId(mallory.id)} .*instead of the pinned ${shortId(id)}`),
    );
    assert.ok(proxy.accepted > 0, "the peer reached the proxy");
    assert.equal((await peer.command("status")).connected, false);
    // Nothing got through to Mallory's index.
    const peers = await elsewhere.command("peers", /peer\(s\)/);
    assert.match(peers.at(-1)!, /^0 peer\(s\)/);
  } finally {
    clearInterval(replaying);
    replayer.close();
  }
});

Deno.test("--server HOST:PORT#ID refuses an index that presents another ID", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await using server = await spawnServer();
  const mallory = await createIdentity();
  // Mallory sits in front of the index, with her own certificate on TCP and, correctly signed
  // by her key, on UDP.
  await using proxy = startRelay(
    { port: server.tcpPort, pin: { id: server.id, certPem: server.certPem } },
    { identity: mallory },
  );
  const signed = signedPart({
    tcpPort: proxy.port,
    sessions: 0,
    cert: derOfPem(mallory.certPem),
  });
  const forged = encodeAnnounce(signed, await sign(mallory, signed));
  using udp = answerProbes(() => forged);
  await using peer = await spawnPeer({
    repo: join(dir.path, "victim"),
    hostname: "victim",
    server: { udpPort: udp.port },
    args: ["--server", `127.0.0.1:${proxy.port}#${server.id}`],
  });
  await logsMatch(
    peer,
    new RegExp(`presents device ${shortId(mallory.id)}.*--server names ${shortId(server.id)}`),
  );
  assert.equal((await peer.command("status")).connected, false);
});

Deno.test("a forged announce from a pinned address is ignored with a warning", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  const pinsFile = join(dir.path, "p", ".lanshare", "known_servers.json");
  const db = join(dir.path, "index", "i.db");
  await Deno.mkdir(join(dir.path, "index"));
  let server = await spawnServer({ db });
  const { tcpPort, udpPort, id } = server;
  await using peer = await spawnPeer({ repo: join(dir.path, "p"), hostname: "p", server });
  await peer.waitLine((l) => l.includes('"state":"connected"'), "connected to the index");
  const pins = JSON.parse(
    await Deno.readTextFile(pinsFile),
  );
  assert.equal(pins[`127.0.0.1:${tcpPort}`].id, id);

  // The index goes away; Mallory announces herself at its address, signed with her own key.
  await server.kill();
  const mallory = await createIdentity();
  const signed = signedPart({ tcpPort, sessions: 0, cert: derOfPem(mallory.certPem) });
  const forged = encodeAnnounce(signed, await sign(mallory, signed));
  using forger = Object.assign(
    Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port: 0 }),
    { [Symbol.dispose]() {} },
  );
  const sending = setInterval(() => {
    void forger.send(forged, { transport: "udp", hostname: "127.255.255.255", port: udpPort })
      .catch(() => {});
  }, 100);
  try {
    await logsMatch(peer, /forged announce\?.*has changed from/);
    assert.match(peer.stderr, new RegExp(`forget-server 127\\.0\\.0\\.1:${tcpPort}`));
    assert.equal((await peer.command("status")).connected, false);
  } finally {
    clearInterval(sending);
    forger.close();
  }
  // The real index comes back with its identity (kept beside its database): accepted again.
  server = await spawnServer({ db, port: tcpPort, announcePort: udpPort });
  try {
    assert.equal(server.id, id);
    await peer.waitLine((l) => l.includes('"state":"connected"'), "reconnected", {
      timeoutMs: 30_000,
    });
    // forget-server removes the pin (the next ID met there is trusted on first use).
    const forgot = await peer.command(`forget-server 127.0.0.1:${tcpPort}`);
    assert.equal(forgot.ok, true, JSON.stringify(forgot));
    const left = JSON.parse(await Deno.readTextFile(pinsFile));
    assert.equal(left[`127.0.0.1:${tcpPort}`], undefined);
    const unknown = await peer.command(`forget-server 127.0.0.1:${tcpPort}`);
    assert.match(
      unknown.error,
      /^Cannot forget "127\.0\.0\.1:\d+": no index pinned at that address$/,
    );
  } finally {
    await server.kill();
  }
});

Deno.test("identity keys are 0600 on disk, and a looser key file is tightened with a warning", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  const db = join(dir.path, "index", "i.db");
  await Deno.mkdir(join(dir.path, "index"));
  const serverKey = join(`${db}.identity`, "key.pem");
  const peerKey = join(dir.path, "p", ".lanshare", "identity", "key.pem");
  {
    await using server = await spawnServer({ db });
    await using peer = await spawnPeer({ repo: join(dir.path, "p"), hostname: "p", server });
    assert.equal((await Deno.stat(serverKey)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(peerKey)).mode! & 0o777, 0o600);
    assert.match(await Deno.readTextFile(serverKey), /BEGIN PRIVATE KEY/);
    // The same identity after a restart: the listening line's ID.
    const status = await peer.command("status");
    assert.equal(status.id, peer.id);
  }
  await Deno.chmod(serverKey, 0o644);
  await Deno.chmod(peerKey, 0o640);
  await using server = await spawnServer({ db });
  await using peer = await spawnPeer({ repo: join(dir.path, "p"), hostname: "p", server });
  assert.equal((await Deno.stat(serverKey)).mode! & 0o777, 0o600);
  assert.equal((await Deno.stat(peerKey)).mode! & 0o777, 0o600);
  await logsMatch(server, /readable by others \(mode 644\); now 0600/);
  await logsMatch(peer, /readable by others \(mode 640\); now 0600/);
});

Deno.test("a plaintext peer against a TLS index fails clearly on both sides", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await using server = await spawnServer();
  await using peer = await spawnPeer({
    repo: join(dir.path, "p"),
    hostname: "p",
    server,
    direct: true,
    args: ["--insecure-plaintext"],
  });
  await logsMatch(peer, /speaks TLS; start this peer without --insecure-plaintext/);
  await logsMatch(server, /spoke plaintext \(started with --insecure-plaintext\?\)/);
});

Deno.test("a TLS peer against a plaintext index fails clearly on both sides", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await using server = await spawnServer({ args: ["--insecure-plaintext"] });
  await using peer = await spawnPeer({
    repo: join(dir.path, "p"),
    hostname: "p",
    server,
    direct: true,
  });
  await logsMatch(peer, /does not speak TLS \(started with --insecure-plaintext\?\)/);
  await logsMatch(
    server,
    /a TLS client connected from 127\.0\.0\.1:\d+, but this program runs with --insecure-plaintext/,
  );
});
