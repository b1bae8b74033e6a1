// Logging setup shared by both programs: LogTape to stderr, so stdout stays machine-readable.
import {
  configure,
  getLogger,
  getStreamSink,
  getTextFormatter,
  type Logger,
} from "@logtape/logtape";

/** Log levels selectable with `--log-level`. */
export type LogLevel = "debug" | "info" | "warning" | "error";

/**
 * Routes every "lanshare" logger to stderr at `level` and above. Call once, from main.
 * With `trace`, each decoded frame is logged at debug level by the `lanshare.wire` logger.
 */
export async function setupLogging(level: LogLevel): Promise<void> {
  await configure({
    reset: true,
    sinks: {
      // Every level goes to stderr; stdout carries only JSON lines and shell answers.
      stderr: getStreamSink(Deno.stderr.writable, {
        // Strings print bare ("pa", not "\"pa\""); other values as inspected.
        formatter: getTextFormatter({
          value: (v, inspect) => typeof v === "string" ? v : inspect(v),
        }),
      }),
    },
    loggers: [
      { category: ["logtape", "meta"], sinks: ["stderr"], lowestLevel: "warning" },
      { category: ["lanshare"], sinks: ["stderr"], lowestLevel: level },
    ],
  });
}

/** The logger for one component, e.g. `logger("server", "session")`. */
export function logger(...category: string[]): Logger {
  return getLogger(["lanshare", ...category]);
}
