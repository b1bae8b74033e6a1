// Pins the wire constants of shared/protocol.ts: changing one is a protocol change.
import assert from "node:assert/strict";
import {
  DEFAULT_LIMITS,
  FLAG_REPLY,
  HEADER_SIZE,
  KNOWN_FLAGS,
  MAGIC,
  MAX_FNAME_BYTES,
  MAX_HOSTNAME_BYTES,
  MSG_TYPE_NAMES,
  MsgType,
  PROTOCOL_VERSION,
} from "../../shared/protocol.ts";
import { WIRE_NUMBERS } from "./_samples.ts";

Deno.test("protocol constants keep their wire values", () => {
  assert.equal(MAGIC, 0x4c53);
  assert.equal(String.fromCharCode(MAGIC >> 8, MAGIC & 0xff), "LS");
  assert.equal(PROTOCOL_VERSION, 2);
  assert.equal(HEADER_SIZE, 16);
  assert.equal(FLAG_REPLY, 0x0001);
  assert.equal(KNOWN_FLAGS, 0x0001);
  assert.deepEqual({ ...DEFAULT_LIMITS }, {
    maxBodyBytes: 16 * 1024 * 1024,
    maxDataBytes: 64 * 1024 * 1024,
  });
  assert.equal(MAX_FNAME_BYTES, 255);
  assert.equal(MAX_HOSTNAME_BYTES, 253);
});

Deno.test("MsgType keeps every wire number", () => {
  const actual = Object.fromEntries(
    Object.entries(MsgType).filter(([, v]) => typeof v === "number"),
  );
  assert.deepEqual(actual, WIRE_NUMBERS);
});

Deno.test("MSG_TYPE_NAMES maps every wire number to its name and nothing else", () => {
  assert.deepEqual(
    [...MSG_TYPE_NAMES].sort(([a], [b]) => a - b),
    Object.entries(WIRE_NUMBERS).map(([name, n]) => [n, name]).sort(([a], [b]) =>
      (a as number) - (b as number)
    ),
  );
});
