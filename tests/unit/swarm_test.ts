import assert from "node:assert/strict";
import { Bitfield } from "../../shared/bitfield.ts";
import type { SourceInfo } from "../../shared/protocol.ts";
import { swarmView } from "../../peer/swarm.ts";

function source(hostname: string, have?: number[]): SourceInfo {
  const info: SourceInfo = {
    fname: "f.bin",
    size: 4,
    mtimeMs: 0,
    rootHash: "aa".repeat(32),
    pieceSize: 1,
    hostname,
    address: "10.0.0.1",
    port: 7000,
    id: hostname.padEnd(52, "a"),
    sig: "(unused)",
  };
  if (have) {
    const field = new Bitfield(4);
    for (const i of have) field.set(i);
    info.have = field.toBase64();
  }
  return info;
}

Deno.test("swarmView() counts holders and partial holders per piece and ranks fetchers", () => {
  const view = swarmView([source("seed"), source("b", [0, 1]), source("c", [1])], 4, "a:7000");
  assert.deepEqual([...view.holders], [2, 3, 1, 1]);
  assert.deepEqual([...view.partialHolders], [1, 2, 0, 0]);
  assert.equal(view.stripes, 3, "a, b and c fetch; the seed does not");
  assert.equal(view.stripe, 0);
  assert.deepEqual([...view.ownerHeld], [0, 1, 0], "b holds piece 1 of its stripe (1), c none");
});

Deno.test("swarmView() ignores a malformed have bitfield but still ranks its fetcher", () => {
  const bad = { ...source("b"), have: "not base64!" };
  const view = swarmView([source("seed"), bad], 4, "c:7000");
  assert.deepEqual([...view.holders], [1, 1, 1, 1]);
  assert.deepEqual([...view.partialHolders], [0, 0, 0, 0]);
  assert.deepEqual([view.stripes, view.stripe], [2, 1]);
  assert.deepEqual([...view.ownerHeld], [0, 0]);
});
