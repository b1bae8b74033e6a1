import assert from "node:assert/strict";
import type { FetchInfo } from "../../peer/activity.ts";
import {
  progressFields,
  progressLine,
  RateWindows,
  STALLED_AFTER_MS,
} from "../../peer/progress.ts";

const MIB = 1024 * 1024;

function fetchInfo(overrides: Partial<FetchInfo> = {}): FetchInfo {
  return {
    fname: "movie.mkv",
    rootHash: "ab".repeat(32),
    size: 100 * MIB,
    doneBytes: 40 * MIB,
    bySource: { "alpha:4000": 40 * MIB },
    activeSources: 2,
    queuedSources: 0,
    queuedAt: {},
    startedAtMs: 0,
    lastByteAtMs: 10_000,
    ...overrides,
  };
}

Deno.test("RateWindows measures the recent rate, not the average since the start", () => {
  const rates = new RateWindows();
  assert.equal(rates.sample("f", 0, 0), 0);
  assert.equal(rates.sample("f", 10 * MIB, 1000), 10 * MIB);
  // Fast for 10 s, then 1 MiB/s: the window shows the new rate.
  for (let s = 2; s <= 10; s++) rates.sample("f", 10 * MIB * s, s * 1000);
  let rate = 0;
  for (let s = 11; s <= 20; s++) rate = rates.sample("f", 100 * MIB + (s - 10) * MIB, s * 1000);
  assert.equal(rate, MIB);
  rates.forget("f");
  assert.equal(rates.sample("f", 500, 30_000), 0);
});

Deno.test("progressFields() reports a silent fetch as stalled, with no rate or ETA", () => {
  const info = fetchInfo();
  const moving = progressFields(info, 2 * MIB, 10_000 + STALLED_AFTER_MS - 1);
  assert.equal(moving.stalledMs, 0);
  assert.equal(moving.bytesPerSecond, 2 * MIB);
  assert.equal(moving.etaSeconds, 30);
  const stalled = progressFields(info, 2 * MIB, 22_000);
  assert.equal(stalled.stalledMs, 12_000);
  assert.equal(stalled.bytesPerSecond, 0);
  assert.equal(stalled.etaSeconds, null);
  assert.equal(
    progressLine(stalled),
    "movie.mkv 40.0% 40.0 MiB/100 MiB stalled for 12.0 s 2 source(s)",
  );
  assert.equal(
    progressLine(moving),
    "movie.mkv 40.0% 40.0 MiB/100 MiB 2.00 MiB/s ETA 30.0 s 2 source(s)",
  );
});

Deno.test("progressLine() shows where a queued fetch waits, and does not call it stalled", () => {
  const info = fetchInfo({
    doneBytes: 0,
    bySource: {},
    activeSources: 0,
    queuedSources: 1,
    queuedAt: { "beta:4001": 3 },
    lastByteAtMs: 0,
  });
  const fields = progressFields(info, 0, 60_000);
  assert.equal(fields.stalledMs, 0);
  assert.equal(
    progressLine(fields),
    "movie.mkv 0.0% 0 B/100 MiB 0 B/s ETA -- 0 source(s), queued at beta:4001, position 3",
  );
});
