// peer/latest_writer.ts: one write at a time, saves during a write share the next one, and
// the file ends with the latest state. Writes here are gated by the test, not real files.
import assert from "node:assert/strict";
import { LatestWriter } from "../../peer/latest_writer.ts";

/** A write function whose calls wait until the test lets them finish. */
class GatedWrites {
  /** The state each write read when it started. */
  readonly started: number[] = [];
  readonly #gates: PromiseWithResolvers<void>[] = [];
  state = 0;

  readonly write = (): Promise<void> => {
    this.started.push(this.state);
    const gate = Promise.withResolvers<void>();
    this.#gates.push(gate);
    return gate.promise;
  };

  /** Finishes the oldest unfinished write, with `error` if given. */
  async finish(error?: Error): Promise<void> {
    const gate = this.#gates.shift();
    assert.ok(gate, "a write is running");
    if (error) gate.reject(error);
    else gate.resolve();
    // Let the writer's callbacks run.
    for (let i = 0; i < 5; i++) await Promise.resolve();
  }
}

Deno.test("LatestWriter.save() writes at once when idle and resolves when written", async () => {
  const writes = new GatedWrites();
  const writer = new LatestWriter(writes.write);
  writes.state = 1;
  let done = false;
  const saved = writer.save().then(() => done = true);
  assert.deepEqual(writes.started, [1]);
  await Promise.resolve();
  assert.equal(done, false, "not before the write finishes");
  await writes.finish();
  await saved;
  assert.equal(done, true);
});

Deno.test("LatestWriter.save() during a write queues one more write, with the latest state", async () => {
  const writes = new GatedWrites();
  const writer = new LatestWriter(writes.write);
  writes.state = 1;
  const first = writer.save();
  const later: Promise<void>[] = [];
  for (const state of [2, 3, 4]) {
    writes.state = state;
    later.push(writer.save());
  }
  assert.deepEqual(writes.started, [1], "no second write while the first runs");
  let laterDone = false;
  const allLater = Promise.all(later).then(() => laterDone = true);
  await writes.finish();
  await first;
  assert.deepEqual(writes.started, [1, 4], "one more write, reading the newest state");
  assert.equal(laterDone, false, "the later saves wait for the write that includes them");
  await writes.finish();
  await allLater;
  assert.deepEqual(writes.started, [1, 4]);
});

Deno.test("LatestWriter: a failed write rejects its own saves and the next save writes again", async () => {
  const writes = new GatedWrites();
  const writer = new LatestWriter(writes.write);
  const failing = writer.save();
  const queued = writer.save();
  await writes.finish(new Error("disk full"));
  await assert.rejects(failing, /disk full/);
  assert.equal(writes.started.length, 2, "the queued save still writes");
  await writes.finish();
  await queued;
  const again = writer.save();
  assert.equal(writes.started.length, 3);
  await writes.finish();
  await again;
});
