// Log lines for connections and sessions refused over a cap: the first one of each cap at once,
// then at most one line per interval that counts the refusals since, so that a flood of
// refused connections cannot flood the log too.
import { logger } from "../shared/log.ts";
import type { Refusal } from "./admission.ts";

const log = logger("server", "admission");

/** At most one line per cap per this long, ms. */
const REFUSAL_LOG_INTERVAL_MS = 1000;

/** Counts refusals and logs them, throttled per cap. */
export class RefusalLog {
  readonly #clock: () => number;
  readonly #byFlag = new Map<string, { loggedAtMs: number; unlogged: number }>();

  /** @param clock ms clock, for tests @default Date.now */
  constructor(clock: () => number = Date.now) {
    this.#clock = clock;
  }

  /** Records one refusal of a connection from `address`. */
  refused(refusal: Refusal, address: string): void {
    const now = this.#clock();
    const seen = this.#byFlag.get(refusal.flag);
    if (seen && now - seen.loggedAtMs < REFUSAL_LOG_INTERVAL_MS) {
      seen.unlogged++;
      return;
    }
    const unlogged = seen?.unlogged ?? 0;
    this.#byFlag.set(refusal.flag, { loggedAtMs: now, unlogged: 0 });
    log.warn("Refused {address}: {message} (raise {flag}){more}", {
      address,
      message: refusal.message,
      flag: refusal.flag,
      more: unlogged > 0 ? `; ${unlogged} more refused since the last line` : "",
    });
  }
}
