// UDP discovery, peer side: probes the broadcast addresses and listens for announces until an
// index server answers or the timeout passes.
import { decodeBeacon, encodeBeacon } from "../shared/beacon.ts";
import { ProtocolError } from "../shared/errors.ts";
import { logger } from "../shared/log.ts";
import { settleWithin } from "../shared/timeout.ts";

const log = logger("peer", "discover");

/** An index server that announced itself. */
export interface FoundServer {
  hostname: string;
  port: number;
  serverId: string;
  /** Its live sessions when it announced (lower is less loaded). */
  sessions: number;
}

/** Options for `discoverServers`. */
export interface DiscoverOptions {
  /** UDP port servers listen and announce on. */
  announcePort: number;
  /** Where probes go. */
  broadcast: readonly string[];
  /** Give up after this long, ms. */
  timeoutMs: number;
  /** After the first answer, wait this long for others before choosing, ms. @default 150 */
  gatherMs?: number;
  /** Stops discovery early (it then fails as if nothing answered). */
  signal?: AbortSignal;
}

/** ms between repeated probes while nothing answers. */
const PROBE_INTERVAL_MS = 500;

/**
 * Finds index servers on the LAN, least loaded first.
 *
 * @throws {Error} "Cannot discover …" when none answers within the timeout
 */
export async function discoverServers(options: DiscoverOptions): Promise<FoundServer[]> {
  // Announces arrive on the shared discovery port; direct answers to our probes on an
  // ephemeral port of our own, so that several peers on one host never steal each other's.
  const listener = Deno.listenDatagram({
    transport: "udp",
    hostname: "0.0.0.0",
    port: options.announcePort,
    reuseAddress: true,
  });
  const prober = Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port: 0 });
  const found = new Map<string, FoundServer>();
  const firstFound = Promise.withResolvers<void>();
  const receive = async (socket: Deno.DatagramConn) => {
    try {
      for await (const [bytes, from] of socket) {
        try {
          const beacon = decodeBeacon(bytes);
          if (beacon.kind !== "announce") continue;
          const hostname = (from as Deno.NetAddr).hostname;
          found.set(`${hostname}:${beacon.tcpPort}`, {
            hostname,
            port: beacon.tcpPort,
            serverId: beacon.serverId,
            sessions: beacon.sessions,
          });
          firstFound.resolve();
        } catch (err) {
          if (!(err instanceof ProtocolError)) throw err;
        }
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted)) {
        throw err;
      }
    }
  };
  const receiving = Promise.all([receive(listener), receive(prober)]);
  const probe = encodeBeacon({ kind: "probe" });
  const sendProbes = async () => {
    for (const hostname of options.broadcast) {
      await prober.send(probe, { transport: "udp", hostname, port: options.announcePort }).catch((
        err,
      ) => log.debug("Cannot probe {hostname}: {error}", { hostname, error: String(err) }));
    }
  };
  await sendProbes();
  const probing = setInterval(() => void sendProbes(), PROBE_INTERVAL_MS);
  const stopped = Promise.withResolvers<boolean>();
  const onAbort = () => stopped.resolve(false);
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const answered = Promise.race([firstFound.promise.then(() => true), stopped.promise]);
    if (await settleWithin(answered, options.timeoutMs) && await answered) {
      // Others may answer a moment later: collect them before choosing the least loaded.
      await new Promise((resolve) => setTimeout(resolve, options.gatherMs ?? 150));
    }
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    clearInterval(probing);
    listener.close();
    prober.close();
    await receiving;
  }
  if (found.size === 0) {
    throw new Error(
      `Cannot discover an index server: no answer on UDP port ${options.announcePort} within ${options.timeoutMs} ms ` +
        `(probed ${
          options.broadcast.join(", ")
        }); broadcasts stop at the subnet, so use --server HOST:PORT`,
    );
  }
  return [...found.values()].sort((a, b) => a.sessions - b.sessions);
}
