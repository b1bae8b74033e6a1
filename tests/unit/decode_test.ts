// Header checks, body checks, FrameDecoder chunking and a seeded mutation fuzz of
// shared/decode.ts.
import assert from "node:assert/strict";
import { decodeHeader, decodeMessage, type Frame, FrameDecoder } from "../../shared/decode.ts";
import { encodeHeader, encodeMessage, reply } from "../../shared/encode.ts";
import { ProtocolError } from "../../shared/errors.ts";
import {
  DEFAULT_LIMITS,
  type ErrorCode,
  HEADER_SIZE,
  type Limits,
  type Message,
  MsgType,
} from "../../shared/protocol.ts";
import { assertProtocolError } from "./_assert.ts";
import { rng } from "./_rng.ts";
import {
  concat,
  FILE,
  hex,
  loadGoldenFrames,
  SAMPLE_BY_NAME,
  SAMPLES,
  unhex,
  WIRE_NUMBERS,
} from "./_samples.ts";

const encoder = new TextEncoder();

/** A header for `type` with a valid layout; fields can be overridden byte by byte afterwards. */
function header(type: number, bodyBytes: number, flags = 0, requestId = 1): Uint8Array {
  return encodeHeader({ type, flags, requestId, bodyBytes });
}

/** A frame of `type` whose body is `body` verbatim (text is encoded as UTF-8). */
function frameOf(type: MsgType, body: string | Uint8Array, flags = 0): Frame {
  const bytes = typeof body === "string" ? encoder.encode(body) : body;
  return { header: { type, flags, requestId: 1, bodyBytes: bytes.length }, body: bytes };
}

/** What a reader of a stream sees: messages, and a Data frame's raw payload after it. */
type Event = Message | Uint8Array;

/**
 * Reads a frame stream the way shared/framing.ts does: frames through FrameDecoder and
 * decodeMessage, then exactly `bytes` raw bytes after each Data frame through takeRaw().
 */
class StreamReader {
  readonly events: Event[] = [];
  readonly #decoder: FrameDecoder;
  readonly #limits: Limits;
  readonly #keepRaw: boolean;
  #rawLeft = 0;
  #raw: Uint8Array[] = [];

  constructor(limits: Limits = DEFAULT_LIMITS, keepRaw = true) {
    this.#decoder = new FrameDecoder(limits);
    this.#limits = limits;
    this.#keepRaw = keepRaw;
  }

  push(chunk: Uint8Array): void {
    this.#decoder.push(chunk);
    for (;;) {
      if (this.#rawLeft > 0) {
        const got = this.#decoder.takeRaw(this.#rawLeft);
        if (got.length === 0) return;
        if (this.#keepRaw) this.#raw.push(got.slice());
        this.#rawLeft -= got.length;
        if (this.#rawLeft === 0) {
          this.events.push(concat(this.#raw));
          this.#raw = [];
        }
        continue;
      }
      const frame = this.#decoder.next();
      if (frame === undefined) return;
      const message = decodeMessage(frame, this.#limits);
      this.events.push(message);
      if (message.type === MsgType.Data) this.#rawLeft = message.body.bytes;
    }
  }

  finish(): Event[] {
    if (this.#rawLeft > 0) {
      throw new ProtocolError("truncated", `Cannot read data: ${this.#rawLeft} bytes missing`);
    }
    this.#decoder.finish();
    return this.events;
  }
}

/** Every sample as one stream, with the Data sample's payload right after its frame. */
function sampleStream(): { bytes: Uint8Array; events: Event[] } {
  const parts: Uint8Array[] = [];
  const events: Event[] = [];
  for (const message of SAMPLES) {
    parts.push(encodeMessage(message));
    events.push(message);
    if (message.type === MsgType.Data) {
      parts.push(FILE.tail);
      events.push(FILE.tail);
    }
  }
  return { bytes: concat(parts), events };
}

// --- golden frames -----------------------------------------------------------------------------

Deno.test("decodeMessage() round-trips every golden frame", async () => {
  for (const [name, golden] of Object.entries(await loadGoldenFrames())) {
    const bytes = unhex(golden.header + golden.body);
    const frameHeader = decodeHeader(bytes);
    assert.deepEqual(frameHeader, {
      type: WIRE_NUMBERS[name],
      flags: golden.message.reply ? 1 : 0,
      requestId: golden.message.requestId,
      bodyBytes: bytes.length - HEADER_SIZE,
    }, name);
    const message = decodeMessage({ header: frameHeader, body: bytes.subarray(HEADER_SIZE) });
    assert.deepEqual(message, { ...golden.message, type: WIRE_NUMBERS[name] }, name);
    assert.deepEqual(message, SAMPLE_BY_NAME[name as keyof typeof MsgType], name);
  }
});

// --- decodeHeader ------------------------------------------------------------------------------

Deno.test("decodeHeader() reads every field big-endian", () => {
  const bytes = unhex("4c53 02 17 0001 0000 01020304 00000a0b");
  assert.deepEqual(decodeHeader(bytes), {
    type: MsgType.Search,
    flags: 1,
    requestId: 0x01020304,
    bodyBytes: 0x0a0b,
  });
});

Deno.test("decodeHeader() reads a header at a nonzero byteOffset", () => {
  const backing = concat([new Uint8Array([0xff, 0xff, 0xff]), header(MsgType.Ping, 14)]);
  assert.equal(decodeHeader(backing.subarray(3)).bodyBytes, 14);
});

Deno.test("decodeHeader() throws RangeError on fewer than 16 bytes", () => {
  assert.throws(() => decodeHeader(header(MsgType.Ping, 0).subarray(0, 15)), RangeError);
});

Deno.test("decodeHeader() rejects bad magic", () => {
  for (const start of ["4c54", "534c", "0000", "4745"]) { // "GE" as in an HTTP "GET "
    const bytes = header(MsgType.Ping, 0);
    bytes.set(unhex(start), 0);
    assertProtocolError(() => decodeHeader(bytes), "bad-magic", start);
  }
});

Deno.test("decodeHeader() rejects a wrong version", () => {
  for (const version of [0, 1, 3, 0xff]) {
    const bytes = header(MsgType.Ping, 0);
    bytes[2] = version;
    assertProtocolError(() => decodeHeader(bytes), "bad-version", String(version));
  }
});

Deno.test("decodeHeader() rejects an unknown type", () => {
  const known = new Set(Object.values(WIRE_NUMBERS));
  for (let type = 0; type < 256; type++) {
    if (known.has(type)) {
      assert.equal(decodeHeader(header(type, 0)).type, type);
    } else {
      assertProtocolError(() => decodeHeader(header(type, 0)), "unknown-type", String(type));
    }
  }
});

Deno.test("decodeHeader() rejects unknown flag bits", () => {
  for (let bit = 1; bit < 16; bit++) {
    assertProtocolError(
      () => decodeHeader(header(MsgType.Ping, 0, 1 << bit)),
      "bad-flags",
      `bit ${bit}`,
    );
  }
  assert.equal(decodeHeader(header(MsgType.Ping, 0, 1)).flags, 1);
});

Deno.test("decodeHeader() rejects nonzero reserved bytes", () => {
  for (const reserved of ["0001", "8000", "ffff"]) {
    const bytes = header(MsgType.Ping, 0);
    bytes.set(unhex(reserved), 6);
    assertProtocolError(() => decodeHeader(bytes), "bad-flags", reserved);
  }
});

Deno.test("decodeHeader() rejects body above limit", () => {
  const max = DEFAULT_LIMITS.maxBodyBytes;
  assert.equal(decodeHeader(header(MsgType.Info, max)).bodyBytes, max);
  for (const bodyBytes of [max + 1, 2 ** 31, 0xffffffff]) {
    assertProtocolError(
      () => decodeHeader(header(MsgType.Info, bodyBytes)),
      "too-large",
      String(bodyBytes),
    );
  }
  const small: Limits = { maxBodyBytes: 100, maxDataBytes: 100 };
  assert.equal(decodeHeader(header(MsgType.Ping, 100), small).bodyBytes, 100);
  assertProtocolError(() => decodeHeader(header(MsgType.Ping, 101), small), "too-large");
});

// --- decodeMessage -----------------------------------------------------------------------------

Deno.test("decodeMessage() keeps the request id and the reply flag", () => {
  const frame = frameOf(MsgType.Pong, '{"sentAtMs":5}', 1);
  frame.header.requestId = 0xfffffffe;
  assert.deepEqual(decodeMessage(frame), reply(MsgType.Pong, 0xfffffffe, { sentAtMs: 5 }));
  assert.equal(decodeMessage(frameOf(MsgType.Pong, '{"sentAtMs":5}', 0)).reply, false);
});

Deno.test("decodeMessage() rejects a body that is not UTF-8", () => {
  const cases = {
    "invalid byte": [0x7b, 0xff, 0x7d],
    "overlong NUL": [0x22, 0xc0, 0x80, 0x22],
    "surrogate": [0x22, 0xed, 0xa0, 0x80, 0x22],
    "cut sequence": [0x22, 0xe6, 0x97, 0x22],
  };
  for (const [label, bytes] of Object.entries(cases)) {
    const err = assertProtocolError(
      () => decodeMessage(frameOf(MsgType.Goodbye, new Uint8Array(bytes))),
      "bad-body",
      label,
    );
    assert.ok(err.cause instanceof Error, `${label}: cause kept`);
  }
});

Deno.test("decodeMessage() rejects a body that is not JSON", () => {
  for (const body of ["", "{", "{'sentAtMs':1}", '{"sentAtMs":1}x', "sentAtMs=1", "NaN"]) {
    assertProtocolError(() => decodeMessage(frameOf(MsgType.Ping, body)), "bad-body", body);
  }
});

Deno.test("decodeMessage() rejects JSON that is not an object", () => {
  for (const body of ["null", "[]", "1", '"x"', "true", '[{"sentAtMs":1}]']) {
    assertProtocolError(() => decodeMessage(frameOf(MsgType.Ping, body)), "bad-body", body);
    assertProtocolError(() => decodeMessage(frameOf(MsgType.ListShares, body)), "bad-body", body);
  }
});

Deno.test("decodeMessage() rejects wrong field types", () => {
  const cases: [MsgType, string][] = [
    [MsgType.Ping, '{"sentAtMs":"1"}'],
    [MsgType.Ping, '{"sentAtMs":null}'],
    [MsgType.Goodbye, '{"reason":42}'],
    [MsgType.Ok, '{"removed":"yes"}'],
    [MsgType.Hello, '{"hostname":["a"],"p2pPort":7072,"protocol":1}'],
    [MsgType.SearchResult, '{"entries":{},"total":0}'],
    [MsgType.Shares, '{"files":[1]}'],
    [MsgType.Error, '{"code":"no-such-code","message":"x"}'],
    [MsgType.Published, '{"fname":"a","status":"deleted"}'],
  ];
  for (const [type, body] of cases) {
    assertProtocolError(() => decodeMessage(frameOf(type, body)), "bad-body", body);
  }
});

Deno.test("decodeMessage() rejects missing fields", () => {
  const cases: [MsgType, string][] = [
    [MsgType.Ping, "{}"],
    [MsgType.Hello, '{"hostname":"a","protocol":1}'],
    [MsgType.GetRange, '{"fname":"a","offset":0,"bytes":1}'],
    [MsgType.Data, '{"offset":0}'],
    [MsgType.Error, '{"code":"busy"}'],
  ];
  for (const [type, body] of cases) {
    assertProtocolError(() => decodeMessage(frameOf(type, body)), "bad-body", body);
  }
});

Deno.test("decodeMessage() rejects negative and non-integer numbers", () => {
  for (const n of ["-1", "1.5", "-0.5", "1e300", "9007199254740992"]) {
    assertProtocolError(
      () => decodeMessage(frameOf(MsgType.Ping, `{"sentAtMs":${n}}`)),
      "bad-body",
      n,
    );
    assertProtocolError(
      () => decodeMessage(frameOf(MsgType.Data, `{"offset":0,"bytes":${n}}`)),
      "bad-body",
      n,
    );
  }
  assert.deepEqual(
    decodeMessage(frameOf(MsgType.Ping, '{"sentAtMs":9007199254740991}')).body,
    { sentAtMs: Number.MAX_SAFE_INTEGER },
  );
});

Deno.test("decodeMessage() rejects an out-of-range port", () => {
  const hello = (port: number) =>
    JSON.stringify({ ...SAMPLE_BY_NAME.Hello.body, hostname: "a", p2pPort: port });
  assert.equal(decodeMessage(frameOf(MsgType.Hello, hello(65535))).type, MsgType.Hello);
  assertProtocolError(() => decodeMessage(frameOf(MsgType.Hello, hello(65536))), "bad-body");
  const source = { ...SAMPLE_BY_NAME.Sources.body } as { sources: { port: number }[] };
  const body = JSON.stringify({ ...source, sources: [{ ...source.sources[0], port: 70000 }] });
  assertProtocolError(() => decodeMessage(frameOf(MsgType.Sources, body)), "bad-body");
});

Deno.test("decodeMessage() rejects a bad hash hex", () => {
  const bad = [
    FILE.rootHash.toUpperCase(),
    FILE.rootHash.slice(1),
    FILE.rootHash + "0",
    "g".repeat(64),
    "",
  ];
  for (const rootHash of bad) {
    const body = JSON.stringify({ fname: "a", rootHash, offset: 0, bytes: 1 });
    assertProtocolError(() => decodeMessage(frameOf(MsgType.GetRange, body)), "bad-body", rootHash);
    const info = JSON.stringify({ fname: "a", rootHash });
    assertProtocolError(() => decodeMessage(frameOf(MsgType.GetInfo, info)), "bad-body", rootHash);
  }
});

Deno.test("decodeMessage() rejects a Data frame announcing more than limits.maxDataBytes", () => {
  const data = (bytes: number) => frameOf(MsgType.Data, `{"offset":0,"bytes":${bytes}}`, 1);
  const max = DEFAULT_LIMITS.maxDataBytes;
  assert.equal(decodeMessage(data(max)).type, MsgType.Data);
  assertProtocolError(() => decodeMessage(data(max + 1)), "too-large");
  assertProtocolError(() => decodeMessage(data(2 ** 40)), "too-large");
  const small: Limits = { ...DEFAULT_LIMITS, maxDataBytes: 5 };
  assert.equal(decodeMessage(data(5), small).type, MsgType.Data);
  assertProtocolError(() => decodeMessage(data(6), small), "too-large");
});

// --- FrameDecoder ------------------------------------------------------------------------------

Deno.test("FrameDecoder yields the same messages for every split point", () => {
  const { bytes, events } = sampleStream();
  for (let i = 0; i <= bytes.length; i++) {
    const reader = new StreamReader();
    reader.push(bytes.subarray(0, i));
    reader.push(bytes.subarray(i));
    assert.deepEqual(reader.finish(), events, `split at ${i}`);
  }
});

Deno.test("FrameDecoder yields the same messages when fed byte by byte", () => {
  const { bytes, events } = sampleStream();
  const reader = new StreamReader();
  for (let i = 0; i < bytes.length; i++) reader.push(bytes.subarray(i, i + 1));
  assert.deepEqual(reader.finish(), events);
});

Deno.test("FrameDecoder yields every frame of coalesced frames in one push", () => {
  const { bytes, events } = sampleStream();
  const reader = new StreamReader();
  reader.push(bytes);
  assert.deepEqual(reader.finish(), events);

  const decoder = new FrameDecoder();
  decoder.push(concat(SAMPLES.filter((m) => m.type !== MsgType.Data).map((m) => encodeMessage(m))));
  let count = 0;
  for (let frame = decoder.next(); frame; frame = decoder.next()) count++;
  assert.equal(count, SAMPLES.length - 1);
  assert.equal(decoder.buffered, 0);
  decoder.finish();
});

Deno.test("FrameDecoder.next() returns undefined until a frame is whole", () => {
  const bytes = encodeMessage(SAMPLE_BY_NAME.Ping);
  const decoder = new FrameDecoder();
  assert.equal(decoder.next(), undefined);
  decoder.push(bytes.subarray(0, 15));
  assert.equal(decoder.next(), undefined);
  decoder.push(bytes.subarray(15, bytes.length - 1));
  assert.equal(decoder.next(), undefined);
  decoder.push(bytes.subarray(bytes.length - 1));
  assert.deepEqual(decodeMessage(decoder.next()!), SAMPLE_BY_NAME.Ping);
  assert.equal(decoder.next(), undefined);
});

Deno.test("FrameDecoder.push() copies the chunk; a frame's body is valid until the next push", () => {
  const bytes = encodeMessage(SAMPLE_BY_NAME.Ping);
  const chunk = bytes.slice();
  const decoder = new FrameDecoder();
  decoder.push(chunk);
  chunk.fill(0);
  const frame = decoder.next()!;
  assert.deepEqual(frame.body, bytes.subarray(HEADER_SIZE));
  assert.deepEqual(decodeMessage(frame), SAMPLE_BY_NAME.Ping);
  // The body is a view, not a copy: the next push may reuse its bytes.
  decoder.push(encodeMessage(SAMPLE_BY_NAME.Goodbye));
  assert.deepEqual(decodeMessage(decoder.next()!), SAMPLE_BY_NAME.Goodbye);
  assert.notDeepEqual(frame.body, bytes.subarray(HEADER_SIZE));
});

Deno.test("FrameDecoder decodes a body larger than its initial buffer in odd chunks", () => {
  const hashes = new Uint8Array(6000 * 32).map((_, i) => i * 7);
  const big = reply(MsgType.Info, 3, {
    fname: "big.iso",
    size: 6000 * 1048576,
    mtimeMs: 0,
    rootHash: FILE.rootHash,
    pieceSize: 1048576,
    pieceHashes: hashes.toBase64(),
  });
  const stream = concat([encodeMessage(big), encodeMessage(SAMPLE_BY_NAME.Ping)]);
  assert.ok(stream.length > 200_000);
  const reader = new StreamReader();
  for (let i = 0; i < stream.length; i += 4093) reader.push(stream.subarray(i, i + 4093));
  assert.deepEqual(reader.finish(), [big, SAMPLE_BY_NAME.Ping]);
});

Deno.test("FrameDecoder decodes a long stream of small frames that wraps its buffer", () => {
  // Partial frames stay buffered between pushes, so the buffer is compacted, not just reset.
  const { bytes, events } = sampleStream();
  const rounds = Math.ceil((4 * 64 * 1024) / bytes.length);
  const stream = concat(new Array(rounds).fill(bytes));
  for (const chunkSize of [997, 4093, 65535]) {
    const reader = new StreamReader();
    for (let i = 0; i < stream.length; i += chunkSize) {
      reader.push(stream.subarray(i, i + chunkSize));
    }
    const all = reader.finish();
    assert.equal(all.length, events.length * rounds, `chunks of ${chunkSize}`);
    for (let r = 0; r < rounds; r++) {
      const round = all.slice(r * events.length, (r + 1) * events.length);
      assert.deepEqual(round, events, `chunks of ${chunkSize}, round ${r}`);
    }
  }
});

Deno.test("FrameDecoder.takeRaw() returns the raw bytes after a Data frame", () => {
  const data = encodeMessage(SAMPLE_BY_NAME.Data);
  const ping = encodeMessage(SAMPLE_BY_NAME.Ping);
  const decoder = new FrameDecoder();
  decoder.push(concat([data, FILE.tail, ping]));
  assert.deepEqual(decodeMessage(decoder.next()!), SAMPLE_BY_NAME.Data);
  assert.deepEqual(decoder.takeRaw(FILE.tail.length), FILE.tail);
  assert.deepEqual(decodeMessage(decoder.next()!), SAMPLE_BY_NAME.Ping);
  assert.equal(decoder.next(), undefined);
  decoder.finish();
});

Deno.test("FrameDecoder.takeRaw() returns at most what is buffered", () => {
  const decoder = new FrameDecoder();
  decoder.push(concat([encodeMessage(SAMPLE_BY_NAME.Data), FILE.tail.subarray(0, 2)]));
  assert.equal(decoder.next()?.header.type, MsgType.Data);
  assert.deepEqual(decoder.takeRaw(5), FILE.tail.subarray(0, 2));
  assert.deepEqual(decoder.takeRaw(5), new Uint8Array(0));
  decoder.push(concat([FILE.tail.subarray(2), encodeMessage(SAMPLE_BY_NAME.Ping)]));
  assert.deepEqual(decoder.takeRaw(0), new Uint8Array(0));
  assert.deepEqual(decoder.takeRaw(3), FILE.tail.subarray(2));
  assert.deepEqual(decodeMessage(decoder.next()!), SAMPLE_BY_NAME.Ping);
  decoder.finish();
});

Deno.test("FrameDecoder.takeRaw() throws RangeError inside a frame", () => {
  const decoder = new FrameDecoder();
  decoder.push(encodeMessage(SAMPLE_BY_NAME.Ping).subarray(0, 20));
  assert.equal(decoder.next(), undefined);
  assert.throws(() => decoder.takeRaw(1), RangeError);
});

Deno.test("FrameDecoder.finish() throws truncated on leftovers", () => {
  const bytes = encodeMessage(SAMPLE_BY_NAME.Ping);
  for (const cut of [1, 15, 16, 17, bytes.length - 1]) {
    const decoder = new FrameDecoder();
    decoder.push(bytes.subarray(0, cut));
    assert.equal(decoder.next(), undefined);
    assertProtocolError(() => decoder.finish(), "truncated", `cut at ${cut}`);
  }
  const decoder = new FrameDecoder();
  decoder.push(concat([bytes, bytes.subarray(0, 3)]));
  assert.ok(decoder.next());
  assertProtocolError(() => decoder.finish(), "truncated", "frame and a bit");
});

Deno.test("FrameDecoder.finish() accepts a stream that ends between frames", () => {
  const decoder = new FrameDecoder();
  decoder.finish();
  decoder.push(encodeMessage(SAMPLE_BY_NAME.Ping));
  assert.ok(decoder.next());
  decoder.finish();
});

Deno.test("FrameDecoder rejects an oversize header before the body arrives", () => {
  for (const bodyBytes of [2 ** 31, DEFAULT_LIMITS.maxBodyBytes + 1, 0xffffffff]) {
    const decoder = new FrameDecoder();
    decoder.push(header(MsgType.Publish, bodyBytes));
    assert.equal(decoder.buffered, HEADER_SIZE);
    assertProtocolError(() => decoder.next(), "too-large", String(bodyBytes));
  }
  const small = new FrameDecoder({ maxBodyBytes: 10, maxDataBytes: 10 });
  small.push(header(MsgType.Ping, 11));
  assertProtocolError(() => small.next(), "too-large");
});

Deno.test("FrameDecoder keeps failing after a bad header", () => {
  const decoder = new FrameDecoder();
  const bad = header(MsgType.Ping, 14);
  bad[0] = 0;
  decoder.push(concat([bad, encodeMessage(SAMPLE_BY_NAME.Ping)]));
  assertProtocolError(() => decoder.next(), "bad-magic");
  assertProtocolError(() => decoder.next(), "bad-magic", "second call");
});

// --- fuzz --------------------------------------------------------------------------------------

const FUZZ_SEED = 0x5eed_1a25;
const FUZZ_CASES = 30_000;

/** A random stream of 1–4 sample frames (a Data frame with its payload) and the frame offsets. */
function randomStream(
  rand: ReturnType<typeof rng>,
  mutateBodies: boolean,
): { bytes: Uint8Array; starts: number[] } {
  const parts: Uint8Array[] = [];
  const starts: number[] = [];
  let offset = 0;
  for (let n = rand.range(1, 4); n > 0; n--) {
    const message = rand.pick(SAMPLES);
    let frame = encodeMessage(message);
    if (mutateBodies && rand.chance(0.3)) frame = mutateBody(rand, frame);
    starts.push(offset);
    parts.push(frame);
    offset += frame.length;
    if (message.type === MsgType.Data) {
      parts.push(FILE.tail);
      offset += FILE.tail.length;
    }
  }
  return { bytes: concat(parts), starts };
}

const WEIRD_VALUES = [
  "-1",
  "1.5",
  "1e400",
  "99999999999999999999",
  "null",
  "true",
  '""',
  '"\\u0000"',
  "[]",
  "{}",
  '"x"',
  "4294967296",
  "67108865",
];

/** Changes the JSON text of one frame's body and fixes its length: valid header, odd body. */
function mutateBody(rand: ReturnType<typeof rng>, frame: Uint8Array): Uint8Array {
  let text = new TextDecoder().decode(frame.subarray(HEADER_SIZE));
  const choice = rand.int(4);
  if (choice === 0) {
    // Replace one value (number, string, literal) with an odd one.
    const values = [...text.matchAll(/:(-?\d+|"(?:[^"\\]|\\.)*"|true|false)/g)];
    if (values.length > 0) {
      const match = rand.pick(values);
      const at = match.index + 1;
      text = text.slice(0, at) + rand.pick(WEIRD_VALUES) + text.slice(at + match[1]!.length);
    }
  } else if (choice === 1) {
    const at = rand.int(text.length);
    text = text.slice(0, at) + text.slice(at + 1); // drop one character
  } else if (choice === 2) {
    text = text.replace(/"([a-zA-Z]+)":/, rand.chance(0.5) ? '"$1x":' : '"$1":$1,'); // rename, break
  } else {
    const at = rand.int(text.length + 1);
    text = text.slice(0, at) + rand.pick([",", "}", "{", '"', "é", "\u0000"]) + text.slice(at);
  }
  const body = new TextEncoder().encode(text);
  const head = frame.slice(0, HEADER_SIZE);
  if (rand.chance(0.2)) head[3] = rand.pick(Object.values(WIRE_NUMBERS)); // body of another type
  new DataView(head.buffer).setUint32(12, body.length);
  return concat([head, body]);
}

/** Applies 1–3 byte-level mutations to a stream. */
function mutateStream(
  rand: ReturnType<typeof rng>,
  input: Uint8Array,
  starts: readonly number[],
): Uint8Array {
  let bytes = input;
  for (let n = rand.range(1, 3); n > 0; n--) {
    if (bytes.length === 0) break;
    const at = rand.int(bytes.length);
    switch (rand.int(7)) {
      case 0: // flip bits of one byte
        bytes = bytes.slice();
        bytes[at] = bytes[at]! ^ rand.range(1, 255);
        break;
      case 1: // truncate
        bytes = bytes.subarray(0, at);
        break;
      case 2: // insert random bytes
        bytes = concat([bytes.subarray(0, at), rand.bytes(rand.range(1, 16)), bytes.subarray(at)]);
        break;
      case 3: { // duplicate a slice somewhere
        const end = Math.min(bytes.length, at + rand.range(1, 64));
        const to = rand.int(bytes.length + 1);
        bytes = concat([bytes.subarray(0, to), bytes.subarray(at, end), bytes.subarray(to)]);
        break;
      }
      case 4: { // set a length field to a huge or off-by-one value
        const start = rand.pick(starts);
        if (start + HEADER_SIZE > bytes.length) break;
        bytes = bytes.slice();
        const view = new DataView(bytes.buffer);
        const old = view.getUint32(start + 12);
        view.setUint32(
          start + 12,
          rand.pick([
            0xffffffff,
            2 ** 31,
            DEFAULT_LIMITS.maxBodyBytes,
            DEFAULT_LIMITS.maxBodyBytes + 1,
            rand.int(2 ** 32),
            Math.max(0, old - 1),
            old + 1,
            0,
          ]),
        );
        break;
      }
      case 5: { // corrupt a header field: type, flags, reserved or version
        const start = rand.pick(starts);
        if (start + HEADER_SIZE > bytes.length) break;
        bytes = bytes.slice();
        bytes[start + rand.pick([2, 3, 4, 5, 6, 7])] = rand.int(256);
        break;
      }
      default: // overwrite one byte
        bytes = bytes.slice();
        bytes[at] = rand.int(256);
    }
  }
  return bytes;
}

/** Cuts `bytes` into chunks: one push, tiny pieces, or random sizes. */
function randomChunks(rand: ReturnType<typeof rng>, bytes: Uint8Array): Uint8Array[] {
  const style = rand.int(3);
  if (style === 0) return [bytes];
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < bytes.length;) {
    const size = style === 1 ? rand.range(1, 8) : rand.range(1, bytes.length);
    chunks.push(bytes.subarray(i, i + size));
    i += size;
  }
  return chunks;
}

Deno.test("decodeMessage() throws only ProtocolError on mutated input", () => {
  const rand = rng(FUZZ_SEED);
  const outcomes = new Map<ErrorCode | "ok" | "exact", number>();
  const count = (key: ErrorCode | "ok" | "exact") =>
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  for (let n = 0; n < FUZZ_CASES; n++) {
    const intact = rand.chance(0.05);
    const { bytes: original, starts } = randomStream(rand, !intact);
    const bytes = intact ? original : mutateStream(rand, original, starts);
    const limits: Limits = rand.chance(0.1)
      ? { maxBodyBytes: rand.int(400), maxDataBytes: rand.int(8) }
      : DEFAULT_LIMITS;
    const reader = new StreamReader(limits, false);
    try {
      for (const chunk of randomChunks(rand, bytes)) reader.push(chunk);
      reader.finish();
      count(intact ? "exact" : "ok");
    } catch (err) {
      assert.ok(
        err instanceof ProtocolError,
        `case ${n} (seed ${FUZZ_SEED}): ${err instanceof Error ? err.stack : err}; input ${
          hex(bytes)
        }`,
      );
      if (intact && limits === DEFAULT_LIMITS) {
        assert.fail(`case ${n}: unmutated stream failed: ${err.message}`);
      }
      count(err.code);
    }
  }
  // The fuzz must reach every check, or it proves little.
  for (
    const code of [
      "ok",
      "exact",
      "bad-magic",
      "bad-version",
      "bad-flags",
      "unknown-type",
      "too-large",
      "truncated",
      "bad-body",
    ] as const
  ) {
    assert.ok((outcomes.get(code) ?? 0) >= 20, `outcome ${code}: ${outcomes.get(code) ?? 0}`);
  }
});
