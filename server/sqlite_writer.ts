// Where MemoryStore's batches of writes go: straight into SQLite on the calling thread (an
// in-memory database, tests), or to a worker thread with its own connection to the database
// file, so that commits and WAL checkpoints (fsync) never stall the server's event loop.
import { logger } from "../shared/log.ts";
import { type FailedWrite, SqliteStore, type SqliteWrite } from "./sqlite_store.ts";

const log = logger("server", "store");

/** Applies batches of writes in the order given. */
export interface BatchWriter {
  /** Resolves once the writer can write; rejects with why it cannot (then nothing would be saved). */
  ready(): Promise<void>;
  /** Commits `writes` as one batch. @returns the writes that failed */
  apply(writes: SqliteWrite[]): Promise<FailedWrite[]>;
  /** Waits for every batch handed over, then releases the writer. */
  close(): Promise<void>;
}

/** Name of the writer worker; a bundled server recognises it at start (see server/main.ts). */
export const SQLITE_WRITER_NAME = "lanshare-sqlite-writer";

/** Writes on the calling thread, through `db`. */
export class InlineBatchWriter implements BatchWriter {
  readonly #db: SqliteStore;

  /** @param db the store to write through (owned by the caller) */
  constructor(db: SqliteStore) {
    this.#db = db;
  }

  ready(): Promise<void> {
    return Promise.resolve();
  }

  apply(writes: SqliteWrite[]): Promise<FailedWrite[]> {
    try {
      return Promise.resolve(this.#db.applyBatch(writes));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Messages to the worker. */
type WriterRequest =
  | { kind: "open"; path: string }
  | { kind: "batch"; id: number; writes: SqliteWrite[] }
  | { kind: "close" };

/** Messages from the worker. */
type WriterReply =
  | { kind: "batch"; id: number; failed: { index: number; message: string }[] }
  | { kind: "opened" }
  | { kind: "failed"; message: string }
  | { kind: "closed" };

/** Writes through a worker thread that holds its own connection to the database file. */
export class WorkerBatchWriter implements BatchWriter {
  readonly #worker: Worker;
  readonly #pending = new Map<
    number,
    { writes: SqliteWrite[]; done: PromiseWithResolvers<FailedWrite[]> }
  >();
  readonly #closed = Promise.withResolvers<void>();
  readonly #opened = Promise.withResolvers<void>();
  #nextId = 1;
  #broken: Error | undefined;

  /** @param path the database file (already migrated) */
  constructor(path: string) {
    this.#worker = new Worker(writerModule(), { type: "module", name: SQLITE_WRITER_NAME });
    this.#worker.onmessage = (event: MessageEvent<WriterReply>) => this.#receive(event.data);
    this.#worker.onerror = (event) => {
      event.preventDefault();
      this.#fail(new Error(`Cannot write the index database: writer failed: ${event.message}`));
    };
    // Handled here so that a writer that fails before anyone asks is not an unhandled rejection.
    this.#opened.promise.catch(() => {});
    this.#post({ kind: "open", path });
  }

  /** Resolves once the worker has opened the database; rejects if it could not start or open it. */
  ready(): Promise<void> {
    return this.#opened.promise;
  }

  apply(writes: SqliteWrite[]): Promise<FailedWrite[]> {
    if (this.#broken) return Promise.reject(this.#broken);
    const id = this.#nextId++;
    const done = Promise.withResolvers<FailedWrite[]>();
    this.#pending.set(id, { writes, done });
    this.#post({ kind: "batch", id, writes });
    return done.promise;
  }

  async close(): Promise<void> {
    if (!this.#broken) {
      this.#post({ kind: "close" });
      await this.#closed.promise;
    }
    this.#worker.terminate();
  }

  #post(request: WriterRequest): void {
    this.#worker.postMessage(request);
  }

  #receive(reply: WriterReply): void {
    switch (reply.kind) {
      case "batch": {
        const batch = this.#pending.get(reply.id);
        if (!batch) return;
        this.#pending.delete(reply.id);
        batch.done.resolve(reply.failed.map(({ index, message }) => ({
          write: batch.writes[index]!,
          error: new Error(message),
        })));
        return;
      }
      case "opened":
        this.#opened.resolve();
        return;
      case "failed":
        this.#fail(new Error(`Cannot write the index database: ${reply.message}`));
        return;
      case "closed":
        this.#closed.resolve();
        return;
    }
  }

  #fail(error: Error): void {
    // Said at once: every later write fails with it, and the catalogue stops being saved.
    if (!this.#broken) log.error("{error}", { error: error.message });
    this.#broken ??= error;
    for (const { done } of this.#pending.values()) done.reject(error);
    this.#pending.clear();
    this.#opened.reject(error);
    this.#closed.resolve();
  }
}

/**
 * The worker's module: sqlite_writer_worker.ts beside this file, or, in a bundle (one .js file
 * holding everything), the bundle itself, which starts as the writer when given its name.
 */
function writerModule(): string {
  if (import.meta.url.endsWith(".ts")) {
    return new URL("./sqlite_writer_worker.ts", import.meta.url).href;
  }
  return Deno.mainModule;
}

/** The worker side: opens the database on "open", applies batches, answers each. */
export function serveSqliteWrites(): void {
  const scope = self as unknown as {
    onmessage: ((event: MessageEvent<WriterRequest>) => void) | null;
    postMessage(message: WriterReply): void;
    close(): void;
  };
  let db: SqliteStore | undefined;
  scope.onmessage = (event) => {
    const request = event.data;
    try {
      switch (request.kind) {
        case "open":
          db = new SqliteStore(request.path);
          scope.postMessage({ kind: "opened" });
          return;
        case "batch": {
          if (!db) throw new Error("no database open");
          const failed = db.applyBatch(request.writes).map(({ write, error }) => ({
            index: request.writes.indexOf(write),
            message: error.message,
          }));
          scope.postMessage({ kind: "batch", id: request.id, failed });
          return;
        }
        case "close":
          db?.close();
          db = undefined;
          scope.postMessage({ kind: "closed" });
          scope.close();
          return;
      }
    } catch (err) {
      scope.postMessage({
        kind: "failed",
        message: err instanceof Error ? err.message : String(err),
      });
    }
  };
}
