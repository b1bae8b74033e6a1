// Assertions shared by the unit tests. Pure: no I/O.
import assert from "node:assert/strict";
import { ProtocolError } from "../../shared/errors.ts";
import type { ErrorCode } from "../../shared/protocol.ts";

/** Asserts that `fn` throws a ProtocolError with `code`, and returns it. */
export function assertProtocolError(fn: () => unknown, code: ErrorCode, label = ""): ProtocolError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ProtocolError, `${label}: expected ProtocolError, got ${err}`);
    assert.equal(err.code, code, `${label}: ${err.message}`);
    assert.match(err.message, /^Cannot /, `${label}: message style`);
    return err;
  }
  assert.fail(`${label}: expected ProtocolError "${code}", nothing was thrown`);
}
