// For tests that speak the index protocol by hand over a FramedConn: the Hello frame that
// answers the server's Challenge, so that each such test stays one line longer, not ten.
import { request } from "../shared/encode.ts";
import { FramedConn } from "../shared/framing.ts";
import { helloBody, readChallenge } from "../shared/handshake.ts";
import { createIdentity, type Identity, sign } from "../shared/identity.ts";
import {
  type FileEntry,
  type Message,
  MsgType,
  type SignedFileEntry,
  type Ticket,
} from "../shared/protocol.ts";
import { fetchStatement, publishStatement } from "../shared/statements.ts";
import type { TransportConn } from "../shared/transport.ts";

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
export async function signedEntry(
  entry: FileEntry,
  identity?: Identity,
): Promise<SignedFileEntry> {
  const device = identity ?? await testDevice();
  const statement = publishStatement(entry.fname, entry.size, entry.rootHash);
  return { ...entry, sig: (await sign(device, statement)).toBase64() };
}

/** What a hand-written fetcher shows a source: its device and a ticket from the index. */
export interface TestCredentials {
  identity: Identity;
  ticket: Ticket;
}

/**
 * Registers `identity` (testDevice()) with an index as `hostname` and returns its ticket, then
 * leaves: a ticket stays valid after its session ends. `index`: a connection to the index (e.g.
 * over TLS from `dialProgram()`), or the port of a plaintext one on 127.0.0.1.
 */
export async function ticketFrom(
  index: number | TransportConn,
  hostname = "ticket-holder",
  identity?: Identity,
): Promise<TestCredentials> {
  const device = identity ?? await testDevice();
  const conn = typeof index === "number"
    ? await Deno.connect({ hostname: "127.0.0.1", port: index })
    : index;
  using framed = new FramedConn(conn);
  await framed.send(await helloRequest(framed, { hostname, p2pPort: 9 }, 1, device));
  const welcome = await framed.readMessage();
  if (welcome?.type !== MsgType.Welcome) {
    throw new Error(`Cannot get a ticket: the index answered ${JSON.stringify(welcome)}`);
  }
  return { identity: device, ticket: welcome.body.ticket };
}

/** Reads a source's Challenge from `framed` and returns the GetInfo answering it. */
export async function getInfoRequest(
  framed: FramedConn,
  body: { fname: string; from?: string; rootHash?: string },
  credentials: TestCredentials,
  requestId = 1,
): Promise<Message> {
  const challenge = await readChallenge(framed, 10_000, "the test source");
  const { identity, ticket } = credentials;
  const proof = await sign(identity, fetchStatement(challenge.nonce, challenge.id, identity.id));
  return request(MsgType.GetInfo, requestId, {
    ...body,
    id: identity.id,
    ticket,
    proof: proof.toBase64(),
  });
}
