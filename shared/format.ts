// Human-readable numbers for the shells and logs: sizes and rates with a unit and three
// significant digits. Pure: no I/O.

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** Three significant digits (whole numbers from 100 up), without an exponent. */
function threeDigits(value: number): string {
  // Round first, so that 9.996 prints as "10.0", not "10.00".
  const rounded = Number(value.toPrecision(3));
  if (rounded >= 100) return Math.round(value).toString();
  if (rounded >= 10) return rounded.toFixed(1);
  return rounded.toFixed(2);
}

/**
 * Formats a byte count with binary units and three significant digits; whole byte counts
 * below 1 KiB print exactly.
 *
 * @example
 * ```ts
 * import { formatBytes } from "./format.ts";
 * if (formatBytes(1536) !== "1.50 KiB") throw new Error("binary units, three digits");
 * if (formatBytes(96.68711463779218) !== "96.7 B") throw new Error("fractions are rounded");
 * ```
 */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return `${bytes} B`;
  let value = Math.abs(bytes);
  let unit = 0;
  // 1023.5 KiB and up reads better as 1.00 MiB than as 1024 KiB.
  while (value >= 1023.5 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const sign = bytes < 0 ? "-" : "";
  if (unit === 0 && Number.isInteger(value)) return `${sign}${value} B`;
  return `${sign}${threeDigits(value)} ${UNITS[unit]}`;
}

/**
 * Formats a transfer rate.
 *
 * @param bytesPerSecond the rate
 * @example
 * ```ts
 * import { formatRate } from "./format.ts";
 * if (formatRate(96.68711463779218) !== "96.7 B/s") throw new Error("three digits");
 * ```
 */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/**
 * Formats a duration in seconds: "850 ms", "12.5 s", "3 min 20 s", "2 h 05 min".
 *
 * @param ms the duration in milliseconds
 * @example
 * ```ts
 * import { formatDuration } from "./format.ts";
 * if (formatDuration(200_000) !== "3 min 20 s") throw new Error("minutes and seconds");
 * ```
 */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${threeDigits(ms / 1000)} s`;
  const totalSeconds = Math.round(ms / 1000);
  if (totalSeconds < 3600) return `${Math.floor(totalSeconds / 60)} min ${totalSeconds % 60} s`;
  const totalMinutes = Math.round(totalSeconds / 60);
  return `${Math.floor(totalMinutes / 60)} h ${String(totalMinutes % 60).padStart(2, "0")} min`;
}
