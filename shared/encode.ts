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
  const view = new DataView(target.buffer, target.byteOffset, HEADER_SIZE);
  view.setUint16(0, MAGIC);
  view.setUint8(2, PROTOCOL_VERSION);
  view.setUint8(3, header.type);
  view.setUint16(4, header.flags);
  view.setUint16(6, 0);
  view.setUint32(8, header.requestId);
  view.setUint32(12, header.bodyBytes);
  return target;
}

/**
 * Encodes one message as a whole frame (header + JSON body).
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
  let frame = new Uint8Array(HEADER_SIZE + json.length);
  let bodyBytes = json.length;
  if (encoder.encodeInto(json, frame.subarray(HEADER_SIZE)).read < json.length) {
    const body = encoder.encode(json);
    frame = new Uint8Array(HEADER_SIZE + body.length);
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
