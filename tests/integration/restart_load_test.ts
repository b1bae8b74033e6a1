// An index taking back its peers after a restart: every peer comes back within seconds, so the
// index is slow to answer for a while. A peer must wait as long as the index gives a TLS
// handshake, and the index's listener must hold the connections it cannot accept yet.
import assert from "node:assert/strict";
import { IndexClient } from "../../peer/index_client.ts";
import { createIdentity } from "../../shared/identity.ts";
import { HANDSHAKE_TIMEOUT_MS } from "../../shared/transport.ts";
import { pollUntil, startTestServer, startWorkerServer } from "./_server.ts";

/** How long the relay below holds the index's first bytes: past the old 5 s connect bound. */
const SLOW_HANDSHAKE_MS = 6_000;

/**
 * A TCP relay to `target` that holds what the target sends for `delayMs` after the connection
 * opens, as an index busy with a restart's handshakes answers late. Stop it with `await using`.
 */
function slowRelay(target: number, delayMs: number): AsyncDisposable & { port: number } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const pipes: Promise<void>[] = [];
  const pipe = async (from: Deno.Conn, to: Deno.Conn, afterMs: number) => {
    await new Promise((resolve) => setTimeout(resolve, afterMs));
    try {
      await from.readable.pipeTo(to.writable, { preventClose: true });
    } catch {
      // Either side closing ends the relay.
    }
  };
  const accepting = (async () => {
    for await (const client of listener) {
      const server = await Deno.connect({ hostname: "127.0.0.1", port: target });
      conns.push(client, server);
      pipes.push(pipe(client, server, 0), pipe(server, client, delayMs));
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting.catch(() => {});
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Closed already by its pipe.
        }
      }
      await Promise.allSettled(pipes);
    },
  };
}

Deno.test({
  name: "restart herd: a peer registers with an index whose TLS handshake takes 6 s",
  async fn() {
    assert.ok(SLOW_HANDSHAKE_MS < HANDSHAKE_TIMEOUT_MS, "the index itself must not give up");
    await using server = await startTestServer({ insecurePlaintext: false });
    await using relay = slowRelay(server.tcpPort, SLOW_HANDSHAKE_MS);
    const client = new IndexClient({
      locate: () =>
        Promise.resolve([{
          hostname: "127.0.0.1",
          port: relay.port,
          pin: { id: server.identity.id, certPem: server.identity.certPem },
        }]),
      plaintext: false,
      hostname: "slow-index-peer",
      p2pPort: 7000,
      identity: await createIdentity(),
      listShares: () => ({ files: [] }),
      onConnected: () => Promise.resolve(),
      unavailableReason: (state) => state.kind,
    });
    try {
      client.start();
      // Before, each attempt gave up after 5 s, before the handshake could finish: never.
      await pollUntil(() => Promise.resolve(client.connected || undefined), {
        timeoutMs: SLOW_HANDSHAKE_MS + 5_000,
        what: "the peer to register through the slow handshake",
      });
      assert.equal(server.live.size, 1);
    } finally {
      await client.close();
    }
  },
});

/** Connections opened at once while the index accepts none: more than Deno's default 511. */
const QUEUED_CONNECTIONS = 800;

/** The kernel's cap on a listener's accept queue (net.core.somaxconn). */
function somaxconn(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/sys/net/core/somaxconn"));
  } catch {
    return 0;
  }
}

Deno.test({
  name: "restart herd: the index's listener holds 800 connections it has not accepted yet",
  // The kernel caps the queue; Linux has allowed 4096 by default since 5.4.
  ignore: somaxconn() <= QUEUED_CONNECTIONS,
  async fn() {
    await using server = await startWorkerServer({ insecurePlaintext: false });
    // The server's thread is blocked: only the kernel completes the connections, into the
    // listener's accept queue. Past a full queue it drops them, and they time out here.
    const { over } = await server.stall(4_000);
    const conns = await Promise.all(
      Array.from(
        { length: QUEUED_CONNECTIONS },
        () =>
          Deno.connect({
            hostname: "127.0.0.1",
            port: server.tcpPort,
            signal: AbortSignal.timeout(2_000),
          }).catch(() => undefined),
      ),
    );
    const connected = conns.filter((conn) => conn !== undefined).length;
    for (const conn of conns) conn?.close();
    await over;
    // Before, Deno's default queue of 511 held 512 (the kernel allows one more).
    assert.equal(connected, QUEUED_CONNECTIONS);
  },
});
