// An index taking back its peers after a restart: every peer comes back within seconds, so the
// index is slow to answer for a while. A peer must wait as long as the index gives a TLS
// handshake.
import assert from "node:assert/strict";
import { IndexClient } from "../../peer/index_client.ts";
import { openStore } from "../../server/open_store.ts";
import type { FileEntry } from "../../shared/protocol.ts";
import { createIdentity } from "../../shared/identity.ts";
import { HANDSHAKE_TIMEOUT_MS } from "../../shared/transport.ts";
import { fileEntry, pollUntil, startTestServer } from "./_server.ts";

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

Deno.test("restart load: every stored entry comes back whole, its signature and pieces too", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lanshare_restart_load_" });
  try {
    const db = `${dir}/index.db`;
    const now = Date.now();
    const publish = { nowMs: now, maxEntries: 100 };
    const session = (sessionId: string, hostname: string) => ({
      sessionId,
      serverId: "before",
      hostname,
      address: "127.0.0.1",
      port: 7000,
      openedAtMs: now,
    });
    // Two peers' entries interleaved in the database, as concurrent publishes leave them, with
    // and without a signature and a `have` bitfield.
    const { sig: _, ...unsigned } = fileEntry("b1.txt");
    const entries: Record<string, FileEntry[]> = {
      a: [fileEntry("a1.txt"), fileEntry("a2.txt", { have: "/w==", size: 20 << 20 })],
      b: [unsigned, fileEntry("shared.txt")],
    };
    entries.a!.push(fileEntry("shared.txt", { rootHash: "b".repeat(64) }));
    const first = openStore(db);
    await first.migrate();
    await first.registerSession(session("a", "alpha"), now + 60_000);
    await first.registerSession(session("b", "bravo"), now + 60_000);
    for (let i = 0; i < 3; i++) {
      for (const id of ["a", "b"]) {
        const entry = entries[id]![i];
        if (entry) await first.publish(id, entry, publish);
      }
    }
    await first.close();

    await using server = await startTestServer({ db });
    const byName = (a: FileEntry, b: FileEntry) => a.fname < b.fname ? -1 : 1;
    for (const id of ["a", "b"]) {
      assert.deepEqual(
        await server.catalog.store.entriesOf(id),
        entries[id]!.toSorted(byName),
      );
    }
    assert.deepEqual(await server.catalog.counts(), { sessions: 0, entries: 5 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("restart load: a started server says where its start went", async () => {
  await using server = await startTestServer();
  const phases = ["store", "identity", "clock", "offline", "listen", "total"];
  assert.deepEqual(Object.keys(server.startMs), phases);
  for (const phase of phases) assert.ok(Number.isInteger(server.startMs[phase]), phase);
});
