// The peer's repository folder: path confinement and the metadata folder (.lanshare/).
// Every path the peer reads or writes goes through here.
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { META_DIR } from "../shared/fname.ts";
import { openConfined } from "./confined_open.ts";

/** A user-facing failure about a path (outside the repository, missing, not a file). */
export class PathError extends Error {
  /** @param message "Cannot x: detail" */
  constructor(message: string) {
    super(message);
    this.name = "PathError";
  }
}

/** The repository: a real, absolute root and its metadata folder. */
export class Repository {
  /** Real path of the repository root. */
  readonly root: string;
  /** Metadata folder: hash cache, published table, partial downloads. */
  readonly metaDir: string;
  /** Partial downloads and their piece records. */
  readonly partialDir: string;

  private constructor(root: string) {
    this.root = root;
    this.metaDir = join(root, META_DIR);
    this.partialDir = join(this.metaDir, "partial");
  }

  /** Creates the folder (and metadata folders) if missing and resolves its real path. */
  static async open(dir: string): Promise<Repository> {
    await Deno.mkdir(dir, { recursive: true });
    const repo = new Repository(await Deno.realPath(dir));
    await Deno.mkdir(repo.partialDir, { recursive: true });
    return repo;
  }

  /** true when real path `path` is the root or below it. */
  contains(path: string): boolean {
    return path === this.root || path.startsWith(this.root + sep);
  }

  /**
   * Resolves a user-given name of a file in the repository to its real path, following
   * symlinks, and checks it stays inside and is a regular file.
   *
   * @throws {PathError} when it escapes the repository, does not exist or is not a file
   */
  async resolveFile(lname: string): Promise<string> {
    if (lname === "" || lname.includes("\0")) {
      throw new PathError(`Cannot use "${lname}": not a file name`);
    }
    const lexical = resolve(this.root, lname);
    if (!this.contains(lexical)) {
      throw new PathError(`Cannot use "${lname}": it is outside the repository ${this.root}`);
    }
    let real: string;
    try {
      real = await Deno.realPath(lexical);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new PathError(`Cannot use "${lname}": no such file in the repository`);
      }
      if (err instanceof Deno.errors.NotCapable) {
        throw new PathError(`Cannot use "${lname}": it is outside the repository ${this.root}`);
      }
      throw err;
    }
    if (!this.contains(real)) {
      throw new PathError(`Cannot use "${lname}": it resolves to ${real}, outside the repository`);
    }
    if (real === this.root || this.isMeta(real)) {
      throw new PathError(`Cannot use "${lname}": not a shareable file`);
    }
    const info = await Deno.stat(real);
    if (!info.isFile) throw new PathError(`Cannot use "${lname}": not a regular file`);
    return real;
  }

  /**
   * Opens a shared file for reading without following any symlink below the root (see
   * confined_open.ts), so a folder swapped for a symlink cannot lead outside the repository or
   * into its metadata. Only a partial download (`partial`) may be inside the metadata folder,
   * and only in its partial/ folder.
   *
   * @throws {PathError} with a message naming the file relative to the root, never the root
   */
  async openShared(path: string, options: { partial: boolean }): Promise<Deno.FsFile> {
    const rel = this.relative(path);
    const names = rel.split(sep);
    if (!this.contains(path) || rel === "" || names.includes("..")) {
      throw new PathError(`Cannot open "${rel}": outside the repository`);
    }
    const allowed = options.partial
      ? this.isPartial(path)
      : names[0] !== META_DIR && !this.isMeta(path);
    if (!allowed) throw new PathError(`Cannot open "${rel}": not a shareable file`);
    return await openConfined(this.root, names);
  }

  /** true for paths of partial downloads. */
  isPartial(path: string): boolean {
    return path.startsWith(this.partialDir + sep);
  }

  /** true for paths inside the metadata folder. */
  isMeta(path: string): boolean {
    return path === this.metaDir || path.startsWith(this.metaDir + sep);
  }

  /** Path relative to the root, for metadata keys. */
  relative(path: string): string {
    return relative(this.root, path);
  }

  /** Absolute path of a root-relative path stored in metadata. */
  absolute(rel: string): string {
    return isAbsolute(rel) ? rel : join(this.root, rel);
  }

  /** Where a fetched file of this fname ends up. */
  finalPath(fname: string): string {
    return join(this.root, fname);
  }

  /** Reads a JSON metadata file, or undefined when it does not exist. */
  async readMeta<T>(name: string): Promise<T | undefined> {
    try {
      return JSON.parse(await Deno.readTextFile(join(this.metaDir, name))) as T;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return undefined;
      if (err instanceof SyntaxError) return undefined; // a torn file: rebuilt from scratch
      throw err;
    }
  }

  /**
   * Writes a JSON metadata file atomically (temporary file, rename), so a reader sees the old
   * or the new content, never a torn one. With `durable`, the bytes are fsynced before the
   * rename, for records whose loss would break a promise (the pieces a resume may skip);
   * caches and tables rebuilt cheaply skip that cost.
   */
  async writeMeta(name: string, value: unknown, options: { durable: boolean }): Promise<void> {
    const path = join(this.metaDir, name);
    await Deno.mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
    {
      using file = await Deno.open(tmp, { write: true, create: true, truncate: true });
      const bytes = new TextEncoder().encode(JSON.stringify(value));
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      if (options.durable) await file.syncData();
    }
    await Deno.rename(tmp, path);
  }
}

/** true when something (file, folder or link) exists at `path`. */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
