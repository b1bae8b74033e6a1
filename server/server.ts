// The index server: TCP listener, live-session registry, liveness pings, lease renewal and the
// discovery announcer. startServer() returns a handle; main.ts owns signals and exit codes.
import { logger } from "../shared/log.ts";
import { settleWithin } from "../shared/timeout.ts";
import { MsgType } from "../shared/protocol.ts";
import { type Announcer, startAnnouncer } from "./beacon.ts";
import { Catalog } from "./catalog.ts";
import { type LiveSession, runSession } from "./session.ts";
import type { ServerConfig } from "./config.ts";
import type { Store } from "./store.ts";
import { openStore } from "./open_store.ts";

const log = logger("server");

/** The ping interval is worked through in this many ticks, each taking its share of sessions. */
const HEARTBEAT_SLICES = 50;
/** Shortest tick, ms (short ping intervals in tests would otherwise tick every millisecond). */
const MIN_TICK_MS = 20;
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
  catalog: Catalog;
  /** Live sessions held by this process, by session id. */
  live: ReadonlyMap<string, LiveSession>;
  /** Stops accepting, says goodbye to every session, closes the store. */
  close(): Promise<void>;
}

/** Options beyond the config, for tests and embedding. */
export interface StartServerOptions {
  /** Store to use instead of opening `config.db`. */
  store?: Store;
}

/** Opens the store, binds the sockets and starts serving. */
export async function startServer(
  config: ServerConfig,
  options: StartServerOptions = {},
): Promise<RunningServer> {
  const store = options.store ?? openStore(config.db);
  await store.migrate();
  const serverId = [...crypto.getRandomValues(new Uint8Array(16))]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  // A session's lease outlives a few missed heartbeats; the ping timeout drops it sooner.
  const catalog = new Catalog(store, {
    serverId,
    leaseMs: config.pingTimeoutMs * 2,
    maxEntriesPerSession: config.maxEntriesPerSession,
  });
  const clockOffsetMs = await catalog.syncClock();
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
  const live = new Map<string, LiveSession>();
  const listener = Deno.listen({ hostname: config.host, port: config.port });
  const tcpPort = listener.addr.port;
  let announcer: Announcer;
  try {
    announcer = startAnnouncer({
      port: config.announcePort,
      broadcast: config.broadcast,
      intervalMs: config.announceIntervalMs,
      tcpPort,
      serverId,
      sessions: () => live.size,
    });
  } catch (err) {
    listener.close();
    await store.close();
    throw err;
  }

  /** Every accepted connection, registered or not, so that close() can end them all. */
  const connections = new Map<Deno.TcpConn, Promise<void>>();
  const accepting = (async () => {
    for await (const conn of listener) {
      conn.setNoDelay(true);
      const task = runSession(conn, {
        catalog,
        live,
        pingIntervalMs: config.pingIntervalMs,
        helloTimeoutMs: config.pingTimeoutMs,
      });
      connections.set(conn, task);
      void task.finally(() => connections.delete(conn));
    }
  })().catch((err) => {
    if (!(err instanceof Deno.errors.BadResource)) {
      log.error("Listener failed: {error}", { error: String(err) });
    }
  });

  // Liveness work is spread over the ping interval: every HEARTBEAT_SLICES-th of it, the next
  // share of the sessions is checked and pinged, so that 10,000 sessions cost a steady trickle
  // of pings rather than a burst every interval that would stall every lookup behind it.
  const tickMs = Math.max(MIN_TICK_MS, Math.floor(config.pingIntervalMs / HEARTBEAT_SLICES));
  let cycle: Iterator<LiveSession> = live.values();
  let lastTickMs = Date.now();
  /** No session is judged silent before this: the server itself was stalled until recently. */
  let graceUntilMs = 0;
  const heartbeat = setInterval(() => {
    const now = Date.now();
    // If this timer fired late, our own event loop was blocked (e.g. a long database write):
    // answers may be waiting unread in the sockets, so silence proves nothing until every
    // session had a full timeout of a running server to be heard.
    const lateMs = now - lastTickMs - tickMs;
    if (lateMs > Math.max(config.pingIntervalMs, 1000)) {
      graceUntilMs = now + config.pingTimeoutMs;
      log.warn("Server was stalled for {ms} ms; not dropping silent sessions until it recovers", {
        ms: lateMs,
      });
    }
    lastTickMs = now;
    // Each session comes up about once per interval: a share of them per tick (rounded up).
    let share = Math.ceil(live.size * tickMs / config.pingIntervalMs);
    while (share-- > 0) {
      let next = cycle.next();
      if (next.done) {
        // A full round is over: renew the leases of every session held (one store call).
        renewLeases();
        cycle = live.values();
        next = cycle.next();
        if (next.done) break;
      }
      checkLiveness(next.value, now);
    }
    if (live.size === 0) renewLeases();
  }, tickMs);

  /** Drops a silent session, or pings a quiet one. */
  function checkLiveness(session: LiveSession, now: number): void {
    const rpc = session.rpc;
    // Silent means: a ping reached the socket and nothing came back within the timeout, or a
    // ping has been stuck in our own write queue for far longer (the peer stopped reading).
    const unanswered = rpc.lastPingWrittenMs > rpc.lastHeardMs &&
      now - rpc.lastPingWrittenMs > config.pingTimeoutMs;
    const stuck = rpc.pingQueuedMs > 0 && now - rpc.pingQueuedMs > 4 * config.pingTimeoutMs;
    if ((unanswered || stuck) && now >= graceUntilMs) {
      log.warn("Dropping {host}: silent for {ms} ms", {
        host: session.row.hostname,
        ms: now - rpc.lastHeardMs,
      });
      rpc.close("ping timeout");
      return;
    }
    // A peer heard from within the interval is alive: no ping (fewer writes at scale); and
    // no second ping while one is queued or unanswered (its write time is the clock).
    if (
      now - rpc.lastHeardMs < config.pingIntervalMs || rpc.pingQueuedMs > 0 ||
      rpc.lastPingWrittenMs > rpc.lastHeardMs
    ) return;
    rpc.ping(now);
  }

  let lastRenewalMs = 0;
  /** Extends the leases of the sessions held, at most twice per ping interval. */
  function renewLeases(): void {
    const now = Date.now();
    if (now - lastRenewalMs < config.pingIntervalMs / 2) return;
    lastRenewalMs = now;
    const held = [...live.keys()];
    catalog.renewLeases(held).then((takenOver) => {
      for (const sessionId of takenOver) {
        const session = live.get(sessionId);
        if (!session) continue; // ended meanwhile
        live.delete(sessionId);
        log.info("{host} registered again through another server; closing this session", {
          host: session.row.hostname,
        });
        void session.rpc.framed.send({
          type: MsgType.Error,
          requestId: 0,
          reply: false,
          body: {
            code: "replaced",
            message: "Cannot keep this session: replaced through another server",
          },
        }).catch(() => {}).finally(() => session.rpc.close("replaced through another server"));
      }
    }).catch((err) => log.error("Cannot renew leases: {error}", { error: String(err) }));
  }

  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      clearInterval(heartbeat);
      listener.close();
      await announcer.close();
      // Goodbyes go out in parallel, and a peer that stopped reading is not waited for.
      const goodbyes = [...live.values()].map((session) =>
        session.rpc.notify(MsgType.Goodbye, { reason: "server shutting down" }).catch(() => {})
      );
      await settleWithin(Promise.all(goodbyes), 1000);
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
      await store.close();
    })();

  log.info("Index listening on {host}:{tcp}, discovery on UDP {udp}", {
    host: config.host,
    tcp: tcpPort,
    udp: announcer.port,
  });
  return {
    tcpPort,
    udpPort: announcer.port,
    serverId,
    catalog,
    live,
    close,
    [Symbol.asyncDispose]: close,
  };
}
