// Who may fetch from this peer: a fetcher proves its ID by signing the nonce of this
// connection's Challenge, and shows a ticket in which the index this peer is registered with
// vouches for that ID. Both checked offline; no request goes to the index.
import { type Identity, shortId, verify } from "../shared/identity.ts";
import type { Bodies, MsgType } from "../shared/protocol.ts";
import { fetchStatement } from "../shared/statements.ts";
import { ticketProblem } from "../shared/ticket.ts";

/** What the P2P listener needs to authenticate fetchers. */
export interface P2pAuth {
  /** This peer's identity: its ID is in every Challenge. */
  identity: Identity;
  /** The indexes whose tickets are accepted: the one this peer is registered with. */
  trustedIndexIds: () => string[];
}

/** A refusal of a fetcher: the error code and the text after "Cannot serve: ". */
export interface FetcherRefusal {
  code: "bad-proof" | "bad-ticket";
  problem: string;
}

/**
 * Why the fetcher that sent `getInfo` on the connection challenged with `nonce` may not fetch,
 * or undefined when it may.
 */
export async function fetcherRefusal(
  getInfo: Bodies[MsgType.GetInfo],
  nonce: string,
  auth: P2pAuth,
  nowMs: number,
): Promise<FetcherRefusal | undefined> {
  const { id, ticket, proof } = getInfo;
  if (id === undefined || ticket === undefined || proof === undefined) {
    return { code: "bad-ticket", problem: "GetInfo must carry id, ticket and proof (protocol 2)" };
  }
  let signature: Uint8Array<ArrayBuffer>;
  try {
    signature = Uint8Array.fromBase64(proof);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    return { code: "bad-proof", problem: "the proof is not base64" };
  }
  if (!await verify(id, fetchStatement(nonce, auth.identity.id, id), signature)) {
    return { code: "bad-proof", problem: `the proof is not device ${shortId(id)}'s signature` };
  }
  const trustedIndexIds = auth.trustedIndexIds();
  if (trustedIndexIds.length === 0) {
    return { code: "bad-ticket", problem: "this peer is not registered with an index yet" };
  }
  const problem = await ticketProblem(ticket, { fetcherId: id, trustedIndexIds, nowMs });
  return problem === undefined ? undefined : { code: "bad-ticket", problem };
}
