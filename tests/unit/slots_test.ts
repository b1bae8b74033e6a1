import assert from "node:assert/strict";
import { Slots } from "../../peer/slots.ts";

Deno.test("Slots.tryAcquire() grants at most k - 1 uploads and maxPerPeer per peer", () => {
  const slots = new Slots({ max: 4, maxPerPeer: 2, maxQueue: 0 });
  const a1 = slots.tryAcquire("a");
  const a2 = slots.tryAcquire("a");
  assert.ok(a1 && a2);
  assert.equal(slots.tryAcquire("a"), undefined, "per-peer cap");
  const b1 = slots.tryAcquire("b");
  assert.ok(b1);
  assert.equal(slots.tryAcquire("c"), undefined, "the last slot is kept for downloads");
  a1.release();
  a1.release(); // idempotent
  assert.equal(slots.active, 2);
  assert.ok(slots.tryAcquire("c"));
});

Deno.test("Slots keep a slot for downloads that uploads cannot take", async () => {
  const slots = new Slots({ max: 3, maxPerPeer: 3, maxQueue: 4 });
  const uploads = [slots.tryAcquire("a"), slots.tryAcquire("b")];
  assert.ok(uploads.every((u) => u !== undefined));
  assert.equal(slots.tryAcquire("c"), undefined);
  const queued = slots.enqueue("c", () => {}, new AbortController().signal)!;
  const download = await slots.acquireDownload("src", new AbortController().signal);
  assert.equal(slots.active, 3);
  download.release();
  assert.equal(slots.active, 2, "a freed download slot does not go to a queued upload");
  uploads[0]!.release();
  (await queued.lease).release();
  uploads[1]!.release();
  assert.equal(slots.active, 0);
});

Deno.test("Slots.tryAcquire() passes queued uploads that only their per-peer cap holds back", () => {
  const slots = new Slots({ max: 4, maxPerPeer: 1, maxQueue: 4 });
  const a = slots.tryAcquire("a")!;
  const waiting = slots.enqueue("a", () => {}, new AbortController().signal)!;
  assert.equal(waiting.position, 1);
  const b = slots.tryAcquire("b");
  assert.ok(b, "b does not wait behind a, which no free slot can serve");
  b.release();
  a.release();
  return waiting.lease.then((lease) => lease.release());
});

Deno.test("Slots.tryAcquireDownload() takes a free slot or answers undefined, never waits", () => {
  const slots = new Slots({ max: 2, maxPerPeer: 2, maxQueue: 0 });
  const first = slots.tryAcquireDownload("s");
  const second = slots.tryAcquireDownload("t");
  assert.ok(first && second);
  assert.equal(slots.tryAcquireDownload("u"), undefined);
  first.release();
  second.release();
});

Deno.test("Slots.enqueue() reports positions, grants in order and refuses past maxQueue", async () => {
  const slots = new Slots({ max: 1, maxPerPeer: 1, maxQueue: 2 });
  const holder = slots.tryAcquire("h")!;
  const positions: Record<string, number[]> = { x: [], y: [] };
  const abort = new AbortController();
  const x = slots.enqueue("x", (p) => positions.x!.push(p), abort.signal)!;
  const y = slots.enqueue("y", (p) => positions.y!.push(p), abort.signal)!;
  assert.equal(x.position, 1);
  assert.equal(y.position, 2);
  assert.equal(slots.enqueue("z", () => {}, abort.signal), undefined, "queue full");
  assert.equal(slots.tryAcquire("w"), undefined, "no jumping the queue");
  holder.release();
  const xLease = await x.lease;
  assert.deepEqual(positions.y, [1]);
  xLease.release();
  (await y.lease).release();
  assert.equal(slots.active, 0);
});

Deno.test("Slots.enqueue() drops an aborted waiter and moves the others up", async () => {
  const slots = new Slots({ max: 1, maxPerPeer: 1, maxQueue: 5 });
  const holder = slots.tryAcquire("h")!;
  const first = new AbortController();
  const waitsFirst = slots.enqueue("x", () => {}, first.signal)!;
  const moved: number[] = [];
  const second = slots.enqueue("y", (p) => moved.push(p), new AbortController().signal)!;
  first.abort(new Error("gave up"));
  await assert.rejects(waitsFirst.lease, /gave up/);
  assert.deepEqual(moved, [1]);
  holder.release();
  (await second.lease).release();
});

Deno.test("Slots.acquireDownload() waits for a slot and goes before queued uploads", async () => {
  const slots = new Slots({ max: 1, maxPerPeer: 1, maxQueue: 5 });
  const holder = slots.tryAcquire("h")!;
  const upload = slots.enqueue("u", () => {}, new AbortController().signal)!;
  const download = slots.acquireDownload("d", new AbortController().signal);
  holder.release();
  const granted = await Promise.race([
    download.then(() => "download"),
    upload.lease.then(() => "upload"),
  ]);
  assert.equal(granted, "download");
  (await download).release();
  (await upload.lease).release();
});
