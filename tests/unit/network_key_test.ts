// The `--join key` proof: an HMAC-SHA256 over the join statement, checked in constant time, and a
// key object that never shows its bytes when logged.
import assert from "node:assert/strict";
import { importNetworkKey, networkProof, networkProofValid } from "../../shared/handshake.ts";

const encoder = new TextEncoder();
const SECRET = "correct horse battery staple, 32+";
const ID = "b".repeat(52);
const NONCE = "n".repeat(44);

Deno.test("networkProof verifies with the same key, nonce and ID only", () => {
  const key = importNetworkKey(encoder.encode(SECRET));
  const proof = networkProof(key, NONCE, ID);
  assert.equal(networkProofValid(key, proof, NONCE, ID), true);
  assert.equal(networkProofValid(importNetworkKey(encoder.encode(SECRET)), proof, NONCE, ID), true);
  const other = importNetworkKey(encoder.encode(`${SECRET}!`));
  assert.equal(networkProofValid(other, proof, NONCE, ID), false, "another key");
  assert.equal(networkProofValid(key, proof, "m".repeat(44), ID), false, "another nonce");
  assert.equal(networkProofValid(key, proof, NONCE, "c".repeat(52)), false, "another ID");
});

Deno.test("networkProofValid says false, never throws, for malformed proofs", () => {
  const key = importNetworkKey(encoder.encode(SECRET));
  const proof = networkProof(key, NONCE, ID);
  for (const bad of ["", "not base64 at all!", proof.slice(0, 20), `${proof}AAAA`, "====="]) {
    assert.equal(networkProofValid(key, bad, NONCE, ID), false, JSON.stringify(bad));
  }
});

Deno.test("a network key never shows its bytes when inspected or serialised", () => {
  const key = importNetworkKey(encoder.encode(SECRET));
  assert.doesNotMatch(Deno.inspect(key, { depth: 10, showHidden: true }), /horse/);
  assert.doesNotMatch(JSON.stringify({ key }), /horse/);
  assert.doesNotMatch(String(key), /horse/);
});
