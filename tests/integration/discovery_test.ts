// UDP discovery on one host: the server's periodic announces and probe answers, and the peer's
// discoverServers(), all through the loopback broadcast address 127.255.255.255.
import assert from "node:assert/strict";
import { type Beacon, beaconOrProblem, encodeProbe, pemOfDer } from "../../shared/beacon.ts";
import { createIdentity, idOfCert, verify } from "../../shared/identity.ts";
import { startAnnouncer } from "../../server/beacon.ts";
import { discoverServers } from "../../peer/discover.ts";
import { connectRaw, startTestServer, within } from "./_server.ts";

const SANITIZE = { sanitizeResources: true, sanitizeOps: true } as const;
const LOOPBACK_BROADCAST = "127.255.255.255";

type Announce = Extract<Beacon, { kind: "announce" }>;

/** The device ID of the certificate an announce carries, after checking its signature. */
async function signerOf(beacon: Announce): Promise<string> {
  const id = idOfCert(pemOfDer(beacon.cert));
  assert.ok(
    await verify(
      id,
      beacon.signed as Uint8Array<ArrayBuffer>,
      beacon.signature as Uint8Array<ArrayBuffer>,
    ),
    "the announce is signed by its certificate's key",
  );
  return id;
}

/**
 * Receives datagrams on `socket` until one is an announce for which `accept` holds; returns it
 * with its source address. Other datagrams (probes, other servers, garbage) are skipped.
 */
async function receiveAnnounce(
  socket: Deno.DatagramConn,
  accept: (beacon: Announce) => boolean,
): Promise<{ beacon: Announce; from: Deno.NetAddr }> {
  const receive = async () => {
    for (;;) {
      const [bytes, from] = await socket.receive();
      const beacon = beaconOrProblem(bytes);
      if (beacon instanceof Error) continue;
      if (beacon.kind === "announce" && accept(beacon)) {
        return { beacon, from: from as Deno.NetAddr };
      }
    }
  };
  return await within(receive(), { timeoutMs: 3000, what: "an announce" });
}

/** A UDP socket for `using`: Deno.DatagramConn is not Disposable. */
function listenUdp(
  options: { hostname: string; port: number; reuseAddress?: boolean },
): Deno.DatagramConn & Disposable {
  const socket = Deno.listenDatagram({ transport: "udp", ...options });
  return Object.assign(socket, {
    [Symbol.dispose]() {
      try {
        socket.close();
      } catch (err) {
        if (!(err instanceof Deno.errors.BadResource)) throw err;
      }
    },
  });
}

/** A UDP port that was free a moment ago (bound, read, released). */
function freeUdpPort(): number {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = (socket.addr as Deno.NetAddr).port;
  socket.close();
  return port;
}

Deno.test({
  name: "startAnnouncer() broadcasts periodic announces with the TCP port and live sessions",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer({ announceIntervalMs: 30 });
    // Bound after the server's first announce: whatever arrives here was sent on the interval.
    using listener = listenUdp({ hostname: "0.0.0.0", port: server.udpPort, reuseAddress: true });
    const first = await receiveAnnounce(listener, (b) => b.tcpPort === server.tcpPort);
    assert.equal(first.beacon.tcpPort, server.tcpPort);
    assert.equal(first.beacon.sessions, 0);
    assert.equal(await signerOf(first.beacon), server.identity.id);
    assert.equal(first.from.hostname, "127.0.0.1");
    assert.equal(first.from.port, server.udpPort);

    await using client = await connectRaw(server.tcpPort);
    await client.hello("alpha", 4000);
    const later = await receiveAnnounce(
      listener,
      (b) => b.tcpPort === server.tcpPort && b.sessions === 1,
    );
    assert.equal(await signerOf(later.beacon), server.identity.id);
  },
});

// BUG(server/beacon.ts close()): the first announce (signed, then sent) was started and not
// awaited, so an announcer closed right after it started left that signature or send running,
// and the op sanitizer failed whichever test closed a server early. Only a top-level test's
// sanitizer sees it (a step's does not), and only once warm: 200 rounds failed 3 and 11 times
// in two runs of the old code.
const identityForRounds = await createIdentity();
const ROUNDS = 200;
for (let round = 0; round < ROUNDS; round++) {
  Deno.test({
    name: `Announcer.close() waits for the announce under way (round ${round + 1} of ${ROUNDS})`,
    ...SANITIZE,
    async fn() {
      const announcer = startAnnouncer({
        port: 0,
        broadcast: [LOOPBACK_BROADCAST],
        intervalMs: 60_000,
        tcpPort: 9,
        identity: identityForRounds,
        sessions: () => round,
      });
      await announcer.close();
    },
  });
}

Deno.test({
  name: "startAnnouncer() answers a probe directly with an announce",
  ...SANITIZE,
  async fn() {
    // Announces are a minute apart: only the probe can explain an answer.
    await using server = await startTestServer();
    using prober = listenUdp({ hostname: "0.0.0.0", port: 0 });
    await prober.send(encodeProbe(), {
      transport: "udp",
      hostname: LOOPBACK_BROADCAST,
      port: server.udpPort,
    });
    const { beacon, from } = await receiveAnnounce(prober, () => true);
    assert.equal(beacon.tcpPort, server.tcpPort);
    assert.equal(beacon.sessions, 0);
    assert.equal(await signerOf(beacon), server.identity.id);
    assert.equal(from.hostname, "127.0.0.1");
    assert.equal(from.port, server.udpPort);
  },
});

Deno.test({
  name: "startAnnouncer() keeps answering probes after junk datagrams",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    using prober = listenUdp({ hostname: "127.0.0.1", port: 0 });
    const to = { transport: "udp" as const, hostname: "127.0.0.1", port: server.udpPort };
    const probe = encodeProbe();
    const wrongMagic = probe.slice();
    wrongMagic[0] = 0;
    const wrongVersion = probe.slice();
    wrongVersion[2] = 9;
    const unknownKind = probe.slice();
    unknownKind[3] = 7;
    for (const junk of [new Uint8Array(0), probe.subarray(0, 11), wrongMagic, wrongVersion]) {
      await prober.send(junk, to);
    }
    await prober.send(unknownKind, to);
    // A probe's bytes after `kind` are ignored (docs/PROTOCOL.md §8).
    const noisyProbe = probe.slice();
    noisyProbe.fill(0xee, 4);
    await prober.send(noisyProbe, to);
    // Datagrams on one socket pair arrive in order: the first answer is to the noisy probe.
    const { beacon } = await receiveAnnounce(prober, () => true);
    assert.equal(beacon.tcpPort, server.tcpPort);
  },
});

Deno.test({
  name: "discoverServers() finds a server on the loopback broadcast address",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using client = await connectRaw(server.tcpPort);
    await client.hello("alpha", 4000);
    const t0 = performance.now();
    const found = await discoverServers({
      announcePort: server.udpPort,
      broadcast: [LOOPBACK_BROADCAST],
      timeoutMs: 10_000,
      gatherMs: 20,
    });
    // It returns on the first answer (plus gatherMs), not at the timeout.
    const elapsedMs = performance.now() - t0;
    assert.ok(elapsedMs < 5000, `took ${elapsedMs} ms`);
    assert.deepEqual(found, [{
      hostname: "127.0.0.1",
      port: server.tcpPort,
      id: server.identity.id,
      certPem: server.identity.certPem,
      sessions: 1,
    }]);
  },
});

Deno.test({
  name: "discoverServers() lists the least loaded of two servers first",
  ...SANITIZE,
  async fn() {
    // Two servers on one discovery port, as on a LAN with two index hosts.
    await using busy = await startTestServer();
    await using idle = await startTestServer({ announcePort: busy.udpPort });
    assert.equal(idle.udpPort, busy.udpPort);
    await using a = await connectRaw(busy.tcpPort);
    await using b = await connectRaw(busy.tcpPort);
    await a.hello("alpha", 4000);
    await b.hello("beta", 4000);
    const found = await discoverServers({
      announcePort: busy.udpPort,
      broadcast: [LOOPBACK_BROADCAST],
      timeoutMs: 3000,
      gatherMs: 200,
    });
    assert.deepEqual(found.map((s) => [s.id, s.sessions]), [
      [idle.identity.id, 0],
      [busy.identity.id, 2],
    ]);
  },
});

Deno.test({
  name: "discoverServers() rejects with Cannot discover when no server answers",
  ...SANITIZE,
  async fn() {
    const port = freeUdpPort();
    const timeoutMs = 300;
    const t0 = performance.now();
    await assert.rejects(
      within(
        discoverServers({ announcePort: port, broadcast: [LOOPBACK_BROADCAST], timeoutMs }),
        { timeoutMs: timeoutMs + 2000, what: "discoverServers() to give up" },
      ),
      (err: unknown) => {
        assert.ok(err instanceof Error);
        assert.match(err.message, /^Cannot discover/);
        assert.match(err.message, new RegExp(`UDP port ${port}`));
        return true;
      },
    );
    const elapsedMs = performance.now() - t0;
    assert.ok(elapsedMs >= timeoutMs - 5, `gave up after ${elapsedMs} ms`);
  },
});
