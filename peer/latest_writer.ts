// Persists a table that keeps changing (one JSON file, rewritten whole) so that the file ends
// with the latest state. No I/O of its own: it only orders calls of the write it is given.

/**
 * Orders the writes of one file: one at a time, and every save asked for while a write runs
 * shares the next one, which reads the state as it is when it starts.
 *
 * Two writes left to race can finish in either order (each renames its own temporary file into
 * place), so an older table could replace a newer one: a share published during a download's
 * completion would then be gone after a restart. Sharing the next write also means that many
 * changes in a row (a folder's files published one after another) cost far fewer rewrites.
 *
 * @example
 * ```ts
 * import { LatestWriter } from "./latest_writer.ts";
 * const table: Record<string, string> = {};
 * let file = ""; // stands for a file on disk
 * const writer = new LatestWriter(async () => {
 *   const text = JSON.stringify(table); // read the state first, then write
 *   await Promise.resolve();
 *   file = text;
 * });
 * table.a = "1";
 * const first = writer.save();
 * table.b = "2";
 * await Promise.all([first, writer.save()]);
 * if (file !== '{"a":"1","b":"2"}') throw new Error("the last write has the latest state");
 * ```
 */
export class LatestWriter {
  readonly #write: () => Promise<void>;
  /** The write running now. */
  #running: Promise<void> | undefined;
  /** The write queued behind it, which every save asked for meanwhile waits on. */
  #queued: Promise<void> | undefined;

  /**
   * @param write writes the current state; it must read that state before its first `await`
   *   or later, never from a copy taken earlier
   */
  constructor(write: () => Promise<void>) {
    this.#write = write;
  }

  /**
   * Makes sure the state as it is now reaches the file: resolves once a write that started
   * after this call has finished, and rejects with that write's error.
   */
  save(): Promise<void> {
    if (this.#queued) return this.#queued;
    if (!this.#running) return this.#start();
    // The running write may have read the state before this change: one more after it. Its
    // failure belongs to its own callers; this one tries again.
    this.#queued = this.#running.catch(() => {}).then(() => {
      this.#queued = undefined;
      return this.#start();
    });
    return this.#queued;
  }

  #start(): Promise<void> {
    const running = this.#write().finally(() => {
      if (this.#running === running) this.#running = undefined;
    });
    this.#running = running;
    return running;
  }
}
