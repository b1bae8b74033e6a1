import assert from "node:assert/strict";
import { formatBytes, formatDuration, formatRate } from "../../shared/format.ts";

Deno.test("formatBytes() prints three significant digits with a binary unit", () => {
  const cases: [number, string][] = [
    [0, "0 B"],
    [1, "1 B"],
    [1023, "1023 B"],
    [96.68711463779218, "96.7 B"],
    [0.5, "0.50 B"],
    [1024, "1.00 KiB"],
    [1536, "1.50 KiB"],
    [10 * 1024 + 100, "10.1 KiB"],
    [123.456 * 1024, "123 KiB"],
    [1023.4 * 1024, "1023 KiB"],
    [1023.6 * 1024, "1.00 MiB"],
    [9.996 * 1024 ** 2, "10.0 MiB"],
    [99.96 * 1024 ** 2, "100 MiB"],
    [3 * 1024 ** 3, "3.00 GiB"],
    [5 * 1024 ** 4, "5.00 TiB"],
    [2 * 1024 ** 5, "2.00 PiB"],
    [-1536, "-1.50 KiB"],
  ];
  for (const [bytes, text] of cases) assert.equal(formatBytes(bytes), text, String(bytes));
});

Deno.test("formatRate() never prints a long fraction", () => {
  assert.equal(formatRate(96.68711463779218), "96.7 B/s");
  assert.equal(formatRate(0), "0 B/s");
  assert.equal(formatRate(541.3 * 1024 ** 2), "541 MiB/s");
  assert.equal(formatRate(6 * 1024 ** 2 / 7), "878 KiB/s");
  for (let exponent = -3; exponent < 16; exponent += 0.37) {
    const text = formatRate(10 ** exponent);
    assert.match(text, /^\d+(\.\d+)? (B|KiB|MiB|GiB|TiB|PiB)\/s$/, text);
    const digits = text.split(" ")[0]!.replace(".", "").replace(/^0+/, "");
    assert.ok(digits.length <= 4, text);
  }
});

Deno.test("formatDuration() picks a unit that fits", () => {
  assert.equal(formatDuration(850.4), "850 ms");
  assert.equal(formatDuration(12_345), "12.3 s");
  assert.equal(formatDuration(3_000), "3.00 s");
  assert.equal(formatDuration(200_000), "3 min 20 s");
  assert.equal(formatDuration(2 * 3600_000 + 5 * 60_000), "2 h 05 min");
});
