// UDP discovery, server side: broadcasts announces on an interval and answers probes directly.
import { beaconOrProblem, derOfPem, encodeAnnounce, signedPart } from "../shared/beacon.ts";
import { ProtocolError } from "../shared/errors.ts";
import { type Identity, sign } from "../shared/identity.ts";
import { logger } from "../shared/log.ts";

const log = logger("server", "beacon");

/** Options for `startAnnouncer`. */
export interface AnnouncerOptions {
  /** UDP port to bind and to announce to (0: any free port). */
  port: number;
  /** Broadcast addresses to announce to. */
  broadcast: readonly string[];
  /** ms between announces. */
  intervalMs: number;
  /** The index's TCP port, carried in the announce. */
  tcpPort: number;
  /** This server's identity: its certificate is announced, and every announce signed. */
  identity: Identity;
  /** Current number of live sessions (load hint for peers choosing a server). */
  sessions: () => number;
}

/** The runtime lacks UDP: Deno was started without --unstable-net. */
export class UnstableNetError extends Error {
  /** @param message what could not be done, and the flag that allows it */
  constructor(message: string) {
    super(message);
    this.name = "UnstableNetError";
  }
}

/** A running announcer. */
export interface Announcer extends AsyncDisposable {
  /** The UDP port actually bound. */
  port: number;
  close(): Promise<void>;
}

/**
 * Checks that this runtime has UDP.
 *
 * @throws {UnstableNetError} when Deno was started without --unstable-net
 */
export function requireUdp(): void {
  // Deno keeps UDP behind --unstable-net; deno.json turns it on for the sources, but a bundle
  // run elsewhere needs the flag, and without it Deno.listenDatagram is only "not a function".
  if (typeof Deno.listenDatagram !== "function") {
    throw new UnstableNetError(
      "Cannot start discovery: UDP needs Deno's --unstable-net flag (deno run --unstable-net ...)",
    );
  }
}

/** Binds the discovery port (shared with peers on the same host) and starts announcing. */
export function startAnnouncer(options: AnnouncerOptions): Announcer {
  requireUdp();
  const socket = Deno.listenDatagram({
    transport: "udp",
    hostname: "0.0.0.0",
    port: options.port,
    reuseAddress: true,
  });
  const port = (socket.addr as Deno.NetAddr).port;
  const cert = derOfPem(options.identity.certPem);
  // Signed once per session count, not once per datagram: a flood of probes costs no signing.
  let last: { sessions: number; bytes: Promise<Uint8Array> } | undefined;
  const announce = (): Promise<Uint8Array> => {
    const sessions = options.sessions();
    if (last?.sessions !== sessions) {
      const signed = signedPart({ tcpPort: options.tcpPort, sessions, cert });
      last = {
        sessions,
        bytes: sign(options.identity, signed).then((signature) =>
          encodeAnnounce(signed, signature)
        ),
      };
    }
    return last.bytes;
  };

  const broadcastAll = async () => {
    const bytes = await announce();
    for (const hostname of options.broadcast) {
      try {
        await socket.send(bytes, { transport: "udp", hostname, port });
      } catch (err) {
        // One unreachable address (e.g. no route for 255.255.255.255) must not stop the others.
        log.debug("Cannot announce to {hostname}:{port}: {error}", {
          hostname,
          port,
          error: String(err),
        });
      }
    }
  };

  const receiving = (async () => {
    try {
      for await (const [bytes, from] of socket) {
        const beacon = beaconOrProblem(bytes);
        if (beacon instanceof ProtocolError) {
          log.debug("Ignoring datagram from {from}: {error}", {
            from: JSON.stringify(from),
            error: beacon.message,
          });
          continue;
        }
        if (beacon.kind !== "probe") continue;
        const to = from as Deno.NetAddr;
        await socket.send(await announce(), to).catch((err) =>
          log.warn("Cannot answer probe from {host}:{port}: {error}", {
            host: to.hostname,
            port: to.port,
            error: String(err),
          })
        );
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted)) {
        log.error("Discovery socket failed: {error}", { error: String(err) });
      }
    }
  })();

  // Broadcasts under way (signing, then sending), so that close() can wait for them: a server
  // closed right after it started must not leave a signature or a send running behind it.
  const broadcasting = new Set<Promise<void>>();
  const broadcastNow = () => {
    const sent = broadcastAll().catch((err) =>
      log.warn("Cannot announce: {error}", { error: String(err) })
    );
    broadcasting.add(sent);
    void sent.finally(() => broadcasting.delete(sent));
  };
  broadcastNow();
  const timer = setInterval(broadcastNow, options.intervalMs);
  const close = async () => {
    clearInterval(timer);
    try {
      socket.close();
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource)) throw err;
    }
    await Promise.all([receiving, ...broadcasting]);
  };
  return { port, close, [Symbol.asyncDispose]: close };
}
