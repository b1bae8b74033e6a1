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

  /** Waits until `bytes` may be sent. Debt-based: one large take delays the next ones. */
  async take(bytes: number): Promise<void> {
    if (this.rate === 0) return;
    const now = performance.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#last) * this.rate / 1000);
    this.#last = now;
    this.#tokens -= bytes;
    if (this.#tokens < 0) {
      await new Promise((resolve) => setTimeout(resolve, -this.#tokens * 1000 / this.rate));
    }
  }
}
