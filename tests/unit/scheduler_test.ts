import assert from "node:assert/strict";
import { Bitfield } from "../../shared/bitfield.ts";
import { PieceScheduler } from "../../peer/scheduler.ts";

const all = () => true;

function order(seed: number, count: number): (number | undefined)[] {
  const scheduler = new PieceScheduler(new Bitfield(count), seed);
  return Array.from({ length: count }, () => scheduler.next("a", all));
}

Deno.test("PieceScheduler.next() hands out each piece once, in an order fixed by the seed", () => {
  const first = order(3, 50);
  assert.deepEqual([...first].sort((a, b) => a! - b!), Array.from({ length: 50 }, (_, i) => i));
  assert.deepEqual(order(3, 50), first, "same seed, same order");
  assert.notDeepEqual(order(4, 50), first, "fetchers with other seeds start elsewhere");
});

Deno.test("PieceScheduler.next() takes the rarest piece first", () => {
  const scheduler = new PieceScheduler(new Bitfield(4), 1);
  scheduler.setSwarm(Uint16Array.of(3, 1, 2, 3), Uint16Array.of(2, 0, 1, 2), 1, 0);
  assert.equal(scheduler.next("a", all), 1);
  assert.equal(scheduler.next("a", all), 2);
});

Deno.test("PieceScheduler.next() asks a seeder first for this fetcher's stripe of unspread pieces", () => {
  const scheduler = new PieceScheduler(new Bitfield(6), 1);
  // Two fetchers; this one is stripe 1 (odd pieces). Piece 3 already spread to the other one.
  scheduler.setSwarm(Uint16Array.of(1, 1, 1, 2, 1, 1), Uint16Array.of(0, 0, 0, 1, 0, 0), 2, 1);
  const fromSeeder = [scheduler.next("seed", all, true), scheduler.next("seed", all, true)];
  assert.deepEqual(fromSeeder.sort(), [1, 5]);
  assert.equal(scheduler.next("other", (i) => i === 3), 3, "spread pieces come from fetchers");
});

Deno.test("PieceScheduler.next() never leaves a seeder idle while pieces are unassigned", () => {
  const scheduler = new PieceScheduler(new Bitfield(6), 1);
  // Stripe 1 of 2; piece 3 is held by the other fetcher. Once this stripe is in flight, the
  // seeder gets the other stripe's new pieces, and only then the spread one: the fetcher owning
  // that stripe may have no slot at the seeder at all.
  scheduler.setSwarm(Uint16Array.of(1, 1, 1, 2, 1, 1), Uint16Array.of(0, 0, 0, 1, 0, 0), 2, 1);
  const taken = Array.from({ length: 6 }, () => scheduler.next("seed", all, true));
  assert.deepEqual(taken.slice(0, 2).sort(), [1, 5], "own stripe first");
  assert.deepEqual(taken.slice(2, 5).sort(), [0, 2, 4], "then the other stripe's new pieces");
  assert.equal(taken[5], 3, "the spread piece last");
});

Deno.test("PieceScheduler.next() skips verified pieces and pieces the source lacks", () => {
  const have = new Bitfield(6);
  have.set(0);
  have.set(1);
  const scheduler = new PieceScheduler(have, 0);
  assert.equal(scheduler.next("partial", (i) => i === 4), 4);
  const rest = [
    scheduler.next("full", all),
    scheduler.next("full", all),
    scheduler.next("full", all),
  ];
  assert.deepEqual(rest.sort(), [2, 3, 5]);
  assert.equal(
    scheduler.next("partial", (i) => i === 4),
    undefined,
    "no endgame while pieces are unassigned",
  );
});

Deno.test("PieceScheduler.release() returns a piece to the pool for the next source", () => {
  const scheduler = new PieceScheduler(new Bitfield(3), 0);
  const first = scheduler.next("a", all)!;
  const second = scheduler.next("a", all)!;
  scheduler.release(first, "a");
  assert.equal(scheduler.next("b", all), first);
  assert.equal(scheduler.next("b", all), 3 - first - second);
});

Deno.test("PieceScheduler.next() duplicates in-flight pieces in the endgame, at most twice", () => {
  const scheduler = new PieceScheduler(new Bitfield(2), 0);
  assert.deepEqual([scheduler.next("a", all), scheduler.next("a", all)].sort(), [0, 1]);
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
  const x = scheduler.next("a", all)!;
  const y = scheduler.next("b", all)!;
  assert.equal(scheduler.next("b", all), x, "endgame copy");
  assert.equal(scheduler.complete(x), true);
  assert.equal(scheduler.wanted(x), false);
  assert.equal(scheduler.complete(x), false, "the duplicate arrives second");
  assert.equal(scheduler.done, false);
  assert.equal(scheduler.complete(y), true);
  assert.equal(scheduler.done, true);
  assert.equal(have.complete, true);
});

Deno.test("PieceScheduler on an empty file is done at once", () => {
  const scheduler = new PieceScheduler(new Bitfield(0), 7);
  assert.equal(scheduler.done, true);
  assert.equal(scheduler.next("a", all), undefined);
});
