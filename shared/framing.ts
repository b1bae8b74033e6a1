// The only I/O in shared/: reads frames and raw payloads from a connection, writes frames.
// Wraps the pure FrameDecoder; translates socket errors into ProtocolError where the other
// side is at fault (truncation) and lets local I/O errors through with their cause.
import { decodeMessage, type Frame, FrameDecoder } from "./decode.ts";
import { ProtocolError } from "./errors.ts";
import { encodeMessage } from "./encode.ts";
import { DEFAULT_LIMITS, type Limits, type Message } from "./protocol.ts";

/** The byte stream a FramedConn needs: what Deno.Conn provides. */
export interface ByteConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

/** Size of one socket read while looking for frames, unless told otherwise. */
const DEFAULT_READ_CHUNK_BYTES = 64 * 1024;

/** Options for `FramedConn`. */
export interface FramedConnOptions {
  /** Size limits for incoming frames. @default DEFAULT_LIMITS */
  limits?: Limits;
  /**
   * Bytes read from the socket at a time while looking for frames; this buffer lives as long
   * as the connection, so a server holding thousands of small-message sessions wants it small.
   * @default 64 KiB
   */
  readChunkBytes?: number;
}

/** Writes all of `bytes` to `conn` (Deno's write may be partial). */
export async function writeAll(conn: ByteConn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}

/**
 * A connection that speaks frames: `readMessage()` and `readRaw()` on the way in, `send()` on
 * the way out. Sends are serialised so that concurrent senders never interleave frames.
 */
export class FramedConn {
  readonly #conn: ByteConn;
  readonly #limits: Limits;
  readonly #decoder: FrameDecoder;
  readonly #chunk: Uint8Array;
  #writeChain: Promise<void> = Promise.resolve();
  #closed = false;

  /** @param conn the socket */
  constructor(conn: ByteConn, options: FramedConnOptions = {}) {
    this.#conn = conn;
    this.#limits = options.limits ?? DEFAULT_LIMITS;
    this.#decoder = new FrameDecoder(this.#limits);
    this.#chunk = new Uint8Array(options.readChunkBytes ?? DEFAULT_READ_CHUNK_BYTES);
  }

  /**
   * Reads the next message, or null when the other side closed cleanly between frames.
   *
   * @throws {ProtocolError} on bad bytes or a stream that ends inside a frame
   */
  async readMessage(): Promise<Message | null> {
    const frame = await this.#readFrame();
    return frame === null ? null : decodeMessage(frame, this.#limits);
  }

  async #readFrame(): Promise<Frame | null> {
    for (;;) {
      const frame = this.#decoder.next();
      if (frame) return frame;
      const n = await this.#read(this.#chunk);
      if (n === null) {
        this.#decoder.finish();
        return null;
      }
      this.#decoder.push(this.#chunk.subarray(0, n));
    }
  }

  /**
   * Reads exactly `target.length` raw bytes (a `Data` payload) into `target`.
   * Bytes already buffered come first; the rest goes from the socket straight into `target`.
   *
   * @throws {ProtocolError} truncated, when the stream ends first
   */
  async readRawInto(target: Uint8Array): Promise<void> {
    const buffered = this.#decoder.takeRaw(target.length);
    target.set(buffered);
    let filled = buffered.length;
    while (filled < target.length) {
      const n = await this.#read(target.subarray(filled));
      if (n === null) {
        throw new ProtocolError(
          "truncated",
          `Cannot read data: stream ended after ${filled} of ${target.length} bytes`,
        );
      }
      filled += n;
    }
  }

  async #read(into: Uint8Array): Promise<number | null> {
    try {
      return await this.#conn.read(into);
    } catch (err) {
      // A reset by the other side is an end of stream for our purposes; the decoder decides
      // whether it came at a frame boundary.
      if (
        err instanceof Deno.errors.ConnectionReset || err instanceof Deno.errors.BadResource ||
        err instanceof Deno.errors.Interrupted
      ) {
        return null;
      }
      throw err;
    }
  }

  /** Sends one message. Resolves when it has been handed to the socket. */
  send(message: Message): Promise<void> {
    return this.sendBytes(encodeMessage(message));
  }

  /**
   * Sends raw bytes after whatever was queued before, e.g. a `Data` frame followed by its
   * payload. `parts` are written in order with nothing between them.
   */
  sendBytes(...parts: Uint8Array[]): Promise<void> {
    const next = this.#writeChain.then(async () => {
      for (const part of parts) await writeAll(this.#conn, part);
    });
    // Keep the chain alive after a failure; the failing sender still sees its own error.
    this.#writeChain = next.catch(() => {});
    return next;
  }

  /**
   * Runs `fn` with exclusive use of the write side (for long streamed payloads), after every
   * send queued before it.
   */
  exclusiveWrite<T>(fn: (write: (bytes: Uint8Array) => Promise<void>) => Promise<T>): Promise<T> {
    const next = this.#writeChain.then(() => fn((bytes) => writeAll(this.#conn, bytes)));
    this.#writeChain = next.then(() => {}, () => {});
    return next;
  }

  /** Closes the socket; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource)) throw err;
    }
  }

  /** true after close(). */
  get closed(): boolean {
    return this.#closed;
  }
}
