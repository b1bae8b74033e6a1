// Body shape checks of shared/schema.ts, called directly with JavaScript values.
import assert from "node:assert/strict";
import { checkBody, MAX_LIST_ITEMS } from "../../shared/schema.ts";
import { MsgType } from "../../shared/protocol.ts";
import { assertProtocolError } from "./_assert.ts";
import { FILE, SAMPLE_BY_NAME, SAMPLES } from "./_samples.ts";

const ENTRY = {
  fname: "a.txt",
  size: 10,
  mtimeMs: 0,
  rootHash: FILE.rootHash,
  pieceSize: 1048576,
  // Protocol 2: every Publish is signed (the shape only is checked here).
  sig: new Uint8Array(64).toBase64(),
};

/** Asserts that `body` is rejected for `type` with a message naming `path`. */
function assertRejects(type: MsgType, body: unknown, path: string): void {
  const err = assertProtocolError(() => checkBody(type, body), "bad-body", path);
  assert.ok(err.message.includes(`${path} must be`), `${path}: ${err.message}`);
}

Deno.test("checkBody() accepts every sample body", () => {
  for (const message of SAMPLES) {
    assert.equal(checkBody(message.type, message.body), message.body);
  }
});

Deno.test("checkBody() accepts absent optional fields", () => {
  checkBody(MsgType.Ok, {});
  checkBody(MsgType.GetInfo, { fname: "a" });
  checkBody(MsgType.Publish, ENTRY);
  checkBody(MsgType.Info, { ...ENTRY, pieceHashes: "" });
});

Deno.test("checkBody() takes Hello with or without sharesDigest, Welcome with or without kept", () => {
  const hello = SAMPLE_BY_NAME.Hello.body;
  assert.equal("sharesDigest" in hello, false, "the sample is an old peer's Hello");
  checkBody(MsgType.Hello, hello);
  checkBody(MsgType.Hello, { ...hello, sharesDigest: FILE.rootHash });
  assertRejects(MsgType.Hello, { ...hello, sharesDigest: "AB".repeat(32) }, "body.sharesDigest");
  assertRejects(MsgType.Hello, { ...hello, sharesDigest: "ab" }, "body.sharesDigest");
  const welcome = SAMPLE_BY_NAME.Welcome.body;
  assert.equal("kept" in welcome, false, "the sample is an old server's Welcome");
  checkBody(MsgType.Welcome, welcome);
  checkBody(MsgType.Welcome, { ...welcome, kept: true });
  checkBody(MsgType.Welcome, { ...welcome, kept: false });
  assertRejects(MsgType.Welcome, { ...welcome, kept: "yes" }, "body.kept");
});

Deno.test("checkBody() ignores unknown fields", () => {
  const body = { sentAtMs: 1, future: { nested: [1, 2] } };
  assert.deepEqual(checkBody(MsgType.Ping, body), body);
  checkBody(MsgType.ListShares, { anything: true });
});

Deno.test("checkBody() rejects a body that is not an object", () => {
  for (const type of SAMPLES.map((m) => m.type)) {
    for (const body of [null, undefined, [], "x", 1, true]) {
      assertRejects(type, body, "body");
    }
  }
});

Deno.test("checkBody() rejects wrong field types and names the field", () => {
  assertRejects(MsgType.Ping, { sentAtMs: "1" }, "body.sentAtMs");
  assertRejects(MsgType.Goodbye, { reason: null }, "body.reason");
  assertRejects(MsgType.Ok, { removed: 1 }, "body.removed");
  assertRejects(MsgType.Ok, { removed: null }, "body.removed");
  assertRejects(MsgType.Hello, { hostname: 1, p2pPort: 1, protocol: 1 }, "body.hostname");
  assertRejects(MsgType.Error, { code: "teapot", message: "x" }, "body.code");
  assertRejects(MsgType.Published, { fname: "a", status: "gone" }, "body.status");
  assertRejects(MsgType.Publish, { ...ENTRY, have: 5 }, "body.have");
  assertRejects(MsgType.Shares, { files: {} }, "body.files");
  assertRejects(MsgType.Shares, { files: [ENTRY, "x"] }, "body.files[1]");
  assertRejects(MsgType.Shares, { files: [ENTRY, { ...ENTRY, size: -1 }] }, "body.files[1].size");
  assertRejects(MsgType.Hello, "x", "body");
  const source = {
    ...ENTRY,
    hostname: "b",
    address: "10.0.0.2",
    port: 7072,
    id: "a".repeat(52),
    cert: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
  };
  assertRejects(
    MsgType.Sources,
    { fname: "a", sources: [{ ...source, address: 7 }] },
    "body.sources[0].address",
  );
  const row = { ...ENTRY, hostname: "b", port: 7072, online: true };
  assertRejects(
    MsgType.SearchResult,
    { entries: [{ ...row, online: "yes" }], total: 1 },
    "body.entries[0].online",
  );
});

Deno.test("checkBody() rejects missing fields", () => {
  assertRejects(MsgType.Hello, { hostname: "a", protocol: 1 }, "body.p2pPort");
  assertRejects(MsgType.Welcome, { serverId: "s", pingIntervalMs: 1 }, "body.sessionId");
  const { rootHash: _, ...noRoot } = ENTRY;
  assertRejects(MsgType.Publish, noRoot, "body.rootHash");
  assertRejects(MsgType.Info, ENTRY, "body.pieceHashes");
  assertRejects(MsgType.Search, { pattern: "", offset: 0 }, "body.limit");
  assertRejects(MsgType.Busy, { message: "x" }, "body.retryAfterMs");
  assertRejects(MsgType.Queued, {}, "body.position");
});

Deno.test("checkBody() rejects integers out of range", () => {
  for (const n of [-1, 1.5, NaN, Infinity, 2 ** 53, -0.1]) {
    assertRejects(MsgType.Ping, { sentAtMs: n }, "body.sentAtMs");
    assertRejects(MsgType.Data, { offset: n, bytes: 0 }, "body.offset");
  }
  checkBody(MsgType.Ping, { sentAtMs: Number.MAX_SAFE_INTEGER });
  const hello = SAMPLE_BY_NAME.Hello.body;
  checkBody(MsgType.Hello, { ...hello, p2pPort: 65535 });
  assertRejects(MsgType.Hello, { ...hello, p2pPort: 65536 }, "body.p2pPort");
  checkBody(MsgType.Publish, { ...ENTRY, pieceSize: 2 ** 31 });
  assertRejects(MsgType.Publish, { ...ENTRY, pieceSize: 2 ** 31 + 1 }, "body.pieceSize");
  checkBody(MsgType.Search, { pattern: "", offset: 0, limit: MAX_LIST_ITEMS });
  assertRejects(
    MsgType.Search,
    { pattern: "", offset: 0, limit: MAX_LIST_ITEMS + 1 },
    "body.limit",
  );
});

Deno.test("checkBody() rejects a hash that is not 64 lowercase hex digits", () => {
  for (
    const rootHash of [FILE.rootHash.toUpperCase(), FILE.rootHash.slice(2), "", 0, "z".repeat(64)]
  ) {
    assertRejects(MsgType.Publish, { ...ENTRY, rootHash }, "body.rootHash");
    assertRejects(MsgType.GetInfo, { fname: "a", rootHash }, "body.rootHash");
  }
});

Deno.test("checkBody() accepts padded base64 only", () => {
  for (const have of ["", "gA==", "gAA=", "gAAA", "+/+/"]) {
    checkBody(MsgType.Publish, { ...ENTRY, have });
  }
  for (const have of ["gA=", "gA", "g===", "====", "gA==gA==", "g A=", "gA-_", "Zg==\n"]) {
    assertRejects(MsgType.Publish, { ...ENTRY, have }, "body.have");
  }
});

Deno.test("checkBody() limits strings in UTF-8 bytes", () => {
  checkBody(MsgType.Goodbye, { reason: "a".repeat(4096) });
  assertRejects(MsgType.Goodbye, { reason: "a".repeat(4097) }, "body.reason");
  // 2 bytes per character: the UTF-16 length is below the limit, the UTF-8 length is not.
  checkBody(MsgType.Goodbye, { reason: "é".repeat(2048) });
  assertRejects(MsgType.Goodbye, { reason: "é".repeat(2049) }, "body.reason");
  checkBody(MsgType.WhoHas, { fname: "日".repeat(341) }); // 1023 bytes
  assertRejects(MsgType.WhoHas, { fname: "日".repeat(342) }, "body.fname"); // 1026 bytes
});

Deno.test("checkBody() limits GetInfo.from to 300 UTF-8 bytes", () => {
  checkBody(MsgType.GetInfo, { fname: "a", from: "h".repeat(295) + ":7072" });
  assertRejects(MsgType.GetInfo, { fname: "a", from: "h".repeat(296) + ":7072" }, "body.from");
  assertRejects(MsgType.GetInfo, { fname: "a", from: 7072 }, "body.from");
});

Deno.test("checkBody() rejects lists longer than MAX_LIST_ITEMS", () => {
  const files = new Array(MAX_LIST_ITEMS).fill(ENTRY);
  checkBody(MsgType.Shares, { files });
  assertRejects(MsgType.Shares, { files: [...files, ENTRY] }, "body.files");
});

Deno.test("checkBody() samples stay valid after a JSON round trip", () => {
  const body = JSON.parse(JSON.stringify(SAMPLE_BY_NAME.SearchResult.body));
  assert.deepEqual(checkBody(MsgType.SearchResult, body), SAMPLE_BY_NAME.SearchResult.body);
});

Deno.test("checkBody() takes Published with overwrite, conflict and their root hashes", () => {
  const hash = (d: string) => d.repeat(64);
  for (
    const body of [
      { fname: "a", status: "overwrite", rootHash: hash("1"), previousRootHash: hash("2") },
      { fname: "a", status: "conflict", rootHash: hash("1"), conflictRootHash: hash("3") },
      { fname: "a", status: "updated" },
    ]
  ) {
    assert.deepEqual(checkBody(MsgType.Published, body), body);
  }
  assertRejects(
    MsgType.Published,
    { fname: "a", status: "conflict", conflictRootHash: "AB" },
    "body.conflictRootHash",
  );
  assert.deepEqual(checkBody(MsgType.Error, { code: "quota", message: "x" }), {
    code: "quota",
    message: "x",
  });
});
