// The short, readable form of a device ID. Pure, with no imports, so that the web pages can use
// it too without bundling the certificate library that shared/identity.ts needs.

/**
 * A short, readable form of an ID for logs and tables: its first 12 digits in groups of 4
 * (60 bits: enough to tell devices apart at a glance, never enough to pin by).
 *
 * @example
 * ```ts
 * import { shortId } from "./short_id.ts";
 * console.assert(shortId("abcdefghijklmnop") === "abcd-efgh-ijkl");
 * ```
 */
export function shortId(id: string): string {
  return `${id.slice(0, 4)}-${id.slice(4, 8)}-${id.slice(8, 12)}`;
}
