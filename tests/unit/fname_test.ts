// File name rules of shared/fname.ts.
import assert from "node:assert/strict";
import { fnameProblem, META_DIR } from "../../shared/fname.ts";

const utf8Length = (s: string) => new TextEncoder().encode(s).length;

Deno.test("fnameProblem() accepts ordinary and Unicode names", () => {
  const names = [
    "report.pdf",
    "résumé 2026.pdf",
    "日本語.txt",
    "😀.png",
    ".hidden",
    "a.b.c",
    "lanshare",
    ".lanshare2",
    " spaced ",
    "a.",
  ];
  for (const name of names) assert.equal(fnameProblem(name), undefined, name);
});

Deno.test("fnameProblem() rejects empty, separators, dots and control characters", () => {
  const names = [
    "",
    "/",
    "a/b",
    "/etc",
    "a\\b",
    "..",
    "a..b",
    "...",
    "../etc/passwd",
    ".",
    "\0",
    "a\0b",
    "a\nb",
    "tab\t",
    "\u001f",
    "\u007f",
    META_DIR,
  ];
  for (const name of names) {
    const problem = fnameProblem(name);
    assert.equal(typeof problem, "string", JSON.stringify(name));
    assert.ok(problem!.length > 0);
  }
  assert.equal(META_DIR, ".lanshare");
});

Deno.test("fnameProblem() limits names to 255 UTF-8 bytes", () => {
  const ascii255 = "a".repeat(255);
  const mixed255 = "é".repeat(127) + "a"; // 128 characters, 255 bytes
  assert.equal(utf8Length(mixed255), 255);
  assert.equal(fnameProblem(ascii255), undefined);
  assert.equal(fnameProblem(mixed255), undefined);
  const ascii256 = "a".repeat(256);
  const mixed256 = "é".repeat(128); // 128 characters, 256 bytes
  assert.equal(utf8Length(mixed256), 256);
  assert.match(fnameProblem(ascii256)!, /256 UTF-8 bytes/);
  assert.match(fnameProblem(mixed256)!, /256 UTF-8 bytes/);
  // Three-byte characters and four-byte ones (surrogate pairs in the string) count as such.
  assert.equal(fnameProblem("€".repeat(85)), undefined); // 255 bytes
  assert.match(fnameProblem("€".repeat(85) + "a")!, /256 UTF-8 bytes/);
  assert.equal(fnameProblem("😀".repeat(63) + "abc"), undefined); // 252 + 3 bytes
  assert.match(fnameProblem("😀".repeat(64))!, /256 UTF-8 bytes/);
});

Deno.test("fnameProblem() rejects lone surrogates and bidirectional controls", () => {
  const refused: [string, RegExp][] = [
    ["lone \ud800 high", /not valid Unicode/],
    ["lone \udc00 low", /not valid Unicode/],
    ["gpj\u202eexe.txt", /bidirectional control U\+202E/],
    ["\u202aembed", /U\+202A/],
    ["iso\u2066late", /U\+2066/],
    ["pop\u2069", /U\+2069/],
  ];
  for (const [name, problem] of refused) assert.match(fnameProblem(name) ?? "", problem, name);
  // Marks that do not reorder text stay allowed, as do right-to-left scripts themselves.
  assert.equal(fnameProblem("\u200fשלום.txt"), undefined);
});
