// Validation of logical file names (fnames): the names files are published and fetched under.
// Pure: no I/O.
import { MAX_FNAME_BYTES } from "./protocol.ts";

/** The repository's metadata folder; no fname may take its name. */
export const META_DIR = ".lanshare";

const encoder = new TextEncoder();

/**
 * Returns why `fname` is not a valid file name, or undefined when it is valid.
 * Valid: 1–255 UTF-8 bytes, no `/`, `\`, NUL or other control characters, no `..`, not `.`,
 * not the metadata folder's name. Such a name can only ever mean a file directly inside the
 * repository.
 *
 * @example
 * ```ts
 * import { fnameProblem } from "./fname.ts";
 * if (fnameProblem("report.pdf") !== undefined) throw new Error("valid");
 * if (fnameProblem("../etc/passwd") === undefined) throw new Error("invalid");
 * ```
 */
export function fnameProblem(fname: string): string | undefined {
  if (fname.length === 0) return "it is empty";
  if (!fname.isWellFormed()) return "it is not valid Unicode";
  const bytes = encoder.encode(fname).length;
  if (bytes > MAX_FNAME_BYTES) return `it is ${bytes} UTF-8 bytes, limit is ${MAX_FNAME_BYTES}`;
  if (/[/\\]/.test(fname)) return "it contains a path separator";
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(fname)) return "it contains a control character";
  if (fname.includes("..") || fname === ".") return "it contains '..' or is '.'";
  if (fname === META_DIR) return `'${META_DIR}' is reserved`;
  return undefined;
}
