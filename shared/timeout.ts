// Waiting with a bound, without leaving timers behind.

/**
 * Waits for `promise` to settle, or `ms` to pass, whichever comes first; never rejects.
 *
 * @returns true when the promise settled in time
 * @example
 * ```ts
 * import { settleWithin } from "./timeout.ts";
 * const inTime = await settleWithin(Promise.resolve(), 100);
 * if (!inTime) throw new Error("a resolved promise settles at once");
 * ```
 */
export async function settleWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([promise.then(() => true, () => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
