import assert from "node:assert/strict";
import { fromBase32, toBase32 } from "../../shared/base32.ts";

const encoder = new TextEncoder();

Deno.test("toBase32() matches the RFC 4648 test vectors, lowercase and unpadded", () => {
  const vectors = ["", "my", "mzxq", "mzxw6", "mzxw6yq", "mzxw6ytb", "mzxw6ytboi"];
  vectors.forEach((expected, n) => {
    const bytes = encoder.encode("foobar".slice(0, n));
    assert.equal(toBase32(bytes), expected);
    assert.deepEqual(fromBase32(expected), bytes);
    assert.deepEqual(fromBase32(expected.toUpperCase()), bytes);
  });
});

Deno.test("toBase32() of 32 bytes is 52 digits and round-trips every byte value", () => {
  const key = new Uint8Array(32).map((_, i) => i * 8 + 7);
  assert.equal(toBase32(key).length, 52);
  const all = new Uint8Array(256).map((_, i) => i);
  assert.deepEqual(fromBase32(toBase32(all)), all);
});

Deno.test("fromBase32() refuses foreign digits and non-zero trailing bits", () => {
  assert.throws(() => fromBase32("mzx0"), RangeError);
  assert.throws(() => fromBase32("mz"), /trailing bits/);
});
