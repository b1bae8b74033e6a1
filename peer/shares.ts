// What this peer shares: fname → file in the repository with its piece hashes, complete or
// partial (a fetch in progress serves the pieces it has verified). Persists the published table
// and a hash cache (keyed by path, size and mtime) under .lanshare/ so restarts are instant.
import { Bitfield } from "../shared/bitfield.ts";
import type { FileEntry } from "../shared/protocol.ts";
import { type FileHashes, hashFile, type HashProgress } from "./hashing.ts";
import { LatestWriter } from "./latest_writer.ts";
import { logger } from "../shared/log.ts";
import { isNoSpace } from "./disk_space.ts";
import { PathError, type Repository } from "./repo.ts";

const log = logger("peer", "shares");

/** A published name whose content changed on disk (new hashes), or that is no longer shared. */
export interface ShareChange {
  fname: string;
  removed: boolean;
}

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
  /** Published entries that could not be loaded for an unexpected reason: kept in the table. */
  readonly #unloaded = new Map<string, string>();
  /** Re-hashes running, by path: one at a time per file. */
  readonly #refreshing = new Map<string, Promise<void>>();
  /**
   * Told when published names change content or go away behind the peer's back (a file edited
   * in place, deleted, or re-hashed under another of its names): the peer announces them.
   */
  onChange: (changes: ShareChange[]) => void = () => {};
  #cache: Record<string, CachedHashes> = {};
  // One writer per file: writes from concurrent publishes and downloads must not race.
  readonly #publishedWriter = new LatestWriter(() => this.#writePublished());
  readonly #cacheWriter = new LatestWriter(() =>
    this.repo.writeMeta(HASH_CACHE, this.#cache, { durable: false })
  );

  /**
   * Saves a table; a full disk only costs what a restart would have reused (the shares
   * themselves stay in memory), so it is logged rather than failing the publish or the start.
   */
  async #save(writer: LatestWriter, name: string): Promise<void> {
    try {
      await writer.save();
    } catch (err) {
      if (!isNoSpace(err)) throw err;
      log.warn("Cannot save {name}, the disk is full: it will be out of date after a restart", {
        name,
      });
    }
  }

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
      } catch (err) {
        if (!isGone(err)) {
          // Not a file that went away: keep it published for the next start, and say why.
          log.error("Cannot load published {fname} ({rel}): {error}", {
            fname,
            rel,
            error: String(err),
          });
          shares.#unloaded.set(fname, rel);
          continue;
        }
        log.warn("No longer publishing {fname}: {error}", { fname, error: String(err) });
      }
    }
    await shares.#save(shares.#publishedWriter, PUBLISHED);
    return shares;
  }

  /** Piece hashes of a repository file, from the cache when size and mtime still match. */
  async hashesOf(path: string, onProgress?: HashProgress): Promise<FileHashes> {
    const rel = this.repo.relative(path);
    const info = await Deno.stat(path);
    const cached = this.#cache[rel];
    if (cached && cached.size === info.size && cached.mtimeMs === (info.mtime?.getTime() ?? 0)) {
      return { ...cached, pieceHashes: Uint8Array.fromBase64(cached.pieceHashes) };
    }
    const hashes = await hashFile(path, onProgress);
    this.#cache[rel] = { ...hashes, pieceHashes: hashes.pieceHashes.toBase64() };
    await this.#save(this.#cacheWriter, HASH_CACHE);
    return hashes;
  }

  /** Records hashes already known (a verified download) in the cache. */
  async remember(path: string, hashes: FileHashes): Promise<void> {
    this.#cache[this.repo.relative(path)] = {
      ...hashes,
      pieceHashes: hashes.pieceHashes.toBase64(),
    };
    await this.#save(this.#cacheWriter, HASH_CACHE);
  }

  /**
   * Adds or replaces a share. Complete shares are persisted in the published table; other
   * names of the same file with other hashes (the file changed since) take the new hashes and
   * are reported through onChange.
   */
  async set(share: Share): Promise<void> {
    this.#shares.set(share.fname, share);
    this.#unloaded.delete(share.fname);
    if (share.have) return;
    const changed: ShareChange[] = [];
    for (const other of this.#shares.values()) {
      if (
        other !== share && !other.have && other.path === share.path &&
        other.hashes.rootHash !== share.hashes.rootHash
      ) {
        this.#shares.set(other.fname, { ...other, hashes: share.hashes });
        changed.push({ fname: other.fname, removed: false });
      }
    }
    await this.#save(this.#publishedWriter, PUBLISHED);
    if (changed.length > 0) this.onChange(changed);
  }

  /**
   * Hashes `path` again when it no longer matches its shares' size and mtime, and gives every
   * complete share of it the new hashes, or removes them when the file is gone; reports the
   * names through onChange. Runs in the background (errors are logged): one run per path at a
   * time, and a call during a run joins it.
   */
  refresh(path: string): Promise<void> {
    let running = this.#refreshing.get(path);
    if (!running) {
      running = this.#refresh(path)
        .catch((err) =>
          log.error("Cannot hash {path} again: {error}", { path, error: String(err) })
        )
        .finally(() => this.#refreshing.delete(path));
      this.#refreshing.set(path, running);
    }
    return running;
  }

  async #refresh(path: string): Promise<void> {
    const named = () => this.list().filter((s) => !s.have && s.path === path);
    const before = named();
    if (before.length === 0) return;
    let hashes: FileHashes;
    try {
      const checked = await this.repo.resolveFile(this.repo.relative(path));
      if (checked !== path) {
        throw new PathError("changed", `Cannot share "${path}": it is now a link`);
      }
      hashes = await this.hashesOf(path);
    } catch (err) {
      if (!isGone(err)) throw err;
      log.warn("No longer publishing {path}: {error}", { path, error: String(err) });
      for (const share of before) this.#shares.delete(share.fname);
      await this.#save(this.#publishedWriter, PUBLISHED);
      this.onChange(before.map((s) => ({ fname: s.fname, removed: true })));
      return;
    }
    const changed: ShareChange[] = [];
    for (const share of named()) {
      if (share.hashes.rootHash === hashes.rootHash && share.hashes.mtimeMs === hashes.mtimeMs) {
        continue;
      }
      this.#shares.set(share.fname, { ...share, hashes });
      if (share.hashes.rootHash !== hashes.rootHash) {
        changed.push({ fname: share.fname, removed: false });
      }
    }
    if (changed.length > 0) {
      log.info("{path} changed: publishing its new content as {names}", {
        path,
        names: changed.map((c) => c.fname).join(", "),
      });
      this.onChange(changed);
    }
  }

  /**
   * Checks every published file's size and mtime and re-hashes those that moved (see
   * refresh), for files edited while nobody fetches them.
   */
  async rescan(): Promise<void> {
    const paths = new Set(this.list().filter((s) => !s.have).map((s) => s.path));
    for (const path of paths) {
      const share = this.list().find((s) => !s.have && s.path === path);
      if (!share) continue;
      let info: Deno.FileInfo | undefined;
      try {
        info = await Deno.stat(path);
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      }
      if (
        !info || info.size !== share.hashes.size ||
        (info.mtime?.getTime() ?? 0) !== share.hashes.mtimeMs
      ) {
        await this.refresh(path);
      }
    }
  }

  /** Removes a share. @returns whether it existed */
  async delete(fname: string): Promise<boolean> {
    const existed = this.#shares.delete(fname);
    if (existed) await this.#save(this.#publishedWriter, PUBLISHED);
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
    for (const [fname, rel] of this.#unloaded) table[fname] ??= rel;
    return this.repo.writeMeta(PUBLISHED, table, { durable: false });
  }
}

/** true for errors meaning the file is no longer there to share (deleted, moved, a link now). */
function isGone(err: unknown): boolean {
  return err instanceof PathError || err instanceof Deno.errors.NotFound;
}
