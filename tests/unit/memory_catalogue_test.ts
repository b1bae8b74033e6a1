import assert from "node:assert/strict";
import {
  compareBytewise,
  compilePattern,
  foldAscii,
  MemoryCatalogue,
  smallest,
} from "../../server/memory_catalogue.ts";
import { rng } from "./_rng.ts";

const utf8 = new TextEncoder();

function compareUtf8(a: string, b: string): number {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

Deno.test("compareBytewise() orders like the UTF-8 bytes, also across surrogates", () => {
  const alphabet = ["a", "B", "é", "\u{e000}", "\u{ffff}", "😀", "\u{10000}", "z", "中"];
  const random = rng(7);
  for (let i = 0; i < 2000; i++) {
    const word = () =>
      Array.from({ length: random.range(0, 4) }, () => random.pick(alphabet)).join("");
    const a = word();
    const b = word();
    assert.equal(Math.sign(compareBytewise(a, b)), Math.sign(compareUtf8(a, b)), `${a} vs ${b}`);
  }
});

Deno.test("compilePattern() matches substrings and anchored globs, ASCII case-insensitively", () => {
  const match = (pattern: string, name: string) => compilePattern(pattern)(foldAscii(name));
  assert.ok(match("SONG", "Music/Song.MP3"));
  assert.ok(match("", "anything"));
  assert.ok(!match("É", "é.txt"), "only ASCII letters fold, as in SQL LIKE");
  assert.ok(match("*.mp3", "a/b.MP3"));
  assert.ok(!match("*.mp3", "a/b.mp3.txt"));
  assert.ok(match("a?c", "a😀c"), "? is one character, not one UTF-16 unit");
  assert.ok(match("(x)[y].+$", "(x)[y].+$"), "regex syntax is literal");
  assert.ok(match("a*(b", "a--(b"));
  assert.ok(!match("a?c", "ac"));
});

Deno.test("smallest() returns the k smallest in order, by heap or by sort", () => {
  const random = rng(11);
  for (const size of [0, 1, 10, 1000]) {
    const items = Array.from({ length: size }, () => random.int(500));
    for (const k of [0, 1, 3, size >> 3, size]) {
      const expected = [...items].sort((a, b) => a - b).slice(0, k);
      assert.deepEqual(smallest([...items], k, (a, b) => a - b), expected, `${size} ${k}`);
    }
  }
});

Deno.test("MemoryCatalogue keeps its name index consistent through takeover, unpublish, close", () => {
  const catalogue = new MemoryCatalogue();
  const row = (sessionId: string, hostname: string) => ({
    sessionId,
    serverId: "s",
    hostname,
    address: "10.0.0.1",
    port: 4000,
    openedAtMs: 0,
    // One device: a takeover of its own {hostname, port}.
    deviceId: "d".repeat(52),
    cert: "(cert)",
  });
  const entry = { fname: "f", size: 1, mtimeMs: 0, rootHash: "aa", pieceSize: 1, sig: "c2ln" };
  const PUBLISH = { nowMs: 0, maxEntries: 10 };
  catalogue.openSession(row("a", "alpha"), 100);
  catalogue.openSession(row("b", "bravo"), 100);
  catalogue.publish("a", entry, PUBLISH);
  catalogue.publish("b", entry, PUBLISH);
  catalogue.publish("b", { ...entry, fname: "g" }, PUBLISH);
  assert.deepEqual(catalogue.whoHas("f", "", 0).map((s) => s.hostname), ["alpha", "bravo"]);
  assert.deepEqual(catalogue.openSession(row("a2", "alpha"), 100), row("a", "alpha"));
  assert.deepEqual(catalogue.whoHas("f", "", 0).map((s) => s.hostname), ["bravo"]);
  assert.equal(catalogue.unpublish("b", "f"), true);
  assert.deepEqual(catalogue.whoHas("f", "", 0), []);
  const names = () => [...catalogue.matchingNames("")].filter((n) => n !== undefined);
  const inOrder = () => [...catalogue.namesInOrder()].flat();
  assert.deepEqual(names().map((n) => n.fname), ["g"]);
  assert.deepEqual(inOrder().map((n) => n.fname), ["g"]);
  assert.equal(catalogue.visibleEntryCount(false, 0), 1);
  assert.equal(catalogue.closeSession("b"), "b", "the id its rows carry");
  assert.deepEqual(names(), []);
  assert.deepEqual(inOrder(), []);
  assert.equal(catalogue.visibleEntryCount(true, 0), 0);
  assert.deepEqual(catalogue.counts(0), { sessions: 1, entries: 0 });
  assert.throws(() => catalogue.publish("b", entry, PUBLISH), /Cannot publish "f": no session b/);
});

Deno.test("MemoryCatalogue.matchingNames() pauses within a costly glob scan, not only per 1024 names", () => {
  const catalogue = new MemoryCatalogue();
  catalogue.openSession({
    sessionId: "s",
    serverId: "srv",
    hostname: "alpha",
    address: "10.0.0.1",
    port: 4000,
    openedAtMs: 0,
  }, 100);
  // 64 names of 255 "a"s but one character: each costs the glob ~100 × 255 steps.
  for (let i = 0; i < 64; i++) {
    const fname = `${"a".repeat(254 - String(i).length)}${i}b`;
    catalogue.publish("s", { fname, size: 1, mtimeMs: 0, rootHash: "aa", pieceSize: 1 }, {
      nowMs: 0,
      maxEntries: 100,
    });
  }
  const seen = [...catalogue.matchingNames(`*${"a".repeat(100)}c*`)];
  assert.equal(seen.filter((n) => n !== undefined).length, 0);
  // About 1.6 million steps in all: a pause point after every ~100,000 of them.
  assert.ok(seen.length >= 10, `${seen.length} pause points`);
});
