import assert from "node:assert/strict";
import { BLOCK_NAMES, type BlockItem, NameBlocks } from "../../server/name_blocks.ts";
import { rng } from "./_rng.ts";

function item(folded: string): BlockItem {
  return { folded, place: undefined };
}

function found(blocks: NameBlocks<BlockItem>, pattern: string): string[] {
  return [...blocks.containing(pattern)].filter((i) => i !== undefined).map((i) => i.folded)
    .sort();
}

Deno.test("NameBlocks.containing() finds what includes() finds, through adds and removes", () => {
  const random = rng(5);
  const alphabet = ["a", "b", "c", "é", "😀", "-", "."];
  const word = () =>
    Array.from({ length: random.range(1, 6) }, () => random.pick(alphabet)).join("");
  const blocks = new NameBlocks<BlockItem>();
  const held = new Set<BlockItem>();
  for (let round = 0; round < 6000; round++) {
    // Grow to a few blocks, then shrink most of them away, so that blocks compact and empty.
    const adding = round < 3000 ? random.chance(0.8) : random.chance(0.2);
    if (adding || held.size === 0) {
      const added = item(word());
      blocks.add(added);
      held.add(added);
    } else {
      const removed = [...held][random.int(held.size)]!;
      blocks.remove(removed);
      held.delete(removed);
    }
    if (round % 500 === 0 || round === 5999) {
      for (const pattern of ["", "a", "ab", "é", "😀", "c.", "zzz", word()]) {
        const expected = [...held].map((i) => i.folded).filter((f) => f.includes(pattern)).sort();
        assert.deepEqual(found(blocks, pattern), expected, `round ${round} "${pattern}"`);
      }
    }
  }
});

Deno.test("NameBlocks.containing() yields each item once and pauses after each block", () => {
  const blocks = new NameBlocks<BlockItem>();
  for (let i = 0; i < BLOCK_NAMES + 10; i++) blocks.add(item(`aaa-${i}`));
  const yielded = [...blocks.containing("a")];
  assert.equal(yielded.filter((i) => i === undefined).length, 2, "one pause per block");
  assert.equal(new Set(yielded.filter((i) => i !== undefined)).size, BLOCK_NAMES + 10);
  assert.deepEqual(found(blocks, "\n"), [], "no match across names");
});
