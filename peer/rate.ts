// Token-bucket rate limiting of transfers, in bytes per second.

/** Limits a flow of bytes to `rate` per second on average, with bursts up to `burstBytes`. */
export class TokenBucket {
  readonly rate: number;
  readonly #burst: number;
  #tokens: number;
  #last = performance.now();

  /**
   * @param rate bytes per second; 0 means no limit
   * @param burstBytes most bytes sent back-to-back @default a quarter second of `rate`
   */
  constructor(rate: number, burstBytes = Math.max(64 * 1024, rate / 4)) {
    this.rate = rate;
    this.#burst = burstBytes;
    this.#tokens = burstBytes;
  }

  /** Size of the chunks a sender should use under this limit, bytes. */
  get chunkBytes(): number {
    return this.rate === 0
      ? 1 << 20
      : Math.max(16 * 1024, Math.min(1 << 20, Math.floor(this.rate / 20)));
  }

  /**
   * Takes `bytes` from the bucket; returns a promise to wait for when they may not go yet,
   * else undefined (so that callers on a fast path skip an await per chunk). Debt-based: one
   * large take delays the next ones.
   */
  take(bytes: number): Promise<void> | undefined {
    if (this.rate === 0) return undefined;
    const now = performance.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#last) * this.rate / 1000);
    this.#last = now;
    this.#tokens -= bytes;
    if (this.#tokens >= 0) return undefined;
    return new Promise((resolve) => setTimeout(resolve, -this.#tokens * 1000 / this.rate));
  }
}
