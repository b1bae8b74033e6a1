// Validation of logical file names (fnames): the names files are published and fetched under.
// Pure: no I/O.
import { MAX_FNAME_BYTES } from "./protocol.ts";

/** The repository's metadata folder; no fname may take its name. */
export const META_DIR = ".lanshare";

/**
 * Returns why `fname` is not a valid file name, or undefined when it is valid.
 * Valid: 1–255 UTF-8 bytes of valid Unicode, no `/`, `\`, NUL or other control characters, no
 * bidirectional controls (see textProblem()), no `..`, not `.`, not the metadata folder's name.
 * Such a name can only ever mean a file directly inside the repository.
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
  const text = textProblem(fname);
  if (text !== undefined) return text;
  const bytes = utf8Length(fname);
  if (bytes > MAX_FNAME_BYTES) return `it is ${bytes} UTF-8 bytes, limit is ${MAX_FNAME_BYTES}`;
  if (/[/\\]/.test(fname)) return "it contains a path separator";
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(fname)) return "it contains a control character";
  if (fname.includes("..") || fname === ".") return "it contains '..' or is '.'";
  if (fname === META_DIR) return `'${META_DIR}' is reserved`;
  return undefined;
}

/**
 * Bidirectional embedding, override and isolate controls (U+202A–U+202E, U+2066–U+2069): they
 * reorder what follows them on screen, so `txt.exe` can be shown as `exe.txt`.
 */
const BIDI_CONTROLS = /[\u202a-\u202e\u2066-\u2069]/;

/**
 * Returns why `text` cannot name something shown to people (a file, a host), or undefined:
 * a lone surrogate (not valid Unicode) or a bidirectional control character.
 *
 * @example
 * ```ts
 * import { textProblem } from "./fname.ts";
 * if (textProblem("photo.jpg") !== undefined) throw new Error("valid");
 * if (textProblem("gpj\u202e.exe") === undefined) throw new Error("a right-to-left override");
 * ```
 */
export function textProblem(text: string): string | undefined {
  if (!text.isWellFormed()) return "it is not valid Unicode (a lone surrogate)";
  const bidi = BIDI_CONTROLS.exec(text);
  if (bidi) {
    const code = bidi[0].charCodeAt(0).toString(16).toUpperCase();
    return `it contains the bidirectional control U+${code}`;
  }
  return undefined;
}

/**
 * `text` in double quotes for an error message or log line, with JSON's escapes and the
 * bidirectional controls escaped too, so that a hostile name cannot reorder the message.
 *
 * @example
 * ```ts
 * import { quoted } from "./fname.ts";
 * if (quoted("a\u202eb") !== '"a\\u202eb"') throw new Error("escaped");
 * ```
 */
export function quoted(text: string): string {
  return JSON.stringify(text).replace(
    /[\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16)}`,
  );
}

/**
 * UTF-8 length of a well-formed string, counted without encoding it (an encoding is an
 * ArrayBuffer allocation, and every lookup checks its fname).
 */
function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff) {
      bytes += 4; // a surrogate pair: one code point above U+FFFF
      i++;
    } else bytes += 3;
  }
  return bytes;
}
