// Keeps this peer's ticket (the index's signed word that it may fetch) and the ID of the index
// it is registered with (whose tickets its own P2P port accepts). The ticket comes in Welcome
// and is renewed with GetTicket before it expires.
import { logger } from "../shared/log.ts";
import type { Ticket } from "../shared/protocol.ts";

const log = logger("peer", "ticket");

/** Share of a ticket's remaining life after which it is renewed. */
const RENEW_AT = 0.5;
/** Wait before retrying a renewal that failed, ms. */
const RETRY_MS = 10_000;

/** The current ticket and index, renewed in the background. */
export class TicketKeeper implements Disposable {
  #ticket: Ticket | undefined;
  #indexIds: string[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #renew: () => Promise<Ticket>;

  /** @param renew asks the index for a fresh ticket (GetTicket) */
  constructor(renew: () => Promise<Ticket>) {
    this.#renew = renew;
  }

  /** The ticket to present to sources, if the peer has one. */
  get ticket(): Ticket | undefined {
    return this.#ticket;
  }

  /**
   * The index this peer is registered with, first, and the servers sharing its catalogue: their
   * tickets are the ones this peer's P2P port accepts. Empty before the first registration.
   */
  get indexIds(): readonly string[] {
    return this.#indexIds;
  }

  /** Takes the ticket of a (re)registration and schedules its renewal. */
  registered(indexIds: string[], ticket: Ticket): void {
    this.#indexIds = indexIds;
    this.#set(ticket);
  }

  #set(ticket: Ticket): void {
    this.#ticket = ticket;
    clearTimeout(this.#timer);
    const left = Math.max(0, ticket.expiresAtMs - Date.now());
    this.#schedule(left * RENEW_AT);
  }

  #schedule(ms: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#renewNow(), ms);
  }

  async #renewNow(): Promise<void> {
    try {
      this.#set(await this.#renew());
    } catch (err) {
      log.warn("Cannot renew the fetch ticket (retrying): {error}", { error: String(err) });
      this.#schedule(RETRY_MS);
    }
  }

  /** Stops renewing. */
  [Symbol.dispose](): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
