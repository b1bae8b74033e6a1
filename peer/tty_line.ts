// The live line at the bottom of a terminal (fetch progress, hashing): drawn in place with a
// carriage return, cleared before an answer or a log record, drawn again after a log record.
// The writes are injected, so this holds no I/O of its own.

/** Erases the current terminal line and returns to its start. */
const CLEAR = "\r\x1b[K";

/** One redrawable line on a terminal. */
export class TtyLine {
  readonly #write: (text: string) => void;
  #shown = "";

  /** @param write writes text to the terminal the line is on (at once, synchronously) */
  constructor(write: (text: string) => void) {
    this.#write = write;
  }

  /** Replaces the line with `text`. */
  show(text: string): void {
    this.#write(`${CLEAR}${text}`);
    this.#shown = text;
  }

  /** Removes the line (before an answer is printed below where it was). */
  clear(): void {
    if (this.#shown !== "") this.#write(CLEAR);
    this.#shown = "";
  }

  /**
   * Runs `print` (which writes whole lines, e.g. a log record to stderr) on a clean line, then
   * draws the live line again below what it printed.
   */
  around(print: () => void): void {
    const shown = this.#shown;
    this.clear();
    print();
    if (shown !== "") this.show(shown);
  }
}
