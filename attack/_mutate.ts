// The fuzzer's cases: valid frames from the project's encoder, then mutated in the header, in
// the JSON body (before or after encoding), truncated, repeated or given lying lengths.
// Pure: no I/O; the same seed and case number give the same bytes.
import { encodeHeader } from "../shared/encode.ts";
import {
  DEFAULT_LIMITS,
  FLAG_REPLY,
  HEADER_SIZE,
  type Message,
  MSG_TYPE_NAMES,
  MsgType,
} from "../shared/protocol.ts";
import { type Rng, rng } from "../tests/unit/_rng.ts";
import { fakeEntry, joinBytes } from "./_frames.ts";

const encoder = new TextEncoder();

/** The random source of case `index` under `seed`: cases can be replayed one by one. */
export function caseRng(seed: number, index: number): Rng {
  return rng((seed ^ Math.imul(index + 1, 0x9e3779b9)) >>> 0);
}

/** Values that break validators: wrong types, edges of integer ranges, long and odd strings. */
const ODD_VALUES: readonly unknown[] = [
  -1,
  0,
  1.5,
  2 ** 31,
  2 ** 32,
  2 ** 53,
  Number.MAX_SAFE_INTEGER,
  1e308,
  "",
  "x".repeat(5000),
  "é".repeat(600),
  "../../etc/passwd",
  ".lanshare",
  "a\u0000b",
  "*?*?*?*?*?*#",
  "\ud800",
  null,
  true,
  [],
  {},
  [1, 2, 3],
  { fname: "nested" },
];

/** What a target's valid messages are made of. */
export interface CaseContext {
  /** A file the target shares (peer), or undefined (server). */
  fname?: string;
  rootHash?: string;
  size?: number;
}

/** A valid message of the index protocol, with fields picked at random. */
export function indexMessage(rand: Rng, n: number): Message {
  const fname = rand.pick([`fuzz-${rand.int(50)}.bin`, "résumé.pdf", "a", "日本語.txt"]);
  const id = rand.range(1, 0xffffffff);
  const pick = rand.int(12);
  const req = (type: MsgType, body: unknown): Message =>
    ({ type, requestId: id, reply: false, body }) as Message;
  switch (pick) {
    case 0:
      return req(MsgType.Hello, {
        hostname: `fuzz-${n}-${rand.int(1000)}`,
        p2pPort: 9,
        protocol: 1,
      });
    case 1:
    case 2:
      return req(MsgType.Publish, { ...fakeEntry(fname, rand.int(5_000_000)) });
    case 3:
      return req(MsgType.Unpublish, { fname });
    case 4:
    case 5:
      return req(MsgType.WhoHas, { fname });
    case 6:
      return req(MsgType.Search, {
        pattern: rand.pick(["", "fuzz", "*.bin", "?", "f*z"]),
        offset: rand.int(10),
        limit: rand.range(1, 1000),
      });
    case 7:
      return req(MsgType.Ping, { sentAtMs: rand.int(2 ** 31) });
    case 8:
      return { type: MsgType.Pong, requestId: id, reply: true, body: { sentAtMs: 1 } };
    case 9:
      return {
        type: MsgType.Shares,
        requestId: id,
        reply: true,
        body: { files: [fakeEntry(fname)] },
      };
    case 10:
      return {
        type: MsgType.Error,
        requestId: rand.pick([0, id]),
        reply: true,
        body: {
          code: "internal",
          message: "fuzz",
        },
      };
    default:
      return req(MsgType.Goodbye, { reason: "fuzz" });
  }
}

/** A valid message of the transfer protocol about the shared file in `ctx`. */
export function transferMessage(rand: Rng, n: number, ctx: CaseContext): Message {
  const fname = rand.chance(0.8) ? ctx.fname ?? "fuzz.bin" : `other-${rand.int(5)}.bin`;
  const rootHash = ctx.rootHash ?? "ab".repeat(32);
  const size = ctx.size ?? 1;
  const id = rand.range(1, 0xffffffff);
  switch (rand.int(6)) {
    case 0:
    case 1:
      return {
        type: MsgType.GetInfo,
        requestId: id,
        reply: false,
        body: { fname, from: `fuzz-${n}:${rand.range(1, 65535)}` },
      };
    case 2:
    case 3: {
      const offset = rand.int(size);
      return {
        type: MsgType.GetRange,
        requestId: id,
        reply: false,
        body: { fname, rootHash, offset, bytes: rand.range(1, Math.min(size - offset, 65536)) },
      };
    }
    case 4:
      return { type: MsgType.Ping, requestId: id, reply: false, body: { sentAtMs: 1 } };
    default:
      return { type: MsgType.Goodbye, requestId: 0, reply: false, body: { reason: "fuzz" } };
  }
}

/** Header + body bytes of `message`, with `bodyBytes` as given (a lie, possibly). */
function rawFrame(message: Message, body: Uint8Array, bodyBytes = body.length): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + body.length);
  encodeHeader({
    type: message.type,
    flags: message.reply ? FLAG_REPLY : 0,
    requestId: message.requestId,
    bodyBytes,
  }, out);
  out.set(body, HEADER_SIZE);
  return out;
}

/** The JSON body of `message` with one field changed, removed or added. */
function mutateBody(rand: Rng, message: Message): string {
  const body: Record<string, unknown> = { ...(message.body as Record<string, unknown>) };
  const keys = Object.keys(body);
  const key = keys.length > 0 && rand.chance(0.8) ? rand.pick(keys) : `extra${rand.int(3)}`;
  switch (rand.int(4)) {
    case 0:
      delete body[key];
      break;
    case 1:
      body[key] = deepNest(rand.range(10, 5000));
      break;
    default:
      body[key] = rand.pick(ODD_VALUES);
  }
  return JSON.stringify(body);
}

function deepNest(depth: number): unknown {
  let value: unknown = 0;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

/** Text-level damage to JSON: a character inserted, removed or the text cut. */
function damageJson(rand: Rng, json: string): Uint8Array {
  const at = rand.int(json.length + 1);
  switch (rand.int(6)) {
    case 0:
      return encoder.encode(json.slice(0, at));
    case 1:
      return encoder.encode(
        json.slice(0, at) + rand.pick(['"', "{", "}", ",", "\\", "\u0000"]) + json.slice(at),
      );
    case 2:
      return encoder.encode(rand.pick(["[]", "1", '"s"', "null", "", "{}{}", "\ufeff{}"]));
    case 3: {
      // Not UTF-8.
      const bytes = encoder.encode(json);
      return joinBytes([
        bytes.subarray(0, at),
        new Uint8Array([0xc3, 0x28, 0xff]),
        bytes.subarray(at),
      ]);
    }
    case 4:
      return encoder.encode(json.slice(0, at) + json.slice(at + 1));
    default:
      return encoder.encode(`${json}${" ".repeat(rand.int(100))}`);
  }
}

/** Lengths that lie about the body, including the protocol's limit and beyond. */
function oddLength(rand: Rng, actual: number): number {
  return rand.pick([
    0,
    Math.max(actual - 1, 0),
    actual + 1,
    actual + rand.int(1000),
    DEFAULT_LIMITS.maxBodyBytes,
    DEFAULT_LIMITS.maxBodyBytes + 1,
    0xffffffff,
    rand.int(0x100000000),
  ]);
}

/**
 * One frame to send: `message` encoded, then (with probability `mutateChance`) mutated in one
 * of several ways. Returns the bytes and a short label of what was done.
 */
export function mutatedFrame(
  rand: Rng,
  message: Message,
  mutateChance: number,
): { bytes: Uint8Array; how: string } {
  const json = JSON.stringify(message.body);
  const body = encoder.encode(json);
  if (!rand.chance(mutateChance)) return { bytes: rawFrame(message, body), how: "valid" };
  const bytes = rawFrame(message, body);
  switch (rand.int(10)) {
    case 0: {
      for (let i = rand.range(1, 4); i > 0; i--) {
        const at = rand.int(bytes.length);
        bytes[at] = bytes[at]! ^ (1 << rand.int(8));
      }
      return { bytes, how: "bit flips" };
    }
    case 1: {
      const at = rand.int(HEADER_SIZE);
      bytes[at] = rand.pick([0x00, 0xff, 0x7f, 0x80, rand.int(256)]);
      return { bytes, how: `header byte ${at}` };
    }
    case 2: {
      const types = [...MSG_TYPE_NAMES.keys()];
      bytes[3] = rand.chance(0.8) ? rand.pick(types) : rand.int(256);
      return { bytes, how: "type swapped" };
    }
    case 3:
      return { bytes: rawFrame(message, body, oddLength(rand, body.length)), how: "lying length" };
    case 4:
      return { bytes: bytes.subarray(0, rand.int(bytes.length)), how: "truncated" };
    case 5:
    case 6:
      return { bytes: rawFrame(message, encoder.encode(mutateBody(rand, message))), how: "field" };
    case 7:
      return { bytes: rawFrame(message, damageJson(rand, json)), how: "json damage" };
    case 8: {
      const times = rand.range(2, 50);
      return { bytes: joinBytes(Array.from({ length: times }, () => bytes)), how: `×${times}` };
    }
    default:
      return { bytes: rand.bytes(rand.range(1, 64)), how: "garbage" };
  }
}
