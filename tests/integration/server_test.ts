// The index server over real sockets on 127.0.0.1: handshake, catalogue requests, duplicate
// sessions, liveness, and isolation of connections that send bad bytes.
import assert from "node:assert/strict";
import { encodeHeader, reply, request } from "../../shared/encode.ts";
import {
  type ErrorCode,
  HEADER_SIZE,
  type Message,
  MsgType,
  PROTOCOL_VERSION,
} from "../../shared/protocol.ts";
import type { RunningServer } from "../../server/server.ts";
import {
  answerPings,
  connectRaw,
  fakeHash,
  fileEntry,
  frameBytes,
  pollUntil,
  type RawClient,
  startTestServer,
  within,
} from "./_server.ts";
import { concat } from "../unit/_samples.ts";
import { sharesDigest } from "../../shared/shares_digest.ts";

const SANITIZE = { sanitizeResources: true, sanitizeOps: true } as const;

/** Asserts that `message` is an Error frame with `code`. */
function assertError(message: Message | null | undefined, code: ErrorCode): void {
  assert.ok(message, `expected an Error frame "${code}", got nothing`);
  assert.equal(message.type, MsgType.Error, `expected Error "${code}", got ${message.type}`);
  if (message.type !== MsgType.Error) return;
  assert.equal(message.body.code, code, message.body.message);
  // std style, "Cannot <action>: <detail>"; session.ts words `replaced` otherwise.
  if (code !== "replaced") assert.match(message.body.message, /^Cannot /);
}

/** Asserts the client is still registered and served: it can publish and look up. */
async function assertServed(client: RawClient, fname: string): Promise<void> {
  assert.equal(await client.publish(fileEntry(fname)), "created");
  assert.deepEqual(await client.whoHas(fname), []);
  assert.deepEqual(
    await client.expect(MsgType.Unpublish, { fname }, MsgType.Ok).then((m) => m.body),
    { removed: true },
  );
}

// --- handshake ---------------------------------------------------------------------------------

Deno.test({
  name: "runSession() answers a request before Hello with not-registered and closes",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using client = await connectRaw(server.tcpPort);
    await client.send(request(MsgType.WhoHas, 7, { fname: "a.txt" }));
    const seen = await client.readUntilClosed();
    assert.equal(seen.length, 1);
    assertError(seen[0], "not-registered");
    assert.equal(seen[0]!.requestId, 7);
    assert.equal(server.live.size, 0);
  },
});

Deno.test({
  name: "runSession() rejects Hello of another protocol with bad-version and closes",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using client = await connectRaw(server.tcpPort);
    await client.send(
      request(MsgType.Hello, 1, { ...await client.helloBody("alpha", 4000), protocol: 99 }),
    );
    const seen = await client.readUntilClosed();
    assert.equal(seen.length, 1);
    assertError(seen[0], "bad-version");
    assert.equal(seen[0]!.requestId, 1);
    assert.deepEqual(await server.catalog.sessions(), []);
  },
});

Deno.test({
  name: "runSession() answers Hello with Welcome carrying serverId, sessionId and pingIntervalMs",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer({ pingIntervalMs: 45_000, pingTimeoutMs: 90_000 });
    await using client = await connectRaw(server.tcpPort);
    const welcome = await client.hello("alpha", 4000);
    assert.equal(welcome.reply, true);
    assert.equal(welcome.body.serverId, server.serverId);
    assert.match(welcome.body.serverId, /^[0-9a-f]{32}$/);
    assert.equal(welcome.body.pingIntervalMs, 45_000);
    assert.ok(server.live.has(welcome.body.sessionId));
    const [row] = await server.catalog.sessions("alpha");
    assert.equal(row?.sessionId, welcome.body.sessionId);
    assert.equal(row?.address, "127.0.0.1");
    assert.equal(row?.port, 4000);
  },
});

Deno.test({
  name: "runSession() gives distinct session ids to distinct connections",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using a = await connectRaw(server.tcpPort);
    await using b = await connectRaw(server.tcpPort);
    const wa = await a.hello("alpha", 4000);
    const wb = await b.hello("beta", 4000);
    assert.notEqual(wa.body.sessionId, wb.body.sessionId);
    assert.equal(server.live.size, 2);
  },
});

Deno.test({
  name: "runSession() answers a second Hello with already-registered and keeps the session",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using client = await connectRaw(server.tcpPort);
    const welcome = await client.hello("alpha", 4000);
    const second = await client.request(MsgType.Hello, await client.helloBody("alpha", 4000));
    assertError(second, "already-registered");
    await assertServed(client, "still-here.txt");
    assert.ok(server.live.has(welcome.body.sessionId));
  },
});

Deno.test({
  name: "runSession() refuses an invalid Hello with bad-body and lets the client try again",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using client = await connectRaw(server.tcpPort);
    assertError(
      await client.request(MsgType.Hello, await client.helloBody("", 4000)),
      "bad-body",
    );
    assertError(
      await client.request(MsgType.Hello, await client.helloBody("two words", 4000)),
      "bad-body",
    );
    assertError(
      await client.request(MsgType.Hello, await client.helloBody("alpha", 0)),
      "bad-body",
    );
    for (const hostname of ["lone\ud800surrogate", "evil\u202ecod.exe", "iso\u2066late"]) {
      assertError(
        await client.request(MsgType.Hello, await client.helloBody(hostname, 4000)),
        "bad-body",
      );
    }
    assert.equal(server.live.size, 0);
    await client.hello("alpha", 4000);
    await assertServed(client, "after-retry.txt");
  },
});

// --- publish / unpublish -------------------------------------------------------------------------

Deno.test({
  name: "handle Publish reports created, unchanged, then updated",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using client = await connectRaw(server.tcpPort);
    await client.hello("alpha", 4000);
    const entry = fileEntry("notes.txt");
    const first = await client.expect(MsgType.Publish, entry, MsgType.Published);
    assert.deepEqual(first.body, { fname: "notes.txt", status: "created" });
    assert.equal(await client.publish(entry), "unchanged");
    const overwrite = await client.expect(
      MsgType.Publish,
      { ...entry, size: 2000, rootHash: fakeHash("b") },
      MsgType.Published,
    );
    assert.deepEqual(overwrite.body, {
      fname: "notes.txt",
      status: "overwrite",
      rootHash: fakeHash("b"),
      previousRootHash: fakeHash("a"),
    });
    assert.equal(
      await client.publish({ ...entry, size: 2000, rootHash: fakeHash("b") }),
      "unchanged",
    );
    assert.equal(
      await client.publish({ ...entry, size: 2000, rootHash: fakeHash("b"), have: "gA==" }),
      "updated",
    );
    const page = await server.catalog.search("notes", { offset: 0, limit: 10 });
    assert.equal(page.total, 1);
    assert.equal(page.entries[0]?.size, 2000);
    assert.equal(page.entries[0]?.have, "gA==");
  },
});

Deno.test({
  name: "handle Publish answers an invalid fname with invalid-fname and keeps the session",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using client = await connectRaw(server.tcpPort);
    await client.hello("alpha", 4000);
    const invalid = [
      "../x",
      "a/b",
      "",
      "a\\b",
      "..",
      "a..b",
      ".",
      ".lanshare",
      "tab\there",
      "del\u007f",
      "c1\u0085",
      "lone \ud800 surrogate",
      "é".repeat(128),
    ];
    for (const fname of invalid) {
      assertError(await client.request(MsgType.Publish, fileEntry(fname)), "invalid-fname");
    }
    assertError(await client.request(MsgType.Unpublish, { fname: "../x" }), "invalid-fname");
    assertError(await client.request(MsgType.WhoHas, { fname: "a/b" }), "invalid-fname");
    assert.equal((await server.catalog.counts()).entries, 0);
    await assertServed(client, "fine.txt");
    for (const fname of ["résumé 2026.pdf", "日本語.txt", "é".repeat(127), ".hidden", "a.b.c"]) {
      assert.equal(await client.publish(fileEntry(fname)), "created", fname);
    }
  },
});

Deno.test({
  name: "handle Publish refuses a have bitfield of the wrong length with bad-body",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using client = await connectRaw(server.tcpPort);
    await client.hello("alpha", 4000);
    // 20 pieces of 1 MiB: a 3-byte bitfield, 4 base64 characters.
    const entry = fileEntry("parts.bin", { size: 20 * 2 ** 20 });
    // "AAAA" decodes to 3 bytes too, but "AAA=" (2) and "//8P" (spare bits set) do not fit.
    for (const have of ["", "AAAAAAAA", "AAA=", "//8P"]) {
      assertError(await client.request(MsgType.Publish, { ...entry, have }), "bad-body");
    }
    assert.equal(await client.publish({ ...entry, have: "///w" }), "created");
    // One piece: one byte, "AA==" exactly; "AAAA" decodes to 3 bytes.
    const single = fileEntry("single.bin", { size: 1000 });
    assertError(await client.request(MsgType.Publish, { ...single, have: "AAAA" }), "bad-body");
    assert.equal(await client.publish({ ...single, have: "AA==" }), "created");
    await assertServed(client, "after.txt");
  },
});

Deno.test({
  // Piece size 0 is a shape error (schema: 1..2^31), so it fails decoding: an Error with
  // request id 0 and the connection closes, as for any malformed body (docs/PROTOCOL.md §4.2).
  name: "handle Publish with piece size 0 fails decoding and closes the session",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using client = await connectRaw(server.tcpPort);
    await using other = await connectRaw(server.tcpPort);
    await client.hello("alpha", 4000);
    await other.hello("beta", 4000);
    await client.send(request(MsgType.Publish, 9, fileEntry("x.bin", { pieceSize: 0 })));
    const seen = await client.readUntilClosed();
    assert.equal(seen.length, 1);
    assertError(seen[0]!, "bad-body");
    assert.equal(seen[0]!.requestId, 0);
    await assertServed(other, "after.txt");
  },
});

Deno.test({
  name: "handle Unpublish reports removed true, then false",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using client = await connectRaw(server.tcpPort);
    await using other = await connectRaw(server.tcpPort);
    await client.hello("alpha", 4000);
    await other.hello("beta", 4000);
    await client.publish(fileEntry("gone.txt"));
    assert.equal((await other.whoHas("gone.txt")).length, 1);
    const first = await client.expect(MsgType.Unpublish, { fname: "gone.txt" }, MsgType.Ok);
    assert.deepEqual(first.body, { removed: true });
    const second = await client.expect(MsgType.Unpublish, { fname: "gone.txt" }, MsgType.Ok);
    assert.deepEqual(second.body, { removed: false });
    assert.deepEqual(await other.whoHas("gone.txt"), []);
  },
});

Deno.test({
  name: "handle Unpublish removes only the asker's entry",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using a = await connectRaw(server.tcpPort);
    await using b = await connectRaw(server.tcpPort);
    await using asker = await connectRaw(server.tcpPort);
    await a.hello("alpha", 4000);
    await b.hello("beta", 4000);
    await asker.hello("gamma", 4000);
    await a.publish(fileEntry("shared.txt"));
    await b.publish(fileEntry("shared.txt"));
    const removed = await a.expect(MsgType.Unpublish, { fname: "shared.txt" }, MsgType.Ok);
    assert.deepEqual(removed.body, { removed: true });
    assert.deepEqual((await asker.whoHas("shared.txt")).map((s) => s.hostname), ["beta"]);
  },
});

// --- who-has -----------------------------------------------------------------------------------

Deno.test({
  name:
    "handle WhoHas lists other live peers with address, port, size, rootHash and ID, no certificate",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using owner = await connectRaw(server.tcpPort);
    await using asker = await connectRaw(server.tcpPort);
    await owner.hello("alpha", 4100);
    await asker.hello("beta", 4200);
    const entry = fileEntry("movie.mkv", { size: 123_456_789, rootHash: fakeHash("c") });
    await owner.publish(entry);
    const answer = await asker.expect(MsgType.WhoHas, { fname: "movie.mkv" }, MsgType.Sources);
    assert.equal(answer.body.fname, "movie.mkv");
    assert.deepEqual(answer.body.sources, [
      {
        ...entry,
        hostname: "alpha",
        address: "127.0.0.1",
        port: 4100,
        id: owner.identity.id,
        // No certificate: the fetcher pins the ID (shared/pin_cert.ts); ~500 bytes a source saved.
      },
    ]);
    assert.deepEqual(await asker.whoHas("other.mkv"), []);
  },
});

Deno.test({
  name: "handle WhoHas never lists the asker",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using owner = await connectRaw(server.tcpPort);
    await using other = await connectRaw(server.tcpPort);
    await owner.hello("alpha", 4000);
    await other.hello("beta", 4000);
    await owner.publish(fileEntry("mine.txt"));
    assert.deepEqual(await owner.whoHas("mine.txt"), []);
    assert.equal((await other.whoHas("mine.txt")).length, 1);
  },
});

Deno.test({
  name: "handle WhoHas lists two sources when two peers publish the same fname",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using a = await connectRaw(server.tcpPort);
    await using b = await connectRaw(server.tcpPort);
    await using asker = await connectRaw(server.tcpPort);
    await a.hello("alpha", 4001);
    await b.hello("beta", 4002);
    await asker.hello("gamma", 4003);
    await b.publish(fileEntry("iso.img", { rootHash: fakeHash("d"), have: "gA==" }));
    await a.publish(fileEntry("iso.img", { rootHash: fakeHash("d") }));
    const sources = await asker.whoHas("iso.img");
    assert.deepEqual(
      sources.map((s) => [s.hostname, s.address, s.port, s.have]),
      [["alpha", "127.0.0.1", 4001, undefined], ["beta", "127.0.0.1", 4002, "gA=="]],
    );
    // Same host, two P2P ports: two sessions, two sources.
    await using a2 = await connectRaw(server.tcpPort);
    await a2.hello("alpha", 4009);
    await a2.publish(fileEntry("iso.img", { rootHash: fakeHash("d") }));
    assert.deepEqual(
      (await asker.whoHas("iso.img")).map((s) => `${s.hostname}:${s.port}`),
      ["alpha:4001", "alpha:4009", "beta:4002"],
    );
  },
});

// --- duplicate {hostname, p2pPort} -------------------------------------------------------------

Deno.test({
  name: "runSession() replaces the session of the same hostname and P2P port",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using first = await connectRaw(server.tcpPort);
    await using observer = await connectRaw(server.tcpPort);
    await first.hello("alpha", 4000);
    await observer.hello("beta", 4000);
    await first.publish(fileEntry("old.txt"));
    await first.publish(fileEntry("both.txt", { rootHash: fakeHash("1") }));
    assert.equal((await observer.whoHas("old.txt")).length, 1);

    await using second = await connectRaw(server.tcpPort);
    const welcome = await second.hello("alpha", 4000);

    const seen = await first.readUntilClosed();
    assert.equal(seen.length, 1, JSON.stringify(seen));
    assertError(seen[0], "replaced");
    // The one connection error sent without FLAG_REPLY (docs/PROTOCOL.md §3, §6.2).
    assert.equal(seen[0]!.requestId, 0);
    assert.equal(seen[0]!.reply, false);
    assert.deepEqual(await observer.whoHas("old.txt"), []);
    assert.deepEqual(await observer.whoHas("both.txt"), []);
    assert.ok(server.live.has(welcome.body.sessionId));
    assert.equal(server.live.size, 2);

    await second.publish(fileEntry("both.txt", { rootHash: fakeHash("2") }));
    const sources = await observer.whoHas("both.txt");
    assert.deepEqual(sources.map((s) => [s.hostname, s.port, s.rootHash]), [
      ["alpha", 4000, fakeHash("2")],
    ]);
    const peers = await server.catalog.sessions("alpha");
    assert.deepEqual(peers.map((p) => p.sessionId), [welcome.body.sessionId]);
  },
});

Deno.test({
  name:
    "runSession(): the same device back with the same files before its old session ended keeps its entries; the old connection is replaced",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using first = await connectRaw(server.tcpPort);
    await using observer = await connectRaw(server.tcpPort);
    await first.hello("alpha", 4000);
    await observer.hello("beta", 4000);
    const files = [fileEntry("a.txt"), fileEntry("b.txt", { rootHash: fakeHash("1") })];
    for (const file of files) assert.equal(await first.publish(file), "created");

    // A reconnect the server has not noticed yet (or, on a shared database, a server restarted
    // before the session's lease ran out): the Hello proves the same device and set.
    await using second = await connectRaw(server.tcpPort);
    const welcome = await second.hello("alpha", 4000, { sharesDigest: sharesDigest(files) });
    assert.equal(welcome.body.kept, true, "Welcome says the entries were kept");

    const seen = await first.readUntilClosed();
    assert.equal(seen.length, 1, JSON.stringify(seen));
    assertError(seen[0], "replaced");
    for (const file of files) {
      const sources = await observer.whoHas(file.fname);
      assert.deepEqual(sources.map((s) => [s.hostname, s.port, s.rootHash]), [
        ["alpha", 4000, file.rootHash],
      ]);
    }
    assert.equal(await second.publish(files[0]!), "unchanged", "the entries are the new session's");
    assert.deepEqual(
      (await server.catalog.sessions("alpha")).map((p) => p.sessionId),
      [welcome.body.sessionId],
    );
    assert.equal(server.live.size, 2);
  },
});

// --- liveness ----------------------------------------------------------------------------------

Deno.test({
  name: "runSession() removes a peer's entries as soon as it disconnects",
  ...SANITIZE,
  async fn() {
    // Leases and ping timeouts are a minute long here: only the disconnect can remove them.
    await using server = await startTestServer();
    await using observer = await connectRaw(server.tcpPort);
    await observer.hello("beta", 4000);
    const leaving = await connectRaw(server.tcpPort);
    await leaving.hello("alpha", 4000);
    await leaving.publish(fileEntry("bye.txt"));
    assert.equal((await observer.whoHas("bye.txt")).length, 1);
    await leaving.close();
    await pollUntil(
      async () => (await observer.whoHas("bye.txt")).length === 0 ? true : undefined,
      { timeoutMs: 2000, what: "bye.txt to leave who-has" },
    );
    assert.equal((await server.catalog.counts()).entries, 0);
    assert.deepEqual((await server.catalog.sessions()).map((s) => s.hostname), ["beta"]);
  },
});

Deno.test({
  name: "runSession() removes a peer's entries when it says Goodbye",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using observer = await connectRaw(server.tcpPort);
    await using leaving = await connectRaw(server.tcpPort);
    await observer.hello("beta", 4000);
    await leaving.hello("alpha", 4000);
    await leaving.publish(fileEntry("bye.txt"));
    await leaving.send(request(MsgType.Goodbye, 0, { reason: "test over" }));
    assert.deepEqual(await leaving.readUntilClosed(), []);
    await pollUntil(
      async () => (await observer.whoHas("bye.txt")).length === 0 ? true : undefined,
      { timeoutMs: 2000, what: "bye.txt to leave who-has" },
    );
  },
});

Deno.test({
  name: "startServer() drops a registered peer that stops answering pings",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer({ pingIntervalMs: 50, pingTimeoutMs: 200 });
    await using observer = await connectRaw(server.tcpPort);
    await observer.hello("beta", 4000);
    observer.answer();
    // Registers, publishes, then never reads nor writes again.
    await using silent = await connectRaw(server.tcpPort);
    const welcome = await silent.hello("alpha", 4000);
    assert.equal(welcome.body.pingIntervalMs, 50);
    await silent.publish(fileEntry("stale.txt"));
    assert.equal((await observer.whoHas("stale.txt")).length, 1);
    const t0 = performance.now();
    await pollUntil(
      async () => (await observer.whoHas("stale.txt")).length === 0 ? true : undefined,
      { timeoutMs: 3000, what: "the silent peer to be dropped" },
    );
    const elapsedMs = performance.now() - t0;
    assert.ok(elapsedMs >= 100, `dropped after ${elapsedMs} ms, before the ping timeout`);
    assert.equal(server.live.has(welcome.body.sessionId), false);
    // The server closed it: what it had sent were pings, nothing else.
    const seen = await silent.readUntilClosed();
    assert.ok(seen.length >= 1, "expected at least one ping");
    assert.ok(seen.every((m) => m.type === MsgType.Ping && !m.reply), JSON.stringify(seen));
    // The observer, which answers pings, is still served.
    await assertServed(observer, "observer.txt");
  },
});

Deno.test({
  name: "startServer() keeps a peer that answers pings across several intervals",
  ...SANITIZE,
  async fn() {
    // A timeout of 6 intervals leaves room for a loaded machine; the test outlives it 2.5 times.
    await using server = await startTestServer({ pingIntervalMs: 50, pingTimeoutMs: 300 });
    await using observer = await connectRaw(server.tcpPort);
    await observer.hello("beta", 4000);
    observer.answer();
    await using alive = await connectRaw(server.tcpPort);
    await alive.hello("alpha", 4000);
    await alive.publish(fileEntry("kept.txt"));
    const enoughPings = Promise.withResolvers<void>();
    let pings = 0;
    const sentAt: number[] = [];
    alive.answer((message) => {
      if (message.type === MsgType.Ping) {
        sentAt.push(message.body.sentAtMs);
        if (++pings === 16) enoughPings.resolve();
      }
      return answerPings(message);
    });
    await within(enoughPings.promise, { timeoutMs: 5000, what: "16 pings" });
    const spanMs = sentAt.at(-1)! - sentAt[0]!;
    assert.ok(spanMs >= 700, `pings spanned ${spanMs} ms`);
    assert.deepEqual((await observer.whoHas("kept.txt")).map((s) => s.hostname), ["alpha"]);
    assert.equal(server.live.size, 2);
  },
});

// --- bad input ---------------------------------------------------------------------------------

interface BadInputCase {
  name: string;
  /** Send Hello (and publish one file) before the bad bytes. */
  register: boolean;
  bytes: () => Uint8Array;
  /** Half-close after sending: the server sees the end of the stream. */
  closeWrite?: boolean;
  /** Code of the one Error frame expected before the server closes. */
  code: ErrorCode;
}

const encoder = new TextEncoder();

/** A frame with a valid header and any body bytes (which encodeMessage could not produce). */
function rawFrame(type: MsgType, body: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(HEADER_SIZE + body.length);
  encodeHeader({ type, flags: 0, requestId: 9, bodyBytes: body.length }, bytes);
  bytes.set(body, HEADER_SIZE);
  return bytes;
}

const PING = request(MsgType.Ping, 9, { sentAtMs: 1 });

const BAD_INPUT: BadInputCase[] = [
  {
    name: "garbage bytes (an HTTP request)",
    register: false,
    bytes: () => encoder.encode("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
    code: "bad-magic",
  },
  {
    name: "bad magic",
    register: true,
    bytes: () => frameBytes(PING, (b) => b[0] = 0x4d),
    code: "bad-magic",
  },
  {
    name: "bad header version",
    register: true,
    bytes: () => frameBytes(PING, (b) => b[2] = PROTOCOL_VERSION + 1),
    code: "bad-version",
  },
  {
    name: "unknown message type",
    register: true,
    bytes: () => frameBytes(PING, (b) => b[3] = 0x7f),
    code: "unknown-type",
  },
  {
    name: "unknown flag bit",
    register: false,
    bytes: () => frameBytes(PING, (b) => b[5] = 0x80),
    code: "bad-flags",
  },
  {
    name: "oversize header (bodyBytes 2^31)",
    register: true,
    bytes: () =>
      encodeHeader({ type: MsgType.Publish, flags: 0, requestId: 9, bodyBytes: 2 ** 31 }),
    code: "too-large",
  },
  {
    name: "body one byte over the 16 MiB limit, registered",
    register: true,
    bytes: () =>
      encodeHeader({
        type: MsgType.Hello,
        flags: 0,
        requestId: 9,
        bodyBytes: 16 * 1024 * 1024 + 1,
      }),
    code: "too-large",
  },
  {
    name: "truncated frame, then close",
    register: true,
    bytes: () => frameBytes(request(MsgType.WhoHas, 9, { fname: "x.txt" })).subarray(0, 20),
    closeWrite: true,
    code: "truncated",
  },
  {
    name: "truncated header, then close",
    register: false,
    bytes: () => frameBytes(PING).subarray(0, 5),
    closeWrite: true,
    code: "truncated",
  },
  {
    name: "non-JSON body",
    register: true,
    bytes: () => rawFrame(MsgType.WhoHas, encoder.encode("{fname: x.txt")),
    code: "bad-body",
  },
  {
    name: "body that is not UTF-8",
    register: false,
    bytes: () => rawFrame(MsgType.Hello, new Uint8Array([0x22, 0xff, 0xfe, 0x22])),
    code: "bad-body",
  },
  {
    name: "wrong body shape",
    register: true,
    bytes: () =>
      rawFrame(MsgType.Publish, encoder.encode(JSON.stringify({ ...fileEntry("x"), size: "big" }))),
    code: "bad-body",
  },
  {
    name: "wrong body shape before Hello",
    register: false,
    bytes: () => rawFrame(MsgType.Hello, encoder.encode(JSON.stringify({ hostname: 5 }))),
    code: "bad-body",
  },
  {
    name: "a message only the server sends (Sources)",
    register: true,
    bytes: () => frameBytes(request(MsgType.Sources, 9, { fname: "x", sources: [] })),
    code: "unexpected",
  },
];

Deno.test({
  name: "runSession() closes only the connection that sends bad input",
  ...SANITIZE,
  async fn(t) {
    await using server = await startTestServer();
    await using good = await connectRaw(server.tcpPort);
    await good.hello("good", 4000);
    await assertServed(good, "before.txt");
    let n = 0;
    for (const c of BAD_INPUT) {
      await t.step(c.name, async () => {
        n++;
        await using offender = await connectRaw(server.tcpPort);
        const fname = `offender-${n}.txt`;
        if (c.register) {
          await offender.hello(`offender-${n}`, 5000);
          await offender.publish(fileEntry(fname));
          assert.equal((await good.whoHas(fname)).length, 1);
        }
        await assertServed(good, `during-${n}.txt`);
        await offender.sendBytes(c.bytes());
        if (c.closeWrite) await offender.conn.closeWrite();
        const seen = await offender.readUntilClosed();
        assert.equal(seen.length, 1, JSON.stringify(seen));
        assertError(seen[0], c.code);
        // Decoding failures carry request id 0; a well-formed but unwanted message, its own id.
        assert.equal(seen[0]!.requestId, c.code === "unexpected" ? 9 : 0);
        assert.equal(seen[0]!.reply, true);
        await assertServed(good, `after-${n}.txt`);
        if (c.register) {
          await pollUntil(
            async () => (await good.whoHas(fname)).length === 0 ? true : undefined,
            { timeoutMs: 2000, what: `${fname} to vanish` },
          );
        }
        assert.deepEqual((await server.catalog.sessions()).map((s) => s.hostname), ["good"]);
      });
    }
  },
});

Deno.test({
  name: "runSession() answers a frame split into single bytes like a whole one",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using client = await connectRaw(server.tcpPort);
    const hello = frameBytes(
      request(MsgType.Hello, 3, await client.helloBody("alpha", 4000)),
    );
    for (let i = 0; i < hello.length; i++) await client.sendBytes(hello.subarray(i, i + 1));
    const welcome = await client.readMessage();
    assert.equal(welcome?.type, MsgType.Welcome);
    assert.equal(welcome?.requestId, 3);
  },
});

Deno.test({
  name: "runSession() ignores a reply to no request and keeps serving",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using client = await connectRaw(server.tcpPort);
    await client.hello("alpha", 4000);
    await client.send(reply(MsgType.Pong, 12345, { sentAtMs: 0 }));
    await assertServed(client, "still.txt");
  },
});

// --- search ------------------------------------------------------------------------------------

Deno.test({
  name: "handle Search matches substrings case-insensitively, globs, and pages with a total",
  ...SANITIZE,
  async fn(t) {
    await using server = await startTestServer();
    await using a = await connectRaw(server.tcpPort);
    await using b = await connectRaw(server.tcpPort);
    await a.hello("alpha", 4001);
    await b.hello("beta", 4002);
    const names = [
      "Report-1.pdf",
      "report-2.pdf",
      "report-10.pdf",
      "notes.txt",
      "notes.txt.bak",
      "50%_off.txt",
      "50x off.txt",
      "a_b.txt",
      "axb.txt",
    ];
    for (const fname of names) await a.publish(fileEntry(fname));
    await b.publish(fileEntry("report-2.pdf"));

    const search = async (pattern: string, offset = 0, limit = 100) =>
      (await a.expect(MsgType.Search, { pattern, offset, limit }, MsgType.SearchResult)).body;
    const fnames = async (pattern: string) =>
      (await search(pattern)).entries.map((e) => `${e.fname}@${e.hostname}`);

    await t.step("substring, any case", async () => {
      assert.deepEqual(await fnames("REPORT"), [
        "Report-1.pdf@alpha",
        "report-10.pdf@alpha",
        "report-2.pdf@alpha",
        "report-2.pdf@beta",
      ]);
      assert.deepEqual(await fnames("txt.b"), ["notes.txt.bak@alpha"]);
      assert.deepEqual(await fnames("nothing-like-this"), []);
    });
    await t.step("% and _ are literal in a substring", async () => {
      assert.deepEqual(await fnames("50%"), ["50%_off.txt@alpha"]);
      assert.deepEqual(await fnames("a_b"), ["a_b.txt@alpha"]);
    });
    await t.step("glob is anchored; * and ? are wildcards", async () => {
      assert.deepEqual(await fnames("*.txt"), [
        "50%_off.txt@alpha",
        "50x off.txt@alpha",
        "a_b.txt@alpha",
        "axb.txt@alpha",
        "notes.txt@alpha",
      ]);
      assert.deepEqual(await fnames("report-?.pdf"), [
        "Report-1.pdf@alpha",
        "report-2.pdf@alpha",
        "report-2.pdf@beta",
      ]);
      assert.deepEqual(await fnames("notes*"), ["notes.txt@alpha", "notes.txt.bak@alpha"]);
      assert.deepEqual(await fnames("a_?.txt"), ["a_b.txt@alpha"]);
    });
    await t.step("entries carry the owner's port and online flag", async () => {
      const { entries } = await search("report-2");
      assert.deepEqual(entries.map((e) => [e.hostname, e.port, e.online]), [
        ["alpha", 4001, true],
        ["beta", 4002, true],
      ]);
      assert.equal(entries[0]?.rootHash, fakeHash("a"));
    });
    await t.step("pages add up to the total", async () => {
      const all = await search("", 0, 100);
      assert.equal(all.total, names.length + 1);
      const paged: string[] = [];
      for (let offset = 0; offset < all.total; offset += 3) {
        const page = await search("", offset, 3);
        assert.equal(page.total, all.total);
        assert.ok(page.entries.length <= 3);
        paged.push(...page.entries.map((e) => `${e.fname}@${e.hostname}`));
      }
      assert.deepEqual(paged, all.entries.map((e) => `${e.fname}@${e.hostname}`));
      const beyond = await search("", 100, 3);
      assert.deepEqual(beyond, { entries: [], total: all.total });
      const none = await search("", 0, 0);
      assert.deepEqual(none, { entries: [], total: all.total });
    });
    await t.step("a departed peer's entries leave the results", async () => {
      await b.close();
      await pollUntil(
        async () => (await search("report-2")).total === 1 ? true : undefined,
        { timeoutMs: 2000, what: "beta's entry to leave search" },
      );
    });
  },
});

Deno.test({
  name: "handle Search returns at most 1000 entries per page",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using client = await connectRaw(server.tcpPort);
    await client.hello("alpha", 4000);
    for (let i = 0; i < 1005; i++) {
      await client.publish(fileEntry(`f${String(i).padStart(4, "0")}`));
    }
    const page = await client.expect(
      MsgType.Search,
      { pattern: "f", offset: 0, limit: 10_000 },
      MsgType.SearchResult,
    );
    // The page stops at 1000 entries; the embedded store counts every match.
    assert.equal(page.body.total, 1005);
    assert.equal(page.body.capped, undefined);
    assert.equal(page.body.entries.length, 1000);
    assert.equal(page.body.entries.at(-1)?.fname, "f0999");
    const rare = await client.expect(
      MsgType.Search,
      { pattern: "F100", offset: 0, limit: 10 },
      MsgType.SearchResult,
    );
    assert.deepEqual(rare.body.entries.map((e) => e.fname), [
      "f1000",
      "f1001",
      "f1002",
      "f1003",
      "f1004",
    ]);
    assert.equal(rare.body.total, 5);
    assert.equal(rare.body.capped, undefined);
  },
});

// --- shutdown ----------------------------------------------------------------------------------

Deno.test({
  name: "RunningServer.close() says Goodbye to every session and closes it",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using a = await connectRaw(server.tcpPort);
    await using b = await connectRaw(server.tcpPort);
    await a.hello("alpha", 4000);
    await b.hello("beta", 4000);
    await within(server.close(), { timeoutMs: 2000, what: "server.close()" });
    for (const client of [a, b]) {
      const seen = await client.readUntilClosed();
      assert.deepEqual(seen.map((m) => [m.type, m.requestId, m.reply]), [
        [MsgType.Goodbye, 0, false],
      ]);
    }
    await assert.rejects(connectRaw(server.tcpPort), Deno.errors.ConnectionRefused);
  },
});

// --- known bugs (ignored so the suite stays green; see each comment) ----------------------------

/**
 * Makes `client` (registered as `sessionId`) stop reading while the server has megabytes to send
 * it, and waits until a frame the server sends it no longer completes: its socket buffers are
 * full, as with a frozen or hostile peer.
 */
async function stopReadingUnderLoad(
  server: RunningServer,
  client: RawClient,
  sessionId: string,
): Promise<void> {
  // 1000 entries with long names: every Search reply is about 400 KB; 100 of them (40 MB) dwarf
  // the socket buffers on both sides.
  for (let i = 0; i < 1000; i++) await client.publish(fileEntry(`${"x".repeat(240)}${i}`));
  for (let i = 0; i < 100; i++) {
    await client.send(request(MsgType.Search, 1000 + i, { pattern: "x", offset: 0, limit: 1000 }));
  }
  const session = server.live.get(sessionId);
  assert.ok(session, "the flooding session is live");
  await pollUntil(async () => {
    const sent = session.rpc.framed.send(reply(MsgType.Pong, 0, { sentAtMs: 0 }));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stuck = new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(true), 200));
    const done = sent.then(() => false, () => false);
    const blocked = await Promise.race([stuck, done]);
    clearTimeout(timer);
    return blocked ? true : undefined;
  }, { timeoutMs: 10_000, what: "the server's writes to the peer to block" });
}

Deno.test({
  // BUG(server/server.ts close()): only sessions in `live` are closed; a connection that never
  // sent Hello keeps `await Promise.allSettled([...running])` waiting until the client leaves.
  name: "RunningServer.close() closes connections that never sent Hello",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using idle = await connectRaw(server.tcpPort);
    await within(server.close(), {
      timeoutMs: 2000,
      what: "server.close() with an unregistered connection open",
    });
    assert.deepEqual(await idle.readUntilClosed(), []);
  },
});

Deno.test({
  // BUG(server/server.ts close()): `await session.rpc.notify(Goodbye)` waits for the write to a
  // peer whose buffers are full; shutdown hangs until that peer reads or disconnects.
  name: "RunningServer.close() does not wait on a peer that stopped reading",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using stuck = await connectRaw(server.tcpPort);
    const welcome = await stuck.hello("alpha", 4000);
    await stopReadingUnderLoad(server, stuck, welcome.body.sessionId);
    await within(server.close(), {
      timeoutMs: 2000,
      what: "server.close() with a peer that does not read",
    });
  },
});

Deno.test({
  // BUG(server/session.ts Hello handler): the new Hello awaits the `replaced` Error write to the
  // old connection after removing the old session from `live`, so no ping timeout ever closes
  // it: a peer that reconnects while its old connection is stuck never gets Welcome.
  name: "runSession() replaces a session whose peer stopped reading",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer({ pingIntervalMs: 1000, pingTimeoutMs: 3000 });
    await using stuck = await connectRaw(server.tcpPort);
    const old = await stuck.hello("alpha", 4000);
    await stopReadingUnderLoad(server, stuck, old.body.sessionId);
    await using fresh = await connectRaw(server.tcpPort);
    const welcome = await within(fresh.hello("alpha", 4000), {
      timeoutMs: 2000,
      what: "Welcome to the new session",
    });
    assert.ok(server.live.has(welcome.body.sessionId));
    assert.equal(server.live.has(old.body.sessionId), false);
    await assertServed(fresh, "fresh.txt");
  },
});

Deno.test({
  // BUG(shared/rpc.ts RpcConn.request()): the reply promise gets its timeout timer before
  // `await this.framed.send(...)`; when the send outlasts the timeout (a peer that stopped
  // reading) or the connection is closed meanwhile, that promise rejects with no handler
  // attached: an unhandled rejection, which ends a Deno process (the whole index server).
  name: "startServer() pings a peer that stopped reading without an unhandled rejection",
  ...SANITIZE,
  async fn() {
    const unhandled: unknown[] = [];
    const onUnhandled = (event: PromiseRejectionEvent) => {
      event.preventDefault();
      unhandled.push(event.reason);
    };
    globalThis.addEventListener("unhandledrejection", onUnhandled);
    try {
      await using server = await startTestServer({ pingIntervalMs: 50, pingTimeoutMs: 200 });
      await using stuck = await connectRaw(server.tcpPort);
      const welcome = await stuck.hello("alpha", 4000);
      await stopReadingUnderLoad(server, stuck, welcome.body.sessionId);
      await pollUntil(
        () => Promise.resolve(server.live.has(welcome.body.sessionId) ? undefined : true),
        { timeoutMs: 3000, what: "the stuck peer to be dropped" },
      );
      // Let the rejected promises reach the unhandled-rejection check.
      await new Promise((resolve) => setTimeout(resolve, 0));
      assert.deepEqual(unhandled.map(String), []);
    } finally {
      globalThis.removeEventListener("unhandledrejection", onUnhandled);
    }
  },
});

Deno.test({
  // BUG(server/catalog.ts register()): the hostname check /[\s\u0000-\u001f]/ lets DEL (U+007F)
  // and the C1 controls (U+0080–U+009F) through; docs/PROTOCOL.md §6.1 forbids control
  // characters.
  name: "handle Hello refuses a hostname with DEL or a C1 control character",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using client = await connectRaw(server.tcpPort);
    for (const hostname of ["del\u007f", "c1\u0085"]) {
      assertError(
        await client.request(MsgType.Hello, await client.helloBody(hostname, 4000)),
        "bad-body",
      );
    }
    assert.equal(server.live.size, 0);
  },
});

Deno.test({
  name: "runSession() applies requests pipelined in one write in order, Hello first",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using asker = await connectRaw(server.tcpPort);
    await asker.hello("bravo", 4001);
    await using pipelined = await connectRaw(server.tcpPort);
    const steps: Message[] = [
      request(MsgType.Hello, 1, await pipelined.helloBody("alpha", 4000)),
      request(MsgType.Publish, 2, fileEntry("x.bin")),
      request(MsgType.Unpublish, 3, { fname: "x.bin" }),
      request(MsgType.Publish, 4, fileEntry("y.bin")),
      request(MsgType.Publish, 5, fileEntry("y.bin", { size: 99 })),
      request(MsgType.WhoHas, 6, { fname: "y.bin" }),
    ];
    await pipelined.sendBytes(concat(steps.map((step) => frameBytes(step))));
    const replies = new Map<number, Message>();
    while (replies.size < steps.length) {
      const message = await pipelined.readMessage();
      assert.ok(message, "connection closed early");
      replies.set(message.requestId, message);
    }
    assert.equal(replies.get(1)?.type, MsgType.Welcome);
    assert.deepEqual(replies.get(2)?.body, { fname: "x.bin", status: "created" });
    assert.deepEqual(replies.get(3)?.body, { removed: true });
    assert.deepEqual(replies.get(4)?.body, { fname: "y.bin", status: "created" });
    assert.deepEqual(replies.get(5)?.body, { fname: "y.bin", status: "updated" });
    assert.deepEqual(replies.get(6)?.body, { fname: "y.bin", sources: [] }, "never the asker");
    assert.deepEqual(await asker.whoHas("x.bin"), []);
    assert.deepEqual((await asker.whoHas("y.bin")).map((s) => [s.hostname, s.size]), [
      ["alpha", 99],
    ]);
  },
});

Deno.test({
  name: "runSession() leaves no session behind when Hello, Publish and bad bytes come in one write",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    const attacks = 200;
    for (let i = 0; i < attacks; i++) {
      await using attacker = await connectRaw(server.tcpPort);
      await attacker.sendBytes(concat([
        frameBytes(
          request(MsgType.Hello, 1, await attacker.helloBody(`ghost-${i}`, 4000)),
        ),
        frameBytes(request(MsgType.Publish, 2, fileEntry("bait.bin", { rootHash: fakeHash("f") }))),
        encoder.encode("not a frame at all"),
      ]));
      const seen = await attacker.readUntilClosed();
      assertError(seen.at(-1), "bad-magic");
    }
    // A registration's reply follows every write committed before it: once this client is
    // welcomed and has published, any registration of the attackers has landed too.
    await using probe = await connectRaw(server.tcpPort);
    await probe.hello("probe", 4000);
    await probe.publish(fileEntry("after.txt"));
    assert.deepEqual(await probe.whoHas("bait.bin"), []);
    assert.deepEqual([...server.live.values()].map((s) => s.row.hostname), ["probe"]);
    assert.deepEqual((await server.catalog.sessions()).map((s) => s.hostname), ["probe"]);
    assert.deepEqual(await server.catalog.counts(), { sessions: 1, entries: 1 });
  },
});
