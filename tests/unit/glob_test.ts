import assert from "node:assert/strict";
import { Glob } from "../../server/glob.ts";
import { rng } from "./_rng.ts";

/** Reference matcher by dynamic programming over code points: obviously right, too slow to serve. */
function reference(pattern: string, name: string): boolean {
  const p = [...pattern];
  const n = [...name];
  // row[j]: the pattern so far matches the first j characters of the name.
  let row = n.map(() => false);
  row.unshift(true);
  for (const char of p) {
    const next = row.map(() => false);
    for (let j = 0; j <= n.length; j++) {
      if (char === "*") next[j] = row[j]! || (j > 0 && next[j - 1]!);
      else if (j > 0) next[j] = row[j - 1]! && (char === "?" || char === n[j - 1]);
    }
    row = next;
  }
  return row[n.length]!;
}

Deno.test("Glob.matches() agrees with a reference matcher on random patterns and names", () => {
  const random = rng(0x610b);
  const alphabet = ["a", "b", ".", "😀", "é"];
  const wild = [...alphabet, "*", "?", "*", "?"];
  for (let i = 0; i < 20_000; i++) {
    const name = Array.from({ length: random.range(0, 8) }, () => random.pick(alphabet)).join("");
    const pattern = Array.from({ length: random.range(0, 6) }, () => random.pick(wild)).join("");
    const glob = new Glob(pattern);
    const what = `case ${i}: ${JSON.stringify(pattern)} against ${JSON.stringify(name)}`;
    assert.equal(glob.matches(name), reference(pattern, name), what);
    assert.ok(glob.steps <= (name.length + 1) * (pattern.length + 1), `${what}: ${glob.steps}`);
  }
});

Deno.test("Glob.matches() anchors at both ends; ? is one character; the rest is literal", () => {
  const match = (pattern: string, name: string) => new Glob(pattern).matches(name);
  assert.ok(match("*.mp3", "a/b.mp3"));
  assert.ok(!match("*.mp3", "a/b.mp3.txt"));
  assert.ok(!match("readme*", "docs/readme"));
  assert.ok(match("a?c", "a😀c"));
  assert.ok(!match("a??c", "a😀c"), "a surrogate pair is one character");
  assert.ok(match("(x)[y].+$", "(x)[y].+$"));
  assert.ok(match("", ""));
  assert.ok(!match("", "a"));
  assert.ok(match("***", ""));
});

Deno.test("Glob.matches() takes at most (n + 1)(m + 1) steps on adversarial patterns", () => {
  const names = [
    "a".repeat(84),
    "a".repeat(255),
    "ab".repeat(127),
    "😀".repeat(127),
    `${"a".repeat(200)}#`,
  ];
  const patterns = [
    "*?*?*?*?*?*?*?*#",
    "*?".repeat(16) + "#",
    "*a".repeat(16) + "b",
    "*" + "a".repeat(100) + "b*",
    "*" + "?".repeat(200) + "#",
    "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a",
    "*😀*😀*😀*x",
  ];
  for (const name of names) {
    for (const pattern of patterns) {
      const glob = new Glob(pattern);
      const matched = glob.matches(name);
      assert.equal(matched, reference(pattern, name), `${pattern} against ${name.length} units`);
      const bound = (name.length + 1) * (pattern.length + 1);
      assert.ok(
        glob.steps <= bound,
        `${pattern} against ${name.length} units took ${glob.steps} steps, bound ${bound}`,
      );
    }
  }
});
