// One peer's TCP connection to the index: Hello first, then catalogue requests, until the peer
// leaves or is dropped. Owns its failures: a bad frame ends this session only. A session is in
// `live` and in the catalogue only while its connection is open (or, at shutdown, kept offline).
import type { TransportConn } from "../shared/transport.ts";
import { ProtocolError } from "../shared/errors.ts";
import { FramedConn } from "../shared/framing.ts";
import { logger } from "../shared/log.ts";
import { settleWithin } from "../shared/timeout.ts";
import {
  DEFAULT_LIMITS,
  type Message,
  MSG_TYPE_NAMES,
  MsgType,
  PROTOCOL_VERSION,
  type SourceInfo,
  type Ticket,
} from "../shared/protocol.ts";
import { issueTicket, TICKET_LIFETIME_MS } from "../shared/ticket.ts";
import { type HandlerResult, RequestError, RpcConn } from "../shared/rpc.ts";
import type { Admitted } from "./admission.ts";
import type { Catalog } from "./catalog.ts";
import { newChallenge } from "../shared/handshake.ts";
import { type Identity, shortId } from "../shared/identity.ts";
import type { JoinPolicy } from "./join_policy.ts";
import { Liveness } from "./liveness.ts";
import type { RefusalLog } from "./refusal_log.ts";
import { ConflictError, type SessionRow } from "./store.ts";

const log = logger("server", "session");

/** How long a closing session gets to receive the notice that says why, ms. */
const CLOSE_NOTICE_MS = 1000;

/**
 * Largest frame body accepted before the connection has registered. A Hello is under 2 KiB
 * (a hostname of 253 bytes, even written as JSON escapes), and what a peer may pipeline behind
 * it (Publish, WhoHas, Search) under 10 KiB; the full limit (a peer's Shares list can run to
 * megabytes) only for a registered session, so that connections that never register hold
 * little memory each.
 */
export const MAX_UNREGISTERED_BODY_BYTES = 16 * 1024;

/** A registered, connected peer. */
export interface LiveSession {
  row: SessionRow;
  rpc: RpcConn;
  liveness: Liveness;
  /** The last ticket signed for this session's device (reused while it has long to run). */
  ticket?: Ticket;
}

/** What a session needs from the server around it. */
export interface SessionContext {
  catalog: Catalog;
  /** Live sessions of this server, by session id. */
  live: Map<string, LiveSession>;
  /** Interval the peer should expect pings at, ms. */
  pingIntervalMs: number;
  /** A connection that has not said Hello after this long is closed, ms. */
  helloTimeoutMs: number;
  /** This connection's hold on the server's connection and session caps. */
  admitted: Admitted;
  /** Where refusals over a cap are logged. */
  refusals: RefusalLog;
  /** This server's device identity: its ID is in every Challenge. */
  identity: Identity;
  /** Who may join. */
  join: JoinPolicy;
  /**
   * true once the server is shutting down: a session ending then keeps its catalogue rows, for
   * the server to mark offline (as a restart after a crash would find them).
   */
  closing(): boolean;
}

/** Pings a session for liveness, and records when the ping was queued and written. */
export function pingSession(session: LiveSession, nowMs: number): void {
  session.liveness.pingQueued(nowMs);
  session.rpc.post(
    MsgType.Ping,
    { sentAtMs: nowMs },
    () => session.liveness.pingWritten(nowMs, Date.now()),
  );
}

/**
 * Tells a session's peer why its session ends (an `Error` with `requestId` 0), then closes the
 * connection: once the notice is written, or after CLOSE_NOTICE_MS if the peer stopped reading.
 */
export function closeWithNotice(
  session: LiveSession,
  notice: { code: "replaced" | "revoked"; message: string },
  reason: string,
): void {
  const told = session.rpc.notify(MsgType.Error, notice);
  void settleWithin(told, CLOSE_NOTICE_MS).then(() => session.rpc.close(reason));
}

/** Runs one connection to completion. Never throws: failures are logged with the peer address. */
export async function runSession(conn: TransportConn, ctx: SessionContext): Promise<void> {
  const remote = conn.remoteAddr;
  const label = `${remote.hostname}:${remote.port}`;
  let session: LiveSession | undefined;
  /** The Hello being handled: requests pipelined behind it wait for it. */
  let registering: Promise<unknown> | undefined;
  const liveness = new Liveness(Date.now());
  /** The nonce this connection's Hello must sign, sent before anything else. */
  const challenge = newChallenge(ctx.identity.id);
  const framed = new FramedConn(conn, {
    // Index messages are small and sessions many (10,000 × this buffer): a small read
    // buffer per session. (Holding replies back to write a whole turn's worth at once was
    // tried: the timer it takes halved the lookup rate.)
    readChunkBytes: 2 * 1024,
    limits: { ...DEFAULT_LIMITS, maxBodyBytes: MAX_UNREGISTERED_BODY_BYTES },
  });
  const rpc: RpcConn = new RpcConn(
    framed,
    (message) => handle(message),
    {
      label,
      // The embedded store applies every change in call order before its first await, so
      // requests can be handled while earlier ones wait for their commit.
      concurrent: !ctx.catalog.store.shared,
      onReceive: () => liveness.heard(Date.now()),
    },
  );

  async function register(message: Message): Promise<HandlerResult> {
    if (message.type !== MsgType.Hello) throw new Error("register() takes a Hello");
    if (message.body.protocol !== PROTOCOL_VERSION) {
      throw new ProtocolError(
        "bad-version",
        `Cannot register: protocol ${message.body.protocol}, this server speaks ${PROTOCOL_VERSION}: upgrade the peer`,
      );
    }
    const hello = message.body;
    await ctx.join.check(hello, challenge.nonce, ctx.identity.id, remote.hostname);
    const refusal = ctx.admitted.register();
    if (refusal) {
      ctx.refusals.refused(refusal, remote.hostname);
      throw new ProtocolError("busy", refusal.message);
    }
    let registered;
    try {
      registered = await ctx.catalog.register({
        sessionId: crypto.randomUUID(),
        hostname: hello.hostname,
        address: remote.hostname,
        port: hello.p2pPort,
        deviceId: hello.id,
        cert: hello.cert,
      }, hello.sharesDigest);
    } catch (err) {
      ctx.admitted.unregister();
      if (err instanceof ConflictError) {
        log.warn("Refused {id} from {label} as {host}:{port}: held by device {owner}", {
          id: shortId(hello.id),
          label,
          host: hello.hostname,
          port: hello.p2pPort,
          owner: shortId(err.owner.deviceId ?? ""),
        });
        throw new ProtocolError(
          "conflict",
          `Cannot register as ${hello.hostname}:${hello.p2pPort}: held by device ${
            shortId(err.owner.deviceId ?? "")
          }; choose another --hostname or stop that peer`,
        );
      }
      throw err;
    }
    const { row, replaced, kept } = registered;
    // One signature per registration (and per refresh below): never one per lookup.
    const ticket = await issueTicket(ctx.identity, hello.id, Date.now());
    // Even if the connection ended meanwhile: runSession() cleans up once run() has settled,
    // which it does only after this handler.
    session = { row, rpc, liveness, ticket };
    if (replaced) closeReplaced(replaced.sessionId, row);
    ctx.live.set(row.sessionId, session);
    framed.setMaxBodyBytes(DEFAULT_LIMITS.maxBodyBytes);
    log.info("Registered {host} (P2P port {port}, device {id}) from {label}{kept}", {
      host: row.hostname,
      port: row.port,
      id: shortId(hello.id),
      label,
      kept: kept ? ", its entries kept" : "",
    });
    return {
      type: MsgType.Welcome,
      body: {
        serverId: ctx.catalog.serverId,
        sessionId: row.sessionId,
        pingIntervalMs: ctx.pingIntervalMs,
        ticket,
        indexIds: await ctx.join.indexIds(ctx.identity.id),
        // Only when true: an old peer's Welcome is unchanged.
        ...(kept ? { kept } : {}),
      },
    };
  }

  /** Tells the connection of a session this one replaced why it ends, then closes it. */
  function closeReplaced(replacedId: string, row: SessionRow): void {
    const old = ctx.live.get(replacedId);
    if (!old) return;
    ctx.live.delete(replacedId);
    log.info("Session of {host}:{port} replaced by a new one from {label}", {
      host: row.hostname,
      port: row.port,
      label,
    });
    closeWithNotice(old, {
      code: "replaced",
      message: `Cannot keep this session: replaced by a new one from ${label}`,
    }, "replaced by a new session");
  }

  /**
   * The session's ticket, signed anew only when less than half its life is left: a peer that
   * asks in a loop costs no signatures.
   */
  async function freshTicket(live: LiveSession): Promise<Ticket> {
    const now = Date.now();
    if (live.ticket && live.ticket.expiresAtMs - now > TICKET_LIFETIME_MS / 2) return live.ticket;
    live.ticket = await issueTicket(ctx.identity, live.row.deviceId ?? "", now);
    return live.ticket;
  }

  /** Answers a who-has at once when the store can (in memory); everything else in handleAsync(). */
  function handle(message: Message): HandlerResult | Promise<HandlerResult> {
    if (session === undefined || message.type !== MsgType.WhoHas) return handleAsync(message);
    const { fname } = message.body;
    const answer = (sources: SourceInfo[]): HandlerResult => ({
      type: MsgType.Sources,
      body: { fname, sources },
    });
    const sources = ctx.catalog.whoHas(fname, session.row.sessionId);
    return sources instanceof Promise ? sources.then(answer) : answer(sources);
  }

  async function handleAsync(message: Message): Promise<HandlerResult> {
    if (session === undefined && registering === undefined) {
      if (message.type !== MsgType.Hello) {
        throw new ProtocolError(
          "not-registered",
          `Cannot handle ${MSG_TYPE_NAMES.get(message.type)}: send Hello first`,
        );
      }
      const registered = register(message);
      registering = registered.catch(() => {});
      try {
        return await registered;
      } finally {
        registering = undefined;
      }
    }
    if (session === undefined) await registering;
    if (session === undefined) {
      throw new RequestError("not-registered", "Cannot handle the request: Hello failed");
    }
    const sessionId = session.row.sessionId;
    switch (message.type) {
      case MsgType.Hello:
        throw new RequestError("already-registered", "Cannot register: this session already is");
      case MsgType.Publish:
        return {
          type: MsgType.Published,
          body: await ctx.catalog.publish(session.row, message.body),
        };
      case MsgType.Unpublish: {
        const removed = await ctx.catalog.unpublish(sessionId, message.body.fname);
        return { type: MsgType.Ok, body: { removed } };
      }
      case MsgType.WhoHas: // pipelined behind a Hello: once registered, answered as usual
        return await handle(message);
      case MsgType.Search: {
        const { pattern, offset, limit } = message.body;
        const page = await ctx.catalog.search(pattern, { offset, limit });
        return { type: MsgType.SearchResult, body: page };
      }
      case MsgType.GetTicket:
        return { type: MsgType.Ticket, body: { ticket: await freshTicket(session) } };
      case MsgType.Ping: // only the known field: a Ping may carry any unknown ones
        return { type: MsgType.Pong, body: { sentAtMs: message.body.sentAtMs } };
      case MsgType.Goodbye:
        log.info("{host} said goodbye: {reason}", {
          host: session.row.hostname,
          reason: message.body.reason,
        });
        rpc.close("goodbye");
        return undefined;
      case MsgType.Error:
        log.warn("{label} reported: {code} {message}", { label, ...message.body });
        return undefined;
      default:
        throw new ProtocolError(
          "unexpected",
          `Cannot handle ${MSG_TYPE_NAMES.get(message.type)} on an index session`,
        );
    }
  }

  void rpc.notify(MsgType.Challenge, challenge).catch((err) =>
    log.debug("Cannot send the challenge to {label}: {error}", { label, error: String(err) })
  );
  const helloTimer = setTimeout(() => {
    if (session === undefined) {
      log.warn("Closing {label}: no Hello within {ms} ms", { label, ms: ctx.helloTimeoutMs });
      rpc.close("no Hello in time");
    }
  }, ctx.helloTimeoutMs);
  try {
    await rpc.run();
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    log.warn("Session from {label} ended: {reason}", { label, reason });
  } finally {
    clearTimeout(helloTimer);
    rpc.close();
    ctx.admitted.release();

    // Not ours any more when a newer session replaced it (the catalogue already dropped it).
    const ended = session && ctx.live.get(session.row.sessionId) === session ? session : undefined;
    if (ended) ctx.live.delete(ended.row.sessionId);
    if (ended && ctx.closing()) {
      log.debug("{host} (P2P port {port}) kept in the catalogue for the restart", {
        host: ended.row.hostname,
        port: ended.row.port,
      });
    } else if (ended) {
      try {
        await ctx.catalog.unregister(ended.row.sessionId);
      } catch (err) {
        log.error("Cannot remove session of {host} from the index: {error}", {
          host: ended.row.hostname,
          error: String(err),
        });
      }
      log.info("{host} (P2P port {port}, device {id}) left", {
        id: ended.row.deviceId ? shortId(ended.row.deviceId) : "unnamed",
        host: ended.row.hostname,
        port: ended.row.port,
      });
    }
  }
}
