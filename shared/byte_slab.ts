// Small byte buffers carved out of shared slabs. Deno pays about a microsecond for every
// ArrayBuffer it creates (more with zeroing: 2 µs at 1 KiB, 14 µs at 64 KiB on the 2-core test
// VM), which is more than encoding a small message costs; an index server that encodes tens of
// thousands of frames a second spent a fifth of its time there. Pure: no I/O.
//
// A region is handed out once and never reused, so it starts zeroed like a new Uint8Array. The
// price is that one live region keeps its whole slab alive: carve only buffers that die soon,
// such as frames on their way to a socket. Then the memory held is bounded by the bytes carved
// while the oldest live buffer waits, rounded up to slabs, however many connections there are.

/** Size of one slab. */
const SLAB_BYTES = 64 * 1024;
/** Largest buffer carved from a slab; larger ones get their own ArrayBuffer. */
const MAX_CARVED_BYTES = 8 * 1024;

let slab = new Uint8Array(0);
let used = 0;

/**
 * Returns `size` zeroed bytes: a view of a shared slab when `size` is at most
 * MAX_CARVED_BYTES, else a Uint8Array of its own. Never shares bytes with an earlier call.
 *
 * @example
 * ```ts
 * import { carveBytes } from "./byte_slab.ts";
 * const a = carveBytes(16);
 * const b = carveBytes(16);
 * a.fill(1);
 * if (b[0] !== 0 || a.length !== 16) throw new Error("regions must not overlap");
 * ```
 */
export function carveBytes(size: number): Uint8Array {
  if (size > MAX_CARVED_BYTES) return new Uint8Array(size);
  if (used + size > slab.length) {
    slab = new Uint8Array(SLAB_BYTES);
    used = 0;
  }
  const region = slab.subarray(used, used + size);
  used += size;
  return region;
}
