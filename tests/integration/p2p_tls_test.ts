// The P2P port over TLS, between a real fetcher connection and a real P2P server, through
// relays on loopback: one that terminates TLS with its own identity (refused, both IDs named),
// and one that only records the bytes it passes (which hold no plaintext of the file).
import assert from "node:assert/strict";
import { join } from "node:path";
import { request } from "../../shared/encode.ts";
import { FramedConn } from "../../shared/framing.ts";
import { createIdentity, type Identity, shortId } from "../../shared/identity.ts";
import { MsgType, type SourceInfo } from "../../shared/protocol.ts";
import { connectTo } from "../../shared/transport.ts";
import { SourceConnection, SourceError } from "../../peer/source.ts";
import { startRelay } from "../_relay.ts";
import { type P2pFixture, startP2pFixture } from "./_p2p.ts";

const SANITIZE = { sanitizeResources: true, sanitizeOps: true } as const;
const SIZE = 256 * 1024;

/** A fixture sharing `f.bin`: SIZE pseudo-random bytes, returned. */
async function shareFile(fixture: P2pFixture): Promise<Uint8Array> {
  const content = new Uint8Array(SIZE);
  let x = 0x9e3779b9;
  for (let i = 0; i < SIZE; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    content[i] = x & 0xff;
  }
  await Deno.writeFile(join(fixture.dir, "repo", "f.bin"), content);
  await fixture.publish("f.bin", "f.bin");
  return content;
}

/** Fetches the whole of `f.bin` through `port`: GetInfo, then one GetRange. */
async function fetchWhole(
  port: number,
  pin: { id: string; certPem: string } | undefined,
): Promise<Uint8Array> {
  const conn = await connectTo({
    hostname: "127.0.0.1",
    port,
    pin,
    plaintext: pin === undefined,
    what: "source",
  });
  const framed = new FramedConn(conn);
  try {
    await framed.send(request(MsgType.GetInfo, 1, { fname: "f.bin" }));
    const info = await framed.readMessage();
    if (info?.type !== MsgType.Info) throw new Error(`Expected Info, got ${JSON.stringify(info)}`);
    await framed.send(request(MsgType.GetRange, 2, {
      fname: "f.bin",
      rootHash: info.body.rootHash,
      offset: 0,
      bytes: SIZE,
    }));
    const data = await framed.readMessage();
    if (data?.type !== MsgType.Data) throw new Error(`Expected Data, got ${JSON.stringify(data)}`);
    const bytes = new Uint8Array(data.body.bytes);
    await framed.readRawInto(bytes);
    return bytes;
  } finally {
    framed.close();
  }
}

/** How many of 64 slices of 32 bytes, spread over `content`, appear in `capture`. */
function slicesFound(content: Uint8Array, capture: Uint8Array): number {
  const text = new TextDecoder("latin1").decode(capture);
  let found = 0;
  for (let i = 0; i < 64; i++) {
    const offset = Math.floor(i * (content.length - 32) / 63);
    if (text.includes(new TextDecoder("latin1").decode(content.subarray(offset, offset + 32)))) {
      found++;
    }
  }
  return found;
}

function sourceAt(port: number, device: Identity): SourceInfo {
  return {
    fname: "f.bin",
    size: SIZE,
    mtimeMs: 0,
    rootHash: "0".repeat(64),
    pieceSize: 1 << 20,
    hostname: "source",
    address: "127.0.0.1",
    port,
    id: device.id,
    // The transport is under test, not the publish signature.
    sig: "(unused)",
  };
}

/** What SourceConnection.open() needs besides the source, over TLS. */
const OPEN_PARAMS = {
  fname: "f.bin",
  from: "fetcher:1",
  ttfbTimeoutMs: 5000,
  queueTimeoutMs: 5000,
  plaintext: false,
} as const;

Deno.test({
  name: "a fetcher given only the source's ID (as Sources lists it) reaches it over TLS",
  ...SANITIZE,
  async fn() {
    const device = await createIdentity();
    await using fixture = await startP2pFixture({ identity: device });
    await shareFile(fixture);
    // sourceAt() carries no certificate: the pin is built from the ID (shared/pin_cert.ts).
    const connection = await SourceConnection.open(
      sourceAt(fixture.port, device),
      OPEN_PARAMS,
      { queued: () => {} },
      new AbortController().signal,
    );
    try {
      assert.equal(connection.info?.size, SIZE);
    } finally {
      connection.close();
    }
  },
});

Deno.test({
  name: "a TLS-terminating proxy between fetcher and source is refused, naming both IDs",
  ...SANITIZE,
  async fn() {
    const device = await createIdentity();
    await using fixture = await startP2pFixture({ identity: device });
    await shareFile(fixture);
    const mallory = await createIdentity();
    await using proxy = startRelay(
      { port: fixture.port, pin: { id: device.id, certPem: device.certPem } },
      { identity: mallory },
    );
    // The index said the source is `device`; the connection lands on Mallory's proxy.
    const opening = SourceConnection.open(
      sourceAt(proxy.port, device),
      OPEN_PARAMS,
      { queued: () => {} },
      new AbortController().signal,
    );
    const err = await opening.then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof SourceError, String(err));
    assert.match(
      err.message,
      new RegExp(
        `presents device ${shortId(mallory.id)} .*instead of the pinned ${shortId(device.id)}`,
      ),
    );
    assert.ok(proxy.accepted > 0, "the fetcher reached the proxy");
  },
});

Deno.test({
  name: "a recording relay between fetcher and source captures no plaintext of the file",
  ...SANITIZE,
  async fn() {
    const device = await createIdentity();
    await using fixture = await startP2pFixture({ identity: device });
    const content = await shareFile(fixture);
    await using tap = startRelay({ port: fixture.port });
    const received = await fetchWhole(tap.port, { id: device.id, certPem: device.certPem });
    assert.deepEqual(received, content, "the transfer went through the tap");
    const capture = tap.captured();
    assert.ok(capture.length >= SIZE, `captured ${capture.length} bytes`);
    assert.equal(slicesFound(content, capture), 0, "the capture holds plaintext of the file");
  },
});

Deno.test({
  name:
    "the same recording relay sees the file in clear with --insecure-plaintext (the check works)",
  ...SANITIZE,
  async fn() {
    await using fixture = await startP2pFixture();
    const content = await shareFile(fixture);
    await using tap = startRelay({ port: fixture.port });
    assert.deepEqual(await fetchWhole(tap.port, undefined), content);
    assert.equal(slicesFound(content, tap.captured()), 64);
  },
});
