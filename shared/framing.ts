// The only I/O in shared/: reads frames and raw payloads from a connection, writes frames.
// Wraps the pure FrameDecoder; translates socket errors into ProtocolError where the other
// side is at fault (truncation) and lets local I/O errors through with their cause.
import { decodeMessage, FrameDecoder } from "./decode.ts";
import { ProtocolError } from "./errors.ts";
import { encodeMessage } from "./encode.ts";
import { carveBytes } from "./byte_slab.ts";
import { DEFAULT_LIMITS, type Limits, type Message } from "./protocol.ts";

/** The byte stream a FramedConn needs: what Deno.Conn provides. */
export interface ByteConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

/** Size of one socket read while looking for frames, unless told otherwise. */
const DEFAULT_READ_CHUNK_BYTES = 64 * 1024;

/**
 * Most bytes joined into one socket write. Small frames queued behind a write in progress are
 * copied into one buffer; beyond this the copy costs more than the syscalls it saves.
 */
const COALESCE_LIMIT_BYTES = 256 * 1024;

/** A queued send: its bytes and who waits for them to reach the socket. */
interface PendingSend {
  parts: Uint8Array[];
  bytes: number;
  /** The promise of send(); a post() has none, only maybe a callback. */
  done: PromiseWithResolvers<void> | undefined;
  written: (() => void) | undefined;
}

/** A queued exclusiveWrite(). */
interface PendingExclusive {
  exclusive: (write: (bytes: Uint8Array) => Promise<void>) => Promise<unknown>;
  done: PromiseWithResolvers<unknown>;
}

/** Options for `FramedConn`. */
export interface FramedConnOptions {
  /**
   * Size limits for incoming frames. A server tightens `maxBodyBytes` for what a connection may
   * send before it has said who it is, and raises it later with `setMaxBodyBytes()`.
   * @default DEFAULT_LIMITS
   */
  limits?: Limits;
  /**
   * Bytes read from the socket at a time while looking for frames; this buffer lives as long
   * as the connection, so a server holding thousands of small-message sessions wants it small.
   * @default 64 KiB
   */
  readChunkBytes?: number;
}

/**
 * Whether a read error means the other side is gone. A reset is an end of stream for our
 * purposes; the decoder then decides whether it came at a frame boundary.
 */
function isEndOfStream(err: unknown): boolean {
  return err instanceof Deno.errors.ConnectionReset || err instanceof Deno.errors.BadResource ||
    err instanceof Deno.errors.Interrupted;
}

/** Writes all of `bytes` to `conn` (Deno's write may be partial). */
export async function writeAll(conn: ByteConn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}

/**
 * The parts of `batch` as one view when each starts where the one before it ends in the same
 * buffer (frames carved one after another from a slab), else undefined.
 */
function adjacentParts(batch: PendingSend[], total: number): Uint8Array | undefined {
  const first = batch[0]!.parts[0];
  if (first === undefined) return undefined;
  let end = first.byteOffset;
  for (const send of batch) {
    for (const part of send.parts) {
      if (part.buffer !== first.buffer || part.byteOffset !== end) return undefined;
      end += part.length;
    }
  }
  return new Uint8Array(first.buffer, first.byteOffset, total);
}

/**
 * A connection that speaks frames: `readMessage()` (or `fill()` + `bufferedMessage()`) and
 * `readRawInto()` on the way in; `send()`, `post()`, `sendBytes()` and `exclusiveWrite()` on the
 * way out, through one queue, so that concurrent senders never interleave frames.
 */
export class FramedConn implements Disposable {
  readonly #conn: ByteConn;
  #limits: Limits;
  readonly #decoder: FrameDecoder;
  #chunk: Uint8Array;
  /** Sends not yet written, in order. */
  readonly #outbox: (PendingSend | PendingExclusive)[] = [];
  #queuedBytes = 0;
  #writing = false;
  #closed = false;

  /** @param conn the socket */
  constructor(conn: ByteConn, options: FramedConnOptions = {}) {
    this.#conn = conn;
    this.#limits = options.limits ?? DEFAULT_LIMITS;
    this.#decoder = new FrameDecoder(this.#limits);
    this.#chunk = new Uint8Array(options.readChunkBytes ?? DEFAULT_READ_CHUNK_BYTES);
  }

  /**
   * Sets the largest body accepted in frames whose header is read from now on: a frame of more
   * is refused (ProtocolError `too-large`) before any of its body is buffered.
   *
   * @param maxBodyBytes at most the limit this connection was made with, or more to loosen it
   */
  setMaxBodyBytes(maxBodyBytes: number): void {
    if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 0) {
      throw new RangeError(`Cannot set the body limit: ${maxBodyBytes} is not a byte count`);
    }
    this.#limits = { ...this.#limits, maxBodyBytes };
    this.#decoder.limits = this.#limits;
  }

  /** The largest frame body accepted now, bytes. */
  get maxBodyBytes(): number {
    return this.#limits.maxBodyBytes;
  }

  /**
   * Reads the next message, or null when the other side closed cleanly between frames.
   *
   * @throws {ProtocolError} on bad bytes or a stream that ends inside a frame
   */
  async readMessage(): Promise<Message | null> {
    for (;;) {
      const message = this.bufferedMessage();
      if (message !== undefined) return message;
      if (!await this.fill()) return null;
    }
  }

  /**
   * The next message if it is already buffered (one read often brings several), else
   * undefined: lets a reader take them without a promise per message.
   *
   * @throws {ProtocolError} on bad bytes
   */
  bufferedMessage(): Message | undefined {
    const frame = this.#decoder.next();
    return frame === undefined ? undefined : decodeMessage(frame, this.#limits);
  }

  /**
   * Reads from the socket once and buffers what came: false when the other side has closed.
   * For a reader that takes messages with `bufferedMessage()` and calls this when none is left.
   *
   * One async frame and the socket's own promise per read, and no more: a session of a busy
   * index server waits seconds on its read between two pings, so whatever the wait holds
   * survives a young-generation collection and is copied (measured at 10,000 sessions with
   * pings on: 544 KB copied per collection with the three nested async reads this replaced,
   * 310 KB with this one).
   *
   * @throws {ProtocolError} truncated, when the stream ends inside a frame
   */
  async fill(): Promise<boolean> {
    if (this.#closed) return false;
    let n: number | null;
    try {
      n = await this.#conn.read(this.#chunk);
    } catch (err) {
      if (!isEndOfStream(err)) throw err;
      n = null;
    }
    // Closed locally while the read was under way: what it brought is not wanted any more.
    if (this.#closed) return false;
    if (n === null) {
      this.#decoder.finish();
      return false;
    }
    this.#decoder.push(this.#chunk.subarray(0, n));
    return true;
  }

  /**
   * Reads exactly `target.length` raw bytes (a `Data` payload) into `target`.
   * Bytes already buffered come first; the rest goes from the socket straight into `target`.
   *
   * @param onRead called with the byte count of every piece of `target` filled (the buffered
   *   bytes, then each socket read), so that a caller can see progress inside a large target
   * @throws {ProtocolError} truncated, when the stream ends first
   */
  async readRawInto(target: Uint8Array, onRead?: (bytes: number) => void): Promise<void> {
    const buffered = this.#decoder.takeRaw(target.length);
    target.set(buffered);
    let filled = buffered.length;
    if (filled > 0) onRead?.(filled);
    while (filled < target.length) {
      const n = await this.#read(target.subarray(filled));
      if (n === null) {
        throw new ProtocolError(
          "truncated",
          `Cannot read data: stream ended after ${filled} of ${target.length} bytes`,
        );
      }
      filled += n;
      onRead?.(n);
    }
  }

  async #read(into: Uint8Array): Promise<number | null> {
    try {
      return await this.#conn.read(into);
    } catch (err) {
      if (isEndOfStream(err)) return null;
      throw err;
    }
  }

  /** Sends one message. Resolves when it has been handed to the socket. */
  send(message: Message): Promise<void> {
    return this.sendBytes(encodeMessage(message));
  }

  /**
   * Sends one message without a promise to wait on, for a sender that does not wait (a reply
   * per request on a busy server). A failed write is not reported here: it breaks the
   * connection, which the reader sees.
   *
   * @param written called once the message has been handed to the socket
   */
  post(message: Message, written?: () => void): void {
    const bytes = encodeMessage(message);
    this.#outbox.push({ parts: [bytes], bytes: bytes.length, done: undefined, written });
    this.#queuedBytes += bytes.length;
    this.#startWriter();
  }

  /**
   * Sends raw bytes after whatever was queued before, e.g. a `Data` frame followed by its
   * payload. `parts` are written in order with nothing between them. Small sends queued while
   * a write is in progress go out together in one write (one syscall for many replies).
   */
  sendBytes(...parts: Uint8Array[]): Promise<void> {
    const done = Promise.withResolvers<void>();
    let bytes = 0;
    for (const part of parts) bytes += part.length;
    this.#outbox.push({ parts, bytes, done, written: undefined });
    this.#queuedBytes += bytes;
    this.#startWriter();
    return done.promise;
  }

  /**
   * Runs `fn` with exclusive use of the write side (for long streamed payloads), after every
   * send queued before it.
   */
  exclusiveWrite<T>(fn: (write: (bytes: Uint8Array) => Promise<void>) => Promise<T>): Promise<T> {
    const done = Promise.withResolvers<unknown>();
    this.#outbox.push({ exclusive: fn, done });
    this.#startWriter();
    return done.promise as Promise<T>;
  }

  /** Bytes handed to send() and not yet written: what a caller checks for back-pressure. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  #startWriter(): void {
    if (this.#writing) return;
    this.#writing = true;
    // In a microtask, not now: replies to a batch of pipelined requests are made in the same
    // round of microtasks, and this way they all go out in one write. Written at once, the
    // first would go alone and the rest in a second write, and the other side, answering each
    // read at once, would keep the batches small.
    queueMicrotask(() => void this.#drain());
  }

  /** Writes the outbox in order until it is empty; the only code that writes to the socket. */
  async #drain(): Promise<void> {
    try {
      while (this.#outbox.length > 0) {
        const first = this.#outbox[0]!;
        if ("exclusive" in first) {
          this.#outbox.shift();
          await this.#runExclusive(first);
          continue;
        }
        const batch = this.#takeBatch();
        try {
          await this.#writeBatch(batch);
          for (const send of batch) {
            send.done?.resolve();
            send.written?.();
          }
        } catch (err) {
          for (const send of batch) send.done?.reject(err);
        } finally {
          for (const send of batch) this.#queuedBytes -= send.bytes;
        }
      }
    } finally {
      this.#writing = false;
    }
  }

  /** Consecutive byte sends from the head of the outbox, up to COALESCE_LIMIT_BYTES. */
  #takeBatch(): PendingSend[] {
    const batch: PendingSend[] = [];
    let bytes = 0;
    while (this.#outbox.length > 0) {
      const next = this.#outbox[0]!;
      if ("exclusive" in next) break;
      if (batch.length > 0 && bytes + next.bytes > COALESCE_LIMIT_BYTES) break;
      batch.push(next);
      bytes += next.bytes;
      this.#outbox.shift();
    }
    return batch;
  }

  async #writeBatch(batch: PendingSend[]): Promise<void> {
    if (batch.length === 1) {
      for (const part of batch[0]!.parts) await writeAll(this.#conn, part);
      return;
    }
    let total = 0;
    for (const send of batch) total += send.bytes;
    // Replies made one after another are mostly adjacent in one slab (see byte_slab.ts): then
    // they are written from there as they lie, without a buffer to join them in.
    const adjacent = adjacentParts(batch, total);
    if (adjacent) return await writeAll(this.#conn, adjacent);
    const joined = carveBytes(total);
    let offset = 0;
    for (const send of batch) {
      for (const part of send.parts) {
        joined.set(part, offset);
        offset += part.length;
      }
    }
    await writeAll(this.#conn, joined);
  }

  async #runExclusive(item: PendingExclusive): Promise<void> {
    try {
      item.done.resolve(await item.exclusive((bytes) => writeAll(this.#conn, bytes)));
    } catch (err) {
      item.done.reject(err);
    }
  }

  /**
   * Closes the socket and frees the read buffers (a closed connection may stay referenced, by a
   * log or a pending promise, and must not keep a large frame's memory); idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#decoder.release();
    this.#chunk = new Uint8Array(0);
    try {
      this.#conn.close();
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource)) throw err;
    }
  }

  /** Closes the socket, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** true after close(). */
  get closed(): boolean {
    return this.#closed;
  }
}
