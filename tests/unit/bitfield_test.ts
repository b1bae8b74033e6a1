// Piece bitfields of shared/bitfield.ts.
import assert from "node:assert/strict";
import { Bitfield } from "../../shared/bitfield.ts";
import { rng } from "./_rng.ts";

Deno.test("Bitfield set(), has(), count and complete agree", () => {
  const field = new Bitfield(10);
  assert.equal(field.size, 10);
  assert.equal(field.count, 0);
  assert.equal(field.complete, false);
  field.set(0);
  field.set(9);
  field.set(9);
  assert.equal(field.count, 2);
  assert.deepEqual([...Array(10).keys()].filter((i) => field.has(i)), [0, 9]);
  for (let i = 1; i < 9; i++) field.set(i);
  assert.equal(field.count, 10);
  assert.equal(field.complete, true);
});

Deno.test("Bitfield has() is false out of range and set() throws RangeError", () => {
  const field = Bitfield.full(3);
  assert.equal(field.has(-1), false);
  assert.equal(field.has(3), false);
  assert.throws(() => field.set(-1), RangeError);
  assert.throws(() => field.set(3), RangeError);
});

Deno.test("Bitfield orders bits most significant first", () => {
  const field = new Bitfield(9);
  field.set(0);
  assert.equal(field.toBase64(), btoa("\x80\x00"));
  field.set(7);
  field.set(8);
  assert.equal(field.toBase64(), btoa("\x81\x80"));
  const example = new Bitfield(10); // the example of docs/PROTOCOL.md §9
  example.set(0);
  example.set(9);
  assert.equal(example.toBase64(), "gEA=");
});

Deno.test("Bitfield.fromBase64() round-trips toBase64()", () => {
  const rand = rng(7);
  for (let n = 0; n < 200; n++) {
    const size = rand.int(100);
    const field = new Bitfield(size);
    for (let i = 0; i < size; i++) if (rand.chance(0.5)) field.set(i);
    const copy = Bitfield.fromBase64(size, field.toBase64());
    assert.equal(copy.count, field.count, `size ${size}`);
    assert.equal(copy.toBase64(), field.toBase64(), `size ${size}`);
    for (let i = 0; i < size; i++) assert.equal(copy.has(i), field.has(i), `size ${size} bit ${i}`);
  }
});

Deno.test("Bitfield clears the spare bits of the last byte", () => {
  const field = new Bitfield(10, new Uint8Array([0xff, 0xff]));
  assert.equal(field.count, 10);
  assert.equal(field.complete, true);
  assert.equal(field.toBase64(), btoa("\xff\xc0"));
  assert.equal(Bitfield.fromBase64(3, btoa("\xff")).count, 3);
  assert.equal(Bitfield.fromBase64(3, btoa("\xff")).toBase64(), btoa("\xe0"));
});

Deno.test("Bitfield copies the bytes it is given", () => {
  const bits = new Uint8Array([0x80]);
  const field = new Bitfield(8, bits);
  bits[0] = 0xff;
  assert.equal(field.count, 1);
});

Deno.test("Bitfield rejects packed bits of the wrong length with RangeError", () => {
  assert.throws(() => new Bitfield(10, new Uint8Array(1)), RangeError);
  assert.throws(() => new Bitfield(10, new Uint8Array(3)), RangeError);
  assert.throws(() => new Bitfield(0, new Uint8Array(1)), RangeError);
  assert.throws(() => Bitfield.fromBase64(10, btoa("\xff")), RangeError);
  assert.throws(() => Bitfield.fromBase64(8, btoa("\xff\xff")), RangeError);
});

Deno.test("Bitfield rejects a size that is not a count", () => {
  for (const size of [-1, 1.5, NaN, Infinity]) {
    assert.throws(() => new Bitfield(size), RangeError, String(size));
  }
});

Deno.test("Bitfield.full() sets every piece", () => {
  for (const size of [0, 1, 8, 9, 8192]) {
    const field = Bitfield.full(size);
    assert.equal(field.count, size);
    assert.equal(field.complete, true);
  }
  assert.equal(Bitfield.full(0).toBase64(), "");
  assert.equal(Bitfield.full(12).toBase64(), btoa("\xff\xf0"));
});
