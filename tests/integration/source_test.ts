// One source connection against scripted fake sources on 127.0.0.1: the stall timeout drops a
// source that goes silent mid-piece, but not one that trickles steadily, nor one whose bytes
// wait for the download rate limit.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { encodeMessage, reply } from "../../shared/encode.ts";
import { FramedConn } from "../../shared/framing.ts";
import { type MessageOf, MsgType, type SourceInfo } from "../../shared/protocol.ts";
import { HASH_BYTES, rootHash } from "../../shared/pieces.ts";
import {
  SourceConnection,
  SourceError,
  type SourceHooks,
  type SourceParams,
} from "../../peer/source.ts";

const SANITIZE = { sanitizeResources: true, sanitizeOps: true } as const;
const PIECE = 64 * 1024;
const SIZE = 2 * PIECE;
const CONTENT = Uint8Array.from({ length: SIZE }, (_, i) => (i * 7) & 0xff);
const HASHES = new Uint8Array(2 * HASH_BYTES);
for (let i = 0; i < 2; i++) {
  HASHES.set(
    createHash("sha256").update(CONTENT.subarray(i * PIECE, (i + 1) * PIECE)).digest(),
    i * HASH_BYTES,
  );
}
const ROOT = rootHash(SIZE, PIECE, HASHES);

/** How a fake source sends one requested range after its Data frame. */
type Sender = (framed: FramedConn, bytes: Uint8Array) => Promise<void>;

/** A source that answers GetInfo, then every GetRange with `send`. */
function startFakeSource(send: Sender): AsyncDisposable & { port: number } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<FramedConn>();
  const served = (async () => {
    for await (const conn of listener) {
      const framed = new FramedConn(conn);
      conns.add(framed);
      void serve(framed, send).catch(() => {}).finally(() => framed.close());
    }
  })().catch(() => {});
  return {
    port: listener.addr.port,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const framed of conns) framed.close();
      await served;
    },
  };
}

async function serve(framed: FramedConn, send: Sender): Promise<void> {
  for (;;) {
    const message = await framed.readMessage();
    if (message === null) return;
    if (message.type === MsgType.GetInfo) {
      await framed.send(reply(MsgType.Info, message.requestId, {
        fname: "f.bin",
        size: SIZE,
        mtimeMs: 0,
        rootHash: ROOT,
        pieceSize: PIECE,
        pieceHashes: HASHES.toBase64(),
      }));
    } else if (message.type === MsgType.GetRange) {
      const { offset, bytes } = (message as MessageOf<MsgType.GetRange>).body;
      await framed.sendBytes(
        encodeMessage(reply(MsgType.Data, message.requestId, { offset, bytes })),
      );
      await send(framed, CONTENT.subarray(offset, offset + bytes));
    }
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function source(port: number): SourceInfo {
  return {
    fname: "f.bin",
    size: SIZE,
    mtimeMs: 0,
    rootHash: ROOT,
    pieceSize: PIECE,
    hostname: "fake",
    address: "127.0.0.1",
    port,
    // These sources speak plaintext: the pin and signature go unused.
    id: "a".repeat(52),
    sig: "(unused)",
  };
}

function params(stallTimeoutMs: number, chunkBytes = PIECE): SourceParams {
  return {
    fname: "f.bin",
    rootHash: ROOT,
    size: SIZE,
    pieceSize: PIECE,
    from: "test:1",
    ttfbTimeoutMs: 2000,
    stallTimeoutMs,
    queueTimeoutMs: 2000,
    plaintext: true,
    chunkBytes,
  };
}

/** Hooks that hand out both pieces once and keep what is delivered. */
function hooks(throttleMs = 0) {
  const delivered = new Map<number, Uint8Array>();
  let next = 0;
  let received = 0;
  const changed = Promise.withResolvers<void>();
  const value: SourceHooks = {
    next: () => (next < 2 ? next++ : undefined),
    wanted: (i) => !delivered.has(i),
    deliver: (i, bytes) => {
      const hash = createHash("sha256").update(bytes).digest();
      if (!hash.equals(HASHES.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES))) {
        return Promise.resolve(false);
      }
      delivered.set(i, bytes.slice());
      if (delivered.size === 2) changed.resolve();
      return Promise.resolve(true);
    },
    release: () => {},
    changed: () => changed.promise,
    finished: () => delivered.size === 2,
    received: (bytes) => {
      received += bytes;
    },
    throttle: () => (throttleMs > 0 ? sleep(throttleMs) : undefined),
    queued: () => {},
  };
  return { value, delivered, received: () => received };
}

async function fetchBoth(port: number, p: SourceParams, h: ReturnType<typeof hooks>) {
  const conn = await SourceConnection.open(source(port), p, h.value, new AbortController().signal);
  try {
    await conn.run(p, h.value);
  } finally {
    conn.close();
  }
}

Deno.test({
  name: "SourceConnection.run() drops a source that goes silent mid-piece after the stall timeout",
  ...SANITIZE,
  async fn() {
    let release = () => {};
    const hang = new Promise<void>((resolve) => release = resolve);
    await using fake = startFakeSource(async (framed, bytes) => {
      await framed.sendBytes(bytes.subarray(0, 1000));
      await hang; // then nothing more
    });
    const h = hooks();
    const started = performance.now();
    try {
      await assert.rejects(fetchBoth(fake.port, params(300), h), (err) => {
        assert.ok(err instanceof SourceError);
        assert.equal(err.kind, "gone");
        assert.match(err.message, /stalled within 300 ms/);
        return true;
      });
    } finally {
      release();
    }
    assert.ok(performance.now() - started >= 290, "not before the timeout");
    assert.equal(h.delivered.size, 0);
  },
});

Deno.test({
  name: "SourceConnection.run() keeps a source that trickles, though a piece takes longer " +
    "than the stall timeout",
  ...SANITIZE,
  async fn() {
    // 16 KiB every 80 ms: each 64 KiB piece takes ~320 ms, the stall timeout is 200 ms.
    await using fake = startFakeSource(async (framed, bytes) => {
      for (let at = 0; at < bytes.length; at += 16 * 1024) {
        await sleep(80);
        await framed.sendBytes(bytes.subarray(at, at + 16 * 1024));
      }
    });
    const h = hooks();
    await fetchBoth(fake.port, params(200), h);
    assert.deepEqual(h.delivered.get(0), CONTENT.subarray(0, PIECE));
    assert.deepEqual(h.delivered.get(1), CONTENT.subarray(PIECE));
    assert.equal(h.received(), SIZE, "every byte accounted as it arrived");
  },
});

Deno.test({
  name: "SourceConnection.run() does not count waiting for the rate limit as a stall",
  ...SANITIZE,
  async fn() {
    await using fake = startFakeSource((framed, bytes) => framed.sendBytes(bytes));
    // Each 16 KiB chunk waits 120 ms for the limit: ~480 ms a piece, stall timeout 200 ms.
    const h = hooks(120);
    await fetchBoth(fake.port, params(200, 16 * 1024), h);
    assert.equal(h.delivered.size, 2);
  },
});

Deno.test({
  name: "SourceConnection.run() rejects a source whose piece does not match its hash",
  ...SANITIZE,
  async fn() {
    await using fake = startFakeSource((framed, bytes) => {
      const corrupt = bytes.slice();
      corrupt[0]! ^= 0xff;
      return framed.sendBytes(corrupt);
    });
    const h = hooks();
    await assert.rejects(fetchBoth(fake.port, params(2000), h), (err) => {
      assert.ok(err instanceof SourceError);
      assert.equal(err.kind, "bad");
      assert.match(err.message, /hash mismatch/);
      return true;
    });
    assert.equal(h.delivered.size, 0);
  },
});

/** Settles with `promise`, or rejects after `ms`: a bound for code that might hang. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) =>
    timer = setTimeout(() => reject(new Error(`${what} did not end within ${ms} ms`)), ms)
  );
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test({
  name: "SourceConnection.run() leaves a source it has nothing to ask for after the stall timeout",
  ...SANITIZE,
  async fn() {
    await using fake = startFakeSource((framed, bytes) => framed.sendBytes(bytes));
    const h = hooks();
    // Every piece is taken elsewhere: this connection only waits, holding the source's slot.
    const idle: SourceHooks = { ...h.value, next: () => undefined };
    const p = params(300);
    const conn = await SourceConnection.open(source(fake.port), p, idle, AbortSignal.timeout(5000));
    try {
      await within(conn.run(p, idle), 3000, "an idle connection");
    } finally {
      conn.close();
    }
  },
});

Deno.test({
  name: "SourceConnection.run() refuses a piece size above the protocol's for the size",
  ...SANITIZE,
  async fn() {
    await using fake = startFakeSource((framed, bytes) => framed.sendBytes(bytes));
    const h = hooks();
    // 100 MiB files have 1 MiB pieces: 64 MiB pieces would make 4 buffers of 64 MiB each.
    const p = { ...params(300), size: 100 * 1024 * 1024, pieceSize: 64 * 1024 * 1024 };
    const conn = await SourceConnection.open(
      source(fake.port),
      p,
      h.value,
      AbortSignal.timeout(5000),
    );
    try {
      await assert.rejects(within(conn.run(p, h.value), 3000, "run"), (err) => {
        assert.ok(err instanceof SourceError, String(err));
        assert.equal(err.kind, "bad");
        assert.match(err.message, /piece size 67108864 exceeds 1048576/);
        return true;
      });
    } finally {
      conn.close();
    }
  },
});

Deno.test({
  name: "SourceConnection.open() ends a queue wait after the queue timeout, whatever the updates",
  ...SANITIZE,
  async fn() {
    // A source that keeps us queued for ever, sending a position update every 50 ms.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const served = (async () => {
      const framed = new FramedConn(await listener.accept());
      try {
        const first = await framed.readMessage();
        for (let i = 0; i < 200 && first !== null; i++) {
          await framed.send(reply(MsgType.Queued, first.requestId, { position: 1 + (i % 2) }));
          await sleep(50); // pacing the updates
        }
      } catch (err) {
        if (
          !(err instanceof Deno.errors.BrokenPipe || err instanceof Deno.errors.ConnectionReset)
        ) {
          throw err;
        }
      } finally {
        framed.close();
      }
    })();
    try {
      const p = { ...params(300), queueTimeoutMs: 300 };
      await assert.rejects(
        within(
          SourceConnection.open(
            source(listener.addr.port),
            p,
            hooks().value,
            AbortSignal.timeout(5000),
          ),
          3000,
          "a queue wait",
        ),
        (err) => {
          assert.ok(err instanceof SourceError, String(err));
          assert.match(err.message, /not admitted from its queue \(position \d\) within 300 ms/);
          return true;
        },
      );
    } finally {
      listener.close();
      await served;
    }
  },
});
