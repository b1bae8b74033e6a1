// Transfer-session slots: at most k sessions (uploads + downloads) at once, at most
// `maxPerPeer` held by one remote peer, and a bounded FIFO queue of waiting uploads.
// Uploads never take the last slot (when k > 1), and never one a download is waiting for: the
// peer's own downloads cannot be starved by what others ask of it.

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
  #uploads = 0;
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

  /** Uploads held now. */
  get uploads(): number {
    return this.#uploads;
  }

  /**
   * Most slots uploads may hold together: k − 1 when k > 1, so that one slot always stays
   * free for the peer's own downloads. With k = 1 nothing can be reserved.
   */
  get uploadCap(): number {
    return Math.max(1, this.#options.max - 1);
  }

  #canTake(key: string, upload: boolean): boolean {
    if (upload && (this.#uploads >= this.uploadCap || this.#downloadWaits())) return false;
    return this.#active < this.#options.max && this.#underPeerCap(key);
  }

  #underPeerCap(key: string): boolean {
    return (this.#perPeer.get(key) ?? 0) < this.#options.maxPerPeer;
  }

  /** Whether a waiting download only lacks a free slot (not its own per-peer cap). */
  #downloadWaits(): boolean {
    return this.#downloads.some((w) => this.#underPeerCap(w.key));
  }

  #take(key: string, upload: boolean): SlotLease {
    this.#active++;
    if (upload) this.#uploads++;
    this.#perPeer.set(key, (this.#perPeer.get(key) ?? 0) + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#active--;
        if (upload) this.#uploads--;
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
      const upload = list === this.#queue;
      for (let i = 0; i < list.length; i++) {
        const waiter = list[i]!;
        if (!this.#canTake(waiter.key, upload)) continue;
        list.splice(i, 1);
        waiter.grant(this.#take(waiter.key, upload));
        i--;
      }
    }
    this.#queue.forEach((w, i) => w.onPosition?.(i + 1));
  }

  /** Takes a slot for an upload to `key` if one is free now. */
  tryAcquire(key: string): SlotLease | undefined {
    // No jumping the queue, except past waiters that only their own per-peer cap holds back.
    const ahead = this.#queue.some((w) => this.#underPeerCap(w.key));
    return this.#canTake(key, true) && !ahead ? this.#take(key, true) : undefined;
  }

  /** Takes a slot for one of our downloads if one is free now, without waiting. */
  tryAcquireDownload(key: string): SlotLease | undefined {
    return this.#canTake(key, false) ? this.#take(key, false) : undefined;
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
    if (this.#canTake(key, false)) return Promise.resolve(this.#take(key, false));
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
