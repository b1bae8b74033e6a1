import assert from "node:assert/strict";
import { TokenBucket } from "../../peer/rate.ts";

Deno.test("TokenBucket.take() returns no promise without a limit", () => {
  const bucket = new TokenBucket(0);
  for (let i = 0; i < 1000; i++) assert.equal(bucket.take(1 << 20), undefined);
  assert.equal(bucket.chunkBytes, 1 << 20);
});

Deno.test("TokenBucket.take() lets a burst through, then makes the caller wait", async () => {
  const rate = 1 << 20;
  const bucket = new TokenBucket(rate, 64 * 1024);
  assert.equal(bucket.take(64 * 1024), undefined, "the burst passes at once");
  const started = performance.now();
  const wait = bucket.take(32 * 1024);
  assert.ok(wait instanceof Promise, "beyond the burst the caller must wait");
  await wait;
  // 32 KiB at 1 MiB/s is ~31 ms; timers may fire a little early or late.
  assert.ok(performance.now() - started >= 20, `waited ${performance.now() - started} ms`);
});
