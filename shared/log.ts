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
    sinks: { stderr },
    loggers: [
      { category: ["logtape", "meta"], sinks: ["stderr"], lowestLevel: "warning" },
      { category: ["lanshare"], sinks: ["stderr"], lowestLevel: level },
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
