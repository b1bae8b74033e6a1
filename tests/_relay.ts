// Attackers for the transport tests: a man in the middle that terminates TLS with its own
// identity and relays to the real endpoint, and a relay that records every byte it passes.
import { type Identity } from "../shared/identity.ts";
import { connectTo, type TransportConn } from "../shared/transport.ts";

/** A listener relaying each connection to a target; stop it with `await using`. */
export interface Relay extends AsyncDisposable {
  port: number;
  /** Connections that reached the relay. */
  accepted: number;
  /** Every byte relayed, in both directions, in arrival order. */
  captured(): Uint8Array;
}

/** Copies `from` to `to` until either ends, recording what passes. */
async function pump(from: TransportConn, to: TransportConn, record: Uint8Array[]): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await from.read(buffer);
      if (n === null) break;
      record.push(buffer.slice(0, n));
      let written = 0;
      while (written < n) written += await to.write(buffer.subarray(written, n));
    }
  } catch (err) {
    // Either side closing ends the relay; anything else is the test's business.
    if (
      !(err instanceof Deno.errors.BadResource || err instanceof Deno.errors.ConnectionReset ||
        err instanceof Deno.errors.BrokenPipe || err instanceof Deno.errors.InvalidData ||
        err instanceof Deno.errors.UnexpectedEof)
    ) throw err;
  }
}

function closeBoth(a: { close(): void }, b: { close(): void } | undefined): void {
  for (const conn of [a, b]) {
    try {
      conn?.close();
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource)) throw err;
    }
  }
}

/**
 * Starts a relay on 127.0.0.1 to `target`. With `tls`, it terminates TLS with its own
 * identity and connects onward over TLS pinned to the target (a man in the middle); without,
 * it passes bytes untouched (a recording tap on the wire).
 */
export function startRelay(
  target: { port: number; pin?: { id: string; certPem: string } },
  tls?: { identity: Identity },
  listenPort = 0,
): Relay {
  const listener = tls
    ? Deno.listenTls({
      hostname: "127.0.0.1",
      port: listenPort,
      cert: tls.identity.certPem,
      key: tls.identity.keyPem,
    })
    : Deno.listen({ hostname: "127.0.0.1", port: listenPort });
  const record: Uint8Array[] = [];
  const tasks = new Set<Promise<void>>();
  const open = new Set<{ close(): void }>();
  const relay: Relay = {
    port: (listener.addr as Deno.NetAddr).port,
    accepted: 0,
    captured() {
      const total = record.reduce((sum, part) => sum + part.length, 0);
      const all = new Uint8Array(total);
      let offset = 0;
      for (const part of record) {
        all.set(part, offset);
        offset += part.length;
      }
      return all;
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const conn of open) closeBoth(conn, undefined);
      await accepting;
      await Promise.allSettled([...tasks]);
    },
  };
  const accepting = (async () => {
    for await (const conn of listener) {
      relay.accepted++;
      open.add(conn);
      const task = (async () => {
        let onward: TransportConn | undefined;
        try {
          if (tls) await (conn as Deno.TlsConn).handshake();
          // A tap passes the bytes untouched, whatever they are: plain TCP onward.
          onward = tls
            ? await connectTo({
              hostname: "127.0.0.1",
              port: target.port,
              pin: target.pin,
              plaintext: false,
              what: "the relay's target",
            })
            : await Deno.connect({ hostname: "127.0.0.1", port: target.port });
          open.add(onward);
          const inbound = conn as unknown as TransportConn;
          await Promise.race([pump(inbound, onward, record), pump(onward, inbound, record)]);
        } catch (err) {
          // The victim refusing our certificate ends the handshake: expected here.
          if (!(err instanceof Error)) throw err;
        } finally {
          closeBoth(conn, onward);
          open.delete(conn);
          if (onward) open.delete(onward);
        }
      })();
      tasks.add(task);
      void task.finally(() => tasks.delete(task));
    }
  })().catch((err) => {
    if (!(err instanceof Deno.errors.BadResource)) throw err;
  });
  return relay;
}

/** A UDP socket answering every probe with `answer` (a recorded or forged announce). */
export function answerProbes(answer: () => Uint8Array): { port: number } & Disposable {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  void (async () => {
    try {
      for await (const [, from] of socket) await socket.send(answer(), from);
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource)) throw err;
    }
  })();
  return {
    port: (socket.addr as Deno.NetAddr).port,
    [Symbol.dispose]() {
      socket.close();
    },
  };
}
