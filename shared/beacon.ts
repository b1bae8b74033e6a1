// The UDP discovery datagram: servers announce themselves, peers probe for servers.
// Pure: no I/O, no crypto (the I/O layer signs and verifies; see `signedPart`).
//
//   offset  size     field      notes
//   0       2        magic      0x4C 0x42 ("LB")
//   2       1        version    BEACON_VERSION (2)
//   3       1        kind       1 = announce (server → all or answer to a probe), 2 = probe
//   4       2        tcpPort    the server's index port (0 in a probe)
//   6       2        certBytes  length of the certificate (0 in a probe)
//   8       4        sessions   live sessions on that server (load, for choosing among servers)
//   12      certBytes cert      the server's certificate, DER
//   12+n    64       signature  Ed25519, by the certificate's key, over bytes 0 .. 12+n
//
// A probe is the 12-byte header alone. The server's address is the datagram's source address.
import { ProtocolError } from "./errors.ts";

/** First two datagram bytes: ASCII "LB". */
export const BEACON_MAGIC = 0x4c42;
/** Version of the datagram layout. */
export const BEACON_VERSION = 2;
/** Size of the fixed header, and of a whole probe. */
export const BEACON_HEADER_SIZE = 12;
/** Size of the signature closing an announce. */
export const BEACON_SIGNATURE_SIZE = 64;
/** Largest certificate an announce may carry (an Ed25519 one is ~300 bytes). */
export const MAX_BEACON_CERT_BYTES = 1024;

/** What a discovery datagram says. */
export type Beacon =
  | {
    kind: "announce";
    tcpPort: number;
    sessions: number;
    /** The server's certificate, DER. */
    cert: Uint8Array;
    /** The bytes the signature covers. */
    signed: Uint8Array;
    signature: Uint8Array;
  }
  | { kind: "probe" };

/** The fields of an announce, before signing. */
export interface AnnounceFields {
  tcpPort: number;
  sessions: number;
  /** The server's certificate, DER. */
  cert: Uint8Array;
}

function header(kind: number, tcpPort: number, certBytes: number, sessions: number): Uint8Array {
  const bytes = new Uint8Array(BEACON_HEADER_SIZE + certBytes);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, BEACON_MAGIC);
  view.setUint8(2, BEACON_VERSION);
  view.setUint8(3, kind);
  view.setUint16(4, tcpPort);
  view.setUint16(6, certBytes);
  view.setUint32(8, Math.min(sessions, 0xffffffff));
  return bytes;
}

/**
 * Encodes a probe.
 *
 * @example
 * ```ts
 * import { decodeBeacon, encodeProbe } from "./beacon.ts";
 * if (decodeBeacon(encodeProbe()).kind !== "probe") throw new Error("round trip");
 * ```
 */
export function encodeProbe(): Uint8Array<ArrayBuffer> {
  return header(2, 0, 0, 0) as Uint8Array<ArrayBuffer>;
}

/** The part of an announce that its signature covers: header and certificate. */
export function signedPart(fields: AnnounceFields): Uint8Array<ArrayBuffer> {
  if (fields.cert.length === 0 || fields.cert.length > MAX_BEACON_CERT_BYTES) {
    throw new RangeError(
      `Cannot encode announce: certificate of ${fields.cert.length} bytes, ` +
        `expected 1 to ${MAX_BEACON_CERT_BYTES}`,
    );
  }
  const bytes = header(1, fields.tcpPort, fields.cert.length, fields.sessions);
  bytes.set(fields.cert, BEACON_HEADER_SIZE);
  return bytes as Uint8Array<ArrayBuffer>;
}

/** A whole announce: `signedPart(fields)` followed by its signature. */
export function encodeAnnounce(signed: Uint8Array, signature: Uint8Array): Uint8Array {
  if (signature.length !== BEACON_SIGNATURE_SIZE) {
    throw new RangeError(`Cannot encode announce: signature of ${signature.length} bytes`);
  }
  const bytes = new Uint8Array(signed.length + BEACON_SIGNATURE_SIZE);
  bytes.set(signed);
  bytes.set(signature, signed.length);
  return bytes;
}

/**
 * Decodes a discovery datagram like decodeBeacon(), but gives back why it is not a beacon instead
 * of throwing: the receive loops skip such datagrams (any datagram can arrive on the port).
 *
 * @example
 * ```ts
 * import { beaconOrProblem, encodeProbe } from "./beacon.ts";
 * if (beaconOrProblem(encodeProbe()) instanceof Error) throw new Error("a probe is a beacon");
 * if (!(beaconOrProblem(new Uint8Array(3)) instanceof Error)) throw new Error("junk is not");
 * ```
 */
export function beaconOrProblem(bytes: Uint8Array): Beacon | ProtocolError {
  try {
    return decodeBeacon(bytes);
  } catch (err) {
    if (err instanceof ProtocolError) return err;
    throw err;
  }
}

/**
 * Decodes a discovery datagram. The signature is not checked here.
 *
 * @throws {ProtocolError} when the datagram is not a lanshare beacon of this version
 */
export function decodeBeacon(bytes: Uint8Array): Beacon {
  if (bytes.length < BEACON_HEADER_SIZE) {
    throw new ProtocolError(
      "truncated",
      `Cannot decode beacon: ${bytes.length} bytes, expected at least ${BEACON_HEADER_SIZE}`,
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
  const certBytes = view.getUint16(6);
  if (certBytes === 0 || certBytes > MAX_BEACON_CERT_BYTES) {
    throw new ProtocolError("bad-body", `Cannot decode beacon: certificate of ${certBytes} bytes`);
  }
  const end = BEACON_HEADER_SIZE + certBytes;
  if (bytes.length !== end + BEACON_SIGNATURE_SIZE) {
    throw new ProtocolError(
      "truncated",
      `Cannot decode beacon: ${bytes.length} bytes, expected ${end + BEACON_SIGNATURE_SIZE}`,
    );
  }
  return {
    kind: "announce",
    tcpPort,
    sessions: view.getUint32(8),
    cert: bytes.slice(BEACON_HEADER_SIZE, end),
    signed: bytes.slice(0, end),
    signature: bytes.slice(end),
  };
}

/** The PEM text of a DER certificate. */
export function pemOfDer(der: Uint8Array): string {
  const lines = der.toBase64().match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----`;
}

/**
 * The DER bytes of a PEM certificate.
 *
 * @throws {SyntaxError} when the text is not base64 between the PEM lines
 */
export function derOfPem(pem: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.fromBase64(
    pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, "").replace(/\s+/g, ""),
  );
}
