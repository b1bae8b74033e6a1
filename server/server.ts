// The index server: puts together the store, the listener (listener.ts, with the caps of
// admission.ts), the live-session registry, the heartbeat (heartbeat.ts) and the announcer. startServer() returns a handle; main.ts
// owns signals and exit codes.
import { logger } from "../shared/log.ts";
import { settleWithin } from "../shared/timeout.ts";
import { MsgType } from "../shared/protocol.ts";
import { Admission, type Admitted } from "./admission.ts";
import { type Announcer, requireUdp, startAnnouncer } from "./beacon.ts";
import { Catalog } from "./catalog.ts";
import { startHeartbeat } from "./heartbeat.ts";
import { acceptConnections } from "./listener.ts";
import { RefusalLog } from "./refusal_log.ts";
import { closeWithNotice, type LiveSession, pingSession, runSession } from "./session.ts";
import type { ServerConfig } from "./config.ts";
import type { Store } from "./store.ts";
import { openStore } from "./open_store.ts";
import { type Identity, shortId } from "../shared/identity.ts";
import { loadOrCreateIdentity } from "../shared/identity_file.ts";
import { acceptedConn, listenTransport, type TransportConn } from "../shared/transport.ts";
import { importNetworkKey, type NetworkKey } from "../shared/handshake.ts";
import { JoinPolicy } from "./join_policy.ts";

const log = logger("server");

/** How long close() waits for its goodbyes to be written, ms. */
const GOODBYE_MS = 1000;
/**
 * How long the sessions of peers that have not come back (after a restart, or from a server
 * that died) stay in the catalogue as offline rows, ms: search lists them as offline meanwhile
 * and who-has never does. A reconnecting peer backs off 5 s at most, so one that is still away
 * after this long is gone, and its rows must not be listed or counted for ever.
 */
export const OFFLINE_KEEP_MS = 10 * 60_000;
/** Offline rows are looked for at most this long after they are due, ms. */
const OFFLINE_SWEEP_MAX_MS = 60_000;
/** A clock this far off the shared database's is worth a warning (it is corrected for). */
const CLOCK_WARNING_MS = 2_000;

/** A running index server. */
export interface RunningServer extends AsyncDisposable {
  /** TCP port of the index. */
  tcpPort: number;
  /** UDP port of discovery. */
  udpPort: number;
  /** Random id of this server process (32 hex digits). */
  serverId: string;
  /** This server's device identity: its ID is what peers pin. */
  identity: Identity;
  catalog: Catalog;
  /** Live sessions held by this process, by session id. */
  live: Map<string, LiveSession>;
  /** Who may join, and the operator's decisions about devices. */
  join: JoinPolicy;
  /**
   * Where the start went, ms per phase in order (`store`: migrating and loading the catalogue;
   * `identity`: key and join policy; `clock`; `offline`: marking old sessions offline;
   * `listen`: sockets bound), and `total`.
   */
  startMs: Readonly<Record<string, number>>;
  /**
   * Stops accepting, says goodbye to every session, marks this server's sessions offline (their
   * entries stay listed until the peers come back) and closes the store.
   */
  close(): Promise<void>;
}

/** Options beyond the config, for tests and embedding. */
export interface StartServerOptions {
  /** Store to use instead of opening `config.db`. */
  store?: Store;
  /** Identity to use instead of the one kept in `config.identity`. */
  identity?: Identity;
  /** How long offline sessions are kept, ms. @default OFFLINE_KEEP_MS */
  offlineKeepMs?: number;
}

/** Loads (or creates) the server's identity, warning when its key file was readable by others. */
async function serverIdentity(dir: string): Promise<Identity> {
  const loaded = await loadOrCreateIdentity(dir);
  if (loaded.created) {
    log.info("Created the server identity {id} in {dir}", { id: loaded.identity.id, dir });
  }
  if (loaded.tightenedFrom !== undefined) {
    log.warn("The server key in {dir} was readable by others (mode {mode}); now 0600", {
      dir,
      mode: loaded.tightenedFrom.toString(8),
    });
  }
  return loaded.identity;
}

/** Opens the store, binds the sockets and starts serving. */
export async function startServer(
  config: ServerConfig,
  options: StartServerOptions = {},
): Promise<RunningServer> {
  // Before any file is touched: a runtime without UDP cannot serve at all.
  requireUdp();
  const startMs: Record<string, number> = {};
  const began = performance.now();
  let lapped = began;
  /** Ends a phase of the start. */
  const lap = (phase: string) => {
    const now = performance.now();
    startMs[phase] = Math.round(now - lapped);
    lapped = now;
  };
  const store = options.store ?? openStore(config.db);
  try {
    await store.migrate();
    lap("store");
  } catch (err) {
    await store.close().catch((closeErr) =>
      log.error("Cannot close the store: {error}", { error: String(closeErr) })
    );
    throw err;
  }
  let identity: Identity;
  let join: JoinPolicy;
  try {
    identity = options.identity ?? await serverIdentity(config.identity);
    join = new JoinPolicy(config.join, store, await readNetworkKey(config));
    await join.load();
    // Servers sharing a catalogue vouch for each other's fetchers: say who this one is.
    if (store.shared) await store.setDeviceStatus(identity.id, "index");
    lap("identity");
  } catch (err) {
    await store.close().catch((closeErr) =>
      log.error("Cannot close the store: {error}", { error: String(closeErr) })
    );
    throw err;
  }
  const serverId = crypto.getRandomValues(new Uint8Array(16)).toHex();
  // A session's lease outlives a few missed heartbeats; the ping timeout drops it sooner.
  const catalog = new Catalog(store, {
    serverId,
    leaseMs: config.pingTimeoutMs * 2,
    maxEntriesPerSession: config.maxEntriesPerSession,
  });
  const clockOffsetMs = await catalog.syncClock();
  lap("clock");
  if (Math.abs(clockOffsetMs) > CLOCK_WARNING_MS) {
    log.warn("This host's clock is {ms} ms off the database's; leases follow the database", {
      ms: Math.round(-clockOffsetMs),
    });
  }
  // Sessions in the database from before this start have no connection any more: offline
  // until their peers reconnect. A shared store keeps other servers' live sessions.
  const stale = await store.markOffline(
    store.shared ? { leaseEndedBeforeMs: catalog.now() } : {},
  );
  if (stale > 0) log.info("{n} session(s) from before the restart marked offline", { n: stale });
  lap("offline");
  const live = new Map<string, LiveSession>();
  const transport = config.insecurePlaintext
    ? { plaintext: true as const }
    : { plaintext: false as const, certPem: identity.certPem, keyPem: identity.keyPem };
  const listener = listenTransport({ hostname: config.host, port: config.port }, transport);
  const tcpPort = (listener.addr as Deno.NetAddr).port;
  let announcer: Announcer;
  try {
    announcer = startAnnouncer({
      port: config.announcePort,
      broadcast: config.broadcast,
      intervalMs: config.announceIntervalMs,
      tcpPort,
      identity,
      sessions: () => live.size,
    });
  } catch (err) {
    listener.close();
    await store.close();
    throw err;
  }

  const admission = new Admission(config);
  const refusals = new RefusalLog();
  let shuttingDown = false;
  /** Every accepted connection, registered or not, so that close() can end them all. */
  const connections = new Map<Deno.Conn, Promise<void>>();
  const accepting = acceptConnections(listener, { admission, refusals, serve, connections });
  lap("listen");
  startMs.total = Math.round(performance.now() - began);

  async function serve(accepted: Deno.Conn, admitted: Admitted): Promise<void> {
    if (config.insecurePlaintext) {
      try {
        (accepted as Deno.TcpConn).setNoDelay(true);
      } catch (err) {
        // Reset before we got to it: the session's first read ends it.
        log.debug("Cannot set TCP_NODELAY: {error}", { error: String(err) });
      }
    }
    const conn: TransportConn | undefined = await acceptedConn(
      accepted,
      config.insecurePlaintext,
      (problem) => log.warn("{problem}", { problem }),
    );
    if (conn === undefined) {
      admitted.release();
      return;
    }
    return await runSession(conn, {
      catalog,
      live,
      pingIntervalMs: config.pingIntervalMs,
      helloTimeoutMs: config.pingTimeoutMs,
      admitted,
      refusals,
      identity,
      join,
      closing: () => shuttingDown,
    });
  }

  const heartbeat = startHeartbeat({
    sessions: live,
    pingIntervalMs: config.pingIntervalMs,
    pingTimeoutMs: config.pingTimeoutMs,
    ping: pingSession,
    drop(session, silentMs) {
      log.warn("Dropping {host}: silent for {ms} ms", { host: session.row.hostname, ms: silentMs });
      session.rpc.close("ping timeout");
    },
    renewLeases,
  });

  /** Extends the leases of the sessions held; closes those taken over through another server. */
  function renewLeases(held: string[]): void {
    catalog.renewLeases(held).then((takenOver) => {
      for (const sessionId of takenOver) {
        const session = live.get(sessionId);
        if (!session) continue; // ended meanwhile
        live.delete(sessionId);
        log.info("{host} registered again through another server; closing this session", {
          host: session.row.hostname,
        });
        closeWithNotice(session, {
          code: "replaced",
          message: "Cannot keep this session: replaced through another server",
        }, "replaced through another server");
      }
    }).catch((err) => log.error("Cannot renew leases: {error}", { error: String(err) }));
  }

  const offlineKeepMs = options.offlineKeepMs ?? OFFLINE_KEEP_MS;
  const offlineSweep = setInterval(() => {
    store.dropOffline(catalog.now() - offlineKeepMs).then((n) => {
      if (n > 0) {
        log.info("{n} offline session(s) dropped: not back within {s} s", {
          n,
          s: offlineKeepMs / 1000,
        });
      }
    }).catch((err) => log.error("Cannot drop offline sessions: {error}", { error: String(err) }));
  }, Math.min(OFFLINE_SWEEP_MAX_MS, Math.max(1, offlineKeepMs / 2)));

  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      shuttingDown = true;
      heartbeat.stop();
      clearInterval(offlineSweep);
      listener.close();
      await announcer.close();
      // Goodbyes go out in parallel, and a peer that stopped reading is not waited for.
      const goodbyes = [...live.values()].map((session) =>
        session.rpc.notify(MsgType.Goodbye, { reason: "server shutting down" })
      );
      await settleWithin(Promise.allSettled(goodbyes), GOODBYE_MS);
      for (const session of live.values()) session.rpc.close("server shutting down");
      for (const conn of connections.keys()) {
        try {
          conn.close();
        } catch (err) {
          if (!(err instanceof Deno.errors.BadResource)) throw err;
        }
      }
      await accepting;
      await Promise.allSettled([...connections.values()]);
      // The peers' sessions stay in the catalogue, offline, as a crash would leave them: a
      // restarted server lists their files until they come back (and keeps them for a peer
      // whose published set is unchanged, see Store.registerSession()).
      try {
        const kept = await store.markOffline({ serverId });
        if (kept > 0) log.info("{n} session(s) kept in the catalogue, offline", { n: kept });
      } catch (err) {
        log.error("Cannot mark this server's sessions offline: {error}", { error: String(err) });
      }
      await store.close();
    })();

  log.info(
    "Index {id} listening on {host}:{tcp} ({tls}), discovery on UDP {udp}, join {mode}; started in {ms} ms ({phases})",
    {
      id: shortId(identity.id),
      host: config.host,
      tcp: tcpPort,
      tls: config.insecurePlaintext ? "plaintext, --insecure-plaintext" : "TLS",
      udp: announcer.port,
      mode: config.join,
      ms: startMs.total,
      phases: Object.entries(startMs).filter(([phase]) => phase !== "total")
        .map(([phase, ms]) => `${phase} ${ms}`).join(", "),
    },
  );
  return {
    tcpPort,
    udpPort: announcer.port,
    serverId,
    identity,
    catalog,
    live,
    join,
    startMs,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * Reads the network key of `--join key` (its bytes, whatever they are). Only the file name is
 * ever reported: the key itself goes straight into a secret key object that never prints it.
 */
async function readNetworkKey(config: ServerConfig): Promise<NetworkKey | undefined> {
  if (config.join !== "key" || config.networkKeyFile === undefined) return undefined;
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await Deno.readFile(config.networkKeyFile);
  } catch (err) {
    throw new Error(
      `Cannot read the network key file "${config.networkKeyFile}": ${(err as Error).name}`,
      { cause: err },
    );
  }
  if (bytes.length < 16) {
    throw new Error(
      `Cannot use the network key file "${config.networkKeyFile}": it holds ${bytes.length} bytes, at least 16 are needed`,
    );
  }
  return importNetworkKey(bytes);
}
