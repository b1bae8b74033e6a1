// Transfer-session slots: at most k sessions (uploads + downloads) at once, at most
// `maxPerPeer` held by one remote peer, and a bounded FIFO queue of waiting uploads.

/** A held slot; release it exactly once. */
export interface SlotLease {
  release(): void;
}

/** Options for `Slots`. */
export interface SlotsOptions {
  /** k: most sessions at once. */
  max: number;
  /** Most sessions one remote peer may hold. */
  maxPerPeer: number;
  /** Most uploads waiting; beyond it requests are refused (BUSY). */
  maxQueue: number;
}

interface Waiter {
  key: string;
  grant(lease: SlotLease): void;
  onPosition?: (position: number) => void;
}

/** The slot table of one peer. */
export class Slots {
  readonly #options: SlotsOptions;
  #active = 0;
  readonly #perPeer = new Map<string, number>();
  readonly #queue: Waiter[] = [];
  readonly #downloads: Waiter[] = [];

  /** @param options the limits */
  constructor(options: SlotsOptions) {
    this.#options = options;
  }

  /** Sessions held now. */
  get active(): number {
    return this.#active;
  }

  /** Requests waiting now. */
  get queued(): number {
    return this.#queue.length + this.#downloads.length;
  }

  #canTake(key: string): boolean {
    return this.#active < this.#options.max &&
      (this.#perPeer.get(key) ?? 0) < this.#options.maxPerPeer;
  }

  #take(key: string): SlotLease {
    this.#active++;
    this.#perPeer.set(key, (this.#perPeer.get(key) ?? 0) + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#active--;
        const left = (this.#perPeer.get(key) ?? 1) - 1;
        if (left === 0) this.#perPeer.delete(key);
        else this.#perPeer.set(key, left);
        this.#wake();
      },
    };
  }

  #wake(): void {
    // Our own downloads first: the user asked for them here and now.
    for (const list of [this.#downloads, this.#queue]) {
      for (let i = 0; i < list.length; i++) {
        const waiter = list[i]!;
        if (!this.#canTake(waiter.key)) continue;
        list.splice(i, 1);
        waiter.grant(this.#take(waiter.key));
        i--;
      }
    }
    this.#queue.forEach((w, i) => w.onPosition?.(i + 1));
  }

  /** Takes a slot for an upload to `key` if one is free now. */
  tryAcquire(key: string): SlotLease | undefined {
    return this.#canTake(key) && this.#queue.length === 0 ? this.#take(key) : undefined;
  }

  /**
   * Queues an upload request. Returns its first position, and the lease once granted; or
   * undefined when the queue is full.
   */
  enqueue(
    key: string,
    onPosition: (position: number) => void,
    signal: AbortSignal,
  ): { position: number; lease: Promise<SlotLease> } | undefined {
    if (this.#queue.length >= this.#options.maxQueue) return undefined;
    const { promise, resolve, reject } = Promise.withResolvers<SlotLease>();
    const waiter: Waiter = { key, grant: resolve, onPosition };
    this.#queue.push(waiter);
    signal.addEventListener("abort", () => {
      const i = this.#queue.indexOf(waiter);
      if (i < 0) return;
      this.#queue.splice(i, 1);
      reject(signal.reason);
      this.#queue.forEach((w, j) => w.onPosition?.(j + 1));
    }, { once: true });
    return { position: this.#queue.length, lease: promise };
  }

  /** Takes a slot for one of our downloads, waiting for one to free up. */
  acquireDownload(key: string, signal: AbortSignal): Promise<SlotLease> {
    if (this.#canTake(key)) return Promise.resolve(this.#take(key));
    const { promise, resolve, reject } = Promise.withResolvers<SlotLease>();
    const waiter: Waiter = { key, grant: resolve };
    this.#downloads.push(waiter);
    signal.addEventListener("abort", () => {
      const i = this.#downloads.indexOf(waiter);
      if (i >= 0) {
        this.#downloads.splice(i, 1);
        reject(signal.reason);
      }
    }, { once: true });
    return promise;
  }
}
