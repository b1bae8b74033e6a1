// One fetch's connection to one source: GetInfo (waiting in the source's queue if told to),
// then pipelined GetRange requests for the pieces the scheduler assigns, each piece handed to
// the fetch to be verified against its hash and written.
import { connectTo, type TransportConn } from "../shared/transport.ts";
import { pinCertOfId } from "../shared/pin_cert.ts";
import { Bitfield } from "../shared/bitfield.ts";
import { request } from "../shared/encode.ts";
import { ProtocolError } from "../shared/errors.ts";
import { FramedConn } from "../shared/framing.ts";
import {
  type Bodies,
  type Message,
  type MessageOf,
  MSG_TYPE_NAMES,
  MsgType,
  type SourceInfo,
  type Ticket,
} from "../shared/protocol.ts";
import { readChallenge } from "../shared/handshake.ts";
import { type Identity, shortId, sign } from "../shared/identity.ts";
import { fetchStatement } from "../shared/statements.ts";
import { pieceLength, pieceSizeFor } from "../shared/pieces.ts";
import { settleWithin } from "../shared/timeout.ts";

/**
 * Requests kept in flight per complete source, so it never idles between pieces. A partial
 * source gets one at a time: a piece it just verified should not wait behind several others
 * on its (shared) uplink before reaching us.
 */
export const PIPELINE_DEPTH = 2;

/**
 * Piece buffers per connection: one being read from the socket while the others wait to be
 * verified and written, which happens on a writer thread for large files.
 */
const PIECE_BUFFERS = 4;

/** ms between two GetInfo refreshes of an idle partial source's have bitfield. */
const PARTIAL_REFRESH_MS = 500;

/** Why a source stopped being used. */
export class SourceError extends Error {
  /** busy: come back later; bad: sent corrupt data, never again; gone: unreachable or failed. */
  readonly kind: "busy" | "bad" | "gone";
  /** For busy: how long the source asked us to stay away, ms (its Busy frame's retryAfterMs). */
  readonly retryAfterMs: number | undefined;

  /**
   * @param kind how the fetch should treat the source
   * @param message "Cannot x: detail"
   * @param retryAfterMs for busy, the wait the source asked for
   */
  constructor(kind: "busy" | "bad" | "gone", message: string, retryAfterMs?: number) {
    super(message);
    this.name = "SourceError";
    this.kind = kind;
    this.retryAfterMs = retryAfterMs;
  }
}

/** Identity of a source within a fetch. */
export function sourceKey(source: Pick<SourceInfo, "address" | "port">): string {
  return `${source.address}:${source.port}`;
}

/** What a source connection needs from its fetch. */
export interface SourceHooks {
  /** Next piece for this source, or undefined when none is available now. */
  next(holds: (i: number) => boolean): number | undefined;
  /** Whether the piece is still wanted. */
  wanted(i: number): boolean;
  /**
   * Checks a received piece against its hash and stores it. Resolves once `bytes` may be
   * reused: false when the piece is corrupt, true when it was stored (or no longer wanted).
   */
  deliver(i: number, bytes: Uint8Array): Promise<boolean>;
  /** Returns a piece the source will not deliver. */
  release(i: number): void;
  /** Resolves when the scheduler state changes (a piece released or completed). */
  changed(): Promise<void>;
  /** true when the fetch is over (complete or aborted). */
  finished(): boolean;
  /** Accounts bytes as they arrive (progress, per-source rate); called for every socket read. */
  received(bytes: number): void;
  /**
   * Waits as the download rate limit requires after `bytes` more; undefined (no wait, no
   * promise) when there is no limit.
   */
  throttle(bytes: number): Promise<void> | undefined;
  /** Called with each queue position while waiting for a slot at the source. */
  queued(position: number): void;
}

/** Parameters of one source connection. */
export interface SourceParams {
  fname: string;
  rootHash: string;
  size: number;
  pieceSize: number;
  /** This peer, "hostname:port", so the source can cap slots per peer. */
  from: string;
  ttfbTimeoutMs: number;
  stallTimeoutMs: number;
  /** Longest wait in a source's queue, ms. */
  queueTimeoutMs: number;
  /** Plain TCP instead of TLS pinned to the source's certificate (--insecure-plaintext). */
  plaintext: boolean;
  /** Bytes read between two throttle() calls (a whole piece when there is no limit). */
  chunkBytes: number;
  /** Who this fetcher is, for sources that authenticate fetchers (every peer does). */
  credentials?: FetcherCredentials;
}

/** What a fetcher shows a source: its identity's proof and the index's ticket. */
export interface FetcherCredentials {
  identity: Identity;
  /** The current ticket, if the index has given one yet. */
  ticket: () => Ticket | undefined;
}

/** What `SourceConnection.open()` needs. */
export type OpenParams =
  & Pick<
    SourceParams,
    "fname" | "from" | "ttfbTimeoutMs" | "queueTimeoutMs" | "plaintext" | "credentials"
  >
  & { rootHash?: string };

/** An open connection to a source that answered GetInfo. */
export class SourceConnection {
  readonly source: SourceInfo;
  readonly key: string;
  readonly #framed: FramedConn;
  #nextId = 1;
  #deadline: ReturnType<typeof setTimeout> | undefined;
  #timedOut: string | undefined;
  /** Pieces the source holds, or undefined when it holds them all. */
  have: Bitfield | undefined;
  /** Requests sent and not yet answered. */
  outstanding = 0;
  /** The Info reply. */
  info: MessageOf<MsgType.Info>["body"] | undefined;

  private constructor(source: SourceInfo, framed: FramedConn) {
    this.source = source;
    this.key = sourceKey(source);
    this.#framed = framed;
  }

  /**
   * Connects and asks for the file's description, waiting in the source's queue if it says so.
   *
   * @throws {SourceError} busy, gone (unreachable, no first byte in time, not shared), or bad
   */
  static async open(
    source: SourceInfo,
    params: OpenParams,
    hooks: Pick<SourceHooks, "queued">,
    signal: AbortSignal,
  ): Promise<SourceConnection> {
    const key = sourceKey(source);
    // Connecting and the TLS handshake count towards the first byte.
    const firstByte = AbortSignal.timeout(params.ttfbTimeoutMs);
    let conn: TransportConn;
    try {
      conn = await connectTo({
        hostname: source.address,
        port: source.port,
        // Pinned to the key the index vouches for: the ID is the key (shared/pin_cert.ts).
        pin: { id: source.id, certPem: pinCertOfId(source.id) },
        plaintext: params.plaintext,
        what: `source ${key}`,
        signal: AbortSignal.any([signal, firstByte]),
      });
    } catch (err) {
      if (firstByte.aborted && !signal.aborted) {
        throw new SourceError(
          "gone",
          `Cannot fetch from ${key}: no first byte within ${params.ttfbTimeoutMs} ms (connecting)`,
        );
      }
      // A source that is not who the index says (or has no certificate) is as good as gone.
      throw new SourceError("gone", `Cannot connect to ${key}: ${(err as Error).message}`);
    }
    const connection = new SourceConnection(source, new FramedConn(conn));
    const onAbort = () => connection.close();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      const proof = params.credentials
        ? await connection.#answerChallenge(params.credentials, params.ttfbTimeoutMs)
        : undefined;
      await connection.#getInfo(params, hooks, proof);
      return connection;
    } catch (err) {
      connection.close();
      throw err;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  /**
   * Reads the source's Challenge, checks it comes from the device the index listed, and returns
   * what GetInfo carries to prove this fetcher.
   */
  async #answerChallenge(
    credentials: FetcherCredentials,
    timeoutMs: number,
  ): Promise<Pick<Bodies[MsgType.GetInfo], "id" | "ticket" | "proof">> {
    const ticket = credentials.ticket();
    if (ticket === undefined) {
      throw new SourceError("gone", `Cannot fetch from ${this.key}: no ticket from the index yet`);
    }
    let challenge: Bodies[MsgType.Challenge];
    try {
      challenge = await readChallenge(this.#framed, timeoutMs, this.key);
    } catch (err) {
      throw new SourceError("gone", `Cannot fetch from ${this.key}: ${(err as Error).message}`);
    }
    if (challenge.id !== this.source.id) {
      throw new SourceError(
        "bad",
        `Cannot fetch from ${this.key}: it answers as device ${
          shortId(challenge.id)
        }, the index lists ${shortId(this.source.id)}`,
      );
    }
    const { identity } = credentials;
    const statement = fetchStatement(challenge.nonce, challenge.id, identity.id);
    const proof = (await sign(identity, statement)).toBase64();
    return { id: identity.id, ticket, proof };
  }

  async #getInfo(
    params: OpenParams,
    hooks: Pick<SourceHooks, "queued">,
    proof: Pick<Bodies[MsgType.GetInfo], "id" | "ticket" | "proof"> | undefined,
  ): Promise<void> {
    const body: Bodies[MsgType.GetInfo] = { fname: params.fname, from: params.from, ...proof };
    if (params.rootHash !== undefined) body.rootHash = params.rootHash;
    await this.#send(request(MsgType.GetInfo, this.#nextId++, body));
    let timeoutMs = params.ttfbTimeoutMs;
    let what = "no first byte";
    /** When the wait in the source's queue must end: position updates do not extend it. */
    let queueDeadline: number | undefined;
    let shownMs: number | undefined;
    for (;;) {
      const message = await this.#read(timeoutMs, what, shownMs);
      switch (message.type) {
        case MsgType.Info:
          this.info = message.body;
          this.have = message.body.have === undefined
            ? undefined
            : this.#bitfield(message.body.have);
          return;
        case MsgType.Queued:
          hooks.queued(message.body.position);
          queueDeadline ??= performance.now() + params.queueTimeoutMs;
          timeoutMs = Math.max(0, queueDeadline - performance.now());
          what = `not admitted from its queue (position ${message.body.position})`;
          shownMs = params.queueTimeoutMs;
          continue;
        case MsgType.Busy:
          throw new SourceError(
            "busy",
            `Cannot fetch from ${this.key}: busy (${message.body.message})`,
            message.body.retryAfterMs,
          );
        case MsgType.Error:
          throw new SourceError("gone", `Cannot fetch from ${this.key}: ${message.body.message}`);
        default:
          throw new SourceError(
            "bad",
            `Cannot fetch from ${this.key}: unexpected ${MSG_TYPE_NAMES.get(message.type)}`,
          );
      }
    }
  }

  #bitfield(base64: string): Bitfield {
    const count = Math.ceil((this.info?.size ?? 0) / (this.info?.pieceSize || 1));
    try {
      return Bitfield.fromBase64(count, base64);
    } catch {
      throw new SourceError("bad", `Cannot fetch from ${this.key}: malformed have bitfield`);
    }
  }

  async #send(message: Message): Promise<void> {
    try {
      await this.#framed.send(message);
    } catch (err) {
      throw new SourceError("gone", `Cannot send to ${this.key}: ${(err as Error).message}`);
    }
  }

  /** Closes the connection unless disarmed within `timeoutMs`; `shownMs` goes in the error. */
  #arm(timeoutMs: number, what: string, shownMs = timeoutMs): void {
    clearTimeout(this.#deadline);
    this.#deadline = setTimeout(() => {
      this.#timedOut = `${what} within ${shownMs} ms`;
      this.#framed.close();
    }, timeoutMs);
  }

  async #read(timeoutMs: number, what: string, shownMs?: number): Promise<Message> {
    this.#arm(timeoutMs, what, shownMs);
    let message: Message | null;
    try {
      message = await this.#framed.readMessage();
    } catch (err) {
      throw this.#failure(err);
    } finally {
      clearTimeout(this.#deadline);
    }
    if (message === null) throw this.#failure(undefined);
    return message;
  }

  /**
   * Reads a piece's payload. One watchdog timer per piece, not one per socket read: each read
   * only notes the time, and the timer, when it fires, re-arms itself for the rest of the
   * stall timeout unless the source has really been silent that long. Time spent waiting for
   * the rate limit does not count as silence.
   */
  async #readRaw(
    target: Uint8Array,
    timeoutMs: number,
    hooks: SourceHooks,
    chunkBytes: number,
  ): Promise<void> {
    let lastByteAt = performance.now();
    let throttled = false;
    const check = () => {
      const silentMs = throttled ? 0 : performance.now() - lastByteAt;
      if (silentMs < timeoutMs) {
        this.#deadline = setTimeout(check, timeoutMs - silentMs);
        return;
      }
      this.#timedOut = `stalled within ${timeoutMs} ms`;
      this.#framed.close();
    };
    const onRead = (bytes: number) => {
      lastByteAt = performance.now();
      hooks.received(bytes);
    };
    this.#deadline = setTimeout(check, timeoutMs);
    try {
      for (let offset = 0; offset < target.length; offset += chunkBytes) {
        const chunk = target.subarray(offset, Math.min(target.length, offset + chunkBytes));
        await this.#framed.readRawInto(chunk, onRead);
        const wait = hooks.throttle(chunk.length);
        if (wait) {
          throttled = true;
          await wait;
          throttled = false;
          lastByteAt = performance.now();
        }
      }
    } catch (err) {
      throw this.#failure(err);
    } finally {
      clearTimeout(this.#deadline);
    }
  }

  #failure(err: unknown): SourceError {
    if (this.#timedOut) {
      return new SourceError("gone", `Cannot fetch from ${this.key}: ${this.#timedOut}`);
    }
    if (err instanceof ProtocolError) {
      return new SourceError(
        err.code === "truncated" ? "gone" : "bad",
        `Cannot fetch from ${this.key}: ${err.message}`,
      );
    }
    if (err === undefined) {
      return new SourceError("gone", `Cannot fetch from ${this.key}: connection closed`);
    }
    return new SourceError("gone", `Cannot fetch from ${this.key}: ${(err as Error).message}`);
  }

  /** Refreshes the source's have bitfield (for a partial source). */
  async refresh(params: SourceParams): Promise<void> {
    await this.#send(
      request(MsgType.GetInfo, this.#nextId++, { fname: params.fname, rootHash: params.rootHash }),
    );
    const message = await this.#read(params.stallTimeoutMs, "no answer");
    if (message.type === MsgType.Error) {
      throw new SourceError("gone", `Cannot fetch from ${this.key}: ${message.body.message}`);
    }
    if (message.type !== MsgType.Info) {
      throw new SourceError("bad", `Cannot fetch from ${this.key}: expected Info`);
    }
    this.have = message.body.have === undefined ? undefined : this.#bitfield(message.body.have);
  }

  /**
   * Fetches pieces until the scheduler has nothing left for this source, or it had nothing to
   * ask of it for the stall timeout.
   *
   * @throws {SourceError} when the source fails; its unfinished pieces are released first
   */
  async run(params: SourceParams, hooks: SourceHooks): Promise<void> {
    const inflight: number[] = [];
    // Several piece buffers: while received pieces are verified and written (by a writer thread
    // for a large file), the next ones are read from the socket. Allocated as needed: a small
    // file uses one.
    const buffers: Uint8Array[] = [];
    const writing: (Promise<void> | undefined)[] = [];
    let slot = 0;
    const settle = async () => {
      for (const pending of writing) await pending;
    };
    if (params.pieceSize > pieceSizeFor(params.size)) {
      // Buffers are sized from pieceSize: never from a value the protocol does not allow.
      throw new SourceError(
        "bad",
        `Cannot fetch from ${this.key}: piece size ${params.pieceSize} exceeds ${
          pieceSizeFor(params.size)
        }, the protocol's piece size for ${params.size} bytes`,
      );
    }
    const holds = (i: number) => this.have === undefined || this.have.has(i);
    /** When this connection last had nothing to ask for, or undefined while it works. */
    let idleSince: number | undefined;
    const fill = async () => {
      const depth = this.have === undefined ? PIPELINE_DEPTH : 1;
      while (inflight.length < depth && !hooks.finished()) {
        const i = hooks.next(holds);
        if (i === undefined) return;
        inflight.push(i);
        this.outstanding = inflight.length;
        await this.#send(request(MsgType.GetRange, this.#nextId++, {
          fname: params.fname,
          rootHash: params.rootHash,
          offset: i * params.pieceSize,
          bytes: pieceLength(params.size, params.pieceSize, i),
        }));
      }
    };
    try {
      for (;;) {
        if (hooks.finished()) return;
        await fill();
        if (inflight.length === 0) {
          await settle();
          if (hooks.finished()) return;
          // Nothing to ask for: wait for released pieces (or, from a partial source, for new
          // ones), but not longer than the stall timeout. An idle connection holds a slot at
          // the source, which others may need, and is not read, so a close by the source would
          // go unnoticed: leave, and let the fetch come back when this source has work.
          idleSince ??= performance.now();
          const leftMs = params.stallTimeoutMs - (performance.now() - idleSince);
          if (leftMs <= 0) return;
          if (this.have === undefined) {
            await settleWithin(hooks.changed(), leftMs);
            continue;
          }
          await settleWithin(hooks.changed(), Math.min(PARTIAL_REFRESH_MS, leftMs));
          if (hooks.finished()) return;
          await this.refresh(params);
          continue;
        }
        idleSince = undefined;
        const i = inflight[0]!;
        const message = await this.#read(params.stallTimeoutMs, "stalled");
        if (message.type === MsgType.Error) {
          throw new SourceError(
            "gone",
            `Cannot fetch piece ${i} from ${this.key}: ${message.body.message}`,
          );
        }
        const length = pieceLength(params.size, params.pieceSize, i);
        if (
          message.type !== MsgType.Data || message.body.offset !== i * params.pieceSize ||
          message.body.bytes !== length
        ) {
          throw new SourceError(
            "bad",
            `Cannot fetch piece ${i} from ${this.key}: reply does not match the request`,
          );
        }
        await writing[slot]; // the buffer is free once its previous piece is written
        // Shared memory, so that the writer thread can take the piece without a copy.
        buffers[slot] ??= new Uint8Array(
          new SharedArrayBuffer(Math.min(params.pieceSize, params.size)),
        );
        const piece = buffers[slot]!.subarray(0, length);
        await this.#readRaw(piece, params.stallTimeoutMs, hooks, params.chunkBytes);
        inflight.shift();
        this.outstanding = inflight.length;
        if (!hooks.wanted(i)) continue; // another source won the endgame race
        const written = this.#deliver(i, piece, hooks);
        written.catch(() => {}); // awaited later; handled now so a failure is never unhandled
        writing[slot] = written;
        slot = (slot + 1) % PIECE_BUFFERS;
      }
    } finally {
      for (const i of inflight) hooks.release(i);
      await Promise.allSettled(writing);
    }
  }

  /**
   * Hands a received piece on to be verified and stored; resolves once `piece` may be reused.
   *
   * @throws {SourceError} bad, when the piece does not match its hash (it is released first)
   */
  async #deliver(i: number, piece: Uint8Array, hooks: SourceHooks): Promise<void> {
    let stored: boolean;
    try {
      stored = await hooks.deliver(i, piece);
    } catch (err) {
      hooks.release(i); // not written: another source may bring it
      throw err;
    }
    if (!stored) {
      hooks.release(i);
      throw new SourceError(
        "bad",
        `Cannot use piece ${i} from ${this.key}: hash mismatch (corrupt data)`,
      );
    }
  }

  /** Closes the connection: the source sees the stream end and frees its slot at once. */
  close(): void {
    clearTimeout(this.#deadline);
    this.#framed.close();
  }
}
