// The UDP discovery datagram codec of shared/beacon.ts.
import assert from "node:assert/strict";
import {
  type Beacon,
  BEACON_MAGIC,
  BEACON_SIZE,
  BEACON_VERSION,
  decodeBeacon,
  encodeBeacon,
} from "../../shared/beacon.ts";
import { assertProtocolError } from "./_assert.ts";
import { concat, hex, unhex } from "./_samples.ts";

const ANNOUNCE: Beacon = {
  kind: "announce",
  tcpPort: 7070,
  sessions: 3,
  serverId: "00112233445566778899aabbccddeeff",
};
/** magic "LB", version 1, kind 1, port 7070, reserved 0, 3 sessions, server id. */
const ANNOUNCE_HEX = "4c42 01 01 1b9e 0000 00000003 00112233445566778899aabbccddeeff";
const PROBE_HEX = "4c42 01 02 0000 0000 00000000 00000000000000000000000000000000";

Deno.test("beacon constants keep their wire values", () => {
  assert.equal(BEACON_MAGIC, 0x4c42);
  assert.equal(BEACON_VERSION, 1);
  assert.equal(BEACON_SIZE, 28);
});

Deno.test("encodeBeacon() matches the golden bytes of an announce", () => {
  assert.equal(hex(encodeBeacon(ANNOUNCE)), ANNOUNCE_HEX.replaceAll(" ", ""));
});

Deno.test("encodeBeacon() matches the golden bytes of a probe", () => {
  assert.equal(hex(encodeBeacon({ kind: "probe" })), PROBE_HEX.replaceAll(" ", ""));
});

Deno.test("decodeBeacon() round-trips an announce and a probe", () => {
  assert.deepEqual(decodeBeacon(unhex(ANNOUNCE_HEX)), ANNOUNCE);
  assert.deepEqual(decodeBeacon(encodeBeacon(ANNOUNCE)), ANNOUNCE);
  assert.deepEqual(decodeBeacon(unhex(PROBE_HEX)), { kind: "probe" });
  const max: Beacon = {
    kind: "announce",
    tcpPort: 65535,
    sessions: 0xffffffff,
    serverId: "f".repeat(32),
  };
  assert.deepEqual(decodeBeacon(encodeBeacon(max)), max);
});

Deno.test("decodeBeacon() reads a datagram at a nonzero byteOffset", () => {
  const backing = concat([new Uint8Array(5), unhex(ANNOUNCE_HEX)]);
  assert.deepEqual(decodeBeacon(backing.subarray(5)), ANNOUNCE);
});

Deno.test("encodeBeacon() clamps sessions to a u32", () => {
  const bytes = encodeBeacon({ ...ANNOUNCE, sessions: 2 ** 40 });
  assert.equal(hex(bytes.subarray(8, 12)), "ffffffff");
});

Deno.test("encodeBeacon() rejects a server id that is not 32 hex digits", () => {
  for (const serverId of ["", "0011", "00112233445566778899AABBCCDDEEFF", "g".repeat(32)]) {
    assert.throws(() => encodeBeacon({ ...ANNOUNCE, serverId }), RangeError, serverId);
  }
});

Deno.test("decodeBeacon() rejects a datagram of the wrong size", () => {
  const bytes = unhex(ANNOUNCE_HEX);
  for (const size of [0, 4, 27]) {
    assertProtocolError(() => decodeBeacon(bytes.subarray(0, size)), "truncated", String(size));
  }
  assertProtocolError(() => decodeBeacon(concat([bytes, new Uint8Array(1)])), "truncated", "29");
});

Deno.test("decodeBeacon() rejects a wrong magic", () => {
  const bytes = unhex(ANNOUNCE_HEX);
  bytes[1] = 0x53; // "LS", a TCP frame's magic
  assertProtocolError(() => decodeBeacon(bytes), "bad-magic");
});

Deno.test("decodeBeacon() rejects a wrong version", () => {
  for (const version of [0, 2]) {
    const bytes = unhex(ANNOUNCE_HEX);
    bytes[2] = version;
    assertProtocolError(() => decodeBeacon(bytes), "bad-version", String(version));
  }
});

Deno.test("decodeBeacon() rejects an unknown kind", () => {
  for (const kind of [0, 3, 0xff]) {
    const bytes = unhex(ANNOUNCE_HEX);
    bytes[3] = kind;
    assertProtocolError(() => decodeBeacon(bytes), "unknown-type", String(kind));
  }
});

Deno.test("decodeBeacon() rejects an announce with TCP port 0", () => {
  const bytes = unhex(ANNOUNCE_HEX);
  bytes[4] = bytes[5] = 0;
  assertProtocolError(() => decodeBeacon(bytes), "bad-body");
});
