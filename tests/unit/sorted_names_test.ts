import assert from "node:assert/strict";
import { compareBytewise } from "../../shared/compare_bytewise.ts";
import { MAX_BLOCK, type Named, SortedNames } from "../../server/sorted_names.ts";
import { rng } from "./_rng.ts";

function walk(sorted: SortedNames<Named>, after?: string): string[] {
  return [...sorted.blocksFrom(after)].flat().map((i) => i.fname);
}

Deno.test("SortedNames keeps byte order through adds and removes, across block splits", () => {
  const random = rng(7);
  const alphabet = ["a", "b", "B", "é", "\uffff", "😀", "-"];
  const word = () =>
    Array.from({ length: random.range(1, 8) }, () => random.pick(alphabet)).join("");
  const sorted = new SortedNames<Named>(compareBytewise);
  const held = new Set<string>();
  for (let round = 0; round < 12_000; round++) {
    // Grow past several blocks, then shrink until blocks empty and go.
    const adding = round < 8000 ? random.chance(0.85) : random.chance(0.1);
    if (adding || held.size === 0) {
      const fname = word();
      if (held.has(fname)) {
        assert.equal(sorted.remove(fname), true);
        held.delete(fname);
      } else {
        sorted.add({ fname });
        held.add(fname);
      }
    } else {
      const fname = [...held][random.int(held.size)]!;
      assert.equal(sorted.remove(fname), true);
      held.delete(fname);
      assert.equal(sorted.remove(fname), false, "a second removal finds nothing");
    }
    if (round % 1000 === 0 || round === 11_999) {
      const expected = [...held].sort(compareBytewise);
      assert.equal(sorted.size, held.size);
      assert.deepEqual(walk(sorted), expected, `round ${round}`);
      const middle = expected[expected.length >> 1];
      if (middle !== undefined) {
        assert.deepEqual(walk(sorted, middle), expected.slice((expected.length >> 1) + 1));
      }
    }
  }
});

Deno.test("SortedNames.blocksFrom() resumes by name after each block, not by position", () => {
  const sorted = new SortedNames<Named>(compareBytewise);
  const count = MAX_BLOCK * 3;
  const name = (i: number) => `n${String(i).padStart(5, "0")}`;
  for (let i = 0; i < count; i += 2) sorted.add({ fname: name(i) });
  const seen: string[] = [];
  let blocks = 0;
  for (const block of sorted.blocksFrom()) {
    seen.push(...block.map((item) => item.fname));
    blocks++;
    // Between two blocks: names before the walk's place come and go, and names after it come.
    if (blocks === 1) {
      sorted.remove(seen[0]!);
      for (let i = 1; i < count; i += 2) sorted.add({ fname: name(i) });
    }
  }
  assert.ok(blocks >= 2, `${blocks} block(s)`);
  assert.equal(new Set(seen).size, seen.length, "no name twice");
  assert.deepEqual(seen, [...seen].sort(compareBytewise), "in order");
  assert.ok(!seen.includes(name(1)), "names added before the walk's place are not seen");
  assert.ok(seen.includes(name(count - 1)), "names added after it are");
});
