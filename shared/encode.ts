// Encoding of frames: values in, bytes out. Pure: no I/O.
import {
  type Bodies,
  DEFAULT_LIMITS,
  FLAG_REPLY,
  type FrameHeader,
  HEADER_SIZE,
  type Limits,
  MAGIC,
  type Message,
  MSG_TYPE_NAMES,
  PROTOCOL_VERSION,
} from "./protocol.ts";
import type { MsgType } from "./protocol.ts";
import { carveBytes } from "./byte_slab.ts";

const encoder = new TextEncoder();

/**
 * Writes a frame header into `target` (at least HEADER_SIZE bytes).
 *
 * @example
 * ```ts
 * import { encodeHeader } from "./encode.ts";
 * import { MsgType } from "./protocol.ts";
 * const bytes = encodeHeader({ type: MsgType.Ping, flags: 0, requestId: 7, bodyBytes: 2 });
 * if (bytes.length !== 16) throw new Error("header is 16 bytes");
 * ```
 */
export function encodeHeader(
  header: FrameHeader,
  target: Uint8Array = new Uint8Array(HEADER_SIZE),
): Uint8Array {
  if (target.length < HEADER_SIZE) {
    throw new RangeError(`Cannot encode header: need ${HEADER_SIZE} bytes, got ${target.length}`);
  }
  // Byte by byte rather than through a DataView: a DataView is an allocation per frame.
  target[0] = MAGIC >>> 8;
  target[1] = MAGIC & 0xff;
  target[2] = PROTOCOL_VERSION;
  target[3] = header.type;
  target[4] = header.flags >>> 8;
  target[5] = header.flags & 0xff;
  target[6] = 0;
  target[7] = 0;
  writeU32(target, 8, header.requestId);
  writeU32(target, 12, header.bodyBytes);
  return target;
}

function writeU32(target: Uint8Array, offset: number, value: number): void {
  target[offset] = value >>> 24;
  target[offset + 1] = (value >>> 16) & 0xff;
  target[offset + 2] = (value >>> 8) & 0xff;
  target[offset + 3] = value & 0xff;
}

/**
 * Encodes one message as a whole frame (header + JSON body). A small frame is a view into a
 * shared slab (see byte_slab.ts): send it rather than keep it.
 *
 * @throws {RangeError} when the body is larger than `limits.maxBodyBytes` or the request id is
 * not a u32: both are bugs of the caller, not of the other side
 */
export function encodeMessage(message: Message, limits: Limits = DEFAULT_LIMITS): Uint8Array {
  if (
    !Number.isInteger(message.requestId) || message.requestId < 0 || message.requestId > 0xffffffff
  ) {
    throw new RangeError(`Cannot encode message: request id ${message.requestId} is not a u32`);
  }
  const json = JSON.stringify(message.body);
  // Mostly ASCII: encode straight into a frame of that size; anything else takes a second pass.
  // Frames are carved from shared slabs (see byte_slab.ts): they live until written.
  let frame = carveBytes(HEADER_SIZE + json.length);
  let bodyBytes = json.length;
  if (encoder.encodeInto(json, frame.subarray(HEADER_SIZE)).read < json.length) {
    const body = encoder.encode(json);
    frame = carveBytes(HEADER_SIZE + body.length);
    frame.set(body, HEADER_SIZE);
    bodyBytes = body.length;
  }
  if (bodyBytes > limits.maxBodyBytes) {
    const name = MSG_TYPE_NAMES.get(message.type);
    throw new RangeError(
      `Cannot encode ${name}: body is ${bodyBytes} bytes, limit is ${limits.maxBodyBytes}`,
    );
  }
  encodeHeader({
    type: message.type,
    flags: message.reply ? FLAG_REPLY : 0,
    requestId: message.requestId,
    bodyBytes,
  }, frame);
  return frame;
}

/** Builds a request message (reply flag clear). */
export function request<T extends MsgType>(type: T, requestId: number, body: Bodies[T]): Message {
  return { type, requestId, reply: false, body } as Message;
}

/** Builds the reply to the request with `requestId`. */
export function reply<T extends MsgType>(type: T, requestId: number, body: Bodies[T]): Message {
  return { type, requestId, reply: true, body } as Message;
}
