// The certificate a connector pins to reach a device known only by its ID: a TLS trust anchor
// built from the ID alone. Pure: no I/O, no crypto, no clock.
//
// Why this is enough to pin: a trust anchor is a subject name and a public key (RFC 5280 §6.1.1
// (d)); path validation never checks an anchor's own signature, and rustls (Deno's TLS) does not
// either. Every lanshare certificate is issued by "CN=lanshare" to itself, so an anchor with
// that subject and the device's key (the ID is its Ed25519 public key) accepts exactly the
// certificates that key signed; the connector also checks the name `<id>.lanshare.invalid`. So
// only the holder of the ID's private key can complete the handshake: the same guarantee as
// pinning the device's own certificate, which therefore need not travel with every `Sources`
// entry (at ~500 bytes, it was more than half of each one).
import { fromBase32 } from "./base32.ts";
import { idProblem } from "./identity.ts";

/** DER of the Ed25519 AlgorithmIdentifier (OID 1.3.101.112, no parameters). */
const ED25519_ALGORITHM = [0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];
/** DER of the Name "CN=lanshare" (a PrintableString), as shared/identity.ts issues it. */
const LANSHARE_NAME = [
  0x30,
  0x13,
  0x31,
  0x11,
  0x30,
  0x0f,
  0x06,
  0x03,
  0x55,
  0x04,
  0x03, // id-at-commonName
  0x13,
  0x08,
  ...ascii("lanshare"),
];

/** DER tags used here. */
const INTEGER = 0x02;
const BIT_STRING = 0x03;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;
const SEQUENCE = 0x30;
const VERSION_TAG = 0xa0; // [0] EXPLICIT

function ascii(text: string): number[] {
  return [...text].map((c) => c.charCodeAt(0));
}

/** One DER element: tag, definite length (short or long form), contents. */
function der(tag: number, contents: number[]): number[] {
  const n = contents.length;
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >>> 8, n & 0xff];
  return [tag, ...length, ...contents];
}

/**
 * The PEM trust anchor for device `id`: subject and issuer "CN=lanshare", the device's Ed25519
 * key, fixed validity, and an all-zero signature (an anchor's signature is never checked). Give
 * it as the only CA certificate, with the server name `tlsName(id)`.
 *
 * @example
 * ```ts
 * import { pinCertOfId } from "./pin_cert.ts";
 * const pem = pinCertOfId("a".repeat(52));
 * if (!pem.startsWith("-----BEGIN CERTIFICATE-----\n")) throw new Error("a PEM certificate");
 * ```
 * @throws {TypeError} when `id` is not a device ID
 */
export function pinCertOfId(id: string): string {
  const problem = idProblem(id);
  if (problem !== undefined) throw new TypeError(`Cannot pin device "${id}": ${problem}`);
  const key = [...fromBase32(id)];
  const tbs = der(SEQUENCE, [
    ...der(VERSION_TAG, der(INTEGER, [0x02])), // v3
    ...der(INTEGER, [0x01]), // serial number
    ...ED25519_ALGORITHM,
    ...LANSHARE_NAME, // issuer
    ...der(SEQUENCE, [
      ...der(UTC_TIME, ascii("000101000000Z")),
      ...der(GENERALIZED_TIME, ascii("99991231235959Z")),
    ]),
    ...LANSHARE_NAME, // subject
    ...der(SEQUENCE, [...ED25519_ALGORITHM, ...der(BIT_STRING, [0x00, ...key])]),
  ]);
  const certificate = der(SEQUENCE, [
    ...tbs,
    ...ED25519_ALGORITHM,
    ...der(BIT_STRING, [0x00, ...new Array<number>(64).fill(0)]),
  ]);
  const base64 = new Uint8Array(certificate).toBase64();
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}
