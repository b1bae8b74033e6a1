// Checks received pieces against their SHA-256 and writes the good ones at their offsets in a
// partial file: on the calling thread for small downloads, on a worker thread for large ones.
// Knows nothing of sources, records or checkpoints.
//
// Why a worker: on a fast link the fetcher's main thread is busy reading sockets, and hashing
// (~0.65 s of CPU per GiB) and the copy into the page cache (~0.25 s) are its largest costs
// after that. One thread doing all three was the bottleneck (1 GiB on loopback, 2 cores shared
// with the seeder: ~790 MiB/s, against ~870 MiB/s with this worker). WebCrypto's digest runs in
// the thread pool but first copies every piece on the calling thread, and async file writes in
// the thread pool only start the next write once the main thread has seen the previous one
// finish. The worker takes the pieces from its queue back to back, hashes each, and writes it
// straight away. It costs a thread start (~40 ms, not awaited) and ~20 MiB of memory per large
// download, hence small downloads do without it.
import { createHash } from "node:crypto";
import { isNoSpace, StorageError } from "./disk_space.ts";

/**
 * Bytes per write call. Measured on the benchmark VM (Linux 6.18, ext4), 1 GiB into the page
 * cache: 64 or 128 KiB writes took 0.22–0.25 s of CPU every time, while 1 MiB writes took
 * 0.65–2.0 s (the kernel then allocates large folios, from memory this VM had handed back to
 * its host, which must fault it in again), 256 KiB ones 0.46–1.3 s and 16 KiB ones 0.39 s.
 */
export const WRITE_SLICE_BYTES = 64 * 1024;

/** Checks pieces against their hashes and writes the good ones at their offsets in one file. */
export interface PieceWriter {
  /**
   * Writes `bytes` at `offset` if their SHA-256 is `expectedHash`. `bytes` must stay untouched
   * until the promise resolves.
   *
   * @returns false, having written nothing, when the hash does not match
   * @throws {StorageError} with noSpace when the file system is full
   * @throws {Error} "Cannot write …" when the file cannot be written otherwise
   */
  write(offset: number, bytes: Uint8Array, expectedHash: Uint8Array): Promise<boolean>;
  /** Waits for the writes queued so far, then releases the writer (not the caller's file). */
  close(): Promise<void>;
}

/** SHA-256 of `bytes` equals `expected`. */
function hashMatches(bytes: Uint8Array, expected: Uint8Array): boolean {
  const digest = createHash("sha256").update(bytes).digest();
  if (digest.length !== expected.length) return false;
  for (let i = 0; i < digest.length; i++) if (digest[i] !== expected[i]) return false;
  return true;
}

/** Writes all of `bytes` at `offset` with `writeSync`, `sliceBytes` at a time. */
function writeSlices(file: Deno.FsFile, offset: number, bytes: Uint8Array, sliceBytes: number) {
  file.seekSync(offset, Deno.SeekMode.Start);
  let written = 0;
  while (written < bytes.length) {
    written += file.writeSync(
      bytes.subarray(written, Math.min(bytes.length, written + sliceBytes)),
    );
  }
}

/** Hashes and writes on the calling thread, into the file the caller holds open. */
export class SyncPieceWriter implements PieceWriter {
  readonly #file: Deno.FsFile;

  /** @param file open for writing; stays the caller's to close */
  constructor(file: Deno.FsFile) {
    this.#file = file;
  }

  write(offset: number, bytes: Uint8Array, expectedHash: Uint8Array): Promise<boolean> {
    try {
      if (!hashMatches(bytes, expectedHash)) return Promise.resolve(false);
      writeSlices(this.#file, offset, bytes, WRITE_SLICE_BYTES);
      return Promise.resolve(true);
    } catch (err) {
      if (!isNoSpace(err)) return Promise.reject(err);
      return Promise.reject(
        new StorageError(`Cannot write a piece: ${(err as Error).message}`, {
          cause: err,
          noSpace: true,
        }),
      );
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A message to the worker. */
type WriterRequest =
  | { type: "open"; path: string; sliceBytes: number }
  | {
    type: "write";
    id: number;
    offset: number;
    buffer: ArrayBufferLike;
    byteOffset: number;
    length: number;
    expectedHash: Uint8Array;
  }
  | { type: "close"; id: number };

/** The worker's answer to a write (stored: false on a hash mismatch) or to close. */
interface WriterReply {
  id: number;
  stored?: boolean;
  error?: string;
  /** The error is ENOSPC. */
  noSpace?: boolean;
}

/**
 * The worker's whole program. It runs from its source text (see pieceWriterUrl()), so it must
 * not use anything from outside its own body: no module-level names or imports (it imports
 * node:crypto itself).
 */
function pieceWriterWorker(): void {
  const scope = self as unknown as {
    onmessage: (event: MessageEvent<WriterRequest>) => void;
    postMessage(reply: WriterReply): void;
    close(): void;
  };
  const crypto = import("node:crypto");
  let file: Deno.FsFile | undefined;
  let openError: string | undefined;
  let sliceBytes = 0;
  // Messages are handled one at a time, in order, even though the first waits for the import.
  let queue = Promise.resolve();
  const handle = async (request: WriterRequest): Promise<void> => {
    if (request.type === "open") {
      sliceBytes = request.sliceBytes;
      try {
        file = Deno.openSync(request.path, { write: true });
      } catch (err) {
        openError = `Cannot open ${request.path} for writing: ${(err as Error).message}`;
      }
      return;
    }
    if (request.type === "close") {
      file?.close();
      scope.postMessage({ id: request.id });
      scope.close();
      return;
    }
    try {
      if (!file) throw new Error(openError ?? "not open");
      const { createHash } = await crypto;
      const bytes = new Uint8Array(request.buffer, request.byteOffset, request.length);
      const digest = createHash("sha256").update(bytes).digest();
      const expected = request.expectedHash;
      let stored = digest.length === expected.length;
      for (let i = 0; stored && i < digest.length; i++) stored = digest[i] === expected[i];
      if (stored) {
        // The same loop as writeSlices(), which this body cannot call.
        file.seekSync(request.offset, Deno.SeekMode.Start);
        let written = 0;
        while (written < bytes.length) {
          const end = Math.min(bytes.length, written + sliceBytes);
          written += file.writeSync(bytes.subarray(written, end));
        }
      }
      scope.postMessage({ id: request.id, stored });
    } catch (err) {
      // Deno has no error class for ENOSPC; its code says so.
      const noSpace = (err as { code?: unknown }).code === "ENOSPC";
      scope.postMessage({ id: request.id, error: (err as Error).message, noSpace });
    }
  };
  scope.onmessage = (event) => {
    queue = queue.then(() => handle(event.data));
  };
}

/**
 * The worker is started from its source text rather than from a module file, so that it also
 * works from a `deno bundle` output, which would not include a separate worker module.
 */
let workerUrl: string | undefined;

function pieceWriterUrl(): string {
  workerUrl ??= URL.createObjectURL(
    new Blob([`(${pieceWriterWorker.toString()})();`], { type: "text/javascript" }),
  );
  return workerUrl;
}

/**
 * Hashes and writes on a worker thread that has the file open itself. Zero-copy when `bytes` is
 * a view of a SharedArrayBuffer (as the source connections allocate); any other buffer is
 * copied whole into the message.
 */
export class WorkerPieceWriter implements PieceWriter {
  readonly #worker: Worker;
  readonly #pending = new Map<number, PromiseWithResolvers<boolean>>();
  readonly #path: string;
  #nextId = 1;
  #failure: Error | undefined;
  #closed: Promise<void> | undefined;

  /** @param path the file to write into; it must exist */
  constructor(path: string) {
    this.#path = path;
    this.#worker = new Worker(pieceWriterUrl(), { type: "module" });
    this.#worker.onmessage = (event: MessageEvent<WriterReply>) => this.#settle(event.data);
    this.#worker.onerror = (event) => {
      event.preventDefault();
      this.#fail(new Error(`Cannot write to ${path}: writer thread failed: ${event.message}`));
    };
    this.#post({ type: "open", path, sliceBytes: WRITE_SLICE_BYTES });
  }

  write(offset: number, bytes: Uint8Array, expectedHash: Uint8Array): Promise<boolean> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#closed) return Promise.reject(new Error(`Cannot write to ${this.#path}: closed`));
    const id = this.#nextId++;
    const done = Promise.withResolvers<boolean>();
    this.#pending.set(id, done);
    this.#post({
      type: "write",
      id,
      offset,
      buffer: bytes.buffer,
      byteOffset: bytes.byteOffset,
      length: bytes.length,
      expectedHash,
    });
    return done.promise;
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    if (!this.#failure) {
      const id = this.#nextId++;
      const done = Promise.withResolvers<boolean>();
      this.#pending.set(id, done);
      this.#post({ type: "close", id });
      // The worker answers in order, so every write queued before has been answered.
      await done.promise.catch(() => {});
    }
    this.#worker.terminate();
  }

  #post(request: WriterRequest): void {
    this.#worker.postMessage(request);
  }

  #settle(reply: WriterReply): void {
    const done = this.#pending.get(reply.id);
    if (!done) return;
    this.#pending.delete(reply.id);
    if (reply.error === undefined) done.resolve(reply.stored ?? true);
    else if (reply.noSpace) {
      done.reject(
        new StorageError(`Cannot write to ${this.#path}: ${reply.error}`, { noSpace: true }),
      );
    } else done.reject(new Error(`Cannot write to ${this.#path}: ${reply.error}`));
  }

  #fail(err: Error): void {
    this.#failure = err;
    for (const done of this.#pending.values()) done.reject(err);
    this.#pending.clear();
  }
}
