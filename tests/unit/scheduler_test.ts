import assert from "node:assert/strict";
import { Bitfield } from "../../shared/bitfield.ts";
import { PieceScheduler } from "../../peer/scheduler.ts";

const all = () => true;

Deno.test("PieceScheduler.next() hands out each piece once, from the start index, wrapping", () => {
  const scheduler = new PieceScheduler(new Bitfield(5), 3);
  const order = [];
  for (let i = 0; i < 5; i++) order.push(scheduler.next("a", all));
  assert.deepEqual(order, [3, 4, 0, 1, 2]);
});

Deno.test("PieceScheduler.next() skips verified pieces and pieces the source lacks", () => {
  const have = new Bitfield(6);
  have.set(0);
  have.set(1);
  const scheduler = new PieceScheduler(have, 0);
  assert.equal(scheduler.next("partial", (i) => i === 4), 4);
  assert.equal(scheduler.next("full", all), 2);
  assert.equal(scheduler.next("full", all), 3);
  assert.equal(scheduler.next("full", all), 5);
});

Deno.test("PieceScheduler.release() returns a piece to the pool for the next source", () => {
  const scheduler = new PieceScheduler(new Bitfield(3), 0);
  assert.equal(scheduler.next("a", all), 0);
  assert.equal(scheduler.next("a", all), 1);
  scheduler.release(0, "a");
  assert.equal(scheduler.next("b", all), 0);
  assert.equal(scheduler.next("b", all), 2);
});

Deno.test("PieceScheduler.next() duplicates in-flight pieces in the endgame, at most twice", () => {
  const scheduler = new PieceScheduler(new Bitfield(2), 0);
  assert.equal(scheduler.next("a", all), 0);
  assert.equal(scheduler.next("a", all), 1);
  const dup = scheduler.next("b", all);
  assert.ok(dup === 0 || dup === 1);
  const other = scheduler.next("b", all);
  assert.equal(other, dup === 0 ? 1 : 0);
  assert.equal(scheduler.next("b", all), undefined, "b already fetches both");
  assert.equal(scheduler.next("c", all), undefined, "no piece is fetched three times");
});

Deno.test("PieceScheduler.complete() reports the first verification only and finishes", () => {
  const have = new Bitfield(2);
  const scheduler = new PieceScheduler(have, 0);
  scheduler.next("a", all);
  scheduler.next("b", all);
  scheduler.next("b", all); // endgame copy of piece 0
  assert.equal(scheduler.complete(0), true);
  assert.equal(scheduler.wanted(0), false);
  assert.equal(scheduler.complete(0), false, "the duplicate arrives second");
  assert.equal(scheduler.done, false);
  assert.equal(scheduler.complete(1), true);
  assert.equal(scheduler.done, true);
  assert.equal(have.complete, true);
});

Deno.test("PieceScheduler on an empty file is done at once", () => {
  const scheduler = new PieceScheduler(new Bitfield(0), 7);
  assert.equal(scheduler.done, true);
  assert.equal(scheduler.next("a", all), undefined);
});
