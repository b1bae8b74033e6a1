// One order for names everywhere: the byte order of their UTF-8 encodings, which is SQL's BINARY
// collation (the stores' ORDER BY) and what the shares digest sorts by. Pure.

/**
 * Compares strings in the byte order of their UTF-8 encodings (SQL's BINARY collation).
 * UTF-16 order differs only where a surrogate (part of a character above U+FFFF) meets a
 * character in U+E000–U+FFFF: UTF-8 sorts the former after, UTF-16 before.
 *
 * @example
 * ```ts
 * import { compareBytewise } from "./compare_bytewise.ts";
 * // U+FF5E (3 bytes in UTF-8) before U+1F600 (4 bytes), though UTF-16 puts it after.
 * console.assert(compareBytewise("\uff5e", "\u{1f600}") < 0);
 * console.assert("\uff5e" > "\u{1f600}");
 * ```
 */
export function compareBytewise(a: string, b: string): number {
  if (a === b) return 0;
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      if (x < 0xe000) x += 0x2800;
      if (y < 0xe000) y += 0x2800;
    }
    return x - y;
  }
  return a.length - b.length;
}
