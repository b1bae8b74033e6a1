// UDP discovery, peer side: probes the broadcast addresses and listens for announces until an
// index server answers or the timeout passes.
import { type Beacon, beaconOrProblem, encodeProbe, pemOfDer } from "../shared/beacon.ts";
import { ProtocolError } from "../shared/errors.ts";
import { idOfCert, verify } from "../shared/identity.ts";
import { logger } from "../shared/log.ts";
import { settleWithin } from "../shared/timeout.ts";

const log = logger("peer", "discover");

/** An index server that announced itself. */
export interface FoundServer {
  hostname: string;
  port: number;
  /** The server's device ID (from its certificate, which signed the announce). */
  id: string;
  /** The server's certificate, PEM: what TLS pins. */
  certPem: string;
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
  /**
   * Why an announce from a pinned address is refused (its ID is not the pinned one), or
   * undefined to accept it. Refused announces are logged as warnings and ignored.
   */
  refuse?: (server: FoundServer) => string | undefined;
}

/**
 * The server an announce describes, if its signature is valid under its certificate's key.
 * @returns undefined (and a debug line) for a datagram that is no valid signed announce
 */
async function verifiedAnnounce(
  beacon: Beacon,
  from: Deno.NetAddr,
): Promise<FoundServer | undefined> {
  if (beacon.kind !== "announce") return undefined;
  const certPem = pemOfDer(beacon.cert);
  let id: string;
  try {
    id = idOfCert(certPem);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    log.debug("Ignoring announce from {host}: {error}", {
      host: from.hostname,
      error: err.message,
    });
    return undefined;
  }
  if (
    !await verify(
      id,
      beacon.signed as Uint8Array<ArrayBuffer>,
      beacon.signature as Uint8Array<ArrayBuffer>,
    )
  ) {
    log.warn("Ignoring announce from {host}: its signature is not by the key it names (forged?)", {
      host: from.hostname,
    });
    return undefined;
  }
  return { hostname: from.hostname, port: beacon.tcpPort, id, certPem, sessions: beacon.sessions };
}

/**
 * Hands every valid signed announce arriving on `socket` to `onServer`, until the socket is
 * closed. Datagrams that are not beacons are skipped.
 */
async function receiveAnnounces(
  socket: Deno.DatagramConn,
  onServer: (server: FoundServer) => void,
): Promise<void> {
  try {
    for await (const [bytes, from] of socket) {
      const beacon = beaconOrProblem(bytes);
      if (beacon instanceof ProtocolError) continue;
      const server = await verifiedAnnounce(beacon, from as Deno.NetAddr);
      if (server !== undefined) onServer(server);
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted)) {
      throw err;
    }
  }
}

/**
 * Asks one host for its index server's certificate (a probe to its UDP discovery port), for
 * a server given by --server rather than discovered.
 *
 * @throws {Error} "Cannot get the certificate …" when no valid answer comes within the timeout
 */
export async function probeServer(
  options: {
    hostname: string;
    announcePort: number;
    /** Only an answer for this index port counts (servers on one host share a UDP port). */
    tcpPort: number;
    timeoutMs: number;
    signal?: AbortSignal;
  },
): Promise<FoundServer> {
  const prober = Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port: 0 });
  const answered = Promise.withResolvers<FoundServer>();
  const receiving = receiveAnnounces(prober, (found) => {
    if (found.port === options.tcpPort) answered.resolve(found);
  });
  const probe = encodeProbe();
  const send = () =>
    prober.send(probe, { transport: "udp", hostname: options.hostname, port: options.announcePort })
      .catch((err) =>
        log.debug("Cannot probe {hostname}: {error}", {
          hostname: options.hostname,
          error: String(err),
        })
      );
  await send();
  const probing = setInterval(() => void send(), PROBE_INTERVAL_MS);
  const onAbort = () => answered.reject(new Error("Cannot get the certificate: stopped"));
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    if (!await settleWithin(answered.promise, options.timeoutMs)) {
      throw new Error(
        `Cannot get the certificate of the index on ${options.hostname}: no answer on UDP port ` +
          `${options.announcePort} within ${options.timeoutMs} ms (give its discovery port with ` +
          `--announce-port, or its ID with --server HOST:PORT#ID and open that UDP port)`,
      );
    }
    return await answered.promise;
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    clearInterval(probing);
    prober.close();
    await receiving;
  }
}

/** ms between repeated probes while nothing answers. */
const PROBE_INTERVAL_MS = 500;

/** Refusals already logged: a forger announcing every second gets one warning, not thousands. */
const warned = new Set<string>();
const MAX_WARNED = 1024;

function warnOnce(key: string, refusal: string): void {
  if (warned.has(key)) return;
  if (warned.size >= MAX_WARNED) warned.clear();
  warned.add(key);
  log.warn("Ignoring announce (forged announce?): {refusal}", { refusal });
}

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
  const onServer = (server: FoundServer) => {
    const refusal = options.refuse?.(server);
    if (refusal !== undefined) {
      warnOnce(`${server.hostname}:${server.port}#${server.id}`, refusal);
      return;
    }
    found.set(`${server.hostname}:${server.port}`, server);
    firstFound.resolve();
  };
  const receiving = Promise.all([
    receiveAnnounces(listener, onServer),
    receiveAnnounces(prober, onServer),
  ]);
  const probe = encodeProbe();
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
