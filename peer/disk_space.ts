// Free space in the repository, and the error that ends a download when the disk cannot take
// its bytes (or its records): the fetch fails with it, the peer keeps running.
import { statfsSync } from "node:fs";

/** A download's bytes or records cannot be stored: the fetch must stop, not just one source. */
export class StorageError extends Error {
  /** The file system is full (ENOSPC), as opposed to another failure to write. */
  readonly noSpace: boolean;

  /** @param message "not enough space: …" or "cannot save …", without the "Cannot fetch" */
  constructor(message: string, options: ErrorOptions & { noSpace: boolean }) {
    super(message, options);
    this.name = "StorageError";
    this.noSpace = options.noSpace;
  }
}

/**
 * Bytes free for this process on the file system of `path`, or undefined when it cannot be
 * known: `statfs` needs `--allow-sys=statfs` (Deno has no statfs of its own; `node:fs` has).
 */
export function freeBytes(path: string): number | undefined {
  try {
    const info = statfsSync(path);
    return Number(info.bavail) * Number(info.bsize);
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.NotFound) {
      return undefined;
    }
    throw err;
  }
}

/** true for a write that failed because the file system is full (ENOSPC). */
export function isNoSpace(err: unknown): boolean {
  // Deno has no error class for ENOSPC: it throws a plain Error whose code says so.
  return err instanceof Error && (err as Error & { code?: unknown }).code === "ENOSPC";
}

/** The user-facing text for `needBytes` that do not fit in `haveBytes` (unknown: 0). */
export function noSpaceMessage(needBytes: number, haveBytes: number | undefined): string {
  return `not enough space: need ${needBytes} bytes, have ${haveBytes ?? 0}`;
}
