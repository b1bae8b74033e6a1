// The UDP discovery datagram: servers announce themselves, peers probe for servers.
// Pure: no I/O.
//
//   offset  size  field      notes
//   0       2     magic      0x4C 0x42 ("LB")
//   2       1     version    BEACON_VERSION
//   3       1     kind       1 = announce (server → all), 2 = probe (peer → all)
//   4       2     tcpPort    the server's index port (0 in a probe)
//   6       2     reserved   0
//   8       4     sessions   live sessions on that server (load, for choosing among servers)
//   12      16    serverId   random id of the server process (zeros in a probe)
//
// The server's address is the datagram's source address.
import { ProtocolError } from "./errors.ts";

/** First two datagram bytes: ASCII "LB". */
export const BEACON_MAGIC = 0x4c42;
/** Version of the datagram layout. */
export const BEACON_VERSION = 1;
/** Size of every discovery datagram in bytes. */
export const BEACON_SIZE = 28;

/** What a discovery datagram says. */
export type Beacon =
  | { kind: "announce"; tcpPort: number; sessions: number; serverId: string }
  | { kind: "probe" };

/**
 * Encodes a discovery datagram. `serverId` is 32 hex digits.
 *
 * @example
 * ```ts
 * import { decodeBeacon, encodeBeacon } from "./beacon.ts";
 * const bytes = encodeBeacon({ kind: "probe" });
 * if (decodeBeacon(bytes).kind !== "probe") throw new Error("round trip");
 * ```
 */
export function encodeBeacon(beacon: Beacon): Uint8Array {
  const bytes = new Uint8Array(BEACON_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, BEACON_MAGIC);
  view.setUint8(2, BEACON_VERSION);
  if (beacon.kind === "probe") {
    view.setUint8(3, 2);
    return bytes;
  }
  if (!/^[0-9a-f]{32}$/.test(beacon.serverId)) {
    throw new RangeError(
      `Cannot encode beacon: server id "${beacon.serverId}" is not 32 hex digits`,
    );
  }
  view.setUint8(3, 1);
  view.setUint16(4, beacon.tcpPort);
  view.setUint32(8, Math.min(beacon.sessions, 0xffffffff));
  for (let i = 0; i < 16; i++) {
    bytes[12 + i] = parseInt(beacon.serverId.slice(2 * i, 2 * i + 2), 16);
  }
  return bytes;
}

/**
 * Decodes a discovery datagram.
 *
 * @throws {ProtocolError} when the datagram is not a lanshare beacon of this version
 */
export function decodeBeacon(bytes: Uint8Array): Beacon {
  if (bytes.length !== BEACON_SIZE) {
    throw new ProtocolError(
      "truncated",
      `Cannot decode beacon: ${bytes.length} bytes, expected ${BEACON_SIZE}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint16(0) !== BEACON_MAGIC) {
    throw new ProtocolError("bad-magic", "Cannot decode beacon: bad magic");
  }
  if (view.getUint8(2) !== BEACON_VERSION) {
    throw new ProtocolError(
      "bad-version",
      `Cannot decode beacon: version ${view.getUint8(2)}, expected ${BEACON_VERSION}`,
    );
  }
  const kind = view.getUint8(3);
  if (kind === 2) return { kind: "probe" };
  if (kind !== 1) throw new ProtocolError("unknown-type", `Cannot decode beacon: kind ${kind}`);
  const tcpPort = view.getUint16(4);
  if (tcpPort === 0) throw new ProtocolError("bad-body", "Cannot decode beacon: TCP port 0");
  const serverId = bytes.subarray(12, BEACON_SIZE).toHex();
  return { kind: "announce", tcpPort, sessions: view.getUint32(8), serverId };
}
