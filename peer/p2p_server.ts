// The peer's P2P listener: serves byte ranges of the files this peer shares, to many fetchers at
// once, within k session slots. Files are found by fname in the share table, never by a path
// from the other side, and opened without following symlinks (Repository.openShared); error
// texts sent back name files relative to the repository, never by their absolute path.
import { encodeMessage, reply, request } from "../shared/encode.ts";
import { newChallenge } from "../shared/handshake.ts";
import { fetcherRefusal, type P2pAuth } from "./fetcher_check.ts";
import { ProtocolError } from "../shared/errors.ts";
import { FramedConn } from "../shared/framing.ts";
import { logger } from "../shared/log.ts";
import {
  DEFAULT_LIMITS,
  type ErrorCode,
  type Limits,
  type Message,
  type MessageOf,
  MSG_TYPE_NAMES,
  MsgType,
} from "../shared/protocol.ts";
import { pieceCount } from "../shared/pieces.ts";
import { acceptedConn, listenTransport, type TransportMode } from "../shared/transport.ts";
import { ConnectionCaps, type ConnectionCapsOptions } from "./connection_caps.ts";
import type { TokenBucket } from "./rate.ts";
import { PathError, type Repository } from "./repo.ts";
import { type Share, shareEntry, type Shares } from "./shares.ts";
import type { SlotLease, Slots } from "./slots.ts";
import type { Activity } from "./activity.ts";

const log = logger("peer", "p2p");

/** What the P2P server needs. */
export interface P2pContext {
  repo: Repository;
  shares: Shares;
  slots: Slots;
  upload: TokenBucket;
  activity: Activity;
  /** Connections held at once, in total and per remote address. */
  caps: ConnectionCapsOptions;
  /** A connection idle this long between requests is closed, ms. */
  idleTimeoutMs: number;
  /**
   * An upload whose socket takes no bytes for this long (a fetcher that stopped reading) is
   * closed and its slot released, ms.
   */
  stallTimeoutMs: number;
  /** ms a BUSY answer suggests waiting before retrying. */
  retryAfterMs: number;
  /** TEST ONLY: flip a byte in every chunk served. */
  debugCorrupt: boolean;
  /**
   * How fetchers are authenticated (Challenge, then a proof and a ticket in GetInfo). Every
   * peer has it; only tests of the transfer layer alone run without.
   */
  auth?: P2pAuth;
}

/**
 * Limits on what fetchers send: only GetInfo, GetRange, Ping and Goodbye, each well under 2
 * KiB, so a frame announcing more is refused before any of its body is buffered.
 */
const REQUEST_LIMITS: Limits = { ...DEFAULT_LIMITS, maxBodyBytes: 16 * 1024 };

/** A running P2P listener. */
export interface P2pServer extends AsyncDisposable {
  port: number;
  close(): Promise<void>;
}

/**
 * Binds the P2P port and serves until closed: over TLS with this peer's certificate (which
 * fetchers pin, having it from the index), or in plaintext with --insecure-plaintext.
 */
export function startP2pServer(
  listenOn: { hostname: string; port: number },
  ctx: P2pContext,
  transport: TransportMode,
): P2pServer {
  const listener = listenTransport(listenOn, transport);
  const connections = new Set<FramedConn>();
  /** Accepted connections still in their TLS handshake, for close() to end them. */
  const handshaking = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  const caps = new ConnectionCaps(ctx.caps);
  let lastRefusalLogMs = 0;
  const accepting = (async () => {
    for await (const conn of listener) {
      const remote = conn.remoteAddr as Deno.NetAddr;
      const admitted = caps.admit(remote.hostname);
      if (typeof admitted === "string") {
        // Closed unread: a flood of refused connections must cost nothing but this.
        conn.close();
        if (Date.now() - lastRefusalLogMs >= 1000) {
          lastRefusalLogMs = Date.now();
          log.warn("{reason}; closed", { reason: admitted });
        }
        continue;
      }
      if (transport.plaintext) (conn as Deno.TcpConn).setNoDelay(true);
      handshaking.add(conn);
      // The handshake runs in the connection's own task: a slow one never holds the loop.
      const task = acceptedConn(conn, transport.plaintext, (problem) => {
        log.warn("P2P connection: {problem}", { problem });
      }).then(async (ready) => {
        handshaking.delete(conn);
        if (ready === undefined) return;
        const framed = new FramedConn(ready, { limits: REQUEST_LIMITS });
        connections.add(framed);
        try {
          await serveConnection(framed, remote, ctx);
        } finally {
          connections.delete(framed);
          framed.close();
        }
      }).finally(admitted);
      tasks.add(task);
      void task.finally(() => tasks.delete(task));
    }
  })().catch((err) => {
    if (!(err instanceof Deno.errors.BadResource)) {
      log.error("P2P listener failed: {error}", { error: String(err) });
    }
  });
  const close = async () => {
    listener.close();
    for (const framed of connections) framed.close();
    for (const conn of handshaking) {
      try {
        conn.close();
      } catch (err) {
        if (!(err instanceof Deno.errors.BadResource)) throw err;
      }
    }
    await accepting;
    await Promise.allSettled([...tasks]);
  };
  return {
    port: (listener.addr as Deno.NetAddr).port,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Reads the next message, closing the connection if none comes within `timeoutMs`. */
async function readWithin(framed: FramedConn, timeoutMs: number): Promise<Message | null> {
  const timer = setTimeout(() => framed.close(), timeoutMs);
  try {
    return await framed.readMessage();
  } finally {
    clearTimeout(timer);
  }
}

async function sendError(framed: FramedConn, requestId: number, code: ErrorCode, message: string) {
  await framed.send(reply(MsgType.Error, requestId, { code, message })).catch(() => {});
}

async function serveConnection(
  framed: FramedConn,
  remote: Deno.NetAddr,
  ctx: P2pContext,
): Promise<void> {
  const label = `${remote.hostname}:${remote.port}`;
  let lease: SlotLease | undefined;
  const abort = new AbortController();
  const challenge = ctx.auth ? newChallenge(ctx.auth.identity.id) : undefined;
  try {
    if (challenge) framed.post(request(MsgType.Challenge, 0, challenge));
    const first = await readWithin(framed, ctx.idleTimeoutMs);
    if (first === null) return; // a connect-only probe (e.g. the index's ping)
    if (first.type !== MsgType.GetInfo) {
      throw new ProtocolError(
        "unexpected",
        `Cannot serve: first request must be GetInfo, got ${MSG_TYPE_NAMES.get(first.type)}`,
      );
    }
    if (ctx.auth && challenge) {
      const refusal = await fetcherRefusal(first.body, challenge.nonce, ctx.auth, Date.now());
      if (refusal) {
        throw new ProtocolError(refusal.code, `Cannot serve ${label}: ${refusal.problem}`);
      }
    }
    // Slots are counted per remote address: `from` is the fetcher's own claim, so it is only
    // shown (a fetcher could otherwise take every slot under made-up names).
    const slot = await takeSlot(framed, first, remote.hostname, ctx, abort.signal);
    if (!slot) return;
    lease = slot.lease;
    const shown = first.body.from === undefined ? label : `${first.body.from} (${label})`;
    const upload = ctx.activity.startUpload(shown, first.body.fname);
    try {
      await serveRequests(framed, first, slot.nextMessage, ctx, upload);
    } finally {
      ctx.activity.endUpload(upload);
    }
  } catch (err) {
    if (err instanceof ProtocolError) {
      log.warn("Bad request from {label}: {error}", { label, error: err.message });
      await sendError(framed, 0, err.code, err.message);
    } else if (!isDisconnect(err)) {
      log.error("Serving {label} failed: {error}", { label, error: String(err) });
    }
  } finally {
    abort.abort();
    lease?.release();
  }
}

function isDisconnect(err: unknown): boolean {
  return err instanceof Deno.errors.BrokenPipe || err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted;
}

/**
 * A slot now, a place in the queue (with position updates), or BUSY (undefined). A queued
 * request also watches the socket, so a fetcher that gives up frees its place; that read is
 * handed on as `nextMessage`.
 */
async function takeSlot(
  framed: FramedConn,
  first: MessageOf<MsgType.GetInfo>,
  key: string,
  ctx: P2pContext,
  signal: AbortSignal,
): Promise<{ lease: SlotLease; nextMessage?: Promise<Message | null> } | undefined> {
  const now = ctx.slots.tryAcquire(key);
  if (now) return { lease: now };
  const sendPosition = (position: number) =>
    void framed.send(reply(MsgType.Queued, first.requestId, { position })).catch(() => {});
  const queued = ctx.slots.enqueue(key, sendPosition, signal);
  if (!queued) {
    await framed.send(reply(MsgType.Busy, first.requestId, {
      retryAfterMs: ctx.retryAfterMs,
      message: `Cannot serve now: all ${ctx.slots.active} transfer slots are busy`,
    })).catch(() => {});
    return undefined;
  }
  sendPosition(queued.position);
  const nextMessage = framed.readMessage();
  const gaveUp = nextMessage.then(() => undefined, () => undefined);
  const lease = await Promise.race([queued.lease, gaveUp]);
  if (lease === undefined) {
    queued.lease.then((l) => l.release(), () => {});
    return undefined;
  }
  return { lease, nextMessage };
}

async function serveRequests(
  framed: FramedConn,
  first: MessageOf<MsgType.GetInfo>,
  pendingRead: Promise<Message | null> | undefined,
  ctx: P2pContext,
  upload: { bytes: number },
): Promise<void> {
  const files = new Map<string, Deno.FsFile>();
  // One read buffer per connection, reused for every range: a fresh 1 MiB per request made
  // a seeder with 16 downloads hold ~230 MiB of garbage between collections.
  let buffer: Uint8Array | undefined;
  // Only transfer requests count as activity: a session that only pings would otherwise hold
  // its slot for ever.
  let idleSince = performance.now();
  try {
    let message: Message | null = first;
    while (message !== null) {
      if (message.type !== MsgType.Ping) idleSince = performance.now();
      switch (message.type) {
        case MsgType.GetInfo: {
          // An Info holds up to ~350 KB of hashes: a fetcher that asks again and again without
          // reading fills the socket, and the send must not wait on it for ever either.
          using _stall = watchWrites(framed, ctx.stallTimeoutMs);
          const served = await findServable(ctx, message.body, files);
          if (typeof served === "string") {
            await sendError(framed, message.requestId, "not-found", served);
            break;
          }
          const { share } = served;
          await framed.send(reply(MsgType.Info, message.requestId, {
            ...shareEntry(share),
            pieceHashes: share.hashes.pieceHashes.toBase64(),
          }));
          break;
        }
        case MsgType.GetRange:
          buffer ??= new Uint8Array(ctx.upload.chunkBytes);
          await serveRange(framed, message, ctx, { files, buffer }, upload);
          break;
        case MsgType.Ping: {
          using _stall = watchWrites(framed, ctx.stallTimeoutMs);
          await framed.send(reply(MsgType.Pong, message.requestId, message.body));
          break;
        }
        case MsgType.Goodbye:
          return;
        default:
          throw new ProtocolError(
            "unexpected",
            `Cannot serve: ${MSG_TYPE_NAMES.get(message.type)} is not a transfer request`,
          );
      }
      const idleLeftMs = Math.max(0, ctx.idleTimeoutMs - (performance.now() - idleSince));
      message = pendingRead ? await pendingRead : await readWithin(framed, idleLeftMs);
      pendingRead = undefined;
    }
  } finally {
    for (const file of files.values()) file.close();
  }
}

function findShare(ctx: P2pContext, fname: string, rootHash: string | undefined): Share | string {
  const share = ctx.shares.get(fname);
  if (!share) return `Cannot serve "${fname}": not shared here`;
  if (rootHash !== undefined && share.hashes.rootHash !== rootHash) {
    return `Cannot serve "${fname}": content ${rootHash.slice(0, 12)} is not shared here (have ${
      share.hashes.rootHash.slice(0, 12)
    })`;
  }
  return share;
}

/** The share of a request and its checked open file, or the error message for the fetcher. */
async function findServable(
  ctx: P2pContext,
  request: { fname: string; rootHash?: string | undefined },
  files: Map<string, Deno.FsFile>,
): Promise<{ share: Share; file: Deno.FsFile } | string> {
  const share = findShare(ctx, request.fname, request.rootHash);
  if (typeof share === "string") return share;
  const file = await openChecked(ctx, share, files);
  return typeof file === "string" ? file : { share, file };
}

/**
 * The open file of a share, opened once per connection, after checking it is still what the
 * share advertises. A complete file whose size or mtime moved has other bytes than its hashes
 * say: it is refused (a fetcher would call this source corrupt) and hashed again, and the new
 * hashes are published under every name of that path (Shares.refresh).
 *
 * @returns the file, or the error message for the fetcher (no absolute path in it)
 */
async function openChecked(
  ctx: P2pContext,
  share: Share,
  files: Map<string, Deno.FsFile>,
): Promise<Deno.FsFile | string> {
  const key = `${share.fname}\0${share.hashes.rootHash}\0${share.path}`;
  let file = files.get(key);
  if (!file) {
    try {
      file = await ctx.repo.openShared(share.path, { partial: share.have !== undefined });
    } catch (err) {
      log.warn("Cannot serve {fname} from {path}: {error}", {
        fname: share.fname,
        path: share.path,
        error: String(err),
      });
      const detail = err instanceof PathError ? err.message : "the file is no longer available";
      return `Cannot serve "${share.fname}": ${detail}`;
    }
    files.set(key, file);
  }
  if (share.have) return file; // a download in progress: its bytes are checked piece by piece
  const info = file.statSync();
  if (info.size !== share.hashes.size || (info.mtime?.getTime() ?? 0) !== share.hashes.mtimeMs) {
    files.delete(key);
    file.close();
    ctx.shares.refresh(share.path);
    return `Cannot serve "${share.fname}": the file changed since it was published; ` +
      `it is being hashed again`;
  }
  return file;
}

async function serveRange(
  framed: FramedConn,
  message: MessageOf<MsgType.GetRange>,
  ctx: P2pContext,
  io: { files: Map<string, Deno.FsFile>; buffer: Uint8Array },
  upload: { bytes: number },
): Promise<void> {
  const { files, buffer } = io;
  const { fname, rootHash, offset, bytes } = message.body;
  const share = findShare(ctx, fname, rootHash);
  if (typeof share === "string") return sendError(framed, message.requestId, "not-found", share);
  const size = share.hashes.size;
  if (offset + bytes > size || bytes === 0 || bytes > DEFAULT_LIMITS.maxDataBytes) {
    return sendError(
      framed,
      message.requestId,
      "bad-range",
      `Cannot serve bytes ${offset}+${bytes} of a ${size}-byte file`,
    );
  }
  if (share.have && !rangeHeld(share, offset, bytes)) {
    return sendError(
      framed,
      message.requestId,
      "bad-range",
      `Cannot serve bytes ${offset}+${bytes}: not downloaded yet`,
    );
  }
  const file = await openChecked(ctx, share, files);
  if (typeof file === "string") return sendError(framed, message.requestId, "not-found", file);
  const source = file;
  using watchdog = watchWrites(framed, ctx.stallTimeoutMs);
  await framed.exclusiveWrite(async (write) => {
    await write(encodeMessage(reply(MsgType.Data, message.requestId, { offset, bytes })));
    watchdog.progress();
    source.seekSync(offset, Deno.SeekMode.Start);
    let sent = 0;
    while (sent < bytes) {
      const want = Math.min(buffer.length, bytes - sent);
      // Synchronous file reads: no thread-pool hop per chunk (measured fastest on Deno).
      const n = source.readSync(buffer.subarray(0, want));
      if (n === null || n === 0) {
        // The file shrank under us; the promised byte count cannot be kept, so the
        // connection must end (the fetcher sees a truncated payload and retries elsewhere).
        framed.close();
        throw new Error(`"${fname}" shrank while being served`);
      }
      if (ctx.debugCorrupt) buffer[0] = buffer[0]! ^ 0xff;
      const wait = ctx.upload.take(n);
      if (wait) {
        watchdog.pause();
        await wait;
        watchdog.progress();
      }
      await write(buffer.subarray(0, n));
      watchdog.progress();
      sent += n;
      upload.bytes += n;
    }
  });
}

/**
 * Closes `framed` when its writes make no progress for `timeoutMs` (the fetcher stopped
 * reading, so the socket buffer stays full and the write never returns); the serving task then
 * fails and its slot is released. Time spent waiting for the upload rate limit is not a stall.
 * One timer per range, re-armed lazily: each write only notes the time.
 */
function watchWrites(framed: FramedConn, timeoutMs: number) {
  let lastProgressAt = performance.now();
  let paused = false;
  let timer: ReturnType<typeof setTimeout>;
  const check = () => {
    const idleMs = paused ? 0 : performance.now() - lastProgressAt;
    if (idleMs < timeoutMs) {
      timer = setTimeout(check, timeoutMs - idleMs);
      return;
    }
    log.warn("Closing an upload that took no bytes for {ms} ms", { ms: timeoutMs });
    framed.close();
  };
  timer = setTimeout(check, timeoutMs);
  return {
    progress() {
      paused = false;
      lastProgressAt = performance.now();
    },
    pause() {
      paused = true;
    },
    [Symbol.dispose]() {
      clearTimeout(timer);
    },
  };
}

function rangeHeld(share: Share, offset: number, bytes: number): boolean {
  const pieceSize = share.hashes.pieceSize;
  const last = Math.min(
    pieceCount(share.hashes.size, pieceSize),
    Math.ceil((offset + bytes) / pieceSize),
  );
  for (let i = Math.floor(offset / pieceSize); i < last; i++) if (!share.have!.has(i)) return false;
  return true;
}
