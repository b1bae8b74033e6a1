// The attack suite's fuzz cases replay: the seed printed with a failure rebuilds the same bytes.
import assert from "node:assert/strict";
import { decodeHeader } from "../../shared/decode.ts";
import { HEADER_SIZE } from "../../shared/protocol.ts";
import { caseRng, indexMessage, mutatedFrame, transferMessage } from "../../attack/_mutate.ts";

function caseBytes(seed: number, n: number): Uint8Array[] {
  const rand = caseRng(seed, n);
  const messages = [indexMessage(rand, n), transferMessage(rand, n, { fname: "f", size: 100 })];
  return messages.map((m) => mutatedFrame(rand, m, 0.8).bytes);
}

Deno.test("caseRng() and mutatedFrame() rebuild the same case from its seed and number", () => {
  for (let n = 0; n < 200; n++) assert.deepEqual(caseBytes(42, n), caseBytes(42, n), `case ${n}`);
  assert.notDeepEqual(caseBytes(42, 1), caseBytes(43, 1));
});

Deno.test("mutatedFrame() without mutation yields a frame with a valid header", () => {
  for (let n = 0; n < 200; n++) {
    const rand = caseRng(7, n);
    const { bytes, how } = mutatedFrame(rand, indexMessage(rand, n), 0);
    assert.equal(how, "valid");
    assert.equal(decodeHeader(bytes).bodyBytes, bytes.length - HEADER_SIZE, `case ${n}`);
  }
});
