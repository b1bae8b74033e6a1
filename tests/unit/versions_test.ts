import assert from "node:assert/strict";
import type { SourceInfo } from "../../shared/protocol.ts";
import { chooseVersion, groupVersions } from "../../peer/versions.ts";

function source(rootHash: string, port: number, partial = false): SourceInfo {
  const info: SourceInfo = {
    fname: "f.bin",
    size: rootHash.length,
    mtimeMs: 0,
    rootHash,
    pieceSize: 1 << 20,
    hostname: `h${port}`,
    address: "10.0.0.1",
    port,
    // One device per port: the vote counts devices.
    id: `h${port}`.padEnd(52, "a"),
    sig: "(unused)",
  };
  if (partial) info.have = "AA==";
  return info;
}

const A = "aa".repeat(32);
const B = "ab".repeat(32);
const C = "cc".repeat(32);

Deno.test("groupVersions() orders by sources, then by complete sources", () => {
  const groups = groupVersions([
    source(A, 1, true),
    source(B, 2),
    source(A, 3, true),
    source(B, 4),
    source(C, 5),
  ]);
  assert.deepEqual([...groups.keys()], [B, A, C]);
});

Deno.test("chooseVersion() takes the version with the most sources without a prefix", () => {
  const choice = chooseVersion([source(A, 1), source(B, 2), source(B, 3)]);
  assert.ok(!("problem" in choice));
  assert.equal(choice.chosen.rootHash, B);
  assert.deepEqual(choice.sources.map((s) => s.port), [2, 3]);
  assert.deepEqual(choice.versions.map((v) => [v.rootHash, v.sources]), [[B, 2], [A, 1]]);
});

Deno.test("chooseVersion() takes the one version a --hash prefix names, in any case", () => {
  const choice = chooseVersion([source(A, 1), source(B, 2), source(B, 3)], "AA");
  assert.ok(!("problem" in choice));
  assert.equal(choice.chosen.rootHash, A);
});

Deno.test("chooseVersion() explains a prefix that matches none or several versions", () => {
  const sources = [source(A, 1), source(B, 2)];
  const none = chooseVersion(sources, "ff");
  assert.ok("problem" in none);
  assert.match(
    none.problem,
    /^no version matches --hash ff \(versions: aaaaaaaaaaaa 64 B, by h1aa-aaaa-aaaa \(1 device\(s\)\); abababababab/,
  );
  const several = chooseVersion(sources, "a");
  assert.ok("problem" in several);
  assert.match(several.problem, /^more than one version matches --hash a/);
});

Deno.test("chooseVersion() of no sources is a problem, not a crash", () => {
  assert.deepEqual(chooseVersion([]), { problem: "no live peer shares it", code: "not-shared" });
});

Deno.test("chooseVersion() counts distinct devices, not sessions, and names the publishers", () => {
  const device = (id: string, rootHash: string, port: number): SourceInfo => ({
    ...source(rootHash, port),
    id: id.repeat(52),
  });
  // One device behind three sessions publishes B; two devices publish A.
  const choice = chooseVersion([
    device("b", B, 1),
    device("b", B, 2),
    device("b", B, 3),
    device("c", A, 4),
    device("d", A, 5),
  ]);
  assert.ok(!("problem" in choice));
  assert.equal(choice.chosen.rootHash, A);
  assert.deepEqual(choice.versions.map((v) => [v.rootHash, v.sources, v.publishers]), [
    [A, 2, ["cccc-cccc-cccc", "dddd-dddd-dddd"]],
    [B, 1, ["bbbb-bbbb-bbbb"]],
  ]);
});
