// One fetch's connection to one source: GetInfo (waiting in the source's queue if told to),
// then pipelined GetRange requests for the pieces the scheduler assigns, each piece verified
// against its hash before it is written.
import { Bitfield } from "../shared/bitfield.ts";
import { request } from "../shared/encode.ts";
import { ProtocolError } from "../shared/errors.ts";
import { FramedConn } from "../shared/framing.ts";
import {
  type Message,
  type MessageOf,
  MSG_TYPE_NAMES,
  MsgType,
  type SourceInfo,
} from "../shared/protocol.ts";
import { HASH_BYTES, pieceLength } from "../shared/pieces.ts";
import { settleWithin } from "../shared/timeout.ts";

/**
 * Requests kept in flight per complete source, so it never idles between pieces. A partial
 * source gets one at a time: a piece it just verified should not wait behind several others
 * on its (shared) uplink before reaching us.
 */
export const PIPELINE_DEPTH = 2;

/** Why a source stopped being used. */
export class SourceError extends Error {
  /** busy: come back later; bad: sent corrupt data, never again; gone: unreachable or failed. */
  readonly kind: "busy" | "bad" | "gone";

  /**
   * @param kind how the fetch should treat the source
   * @param message "Cannot x: detail"
   */
  constructor(kind: "busy" | "bad" | "gone", message: string) {
    super(message);
    this.name = "SourceError";
    this.kind = kind;
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
  /** Stores a verified piece. */
  deliver(i: number, bytes: Uint8Array): void;
  /** Returns a piece the source will not deliver. */
  release(i: number): void;
  /** Resolves when the scheduler state changes (a piece released or completed). */
  changed(): Promise<void>;
  /** true when the fetch is over (complete or aborted). */
  finished(): boolean;
  /** Accounts received bytes (rate limit + progress). */
  received(bytes: number): Promise<void>;
  /** Called with each queue position while waiting for a slot at the source. */
  queued(position: number): void;
}

/** Parameters of one source connection. */
export interface SourceParams {
  fname: string;
  rootHash: string;
  size: number;
  pieceSize: number;
  pieceHashes: Uint8Array;
  /** This peer, "hostname:port", so the source can cap slots per peer. */
  from: string;
  ttfbTimeoutMs: number;
  stallTimeoutMs: number;
  /** Longest wait in a source's queue, ms. */
  queueTimeoutMs: number;
  /** Chunk size for reads when rate limited, bytes. */
  chunkBytes: number;
}

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
    params: Pick<SourceParams, "fname" | "from" | "ttfbTimeoutMs" | "queueTimeoutMs"> & {
      rootHash?: string;
    },
    hooks: Pick<SourceHooks, "queued">,
    signal: AbortSignal,
  ): Promise<SourceConnection> {
    const key = sourceKey(source);
    let conn: Deno.TcpConn;
    try {
      conn = await Deno.connect({
        hostname: source.address,
        port: source.port,
        signal: AbortSignal.any([signal, AbortSignal.timeout(params.ttfbTimeoutMs)]),
      });
    } catch (err) {
      throw new SourceError("gone", `Cannot connect to ${key}: ${(err as Error).message}`);
    }
    conn.setNoDelay(true);
    const connection = new SourceConnection(source, new FramedConn(conn));
    const onAbort = () => connection.close();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await connection.#getInfo(params, hooks);
      return connection;
    } catch (err) {
      connection.close();
      throw err;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  async #getInfo(
    params: Pick<SourceParams, "fname" | "from" | "ttfbTimeoutMs" | "queueTimeoutMs"> & {
      rootHash?: string;
    },
    hooks: Pick<SourceHooks, "queued">,
  ): Promise<void> {
    const body: { fname: string; from: string; rootHash?: string } = {
      fname: params.fname,
      from: params.from,
    };
    if (params.rootHash !== undefined) body.rootHash = params.rootHash;
    await this.#send(request(MsgType.GetInfo, this.#nextId++, body));
    let timeoutMs = params.ttfbTimeoutMs;
    let what = "no first byte";
    for (;;) {
      const message = await this.#read(timeoutMs, what);
      switch (message.type) {
        case MsgType.Info:
          this.info = message.body;
          this.have = message.body.have === undefined
            ? undefined
            : this.#bitfield(message.body.have);
          return;
        case MsgType.Queued:
          hooks.queued(message.body.position);
          timeoutMs = params.queueTimeoutMs;
          what = "still queued";
          continue;
        case MsgType.Busy:
          throw new SourceError(
            "busy",
            `Cannot fetch from ${this.key}: busy (${message.body.message})`,
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

  #arm(timeoutMs: number, what: string): void {
    clearTimeout(this.#deadline);
    this.#deadline = setTimeout(() => {
      this.#timedOut = `${what} within ${timeoutMs} ms`;
      this.#framed.close();
    }, timeoutMs);
  }

  async #read(timeoutMs: number, what: string): Promise<Message> {
    this.#arm(timeoutMs, what);
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

  async #readRaw(
    target: Uint8Array,
    timeoutMs: number,
    hooks: SourceHooks,
    chunkBytes: number,
  ): Promise<void> {
    for (let offset = 0; offset < target.length; offset += chunkBytes) {
      const chunk = target.subarray(offset, Math.min(target.length, offset + chunkBytes));
      this.#arm(timeoutMs, "stalled");
      try {
        await this.#framed.readRawInto(chunk);
      } catch (err) {
        throw this.#failure(err);
      } finally {
        clearTimeout(this.#deadline);
      }
      await hooks.received(chunk.length);
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
   * Fetches pieces until the scheduler has nothing left for this source.
   *
   * @throws {SourceError} when the source fails; its unfinished pieces are released first
   */
  async run(params: SourceParams, hooks: SourceHooks): Promise<void> {
    const inflight: number[] = [];
    // Two piece buffers: while one piece is hashed off the main thread (WebCrypto digests run
    // in Deno's thread pool), the next one is read from the socket into the other.
    const buffers = [new Uint8Array(params.pieceSize), new Uint8Array(params.pieceSize)];
    const verifying: (Promise<void> | undefined)[] = [undefined, undefined];
    let slot = 0;
    const settle = async () => {
      for (const pending of verifying) await pending;
    };
    const holds = (i: number) => this.have === undefined || this.have.has(i);
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
          if (this.have === undefined) {
            // A complete source with nothing to do: wait for released pieces or the end.
            await hooks.changed();
            continue;
          }
          // A partial source: it may have more by now.
          await settleWithin(hooks.changed(), 500);
          if (hooks.finished()) return;
          await this.refresh(params);
          continue;
        }
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
        await verifying[slot]; // the buffer is free once its previous piece is verified
        const piece = buffers[slot]!.subarray(0, length);
        await this.#readRaw(piece, params.stallTimeoutMs, hooks, params.chunkBytes);
        inflight.shift();
        this.outstanding = inflight.length;
        if (!hooks.wanted(i)) continue; // another source won the endgame race
        const verified = this.#verify(i, piece, params, hooks);
        verified.catch(() => {}); // awaited later; handled now so a failure is never unhandled
        verifying[slot] = verified;
        slot ^= 1;
      }
    } finally {
      for (const i of inflight) hooks.release(i);
      await Promise.allSettled(verifying);
    }
  }

  /** Checks a received piece against its hash and hands it on, or rejects the source. */
  async #verify(
    i: number,
    piece: Uint8Array<ArrayBuffer>,
    params: SourceParams,
    hooks: SourceHooks,
  ): Promise<void> {
    const expected = params.pieceHashes.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", piece));
    if (!hooks.wanted(i)) return;
    if (!equalBytes(digest, expected)) {
      hooks.release(i);
      throw new SourceError(
        "bad",
        `Cannot use piece ${i} from ${this.key}: hash mismatch (corrupt data)`,
      );
    }
    hooks.deliver(i, piece);
  }

  /** Says goodbye (best effort) and closes. */
  close(): void {
    clearTimeout(this.#deadline);
    this.#framed.close();
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
