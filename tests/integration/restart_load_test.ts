// An index taking back its peers after a restart: every peer comes back within seconds, so the
// index is slow to answer for a while. A peer must wait as long as the index gives a TLS
// handshake.
import assert from "node:assert/strict";
import { IndexClient } from "../../peer/index_client.ts";
import { createIdentity } from "../../shared/identity.ts";
import { HANDSHAKE_TIMEOUT_MS } from "../../shared/transport.ts";
import { pollUntil, startTestServer } from "./_server.ts";

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
