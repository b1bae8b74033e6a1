// For tests that speak the index protocol by hand over a FramedConn: the Hello frame that
// answers the server's Challenge, so that each such test stays one line longer, not ten.
import { request } from "../shared/encode.ts";
import type { FramedConn } from "../shared/framing.ts";
import { helloBody, readChallenge } from "../shared/handshake.ts";
import { createIdentity, type Identity, sign } from "../shared/identity.ts";
import { type FileEntry, type Message, MsgType } from "../shared/protocol.ts";
import { publishStatement } from "../shared/statements.ts";

let device: Promise<Identity> | undefined;

/** One device for the test run (a fresh one per call would take its own {hostname, port}). */
export function testDevice(): Promise<Identity> {
  return device ??= createIdentity();
}

/**
 * Reads the server's Challenge from `framed` and returns the Hello request answering it.
 *
 * @param requestId the request id of the Hello @default 1
 * @param identity the device to prove @default one device for the whole test run
 */
export async function helloRequest(
  framed: FramedConn,
  peer: { hostname: string; p2pPort: number },
  requestId = 1,
  identity?: Identity,
): Promise<Message> {
  const challenge = await readChallenge(framed, 10_000, "the test server");
  const body = await helloBody({ identity: identity ?? await testDevice(), ...peer }, challenge);
  return request(MsgType.Hello, requestId, body);
}

/** `entry` with its publisher's signature, as a peer publishes it (`identity`: testDevice()). */
export async function signedEntry(entry: FileEntry, identity?: Identity): Promise<FileEntry> {
  const device = identity ?? await testDevice();
  const statement = publishStatement(entry.fname, entry.size, entry.rootHash);
  return { ...entry, sig: (await sign(device, statement)).toBase64() };
}
