// Error classes that callers catch: ProtocolError (bad bytes from the other side) and
// ConfigError (bad flags or environment). Pure: no I/O.
import type { ErrorCode } from "./protocol.ts";

/** The other side sent bytes or a message that the protocol does not allow. */
export class ProtocolError extends Error {
  /** Machine-readable reason, also sent in the `Error` frame. */
  readonly code: ErrorCode;

  /**
   * @param code machine-readable reason
   * @param message human-readable text in the form "Cannot x: detail"
   */
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ProtocolError";
    this.code = code;
  }
}

/** Invalid command-line flags or environment variables; lists every bad field at once. */
export class ConfigError extends Error {
  /** One message per invalid field. */
  readonly problems: readonly string[];

  /** @param problems one message per invalid field */
  constructor(problems: readonly string[]) {
    super(`Cannot start: ${problems.join("; ")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/** A request that the other side answered with an `Error` frame. */
export class RemoteError extends Error {
  /** The code from the `Error` frame. */
  readonly code: ErrorCode;

  /**
   * @param code the code the other side sent
   * @param message the message the other side sent
   */
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = "RemoteError";
    this.code = code;
  }
}
