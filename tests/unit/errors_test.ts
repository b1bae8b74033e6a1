// Error classes of shared/errors.ts.
import assert from "node:assert/strict";
import { ConfigError, ProtocolError, RemoteError } from "../../shared/errors.ts";

Deno.test("ProtocolError carries its code, name and cause", () => {
  const cause = new TypeError("inner");
  const err = new ProtocolError("bad-body", "Cannot decode body: x", { cause });
  assert.ok(err instanceof Error);
  assert.equal(err.name, "ProtocolError");
  assert.equal(err.code, "bad-body");
  assert.equal(err.message, "Cannot decode body: x");
  assert.equal(err.cause, cause);
});

Deno.test("ConfigError lists every problem in one message", () => {
  const err = new ConfigError(["--port must be 0-65535", "--db is empty"]);
  assert.equal(err.name, "ConfigError");
  assert.deepEqual(err.problems, ["--port must be 0-65535", "--db is empty"]);
  assert.equal(err.message, "Cannot start: --port must be 0-65535; --db is empty");
});

Deno.test("RemoteError carries the remote code", () => {
  const err = new RemoteError("not-found", "no such file");
  assert.equal(err.name, "RemoteError");
  assert.equal(err.code, "not-found");
  assert.ok(!(err instanceof ProtocolError));
});
