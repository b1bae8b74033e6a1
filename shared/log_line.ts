// The shape of a log record as the programs' APIs send it and the pages show it. Types only,
// without Deno APIs or LogTape, so that the browser code (ui/, checked with the DOM library)
// imports the same declaration the programs build the records with.

/** A log record as the UIs show it. */
export interface LogLine {
  /** When it was logged, ms since the epoch. */
  timeMs: number;
  /** LogTape's level name ("debug", "info", "warning", "error", …). */
  level: string;
  /** The logger's category below the program's root, joined with dots. */
  category: string;
  /** The message with its values rendered in. */
  message: string;
}
