// The connecting side's half of the protocol-2 handshake: reads the `Challenge` and answers it
// with the proofs a `Hello` carries. The programs, the load generator and the tests all build
// their Hello here, so the proof is computed one way everywhere.
import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from "node:crypto";
import { RemoteError } from "./errors.ts";
import type { FramedConn } from "./framing.ts";
import { type Identity, sign } from "./identity.ts";
import { type Bodies, MSG_TYPE_NAMES, MsgType, PROTOCOL_VERSION } from "./protocol.ts";
import { helloStatement, joinStatement } from "./statements.ts";

/** What a connector needs besides the challenge to say Hello. */
export interface HelloInput {
  identity: Identity;
  hostname: string;
  p2pPort: number;
  /** The network key (`--join key` servers): present only for such a server. */
  networkKey?: NetworkKey;
  /** The digest of what this device last published successfully (see `Hello.sharesDigest`). */
  sharesDigest?: string;
}

/**
 * A network key for `--join key`: a secret KeyObject, whose inspection shows only its size, so
 * it cannot be logged or sent by mistake. HMACs go through node:crypto synchronously, like the
 * Ed25519 signatures (shared/identity.ts): WebCrypto's pool of blocking threads stalls for
 * seconds after mass connection closes, which is exactly when returning peers all say Hello.
 */
export type NetworkKey = KeyObject;

/** Imports the bytes of a network key file as an HMAC-SHA256 key. */
export function importNetworkKey(bytes: Uint8Array): NetworkKey {
  return createSecretKey(bytes);
}

/** The network proof of a Hello: HMAC-SHA256 over `joinStatement(nonce, peerId)`, base64. */
export function networkProof(networkKey: NetworkKey, nonce: string, peerId: string): string {
  return macOf(networkKey, nonce, peerId).toBase64();
}

/** Whether `proof` (base64) is the network proof of `peerId` for `nonce`; constant-time. */
export function networkProofValid(
  networkKey: NetworkKey,
  proof: string,
  nonce: string,
  peerId: string,
): boolean {
  let mac: Uint8Array;
  try {
    mac = Uint8Array.fromBase64(proof);
  } catch {
    return false;
  }
  const expected = macOf(networkKey, nonce, peerId);
  return mac.length === expected.length && timingSafeEqual(mac, expected);
}

function macOf(networkKey: NetworkKey, nonce: string, peerId: string): Uint8Array {
  return createHmac("sha256", networkKey).update(joinStatement(nonce, peerId)).digest();
}

/** The body of the `Hello` answering `challenge`. */
export async function helloBody(
  input: HelloInput,
  challenge: Bodies[MsgType.Challenge],
): Promise<Bodies[MsgType.Hello]> {
  const { identity, hostname, p2pPort, networkKey, sharesDigest } = input;
  const proof = await sign(identity, helloStatement(challenge.nonce, challenge.id, identity.id));
  const body: Bodies[MsgType.Hello] = {
    hostname,
    p2pPort,
    protocol: PROTOCOL_VERSION,
    id: identity.id,
    cert: identity.certPem,
    proof: proof.toBase64(),
  };
  if (networkKey) body.networkProof = networkProof(networkKey, challenge.nonce, identity.id);
  if (sharesDigest !== undefined) body.sharesDigest = sharesDigest;
  return body;
}

/** A fresh challenge: 32 random bytes in base64, and the acceptor's ID. */
export function newChallenge(acceptorId: string): Bodies[MsgType.Challenge] {
  return { nonce: crypto.getRandomValues(new Uint8Array(32)).toBase64(), id: acceptorId };
}

/**
 * Reads the first frame of a connection, which the accepting side sends unasked: its
 * `Challenge`. Gives up after `timeoutMs`.
 *
 * @throws {RemoteError} when the other side sent an `Error` instead (e.g. busy)
 * @throws {Error} when it sent something else, closed, or said nothing in time
 */
export async function readChallenge(
  framed: FramedConn,
  timeoutMs: number,
  label: string,
): Promise<Bodies[MsgType.Challenge]> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(new Error(`Cannot read the challenge of ${label}: nothing within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  let message;
  try {
    message = await Promise.race([framed.readMessage(), timedOut]);
  } finally {
    clearTimeout(timer);
  }
  if (message === null) {
    throw new Error(`Cannot read the challenge of ${label}: the connection closed`);
  }
  if (message.type === MsgType.Error) {
    throw new RemoteError(message.body.code, message.body.message);
  }
  if (message.type !== MsgType.Challenge) {
    throw new Error(
      `Cannot read the challenge of ${label}: got ${
        MSG_TYPE_NAMES.get(message.type)
      } first (a lanshare of protocol 1?)`,
    );
  }
  return message.body;
}
