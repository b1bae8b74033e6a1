// The live log of a UI: the last records kept for a page that opens, each new one sent to the
// event stream.
import { type LogLine, logLine, onLogRecord } from "../log.ts";
import type { EventHub } from "./event_hub.ts";

/** Records kept for pages that open later. */
const KEPT_LINES = 300;

/** Log records for one UI. */
export class LogFeed implements Disposable {
  readonly #lines: LogLine[] = [];
  readonly #stop: () => void;

  /** Starts listening; every record is kept and sent to `hub` as a `log` event. */
  constructor(hub: EventHub) {
    this.#stop = onLogRecord((record) => {
      const line = logLine(record);
      this.#lines.push(line);
      if (this.#lines.length > KEPT_LINES) this.#lines.shift();
      hub.publish("log", line);
    });
  }

  /** The kept records, oldest first. */
  get lines(): readonly LogLine[] {
    return this.#lines;
  }

  [Symbol.dispose](): void {
    this.#stop();
  }
}
