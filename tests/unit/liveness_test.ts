import assert from "node:assert/strict";
import { Liveness } from "../../server/liveness.ts";

const POLICY = { pingIntervalMs: 1000, pingTimeoutMs: 3000 };

Deno.test("Liveness.verdict() leaves a session heard within the interval alone", () => {
  const liveness = new Liveness(0);
  assert.equal(liveness.verdict(999, POLICY), "ok");
  assert.equal(liveness.verdict(1000, POLICY), "ping");
  liveness.heard(1500);
  assert.equal(liveness.verdict(2000, POLICY), "ok");
});

Deno.test("Liveness.verdict() pings once, then waits for the answer until the timeout", () => {
  const liveness = new Liveness(0);
  liveness.pingQueued(1000);
  assert.equal(liveness.verdict(1100, POLICY), "ok", "queued: no second ping");
  liveness.pingWritten(1000, 1200);
  assert.equal(liveness.pingQueuedMs, 0);
  assert.equal(liveness.verdict(4200, POLICY), "ok", "unanswered, not yet past the timeout");
  assert.equal(liveness.verdict(4201, POLICY), "silent");
  liveness.heard(4100);
  assert.equal(liveness.verdict(4201, POLICY), "ok", "the answer came in time");
});

Deno.test("Liveness.verdict() counts silence from the write, not from the queueing", () => {
  const liveness = new Liveness(0);
  liveness.pingQueued(1000);
  liveness.pingWritten(1000, 9000); // our own write queue held it for 8 s
  assert.equal(liveness.verdict(11_000, POLICY), "ok");
  assert.equal(liveness.verdict(12_001, POLICY), "silent");
});

Deno.test("Liveness.verdict() gives up on a ping stuck in the write queue for 4 timeouts", () => {
  const liveness = new Liveness(0);
  liveness.pingQueued(1000);
  assert.equal(liveness.verdict(13_000, POLICY), "ok");
  assert.equal(liveness.verdict(13_001, POLICY), "silent");
});

Deno.test("Liveness.pingWritten() keeps an older ping still queued", () => {
  const liveness = new Liveness(0);
  liveness.pingQueued(1000);
  liveness.pingQueued(2000);
  assert.equal(liveness.pingQueuedMs, 1000, "the oldest counts");
  liveness.pingWritten(1000, 2500);
  assert.equal(liveness.pingQueuedMs, 0);
});
