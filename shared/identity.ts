// Device identities: an Ed25519 key pair, its ID (the public key in base32) and a self-signed
// certificate naming that ID, used to pin TLS connections exactly. No file I/O: callers keep the
// key where they like (see peer/ and server/ for where each program keeps its own).
//
// Why Ed25519: its signatures are deterministic, so the certificate is a function of the key
// alone and is rebuilt from the key file at every start; the public key is 32 bytes, so the ID
// is the key itself (52 base32 digits, a valid DNS label) and anyone holding an ID can verify
// that device's signatures without any further lookup.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { Buffer } from "node:buffer";
import {
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  sign as nodeSign,
  verify as nodeVerify,
  X509Certificate,
} from "node:crypto";
import { fromBase32, toBase32 } from "./base32.ts";

export { shortId } from "./short_id.ts";

x509.cryptoProvider.set(crypto);

/** DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the 32 key bytes follow it. */
const ED25519_SPKI_PREFIX = Uint8Array.fromHex("302a300506032b6570032100");
/** Length of an ID: base32 of a 32-byte Ed25519 public key. */
export const ID_LENGTH = 52;
/** Fixed validity: the certificate must not depend on when it was made. */
const NOT_BEFORE = new Date(Date.UTC(2000, 0, 1));
const NOT_AFTER = new Date(Date.UTC(9999, 11, 31, 23, 59, 59));
const ED25519 = { name: "Ed25519" };

/** This device's identity. */
export interface Identity {
  /** The public key in lowercase base32: 52 digits. */
  id: string;
  /** Self-signed certificate (PEM) for TLS, naming `tlsName(id)`. */
  certPem: string;
  /** Private key as PKCS#8 PEM, for `Deno.listenTls` and for storage (keep it 0600). */
  keyPem: string;
  /** The private key, for signing. */
  privateKey: CryptoKey;
}

/** The TLS server name a device's certificate carries: `<id>.lanshare.invalid`. */
export function tlsName(id: string): string {
  return `${id}.lanshare.invalid`;
}

/** Why `text` is not an ID (a problem text), or undefined when it is one. */
export function idProblem(text: string): string | undefined {
  if (text.length !== ID_LENGTH) return `an ID has ${ID_LENGTH} base32 digits, not ${text.length}`;
  if (!/^[a-z2-7]+$/.test(text)) return "an ID has only the digits a-z and 2-7";
  return undefined;
}

/** Creates a new identity. */
export async function createIdentity(): Promise<Identity> {
  const keys = await crypto.subtle.generateKey(ED25519, true, ["sign", "verify"]) as CryptoKeyPair;
  return await identityOf(keys);
}

/**
 * Rebuilds an identity from its private key (PKCS#8 PEM, as `keyPem` holds it).
 *
 * @throws {TypeError} when the text is not an Ed25519 private key
 */
export async function identityFromKeyPem(keyPem: string): Promise<Identity> {
  const base64 = keyPem.replace(/-----(BEGIN|END) PRIVATE KEY-----/g, "").replace(/\s+/g, "");
  let privateKey: CryptoKey;
  let jwk: JsonWebKey;
  try {
    privateKey = await crypto.subtle.importKey(
      "pkcs8",
      Uint8Array.fromBase64(base64),
      ED25519,
      true,
      ["sign"],
    );
    jwk = await crypto.subtle.exportKey("jwk", privateKey);
  } catch (err) {
    throw new TypeError(`Cannot read the identity key: not an Ed25519 private key (${err})`, {
      cause: err,
    });
  }
  // The public half is in the JWK's x; import it on its own for the certificate.
  const publicKey = await crypto.subtle.importKey(
    "jwk",
    { kty: jwk.kty!, crv: jwk.crv!, x: jwk.x! },
    ED25519,
    true,
    ["verify"],
  );
  return await identityOf({ privateKey, publicKey });
}

async function identityOf(keys: CryptoKeyPair): Promise<Identity> {
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", keys.publicKey));
  const id = toBase32(raw);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: "CN=lanshare",
    notBefore: NOT_BEFORE,
    notAfter: NOT_AFTER,
    signingAlgorithm: ED25519,
    keys,
    extensions: [
      // An end-entity certificate: rustls refuses a CA certificate as a server's own.
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.SubjectAlternativeNameExtension([{ type: "dns", value: tlsName(id) }]),
    ],
  });
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  return {
    id,
    certPem: cert.toString("pem"),
    keyPem: `-----BEGIN PRIVATE KEY-----\n${pkcs8.toBase64()}\n-----END PRIVATE KEY-----\n`,
    privateKey: keys.privateKey,
  };
}

/**
 * The ID a certificate (PEM) belongs to: its Ed25519 public key in base32.
 *
 * @throws {TypeError} when it is not a certificate with an Ed25519 key
 */
export function idOfCert(certPem: string): string {
  let spki: Uint8Array;
  try {
    // node:crypto parses natively: ~36 µs against ~410 µs through @peculiar/x509 (measured),
    // paid at every Hello; after an index restart, 10,000 Hellos come within seconds.
    const key = new X509Certificate(certPem).publicKey;
    spki = new Uint8Array(key.export({ type: "spki", format: "der" }));
  } catch (err) {
    throw new TypeError(`Cannot read the certificate: ${err}`, { cause: err });
  }
  const prefix = ED25519_SPKI_PREFIX;
  if (
    spki.length !== prefix.length + 32 || !prefix.every((byte, i) => spki[i] === byte)
  ) {
    throw new TypeError("Cannot read the certificate: its key is not Ed25519");
  }
  return toBase32(spki.subarray(prefix.length));
}

// Signatures go through node:crypto, synchronously on the calling thread, not WebCrypto:
// Deno runs WebCrypto's Ed25519 on a small pool of blocking threads that it shares with the
// close of TLS connections, and closing thousands of connections whose other side has gone
// (a server restart, a mass disconnect) held that pool for tens of seconds, measured: 200
// signatures took 7 s after 5,000 such closes, against 6 ms before. Every Hello, proof and
// ticket waited behind them. Inline, one costs ~16 µs to sign and ~31 µs to verify.

/** This process's signing keys, by identity (imported once from `keyPem`). */
const signingKeys = new WeakMap<Identity, KeyObject>();

/** Signs `bytes` with this device's key. @returns the 64-byte Ed25519 signature */
export function sign(
  identity: Identity,
  bytes: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array<ArrayBuffer>> {
  return Promise.try(() => {
    let key = signingKeys.get(identity);
    if (key === undefined) {
      key = createPrivateKey(identity.keyPem);
      signingKeys.set(identity, key);
    }
    return new Uint8Array(nodeSign(null, bytes, key));
  });
}

const verifyKeys = new Map<string, KeyObject>();
/** Most verification keys kept imported (one per device seen): bounded memory. */
const MAX_VERIFY_KEYS = 4096;

/**
 * Whether `signature` is device `id`'s signature of `bytes`. An ID that is not one, or a
 * signature of the wrong length, is simply not valid (false), never an exception.
 */
export function verify(
  id: string,
  bytes: Uint8Array<ArrayBuffer>,
  signature: Uint8Array<ArrayBuffer>,
): Promise<boolean> {
  return Promise.try(() => {
    if (idProblem(id) !== undefined || signature.length !== 64) return false;
    let key = verifyKeys.get(id);
    try {
      if (key === undefined) {
        const spki = new Uint8Array(ED25519_SPKI_PREFIX.length + 32);
        spki.set(ED25519_SPKI_PREFIX);
        spki.set(fromBase32(id), ED25519_SPKI_PREFIX.length);
        key = createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
        if (verifyKeys.size >= MAX_VERIFY_KEYS) verifyKeys.clear();
        verifyKeys.set(id, key);
      }
      return nodeVerify(null, bytes, key, signature);
    } catch {
      // A point that is not on the curve: not a valid key, so not a valid signature.
      return false;
    }
  });
}
