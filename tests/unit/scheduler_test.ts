import assert from "node:assert/strict";
import { Bitfield } from "../../shared/bitfield.ts";
import { PieceScheduler, STRIPE_STALL_MS } from "../../peer/scheduler.ts";
import type { SwarmView } from "../../peer/swarm.ts";

const all = () => true;

/** A swarm view: per-piece holders and partial holders, this fetcher's stripe, owners' progress. */
function view(
  holders: number[],
  partialHolders: number[],
  [stripe, stripes]: [number, number],
  ownerHeld: number[] = new Array(stripes).fill(0),
): SwarmView {
  return {
    holders: Uint16Array.from(holders),
    partialHolders: Uint16Array.from(partialHolders),
    stripes,
    stripe,
    ownerHeld: Uint32Array.from(ownerHeld),
  };
}

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
  scheduler.setSwarm(view([3, 1, 2, 3], [2, 0, 1, 2], [0, 1]), 0);
  assert.equal(scheduler.next("a", all), 1);
  assert.equal(scheduler.next("a", all), 2);
});

Deno.test("PieceScheduler.next() asks a seeder first for this fetcher's stripe of unspread pieces", () => {
  const scheduler = new PieceScheduler(new Bitfield(6), 1);
  // Two fetchers; this one is stripe 1 (odd pieces). Piece 3 already spread to the other one.
  scheduler.setSwarm(view([1, 1, 1, 2, 1, 1], [0, 0, 0, 1, 0, 0], [1, 2]), 0);
  const fromSeeder = [scheduler.next("seed", all, true), scheduler.next("seed", all, true)];
  assert.deepEqual(fromSeeder, [1, 5], "lowest first");
  assert.equal(scheduler.next("other", (i) => i === 3), 3, "spread pieces come from fetchers");
});

Deno.test("PieceScheduler.next() leaves another fetcher's stripe to it while it is being served", () => {
  const scheduler = new PieceScheduler(new Bitfield(6), 1);
  // Stripe 1 of 2 (odd pieces). The seeder gets this stripe, then nothing: the other fetcher
  // is fetching stripe 0 from the seeder, and its in-flight pieces are in no who-has yet, so
  // asking for them would send them twice over the seeder's uplink, the bottleneck.
  scheduler.setSwarm(view([1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0], [1, 2]), 0);
  const taken = [1, 2, 3].map(() => scheduler.next("seed", all, true));
  assert.deepEqual(taken.sort(), [1, 3, 5]);
  assert.equal(scheduler.next("seed", all, true), undefined, "stripe 0 is its owner's");
  // The owner verifies piece 0 at 1 s: still served.
  scheduler.setSwarm(view([2, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0], [1, 2], [1, 0]), 1000);
  scheduler.setSwarm(view([2, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0], [1, 2], [1, 0]), 2900);
  assert.equal(scheduler.next("seed", all, true), undefined, "it gained a piece 1.9 s ago");
  assert.equal(scheduler.next("other", (i) => i === 0), 0, "spread pieces come from fetchers");
});

Deno.test("PieceScheduler.next() asks a seeder for a stalled fetcher's stripe, from the top", () => {
  const scheduler = new PieceScheduler(new Bitfield(6), 1);
  // The owner of stripe 0 gains nothing for STRIPE_STALL_MS (say it has no slot at the seeder,
  // whose slots this fetcher's idle connections hold: issue 10's deadlock). Then this fetcher
  // takes its stripe from the top down, while the owner, if it comes back, works upwards.
  const still = view([2, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0], [1, 2], [1, 0]);
  scheduler.setSwarm(still, 0);
  for (const piece of [1, 3, 5]) assert.equal(scheduler.next("seed", all, true), piece);
  scheduler.setSwarm(still, STRIPE_STALL_MS - 1);
  assert.equal(scheduler.next("seed", all, true), undefined);
  scheduler.setSwarm(still, STRIPE_STALL_MS);
  assert.equal(scheduler.next("seed", all, true), 4);
  assert.equal(scheduler.next("seed", all, true), 2);
  assert.equal(scheduler.next("seed", all, true), undefined, "piece 0 is spread already");
});

Deno.test("PieceScheduler.next(): fetchers helping one stalled stripe take different pieces", () => {
  // Three fetchers, 9 pieces; the owner of stripe 0 (0, 3, 6) is stalled, the others have
  // their own stripes. Each helper skips as many pieces from the top as it is stripes away,
  // less one.
  const taken = [1, 2].map((stripe) => {
    const have = new Bitfield(9);
    for (let i = stripe; i < 9; i += 3) have.set(i);
    const scheduler = new PieceScheduler(have, stripe);
    const holders = [1, 2, 2, 1, 2, 2, 1, 2, 2];
    const partial = [0, 1, 1, 0, 1, 1, 0, 1, 1];
    scheduler.setSwarm(view(holders, partial, [stripe, 3], [0, 3, 3]), 0);
    scheduler.setSwarm(view(holders, partial, [stripe, 3], [0, 3, 3]), STRIPE_STALL_MS);
    return scheduler.next("seed", all, true);
  });
  assert.deepEqual(taken, [3, 6], "stripe 1 is two stripes from 0, stripe 2 one");
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
