// How many P2P connections the peer holds at once, in total and per remote address, so that no
// address (or everyone together) can take its file descriptors and buffers before asking for
// anything. Pure bookkeeping: no sockets, no timers.

/** The caps. */
export interface ConnectionCapsOptions {
  /** Connections open at once. */
  maxTotal: number;
  /** Connections open at once from one remote address. */
  maxPerAddress: number;
}

/** Counts open connections and refuses those over the caps. */
export class ConnectionCaps {
  readonly #options: ConnectionCapsOptions;
  #total = 0;
  readonly #byAddress = new Map<string, number>();

  /** @param options the caps */
  constructor(options: ConnectionCapsOptions) {
    this.#options = options;
  }

  /** Connections held now. */
  get total(): number {
    return this.#total;
  }

  /**
   * Admits a connection from `address`.
   *
   * @returns a release function (idempotent), or a "Cannot …" reason when over a cap
   */
  admit(address: string): (() => void) | string {
    const held = this.#byAddress.get(address) ?? 0;
    if (this.#total >= this.#options.maxTotal) {
      return `Cannot accept a transfer connection: ${this.#total} are open, the limit`;
    }
    if (held >= this.#options.maxPerAddress) {
      return `Cannot accept a transfer connection from ${address}: it holds ${held}, the limit`;
    }
    this.#total++;
    this.#byAddress.set(address, held + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#total--;
      const left = (this.#byAddress.get(address) ?? 1) - 1;
      if (left === 0) this.#byAddress.delete(address);
      else this.#byAddress.set(address, left);
    };
  }
}

/**
 * The caps for a peer with k transfer slots and a queue of `maxQueue`: every slot and queue
 * place taken from one address, with room for probes and connections closing; and four times
 * that in total, for several fetchers on other hosts.
 */
export function connectionCapsFor(maxSessions: number, maxQueue: number): ConnectionCapsOptions {
  const perAddress = maxSessions + maxQueue + 8;
  return { maxTotal: 4 * perAddress, maxPerAddress: perAddress };
}
