// Logging setup shared by both programs: LogTape to stderr, so stdout stays machine-readable.
import {
  configure,
  getLogger,
  getStreamSink,
  getTextFormatter,
  type Logger,
  type LogRecord,
  type Sink,
} from "@logtape/logtape";
import type { LogLine } from "./log_line.ts";

const listeners = new Set<(record: LogRecord) => void>();

/**
 * Calls `listener` with every record logged at or above the configured level (after
 * setupLogging). @returns a function that stops it
 */
export function onLogRecord(listener: (record: LogRecord) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export type { LogLine } from "./log_line.ts";

/** Renders a LogTape record's message: its text parts with its values in between. */
export function logLine(record: LogRecord): LogLine {
  const message = record.message.map((part, i) =>
    i % 2 === 0 || typeof part === "string" ? String(part) : Deno.inspect(part)
  ).join("");
  return {
    timeMs: record.timestamp,
    level: record.level,
    category: record.category.slice(1).join("."),
    message,
  };
}

/** Log levels selectable with `--log-level`. */
export type LogLevel = "debug" | "info" | "warning" | "error";

/** Options for `setupLogging`. */
export interface LoggingOptions {
  /**
   * Wraps every write of a log record to stderr, which then happens synchronously inside
   * `write`: lets a live progress line on the same terminal be cleared before the record and
   * drawn again after it, instead of the record being glued onto it.
   */
  aroundWrite?: (write: () => void) => void;
}

/** Strings print bare ("pa", not "\"pa\""); other values as inspected. */
const formatter = getTextFormatter({
  value: (v, inspect) => typeof v === "string" ? v : inspect(v),
});

/** Routes every "lanshare" logger to stderr at `level` and above. Call once, from main. */
export async function setupLogging(level: LogLevel, options: LoggingOptions = {}): Promise<void> {
  const { aroundWrite } = options;
  // Every level goes to stderr; stdout carries only JSON lines and shell answers.
  const stderr: Sink = aroundWrite
    ? terminalSink(aroundWrite)
    : getStreamSink(Deno.stderr.writable, {
      formatter,
    });
  await configure({
    reset: true,
    sinks: {
      stderr,
      // What the UIs show in their live logs (see onLogRecord).
      feed: (record: LogRecord) => {
        for (const listener of listeners) listener(record);
      },
    },
    loggers: [
      { category: ["logtape", "meta"], sinks: ["stderr"], lowestLevel: "warning" },
      { category: ["lanshare"], sinks: ["stderr", "feed"], lowestLevel: level },
    ],
  });
}

/** A sink writing each record at once (a terminal is fast), inside `aroundWrite`. */
function terminalSink(aroundWrite: (write: () => void) => void): Sink {
  const encoder = new TextEncoder();
  return (record: LogRecord) => {
    const bytes = encoder.encode(formatter(record));
    aroundWrite(() => {
      let written = 0;
      while (written < bytes.length) written += Deno.stderr.writeSync(bytes.subarray(written));
    });
  };
}

/** The logger for one component, e.g. `logger("server", "session")`. */
export function logger(...category: string[]): Logger {
  return getLogger(["lanshare", ...category]);
}
