// Golden bytes and edge cases of shared/encode.ts.
import assert from "node:assert/strict";
import { encodeHeader, encodeMessage, reply, request } from "../../shared/encode.ts";
import { DEFAULT_LIMITS, MsgType } from "../../shared/protocol.ts";
import { hex, loadGoldenFrames, SAMPLE_BY_NAME, unhex, WIRE_NUMBERS } from "./_samples.ts";

Deno.test("encodeHeader() writes the byte layout of protocol.ts", () => {
  const bytes = encodeHeader({
    type: MsgType.Search,
    flags: 1,
    requestId: 0x01020304,
    bodyBytes: 0x0a0b0c0d,
  });
  // magic "LS", version 2, type 0x17, flags 0x0001, reserved 0, request id and length big-endian
  assert.deepEqual(
    [...bytes],
    [
      0x4c,
      0x53,
      0x02,
      0x17,
      0x00,
      0x01,
      0x00,
      0x00,
      0x01,
      0x02,
      0x03,
      0x04,
      0x0a,
      0x0b,
      0x0c,
      0x0d,
    ],
  );
});

Deno.test("encodeHeader() writes at the target's byteOffset and nowhere else", () => {
  const backing = new Uint8Array(20).fill(0xee);
  encodeHeader({ type: MsgType.Ping, flags: 0, requestId: 7, bodyBytes: 2 }, backing.subarray(2));
  assert.equal(hex(backing), "eeee" + "4c530202000000000000000700000002" + "eeee");
});

Deno.test("encodeMessage() matches the golden bytes of every message type", async () => {
  const golden = await loadGoldenFrames();
  assert.deepEqual(Object.keys(golden).sort(), Object.keys(WIRE_NUMBERS).sort());
  for (const [name, frame] of Object.entries(golden)) {
    const sample = SAMPLE_BY_NAME[name as keyof typeof MsgType];
    assert.equal(sample.type, WIRE_NUMBERS[name], name);
    assert.deepEqual({ ...frame.message, type: WIRE_NUMBERS[name] }, sample, name);
    assert.equal(hex(encodeMessage(sample)), frame.header.replaceAll(" ", "") + frame.body, name);
  }
});

Deno.test("golden frames follow the header layout table field by field", async () => {
  // Independent of the encoder: reads the fixture's spaced header against protocol.ts's table.
  for (const [name, frame] of Object.entries(await loadGoldenFrames())) {
    const [magic, version, type, flags, reserved, requestId, bodyBytes, ...rest] = frame.header
      .split(" ");
    assert.deepEqual(rest, [], name);
    assert.equal(magic, "4c53", name);
    assert.equal(version, "02", name);
    assert.equal(parseInt(type!, 16), WIRE_NUMBERS[name], name);
    assert.equal(flags, frame.message.reply ? "0001" : "0000", name);
    assert.equal(reserved, "0000", name);
    assert.equal(requestId, frame.message.requestId.toString(16).padStart(8, "0"), name);
    assert.equal(parseInt(bodyBytes!, 16), frame.body.length / 2, name);
    assert.equal(bodyBytes!.length, 8, name);
    const json = new TextDecoder().decode(unhex(frame.body));
    assert.deepEqual(JSON.parse(json), frame.message.body, name);
  }
});

Deno.test("encodeMessage() matches the worked Ping example of docs/PROTOCOL.md", () => {
  const body = "7b2273656e7441744d73223a313736373232353630303030307d"; // {"sentAtMs":1767225600000}
  const ping = encodeMessage(request(MsgType.Ping, 7, { sentAtMs: 1767225600000 }));
  const pong = encodeMessage(reply(MsgType.Pong, 7, { sentAtMs: 1767225600000 }));
  assert.equal(hex(ping), "4c53020200000000000000070000001a" + body);
  assert.equal(hex(pong), "4c53020300010000000000070000001a" + body);
});

Deno.test("encodeMessage() sets the reply flag only for replies", () => {
  const asRequest = encodeMessage(request(MsgType.Ping, 1, { sentAtMs: 0 }));
  const asReply = encodeMessage(reply(MsgType.Ping, 1, { sentAtMs: 0 }));
  assert.deepEqual([asRequest[4], asRequest[5]], [0, 0]);
  assert.deepEqual([asReply[4], asReply[5]], [0, 1]);
  assert.deepEqual(asRequest.subarray(6), asReply.subarray(6));
});

Deno.test("request() and reply() build messages with the reply flag", () => {
  assert.deepEqual(request(MsgType.WhoHas, 3, { fname: "a" }), {
    type: MsgType.WhoHas,
    requestId: 3,
    reply: false,
    body: { fname: "a" },
  });
  assert.equal(reply(MsgType.Ok, 3, {}).reply, true);
});

Deno.test("encodeMessage() counts body length in UTF-8 bytes", () => {
  const bytes = encodeMessage(request(MsgType.Unpublish, 1, { fname: "日本語.txt" }));
  const body = '{"fname":"日本語.txt"}';
  assert.equal(body.length, 19);
  assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getUint32(12), 25);
  assert.equal(bytes.length, 16 + 25);
  assert.equal(new TextDecoder().decode(bytes.subarray(16)), body);
});

Deno.test("encodeMessage() accepts request ids 0 and 2^32-1", () => {
  const low = encodeMessage(request(MsgType.Ping, 0, { sentAtMs: 0 }));
  const high = encodeMessage(request(MsgType.Ping, 0xffffffff, { sentAtMs: 0 }));
  assert.equal(hex(low.subarray(8, 12)), "00000000");
  assert.equal(hex(high.subarray(8, 12)), "ffffffff");
});

Deno.test("encodeMessage() rejects a request id that is not a u32", () => {
  for (const id of [-1, 2 ** 32, 1.5, NaN, Infinity]) {
    assert.throws(
      () => encodeMessage(request(MsgType.Ping, id, { sentAtMs: 0 })),
      RangeError,
      String(id),
    );
  }
});

Deno.test("encodeMessage() rejects a body above limits.maxBodyBytes", () => {
  const ping = request(MsgType.Ping, 1, { sentAtMs: 1 }); // body {"sentAtMs":1}: 14 bytes
  assert.equal(encodeMessage(ping, { ...DEFAULT_LIMITS, maxBodyBytes: 14 }).length, 30);
  assert.throws(() => encodeMessage(ping, { ...DEFAULT_LIMITS, maxBodyBytes: 13 }), {
    name: "RangeError",
    message: "Cannot encode Ping: body is 14 bytes, limit is 13",
  });
});
