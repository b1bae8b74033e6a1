// Where the index is and which certificate to pin there: the --server list (each server's
// certificate fetched with a unicast probe and checked against its #ID or its pin) or
// discovery (announces from pinned addresses with another ID ignored). A server seen for the
// first time is pinned (trust on first use).
import { discoverServers, type FoundServer, probeServer } from "./discover.ts";
import type { IndexAddress } from "./index_client.ts";
import type { PeerConfig } from "./config.ts";
import type { ServerPins } from "./server_pins.ts";
import { logger } from "../shared/log.ts";
import { shortId } from "../shared/identity.ts";
import type { HostPort } from "../shared/cli.ts";
import { readCertificate } from "../shared/transport.ts";

const log = logger("peer", "index");

/** How long a unicast probe for a --server's certificate waits, ms. */
const PROBE_TIMEOUT_MS = 3000;

/**
 * The index servers to try, best first, each with the certificate to pin.
 *
 * @throws {Error} when no usable server was found; the message says why (for `status`)
 */
export async function locateIndex(
  config: Pick<
    PeerConfig,
    "servers" | "insecurePlaintext" | "announcePort" | "broadcast" | "discoverTimeoutMs"
  >,
  pins: ServerPins,
  signal: AbortSignal,
): Promise<IndexAddress[]> {
  if (config.servers.length > 0 && config.insecurePlaintext) {
    return config.servers.map(({ hostname, port }) => ({ hostname, port }));
  }
  if (config.servers.length > 0) {
    const usable: IndexAddress[] = [];
    const problems: string[] = [];
    for (const server of config.servers) {
      try {
        const found = await certificateOf(server, config.announcePort, signal);
        const address = `${server.hostname}:${server.port}`;
        if (server.id !== undefined && found.id !== server.id) {
          throw new Error(
            `Cannot use the index at ${address}: it presents device ${shortId(found.id)} ` +
              `(${found.id}), but --server names ${shortId(server.id)}; someone may be ` +
              `intercepting the connection`,
          );
        }
        usable.push(
          await pinned(
            { ...found, hostname: server.hostname, port: server.port },
            pins,
            server.id !== undefined,
          ),
        );
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    if (usable.length === 0) throw new Error(problems.join("; "));
    return usable;
  }
  const found = await discoverServers({
    announcePort: config.announcePort,
    broadcast: config.broadcast,
    timeoutMs: config.discoverTimeoutMs,
    signal,
    refuse: (server) => {
      const check = pins.check(`${server.hostname}:${server.port}`, server.id);
      return check.kind === "changed" ? check.message : undefined;
    },
  });
  if (config.insecurePlaintext) return found.map(({ hostname, port }) => ({ hostname, port }));
  return await Promise.all(found.map((server) => pinned(server, pins, false)));
}

/**
 * The certificate of a --server, from whichever answers first: its signed answer to a probe on
 * the UDP discovery port (as the design has it), or the TLS handshake on its index port (which
 * works where UDP does not get through, and for a second server on a host whose shared
 * discovery port the first one answers). Both prove possession of the certificate's key.
 */
async function certificateOf(
  server: HostPort,
  announcePort: number,
  signal: AbortSignal,
): Promise<FoundServer> {
  const probing = probeServer({
    hostname: server.hostname,
    announcePort,
    tcpPort: server.port,
    timeoutMs: PROBE_TIMEOUT_MS,
    signal,
  });
  const handshake = readCertificate(server.hostname, server.port, PROBE_TIMEOUT_MS).then((
    cert,
  ): FoundServer => ({ ...server, ...cert, sessions: 0 }));
  try {
    return await Promise.any([probing, handshake]);
  } catch (err) {
    if (!(err instanceof AggregateError)) throw err;
    throw new Error(
      err.errors.map((e) => e instanceof Error ? e.message : String(e)).join("; "),
    );
  }
}

/**
 * The address with its certificate to pin, after checking the pins: a new server is pinned,
 * one named by #ID replaces an old pin, a changed one is refused.
 */
async function pinned(
  server: FoundServer,
  pins: ServerPins,
  named: boolean,
): Promise<IndexAddress> {
  const address = `${server.hostname}:${server.port}`;
  const check = pins.check(address, server.id);
  if (check.kind === "changed" && !named) throw new Error(check.message);
  if (check.kind !== "pinned") {
    await pins.pin(address, server.id, server.certPem);
    log.info("Pinned the index at {address}: device {id}", { address, id: server.id });
  }
  return {
    hostname: server.hostname,
    port: server.port,
    pin: { id: server.id, certPem: server.certPem },
  };
}
