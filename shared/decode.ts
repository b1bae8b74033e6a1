// Decoding of frames: bytes in, messages or ProtocolError out. Pure: no I/O, no timers.
// Every length is checked against Limits before a byte of the body is buffered.
import { ProtocolError } from "./errors.ts";
import {
  DEFAULT_LIMITS,
  FLAG_REPLY,
  type FrameHeader,
  HEADER_SIZE,
  KNOWN_FLAGS,
  type Limits,
  MAGIC,
  type Message,
  MSG_TYPE_NAMES,
  MsgType,
  PROTOCOL_VERSION,
} from "./protocol.ts";
import { checkBody } from "./schema.ts";

/** A frame whose header is decoded and whose body is still raw bytes. */
export interface Frame {
  header: FrameHeader;
  body: Uint8Array;
}

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
/** Size of a decoder's buffer until a larger frame needs more (small: idle sessions hold it). */
const INITIAL_BUFFER_BYTES = 4 * 1024;

/**
 * Decodes and checks a frame header. `bytes` must hold at least HEADER_SIZE bytes.
 *
 * @throws {ProtocolError} bad-magic, bad-version, bad-flags, unknown-type or too-large
 */
export function decodeHeader(bytes: Uint8Array, limits: Limits = DEFAULT_LIMITS): FrameHeader {
  if (bytes.length < HEADER_SIZE) {
    throw new RangeError(`Cannot decode header: need ${HEADER_SIZE} bytes, got ${bytes.length}`);
  }
  // Byte by byte rather than through a DataView: a DataView is an allocation per frame.
  const magic = (bytes[0]! << 8) | bytes[1]!;
  if (magic !== MAGIC) {
    throw new ProtocolError(
      "bad-magic",
      `Cannot decode header: bad magic 0x${magic.toString(16).padStart(4, "0")}`,
    );
  }
  const version = bytes[2]!;
  if (version !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      "bad-version",
      `Cannot decode header: protocol version ${version}, expected ${PROTOCOL_VERSION}`,
    );
  }
  const type = bytes[3]!;
  if (!MSG_TYPE_NAMES.has(type)) {
    throw new ProtocolError("unknown-type", `Cannot decode header: unknown message type ${type}`);
  }
  const flags = (bytes[4]! << 8) | bytes[5]!;
  if ((flags & ~KNOWN_FLAGS) !== 0 || bytes[6] !== 0 || bytes[7] !== 0) {
    throw new ProtocolError(
      "bad-flags",
      `Cannot decode header: unknown flags 0x${flags.toString(16)} or reserved bits set`,
    );
  }
  const bodyBytes = readU32(bytes, 12);
  if (bodyBytes > limits.maxBodyBytes) {
    throw new ProtocolError(
      "too-large",
      `Cannot decode header: body is ${bodyBytes} bytes, limit is ${limits.maxBodyBytes}`,
    );
  }
  return { type: type as MsgType, flags, requestId: readU32(bytes, 8), bodyBytes };
}

function readU32(bytes: Uint8Array, offset: number): number {
  return (bytes[offset]! * 0x1000000) +
    ((bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!);
}

/** Bodies up to this size that are pure ASCII skip TextDecoder (half its cost at this size). */
const ASCII_FAST_PATH_BYTES = 128;

/** UTF-8 to string; throws TypeError on bytes that are not UTF-8, like a fatal TextDecoder. */
function decodeUtf8(bytes: Uint8Array): string {
  if (bytes.length <= ASCII_FAST_PATH_BYTES) {
    let ascii = true;
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i]! >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  }
  return decoder.decode(bytes);
}

/**
 * Decodes a frame's JSON body and checks its shape for the frame's type.
 *
 * @throws {ProtocolError} bad-body when the body is not UTF-8 JSON of the expected shape, or
 * too-large when a `Data` frame announces more raw bytes than `limits.maxDataBytes`
 */
export function decodeMessage(frame: Frame, limits: Limits = DEFAULT_LIMITS): Message {
  const { header } = frame;
  let value: unknown;
  try {
    value = JSON.parse(decodeUtf8(frame.body));
  } catch (err) {
    const name = MSG_TYPE_NAMES.get(header.type);
    throw new ProtocolError("bad-body", `Cannot decode ${name} body: not UTF-8 JSON`, {
      cause: err,
    });
  }
  const body = checkBody(header.type, value);
  if (header.type === MsgType.Data && "bytes" in body && body.bytes > limits.maxDataBytes) {
    throw new ProtocolError(
      "too-large",
      `Cannot decode Data: ${body.bytes} raw bytes announced, limit is ${limits.maxDataBytes}`,
    );
  }
  return {
    type: header.type,
    requestId: header.requestId,
    reply: (header.flags & FLAG_REPLY) !== 0,
    body,
  } as Message;
}

/**
 * Incremental frame splitter: push chunks of any size, take whole frames out.
 * Raw bytes that follow a `Data` frame are taken with `takeRaw()`, never parsed as frames.
 *
 * @example
 * ```ts
 * import { FrameDecoder } from "./decode.ts";
 * import { encodeMessage, request } from "./encode.ts";
 * import { MsgType } from "./protocol.ts";
 * const bytes = encodeMessage(request(MsgType.Ping, 1, { sentAtMs: 0 }));
 * const decoder = new FrameDecoder();
 * decoder.push(bytes.subarray(0, 5));
 * if (decoder.next() !== undefined) throw new Error("not complete yet");
 * decoder.push(bytes.subarray(5));
 * if (decoder.next()?.header.requestId !== 1) throw new Error("expected the frame");
 * ```
 */
export class FrameDecoder {
  #limits: Limits;
  #buf = new Uint8Array(INITIAL_BUFFER_BYTES);
  #start = 0;
  #end = 0;
  #header: FrameHeader | undefined;
  #released = false;

  /** @param limits size limits checked on every header */
  constructor(limits: Limits = DEFAULT_LIMITS) {
    this.#limits = limits;
  }

  /** The limits checked on every header from now on (a frame already half read keeps its size). */
  get limits(): Limits {
    return this.#limits;
  }

  set limits(limits: Limits) {
    this.#limits = limits;
  }

  /**
   * Drops every buffered byte and the buffer itself, so that a closed connection that something
   * still references holds no frame memory. The decoder takes no more input afterwards.
   */
  release(): void {
    this.#buf = new Uint8Array(0);
    this.#start = this.#end = 0;
    this.#header = undefined;
    this.#released = true;
  }

  /** Bytes received and not yet taken. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Appends a chunk. Copies it: the caller may reuse `chunk` afterwards. */
  push(chunk: Uint8Array): void {
    if (this.#released) throw new RangeError("Cannot push bytes: the decoder was released");
    if (chunk.length === 0) return;
    if (this.#end + chunk.length > this.#buf.length) {
      const live = this.#end - this.#start;
      const needed = live + chunk.length;
      if (needed > this.#buf.length) {
        // Doubles at least (amortised copies). The limits are checked on each header before
        // its body is buffered, so this stays under about twice the largest frame allowed.
        const grown = new Uint8Array(Math.max(needed, this.#buf.length * 2));
        grown.set(this.#buf.subarray(this.#start, this.#end));
        this.#buf = grown;
      } else {
        this.#buf.copyWithin(0, this.#start, this.#end);
      }
      this.#start = 0;
      this.#end = live;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
  }

  /**
   * Returns the next whole frame, or undefined when more bytes are needed.
   * The frame's body is a view of the decoder's buffer, valid until the next `push()`: decode
   * it first (a copy per frame would be an ArrayBuffer allocation per message).
   *
   * @throws {ProtocolError} on an invalid header; the stream cannot continue after that
   */
  next(): Frame | undefined {
    if (this.#header === undefined) {
      if (this.#end - this.#start < HEADER_SIZE) return undefined;
      this.#header = decodeHeader(this.#buf.subarray(this.#start, this.#end), this.#limits);
      this.#start += HEADER_SIZE;
    }
    const header = this.#header;
    if (this.#end - this.#start < header.bodyBytes) return undefined;
    const body = this.#buf.subarray(this.#start, this.#start + header.bodyBytes);
    this.#start += header.bodyBytes;
    this.#header = undefined;
    if (this.#start === this.#end) {
      this.#start = this.#end = 0;
      // One large frame must not pin a large buffer for the rest of the connection.
      if (this.#buf.length > INITIAL_BUFFER_BYTES) this.#buf = new Uint8Array(INITIAL_BUFFER_BYTES);
    }
    return { header, body };
  }

  /**
   * Takes up to `max` buffered raw bytes (the payload after a `Data` frame). Returns a view that
   * stays valid only until the next `push()`.
   */
  takeRaw(max: number): Uint8Array {
    if (this.#header !== undefined) {
      throw new RangeError("Cannot take raw bytes: a frame is half decoded");
    }
    const n = Math.min(max, this.#end - this.#start);
    const out = this.#buf.subarray(this.#start, this.#start + n);
    this.#start += n;
    return out;
  }

  /**
   * Declares the end of the stream.
   *
   * @throws {ProtocolError} truncated, when a partial frame is left over
   */
  finish(): void {
    const left = this.#end - this.#start;
    if (this.#header !== undefined || left > 0) {
      const have = this.#header ? HEADER_SIZE + left : left;
      throw new ProtocolError(
        "truncated",
        `Cannot decode frame: stream ended inside a frame (${have} bytes of it received)`,
      );
    }
  }
}
