// What this peer shares: fname → file in the repository with its piece hashes, complete or
// partial (a fetch in progress serves the pieces it has verified). Persists the published table
// and a hash cache (keyed by path, size and mtime) under .lanshare/ so restarts are instant.
import { fromBase64, toBase64 } from "../shared/base64.ts";
import { Bitfield } from "../shared/bitfield.ts";
import type { FileEntry } from "../shared/protocol.ts";
import { type FileHashes, hashFile, type HashProgress } from "./hashing.ts";
import { LatestWriter } from "./latest_writer.ts";
import type { Repository } from "./repo.ts";

/** One shared file. */
export interface Share {
  fname: string;
  /** Real path of the bytes (a partial file while fetching). */
  path: string;
  hashes: FileHashes;
  /** Verified pieces of a partial file; undefined when complete. */
  have?: Bitfield;
}

interface CachedHashes {
  size: number;
  mtimeMs: number;
  pieceSize: number;
  rootHash: string;
  pieceHashes: string;
}

const HASH_CACHE = "hashes.json";
const PUBLISHED = "published.json";

/** The wire entry of a share. */
export function shareEntry(share: Share): FileEntry {
  const entry: FileEntry = {
    fname: share.fname,
    size: share.hashes.size,
    mtimeMs: share.hashes.mtimeMs,
    rootHash: share.hashes.rootHash,
    pieceSize: share.hashes.pieceSize,
  };
  if (share.have) entry.have = share.have.toBase64();
  return entry;
}

/** The table of shared files and the hash cache. */
export class Shares {
  readonly repo: Repository;
  readonly #shares = new Map<string, Share>();
  #cache: Record<string, CachedHashes> = {};
  // One writer per file: writes from concurrent publishes and downloads must not race.
  readonly #publishedWriter = new LatestWriter(() => this.#writePublished());
  readonly #cacheWriter = new LatestWriter(() =>
    this.repo.writeMeta(HASH_CACHE, this.#cache, { durable: false })
  );

  private constructor(repo: Repository) {
    this.repo = repo;
  }

  /**
   * Loads the hash cache and the published table; re-hashes files that changed and drops
   * those that vanished.
   */
  static async load(repo: Repository, onProgress?: HashProgress): Promise<Shares> {
    const shares = new Shares(repo);
    shares.#cache = await repo.readMeta<Record<string, CachedHashes>>(HASH_CACHE) ?? {};
    const published = await repo.readMeta<Record<string, string>>(PUBLISHED) ?? {};
    for (const [fname, rel] of Object.entries(published)) {
      try {
        const path = await repo.resolveFile(rel);
        shares.#shares.set(fname, { fname, path, hashes: await shares.hashesOf(path, onProgress) });
      } catch {
        // The file is gone or changed into something unshareable: it is no longer published.
      }
    }
    await shares.#publishedWriter.save();
    return shares;
  }

  /** Piece hashes of a repository file, from the cache when size and mtime still match. */
  async hashesOf(path: string, onProgress?: HashProgress): Promise<FileHashes> {
    const rel = this.repo.relative(path);
    const info = await Deno.stat(path);
    const cached = this.#cache[rel];
    if (cached && cached.size === info.size && cached.mtimeMs === (info.mtime?.getTime() ?? 0)) {
      return { ...cached, pieceHashes: fromBase64(cached.pieceHashes) };
    }
    const hashes = await hashFile(path, onProgress);
    this.#cache[rel] = { ...hashes, pieceHashes: toBase64(hashes.pieceHashes) };
    await this.#cacheWriter.save();
    return hashes;
  }

  /** Records hashes already known (a verified download) in the cache. */
  async remember(path: string, hashes: FileHashes): Promise<void> {
    this.#cache[this.repo.relative(path)] = {
      ...hashes,
      pieceHashes: toBase64(hashes.pieceHashes),
    };
    await this.#cacheWriter.save();
  }

  /** Adds or replaces a share. Complete shares are persisted in the published table. */
  async set(share: Share): Promise<void> {
    this.#shares.set(share.fname, share);
    if (!share.have) await this.#publishedWriter.save();
  }

  /** Removes a share. @returns whether it existed */
  async delete(fname: string): Promise<boolean> {
    const existed = this.#shares.delete(fname);
    if (existed) await this.#publishedWriter.save();
    return existed;
  }

  /** The share of `fname`, if any. */
  get(fname: string): Share | undefined {
    return this.#shares.get(fname);
  }

  /** Every share, sorted by fname. */
  list(): Share[] {
    return [...this.#shares.values()].sort((a, b) =>
      a.fname < b.fname ? -1 : a.fname > b.fname ? 1 : 0
    );
  }

  /** Writes the published table as it is now (read before the first await). */
  #writePublished(): Promise<void> {
    const table: Record<string, string> = {};
    for (const share of this.#shares.values()) {
      if (!share.have) table[share.fname] = this.repo.relative(share.path);
    }
    return this.repo.writeMeta(PUBLISHED, table, { durable: false });
  }
}
