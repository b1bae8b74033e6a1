// Tickets ("who may fetch"): an index vouches, by its signature, that a device may fetch from
// the peers registered with it until a time. Sources check them offline: the ticket names the
// fetcher's ID (which the fetcher proves on the P2P connection) and the index (which the source
// trusts: the one it is registered with).
import { type Identity, shortId, sign, verify } from "./identity.ts";
import type { Ticket } from "./protocol.ts";
import { ticketStatement } from "./statements.ts";

/** How long a ticket is valid, ms: a session asks for a new one before. */
export const TICKET_LIFETIME_MS = 10 * 60 * 1000;
/** Clock difference between an index and a source that a ticket tolerates, ms. */
export const TICKET_SKEW_MS = 60 * 1000;

/** Signs a ticket for `fetcherId`, valid for `lifetimeMs` from `nowMs`. */
export async function issueTicket(
  index: Identity,
  fetcherId: string,
  nowMs: number,
  lifetimeMs = TICKET_LIFETIME_MS,
): Promise<Ticket> {
  const expiresAtMs = nowMs + lifetimeMs;
  const sig = await sign(index, ticketStatement(fetcherId, index.id, expiresAtMs));
  return { fetcher: fetcherId, index: index.id, expiresAtMs, sig: sig.toBase64() };
}

/** What a source knows when it checks a ticket. */
export interface TicketCheck {
  /** The ID the fetcher proved on this connection. */
  fetcherId: string;
  /** The indexes whose tickets this source accepts. */
  trustedIndexIds: readonly string[];
  nowMs: number;
  /** @default TICKET_SKEW_MS */
  skewMs?: number;
}

/**
 * Why `ticket` does not admit the fetcher (a text to put after "Cannot serve: "), or undefined
 * when it does: signed by a trusted index, naming the fetcher, not expired (beyond the skew).
 */
export async function ticketProblem(
  ticket: Ticket,
  check: TicketCheck,
): Promise<string | undefined> {
  const skewMs = check.skewMs ?? TICKET_SKEW_MS;
  if (!check.trustedIndexIds.includes(ticket.index)) {
    return `the ticket is from index ${shortId(ticket.index)}, not the index this peer uses`;
  }
  if (ticket.fetcher !== check.fetcherId) {
    return `the ticket is device ${shortId(ticket.fetcher)}'s, not ${shortId(check.fetcherId)}'s`;
  }
  if (ticket.expiresAtMs + skewMs <= check.nowMs) {
    return `the ticket expired at ${new Date(ticket.expiresAtMs).toISOString()}`;
  }
  let sig: Uint8Array<ArrayBuffer>;
  try {
    sig = Uint8Array.fromBase64(ticket.sig);
  } catch (err) {
    if (err instanceof SyntaxError) return "the ticket's signature is not base64";
    throw err;
  }
  const statement = ticketStatement(ticket.fetcher, ticket.index, ticket.expiresAtMs);
  if (!await verify(ticket.index, statement, sig)) {
    return `the ticket is not signed by index ${shortId(ticket.index)}`;
  }
  return undefined;
}
