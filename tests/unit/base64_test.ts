// Base64 helpers of shared/base64.ts.
import assert from "node:assert/strict";
import { fromBase64, toBase64 } from "../../shared/base64.ts";

const encoder = new TextEncoder();

Deno.test("toBase64() matches the RFC 4648 test vectors", () => {
  const vectors = ["", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"];
  vectors.forEach((expected, n) => {
    assert.equal(toBase64(encoder.encode("foobar".slice(0, n))), expected);
    assert.deepEqual(fromBase64(expected), encoder.encode("foobar".slice(0, n)));
  });
});

Deno.test("toBase64() and fromBase64() round-trip every byte value", () => {
  const bytes = new Uint8Array(256).map((_, i) => i);
  assert.deepEqual(fromBase64(toBase64(bytes)), bytes);
});

Deno.test("toBase64() handles inputs longer than one internal chunk", () => {
  const bytes = new Uint8Array(100_003).map((_, i) => (i * 31) & 0xff);
  const text = toBase64(bytes);
  assert.equal(text.length, Math.ceil(bytes.length / 3) * 4);
  assert.deepEqual(fromBase64(text), bytes);
});

Deno.test("fromBase64() throws on invalid base64", () => {
  assert.throws(() => fromBase64("@@@@"));
  assert.throws(() => fromBase64("Z"));
});
