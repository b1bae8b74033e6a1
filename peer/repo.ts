// The peer's repository folder: path confinement and the metadata folder (.lanshare/).
// Every path the peer reads or writes goes through here. A folder the peer cannot write is
// opened read-only: its metadata then lives in memory and fetching is refused.
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { META_DIR } from "../shared/fname.ts";
import { logger } from "../shared/log.ts";
import { openConfined } from "./confined_open.ts";

const log = logger("peer", "repo");

/** Why a path was refused, for programs (the HTTP API maps it to a status). */
export type PathErrorCode =
  /** Empty, or holds a NUL. */
  | "not-a-name"
  /** Leads outside the repository. */
  | "outside"
  /** Names nothing. */
  | "missing"
  /** The repository itself or its metadata folder. */
  | "not-shareable"
  /** A folder, a device, a symlink where a file must be. */
  | "not-a-file"
  /** A step that is not a plain name (absolute, "..", a separator in a name). */
  | "not-plain"
  /** Swapped or turned into a link while it was being opened. */
  | "changed";

/** A user-facing failure about a path (outside the repository, missing, not a file). */
export class PathError extends Error {
  /** Why, for programs: never read from the message, which quotes the user's path. */
  readonly code: PathErrorCode;

  /**
   * @param code why, for programs
   * @param message "Cannot x: detail"
   */
  constructor(code: PathErrorCode, message: string) {
    super(message);
    this.name = "PathError";
    this.code = code;
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
  /** Why the peer cannot write here (read-only file system, no permission), or undefined. */
  readonly readOnlyReason: string | undefined;
  /** Metadata files written while read-only: name → JSON text. */
  readonly #memoryMeta = new Map<string, string>();

  private constructor(root: string, readOnlyReason: string | undefined) {
    this.root = root;
    this.metaDir = join(root, META_DIR);
    this.partialDir = join(this.metaDir, "partial");
    this.readOnlyReason = readOnlyReason;
  }

  /**
   * Creates the folder (and metadata folders) if missing and resolves its real path. A folder
   * that exists but cannot be written (a read-only mount, no write permission for the process)
   * opens read-only, with a warning: sharing works, metadata is kept in memory.
   */
  static async open(dir: string): Promise<Repository> {
    try {
      await Deno.mkdir(dir, { recursive: true });
    } catch (err) {
      if (!isReadOnly(err) || !(await Deno.stat(dir)).isDirectory) throw err;
    }
    const root = await Deno.realPath(dir);
    const reason = await writeProblem(join(root, META_DIR, "partial"));
    if (reason) {
      log.warn(
        "The repository {root} is read-only ({reason}): sharing only; the hash cache and the " +
          "published table are kept in memory (lost at exit) and fetch is refused",
        { root, reason },
      );
    }
    return new Repository(root, reason);
  }

  /** true when the peer cannot write into the repository (see readOnlyReason). */
  get readOnly(): boolean {
    return this.readOnlyReason !== undefined;
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
      throw new PathError("not-a-name", `Cannot use "${lname}": not a file name`);
    }
    const lexical = resolve(this.root, lname);
    if (!this.contains(lexical)) {
      throw new PathError(
        "outside",
        `Cannot use "${lname}": it is outside the repository ${this.root}`,
      );
    }
    let real: string;
    try {
      real = await Deno.realPath(lexical);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new PathError("missing", `Cannot use "${lname}": no such file in the repository`);
      }
      if (err instanceof Deno.errors.NotCapable) {
        throw new PathError(
          "outside",
          `Cannot use "${lname}": it is outside the repository ${this.root}`,
        );
      }
      throw err;
    }
    if (!this.contains(real)) {
      throw new PathError(
        "outside",
        `Cannot use "${lname}": it resolves to ${real}, outside the repository`,
      );
    }
    if (real === this.root || this.isMeta(real)) {
      throw new PathError("not-shareable", `Cannot use "${lname}": not a shareable file`);
    }
    const info = await Deno.stat(real);
    if (!info.isFile) {
      throw new PathError("not-a-file", `Cannot use "${lname}": not a regular file`);
    }
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
      throw new PathError("outside", `Cannot open "${rel}": outside the repository`);
    }
    const allowed = options.partial
      ? this.isPartial(path)
      : names[0] !== META_DIR && !this.isMeta(path);
    if (!allowed) {
      throw new PathError("not-shareable", `Cannot open "${rel}": not a shareable file`);
    }
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
      const text = this.#memoryMeta.get(name) ??
        await Deno.readTextFile(join(this.metaDir, name));
      return JSON.parse(text) as T;
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
   * caches and tables rebuilt cheaply skip that cost. A read-only repository keeps it in
   * memory. A failed write (e.g. a full disk) leaves the old file and no temporary one.
   */
  async writeMeta(name: string, value: unknown, options: { durable: boolean }): Promise<void> {
    if (this.readOnly) {
      this.#memoryMeta.set(name, JSON.stringify(value));
      return;
    }
    const path = join(this.metaDir, name);
    await Deno.mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
    try {
      {
        using file = await Deno.open(tmp, { write: true, create: true, truncate: true });
        const bytes = new TextEncoder().encode(JSON.stringify(value));
        let written = 0;
        while (written < bytes.length) written += await file.write(bytes.subarray(written));
        if (options.durable) await file.syncData();
      }
      await Deno.rename(tmp, path);
    } catch (err) {
      await Deno.remove(tmp).catch((cleanup) => {
        if (!(cleanup instanceof Deno.errors.NotFound)) {
          log.warn("Cannot remove {tmp}: {error}", { tmp, error: String(cleanup) });
        }
      });
      throw err;
    }
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

/** true for errors that mean "this process may not write there". */
function isReadOnly(err: unknown): boolean {
  return err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied ||
    // Deno has no error class for EROFS: a plain Error whose code says so.
    (err instanceof Error && (err as Error & { code?: unknown }).code === "EROFS");
}

/**
 * Why the process cannot write into `partialDir` (created if missing), or undefined when it
 * can: a probe file is created and removed, since the folders may exist on a read-only mount.
 */
async function writeProblem(partialDir: string): Promise<string | undefined> {
  const probe = join(partialDir, `.write-probe-${crypto.randomUUID().slice(0, 8)}`);
  try {
    await Deno.mkdir(partialDir, { recursive: true });
    await Deno.writeFile(probe, new Uint8Array(0), { createNew: true });
    await Deno.remove(probe);
    return undefined;
  } catch (err) {
    if (isReadOnly(err)) return err instanceof Error ? err.message : String(err);
    throw err;
  }
}
