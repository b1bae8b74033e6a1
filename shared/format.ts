// Human-readable numbers for the shells. Pure: no I/O.

/**
 * Formats a byte count with binary units.
 *
 * @example
 * ```ts
 * import { formatBytes } from "./format.ts";
 * if (formatBytes(1536) !== "1.5 KiB") throw new Error("binary units, one decimal");
 * ```
 */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}
