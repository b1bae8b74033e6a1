// A download in progress on disk: `.lanshare/partial/<root>.part` holds the bytes, and
// `<root>.json` records which pieces are verified AND durable (written, then fsynced before the
// record names them). A killed fetch resumes from the record and refetches nothing it names.
import { join } from "node:path";
import { Bitfield } from "../shared/bitfield.ts";
import { HASH_BYTES, pieceCount } from "../shared/pieces.ts";
import type { FileHashes } from "./hashing.ts";
import { type PieceWriter, SyncPieceWriter, WorkerPieceWriter } from "./piece_writer.ts";
import { pathExists, type Repository } from "./repo.ts";
import { freeBytes, isNoSpace, noSpaceMessage, StorageError } from "./disk_space.ts";

/** The record saved beside a partial file. */
export interface PartialRecord {
  fname: string;
  size: number;
  pieceSize: number;
  rootHash: string;
  /** base64 of the concatenated piece hashes. */
  pieceHashes: string;
  /** base64 bitfield of durable verified pieces. */
  have: string;
}

/**
 * Checkpoint after this many newly verified bytes, or after CHECKPOINT_MS, whichever comes
 * first. The fsync runs off the event loop while the transfer goes on, and every byte is
 * fsynced once at the end anyway, so checkpoints cost little and bound what a kill loses to
 * about a quarter second of transfer. The byte bound only matters above ~1 GiB/s: each
 * checkpoint also writes and fsyncs the record, so a 32 MiB bound (a checkpoint every ~40 ms
 * on loopback) measured slower than a quarter second's worth.
 */
const CHECKPOINT_BYTES = 256 * 1024 * 1024;
const CHECKPOINT_MS = 250;

/**
 * Downloads of at least this many pieces write on a worker thread (see piece_writer.ts); smaller
 * ones write on the main thread, where a first piece lands without waiting for a thread to
 * start (the time to first byte of small files matters more than their throughput).
 */
const THREADED_MIN_PIECES = 32;

/** A partial download: write verified pieces, checkpoint them, finish or cancel. */
export class PartialDownload {
  readonly repo: Repository;
  readonly record: Omit<PartialRecord, "have">;
  readonly hashes: FileHashes;
  /** Verified pieces (in memory; the record lags by at most one checkpoint). */
  readonly have: Bitfield;
  /** Pieces that were durable when this run started. */
  readonly resumedPieces: number;
  readonly path: string;
  readonly #recordName: string;
  readonly #file: Deno.FsFile;
  #durable: Bitfield;
  #unsyncedBytes = 0;
  #lastCheckpointMs = Date.now();
  #checkpointing: Promise<void> | undefined;
  readonly #writer: PieceWriter;
  readonly #resumable: boolean;
  /** Why this download cannot go on (disk full, a record that cannot be saved). */
  #failure: StorageError | undefined;
  /**
   * Told once when the download cannot go on, also from a background checkpoint that nobody
   * awaits: the fetch stops all its sources with this error.
   */
  onFailure: (err: StorageError) => void = () => {};

  private constructor(
    repo: Repository,
    record: PartialRecord,
    file: Deno.FsFile,
    resumable: boolean,
  ) {
    this.repo = repo;
    this.#resumable = resumable;
    const { have, ...rest } = record;
    this.record = rest;
    const count = pieceCount(record.size, record.pieceSize);
    this.have = Bitfield.fromBase64(count, have);
    this.#durable = Bitfield.fromBase64(count, have);
    this.resumedPieces = this.have.count;
    this.hashes = {
      size: record.size,
      mtimeMs: 0,
      pieceSize: record.pieceSize,
      pieceHashes: Uint8Array.fromBase64(record.pieceHashes),
      rootHash: record.rootHash,
    };
    this.path = join(repo.partialDir, `${record.rootHash}.part`);
    this.#recordName = `partial/${record.rootHash}.json`;
    this.#file = file;
    this.#writer = count >= THREADED_MIN_PIECES
      ? new WorkerPieceWriter(this.path)
      : new SyncPieceWriter(file);
  }

  /** The record of an earlier run for this content, if any. */
  static async find(repo: Repository, rootHash: string): Promise<PartialRecord | undefined> {
    return await repo.readMeta<PartialRecord>(`partial/${rootHash}.json`);
  }

  /** Every partial download on disk. */
  static async list(repo: Repository): Promise<PartialRecord[]> {
    const records: PartialRecord[] = [];
    if (!await pathExists(repo.partialDir)) return records; // a read-only repository may lack it
    for await (const entry of Deno.readDir(repo.partialDir)) {
      if (!entry.isFile || !entry.name.endsWith(".json")) continue;
      const record = await repo.readMeta<PartialRecord>(`partial/${entry.name}`);
      if (record) records.push(record);
    }
    return records;
  }

  /**
   * Why a download of `size` bytes with root `rootHash` cannot start here, if it cannot: a
   * read-only repository, or less free space than the bytes it still has to write (a partial
   * file of an earlier run already holds its blocks). Free space is unknown without
   * `--allow-sys=statfs`; the download then fails when the disk fills, with the same message.
   */
  static async storageProblem(
    repo: Repository,
    wanted: { rootHash: string; size: number },
  ): Promise<string | undefined> {
    if (repo.readOnly) return `the repository is read-only`;
    let allocated = 0;
    try {
      allocated =
        ((await Deno.stat(join(repo.partialDir, `${wanted.rootHash}.part`))).blocks ?? 0) *
        512;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    const need = Math.max(0, wanted.size - allocated);
    const have = freeBytes(repo.partialDir);
    return have !== undefined && need > have ? noSpaceMessage(need, have) : undefined;
  }

  /**
   * Opens the partial file of `hashes`, resuming from its record when one exists and the file
   * is still there, else starting empty.
   *
   * @throws {StorageError} when the disk is full
   */
  static async open(
    repo: Repository,
    fname: string,
    hashes: FileHashes,
    options: { resumable: boolean },
  ): Promise<PartialDownload> {
    try {
      return await PartialDownload.#open(repo, fname, hashes, options);
    } catch (err) {
      if (!isNoSpace(err)) throw err;
      throw new StorageError(noSpaceMessage(hashes.size, freeBytes(repo.partialDir)), {
        cause: err,
        noSpace: true,
      });
    }
  }

  static async #open(
    repo: Repository,
    fname: string,
    hashes: FileHashes,
    options: { resumable: boolean },
  ): Promise<PartialDownload> {
    const path = join(repo.partialDir, `${hashes.rootHash}.part`);
    let record = options.resumable ? await PartialDownload.find(repo, hashes.rootHash) : undefined;
    if (!record || !await pathExists(path)) {
      record = {
        fname,
        size: hashes.size,
        pieceSize: hashes.pieceSize,
        rootHash: hashes.rootHash,
        pieceHashes: hashes.pieceHashes.toBase64(),
        have: new Bitfield(pieceCount(hashes.size, hashes.pieceSize)).toBase64(),
      };
      if (options.resumable) {
        await repo.writeMeta(`partial/${hashes.rootHash}.json`, record, { durable: true });
      }
    }
    const file = await Deno.open(path, { read: true, write: true, create: true });
    await file.truncate(hashes.size);
    return new PartialDownload(repo, { ...record, fname }, file, options.resumable);
  }

  /** Bytes verified so far. */
  get doneBytes(): number {
    let bytes = this.have.count * this.hashes.pieceSize;
    const last = this.have.size - 1;
    if (last >= 0 && this.have.has(last)) {
      bytes -= this.hashes.pieceSize - (this.hashes.size - last * this.hashes.pieceSize);
    }
    return bytes;
  }

  /**
   * Checks a received piece against its SHA-256 and, when it matches, writes it at its place
   * and counts it as verified (and, from the next checkpoint on, durable). `bytes` must stay
   * untouched until the promise resolves.
   *
   * @returns false, having written nothing, when the piece does not match its hash
   * @throws {StorageError} when the piece cannot be written (the download cannot go on)
   */
  async storePiece(index: number, bytes: Uint8Array): Promise<boolean> {
    if (this.#failure) throw this.#failure;
    const expected = this.hashes.pieceHashes.subarray(index * HASH_BYTES, (index + 1) * HASH_BYTES);
    try {
      if (!await this.#writer.write(index * this.hashes.pieceSize, bytes, expected)) return false;
    } catch (err) {
      throw this.#fail(err);
    }
    this.have.set(index);
    this.#unsyncedBytes += bytes.length;
    if (
      this.#resumable && !this.#checkpointing &&
      (this.#unsyncedBytes >= CHECKPOINT_BYTES ||
        Date.now() - this.#lastCheckpointMs >= CHECKPOINT_MS)
    ) {
      this.#checkpointing = this.checkpoint()
        .catch((err) => void this.#fail(err))
        .finally(() => this.#checkpointing = undefined);
    }
    return true;
  }

  /** Records why the download cannot go on (the first reason wins) and says so once. */
  #fail(err: unknown): StorageError {
    if (this.#failure) return this.#failure;
    const noSpace = isNoSpace(err) || (err instanceof StorageError && err.noSpace);
    this.#failure = noSpace
      ? new StorageError(
        noSpaceMessage(this.hashes.size - this.doneBytes, freeBytes(this.repo.partialDir)),
        { cause: err, noSpace },
      )
      : new StorageError(`cannot save the download: ${(err as Error).message}`, {
        cause: err,
        noSpace,
      });
    this.onFailure(this.#failure);
    return this.#failure;
  }

  /** Makes every piece verified so far durable, then records them. */
  async checkpoint(): Promise<void> {
    await this.#checkpointing;
    // Only pieces written before the fsync below may be named in the record.
    const snapshot = Bitfield.fromBase64(this.have.size, this.have.toBase64());
    this.#unsyncedBytes = 0;
    this.#lastCheckpointMs = Date.now();
    await this.#file.syncData();
    this.#durable = snapshot;
    await this.repo.writeMeta(this.#recordName, { ...this.record, have: snapshot.toBase64() }, {
      durable: true,
    });
  }

  /** Pieces durable on disk (what a resume would keep). */
  get durablePieces(): number {
    return this.#durable.count;
  }

  /**
   * Completes the download: fsync, close, move to the final name, drop the record.
   * `force` replaces an existing file; otherwise an existing file is an error.
   */
  async finish(finalPath: string, options: { force: boolean }): Promise<void> {
    await this.#writer.close();
    await this.#checkpointing;
    await this.#file.syncData();
    this.#file.close();
    const info = await Deno.stat(this.path);
    if (info.size !== this.hashes.size) {
      throw new Error(
        `Cannot finish: partial file is ${info.size} bytes, expected ${this.hashes.size}`,
      );
    }
    if (!options.force && await pathExists(finalPath)) {
      throw new Error(`Cannot finish: ${finalPath} appeared meanwhile; the download stays partial`);
    }
    await Deno.rename(this.path, finalPath);
    await removeIfThere(join(this.repo.metaDir, this.#recordName));
  }

  /** Closes the file, keeping it and its record for a later resume (deleting it if it has none). */
  async suspend(): Promise<void> {
    await this.#writer.close();
    await this.#checkpointing;
    try {
      if (this.#resumable) await this.checkpoint();
    } finally {
      this.#file.close();
    }
    if (!this.#resumable) await PartialDownload.remove(this.repo, this.hashes.rootHash);
  }

  /** Deletes a partial download and its record. */
  static async remove(repo: Repository, rootHash: string): Promise<void> {
    for (const name of [`${rootHash}.part`, `${rootHash}.json`]) {
      await removeIfThere(join(repo.partialDir, name));
    }
  }
}

/** Deletes a file; one already gone is fine, any other failure is thrown. */
async function removeIfThere(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}
