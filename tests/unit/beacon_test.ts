// The UDP discovery datagram codec of shared/beacon.ts (version 2: certificate and signature).
import assert from "node:assert/strict";
import {
  BEACON_HEADER_SIZE,
  BEACON_MAGIC,
  BEACON_SIGNATURE_SIZE,
  BEACON_VERSION,
  decodeBeacon,
  derOfPem,
  encodeAnnounce,
  encodeProbe,
  MAX_BEACON_CERT_BYTES,
  pemOfDer,
  signedPart,
} from "../../shared/beacon.ts";
import { assertProtocolError } from "./_assert.ts";
import { concat, hex, unhex } from "./_samples.ts";

/** A stand-in certificate: the codec carries the bytes, it does not parse them. */
const CERT = unhex("30 03 02 01 07");
const SIGNATURE = new Uint8Array(BEACON_SIGNATURE_SIZE).fill(0xab);
/** magic "LB", version 2, kind 1, port 7070, 5 certificate bytes, 3 sessions, cert, signature. */
const ANNOUNCE_HEX = "4c42 02 01 1b9e 0005 00000003 3003020107" + " ab".repeat(64);
const PROBE_HEX = "4c42 02 02 0000 0000 00000000";

function announce(overrides: { tcpPort?: number; sessions?: number; cert?: Uint8Array } = {}) {
  const signed = signedPart({ tcpPort: 7070, sessions: 3, cert: CERT, ...overrides });
  return encodeAnnounce(signed, SIGNATURE);
}

Deno.test("beacon constants keep their wire values", () => {
  assert.equal(BEACON_MAGIC, 0x4c42);
  assert.equal(BEACON_VERSION, 2);
  assert.equal(BEACON_HEADER_SIZE, 12);
  assert.equal(BEACON_SIGNATURE_SIZE, 64);
});

Deno.test("encodeAnnounce() matches the golden bytes of an announce", () => {
  assert.equal(hex(announce()), ANNOUNCE_HEX.replaceAll(" ", ""));
});

Deno.test("encodeProbe() matches the golden bytes of a probe", () => {
  assert.equal(hex(encodeProbe()), PROBE_HEX.replaceAll(" ", ""));
});

Deno.test("decodeBeacon() splits an announce into its fields, signed part and signature", () => {
  const beacon = decodeBeacon(unhex(ANNOUNCE_HEX));
  assert.equal(beacon.kind, "announce");
  if (beacon.kind !== "announce") return;
  assert.equal(beacon.tcpPort, 7070);
  assert.equal(beacon.sessions, 3);
  assert.deepEqual(beacon.cert, CERT);
  assert.deepEqual(beacon.signed, signedPart({ tcpPort: 7070, sessions: 3, cert: CERT }));
  assert.deepEqual(beacon.signature, SIGNATURE);
  assert.deepEqual(decodeBeacon(unhex(PROBE_HEX)), { kind: "probe" });
});

Deno.test("decodeBeacon() reads a datagram at a nonzero byteOffset", () => {
  const backing = concat([new Uint8Array(5), unhex(ANNOUNCE_HEX)]);
  assert.deepEqual(decodeBeacon(backing.subarray(5)), decodeBeacon(unhex(ANNOUNCE_HEX)));
});

Deno.test("signedPart() clamps sessions to a u32", () => {
  const bytes = signedPart({ tcpPort: 1, sessions: 2 ** 40, cert: CERT });
  assert.equal(hex(bytes.subarray(8, 12)), "ffffffff");
});

Deno.test("signedPart() rejects an empty or oversized certificate", () => {
  for (const size of [0, MAX_BEACON_CERT_BYTES + 1]) {
    assert.throws(
      () => signedPart({ tcpPort: 1, sessions: 0, cert: new Uint8Array(size) }),
      RangeError,
      String(size),
    );
  }
});

Deno.test("decodeBeacon() rejects a datagram of the wrong size", () => {
  const bytes = unhex(ANNOUNCE_HEX);
  for (const size of [0, 4, 11]) {
    assertProtocolError(() => decodeBeacon(bytes.subarray(0, size)), "truncated", String(size));
  }
  assertProtocolError(() => decodeBeacon(bytes.subarray(0, bytes.length - 1)), "truncated");
  assertProtocolError(() => decodeBeacon(concat([bytes, new Uint8Array(1)])), "truncated");
});

Deno.test("decodeBeacon() rejects a certificate length of 0 or over the limit", () => {
  for (const length of [0, MAX_BEACON_CERT_BYTES + 1]) {
    const bytes = unhex(ANNOUNCE_HEX);
    new DataView(bytes.buffer).setUint16(6, length);
    assertProtocolError(() => decodeBeacon(bytes), "bad-body", String(length));
  }
});

Deno.test("decodeBeacon() rejects a wrong magic", () => {
  const bytes = unhex(ANNOUNCE_HEX);
  bytes[1] = 0x53; // "LS", a TCP frame's magic
  assertProtocolError(() => decodeBeacon(bytes), "bad-magic");
});

Deno.test("decodeBeacon() rejects a wrong version, including version 1 beacons", () => {
  for (const version of [0, 1, 3]) {
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

Deno.test("pemOfDer() and derOfPem() round-trip", () => {
  const der = new Uint8Array(300).map((_, i) => i & 0xff);
  const pem = pemOfDer(der);
  assert.match(pem, /^-----BEGIN CERTIFICATE-----\n/);
  assert.ok(pem.split("\n").every((line) => line.length <= 64));
  assert.deepEqual(derOfPem(pem), der);
});
