// Base32 (RFC 4648 alphabet, lowercase, no padding) of byte arrays: the text form of device IDs,
// which must be case-insensitive, free of look-alike symbols and usable as a DNS label.
// Pure: no I/O.

const ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

/**
 * Lowercase base32 of `bytes`, without padding.
 *
 * @example
 * ```ts
 * import { toBase32 } from "./base32.ts";
 * console.assert(toBase32(new TextEncoder().encode("foobar")) === "mzxw6ytboi");
 * ```
 */
export function toBase32(bytes: Uint8Array): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(buffer >> bits) & 31];
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

/**
 * Bytes of a base32 string made by `toBase32()` (either case).
 *
 * @throws {RangeError} on a character outside the alphabet, or leftover bits that are not zero
 */
export function fromBase32(text: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(Math.floor(text.length * 5 / 8));
  let buffer = 0;
  let bits = 0;
  let at = 0;
  for (const char of text.toLowerCase()) {
    const value = ALPHABET.indexOf(char);
    if (value < 0) throw new RangeError(`Cannot decode base32: "${char}" is not a base32 digit`);
    buffer = (buffer << 5) | value;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (buffer >> bits) & 0xff;
      buffer &= (1 << bits) - 1;
    }
  }
  if (buffer !== 0) throw new RangeError("Cannot decode base32: trailing bits are not zero");
  return out;
}
