// The source pool of one fetch against scripted fake sources on 127.0.0.1: it holds a local
// download slot only while a source admits it, never while it waits in the source's queue, and
// gives every slot back when its connections end.
import assert from "node:assert/strict";
import { reply } from "../../shared/encode.ts";
import { FramedConn } from "../../shared/framing.ts";
import { MsgType, type SourceInfo } from "../../shared/protocol.ts";
import type { FetchInfo } from "../../peer/activity.ts";
import { Slots } from "../../peer/slots.ts";
import type { SourceConnection } from "../../peer/source.ts";
import { MAX_RETRY_AFTER_MS, SourcePool } from "../../peer/source_pool.ts";
import { waitUntil } from "./_server.ts";

const SANITIZE = { sanitizeResources: true, sanitizeOps: true } as const;
const ROOT = "ab".repeat(32);

/** A source that queues every GetInfo at position 1 until `admit()`, then answers Info. */
function startQueueingSource() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const admitted = Promise.withResolvers<void>();
  const conns = new Set<FramedConn>();
  const queued = Promise.withResolvers<void>();
  const closed = Promise.withResolvers<void>();
  const served = (async () => {
    for await (const conn of listener) {
      const framed = new FramedConn(conn);
      conns.add(framed);
      void (async () => {
        const first = await framed.readMessage();
        if (first === null) return;
        await framed.send(reply(MsgType.Queued, first.requestId, { position: 1 }));
        queued.resolve();
        await admitted.promise;
        await framed.send(reply(MsgType.Info, first.requestId, {
          fname: "f.bin",
          size: 1,
          mtimeMs: 0,
          rootHash: ROOT,
          pieceSize: 1 << 20,
          pieceHashes: "",
        }));
        while (await framed.readMessage() !== null) { /* until the fetcher leaves */ }
        closed.resolve();
      })().catch((err) => closed.reject(err)).finally(() => framed.close());
    }
  })().catch(() => {});
  return {
    port: listener.addr.port,
    queued: queued.promise,
    closed: closed.promise,
    admit: () => admitted.resolve(),
    async [Symbol.asyncDispose]() {
      admitted.resolve();
      listener.close();
      for (const framed of conns) framed.close();
      await served;
    },
  };
}

function sourceAt(port: number): SourceInfo {
  return {
    fname: "f.bin",
    size: 1,
    mtimeMs: 0,
    rootHash: ROOT,
    pieceSize: 1 << 20,
    hostname: "fake",
    address: "127.0.0.1",
    port,
    // The pool's sources speak plaintext: the pin and signature go unused.
    id: "a".repeat(52),
    sig: "(unused)",
  };
}

function newInfo(): FetchInfo {
  return {
    fname: "f.bin",
    rootHash: ROOT,
    size: 1,
    doneBytes: 0,
    bySource: {},
    activeSources: 0,
    queuedSources: 0,
    queuedAt: {},
    startedAtMs: 0,
    lastByteAtMs: 0,
  };
}

function newPool(slots: Slots, run: (conn: SourceConnection) => Promise<void>) {
  const abort = new AbortController();
  const ended = Promise.withResolvers<void>();
  const pool = new SourcePool({
    slots,
    signal: abort.signal,
    maxSources: 4,
    open: {
      fname: "f.bin",
      rootHash: ROOT,
      from: "me:1",
      ttfbTimeoutMs: 2000,
      queueTimeoutMs: 5000,
      plaintext: true,
    },
    info: newInfo(),
    run,
    ended: () => ended.resolve(),
  });
  return { pool, ended: ended.promise, abort };
}

Deno.test({
  name: "SourcePool holds no local slot while queued at a source, and one once admitted",
  ...SANITIZE,
  async fn() {
    await using fake = startQueueingSource();
    const slots = new Slots({ max: 2, maxPerPeer: 2, maxQueue: 0 });
    const running = Promise.withResolvers<void>();
    const finish = Promise.withResolvers<void>();
    const { pool, ended } = newPool(slots, async () => {
      running.resolve();
      await finish.promise;
    });
    pool.launch([sourceAt(fake.port)]);
    await fake.queued;
    // The Queued frame may still be on its way when the fake says it sent it.
    await waitUntil(() => slots.active === 0, {
      timeoutMs: 2000,
      what: "the local slot is given back",
      everyMs: 10,
    });
    assert.equal(slots.active, 0, "no local slot while waiting in the source's queue");
    fake.admit();
    await running.promise;
    assert.equal(slots.active, 1, "a local slot while transferring");
    finish.resolve();
    await ended;
    await fake.closed;
    assert.equal(slots.active, 0, "the slot is released when the connection ends");
    assert.equal(pool.working, 0);
  },
});

Deno.test({
  name:
    "SourcePool leaves a source that admits it when no local slot is free (busy, retried later)",
  ...SANITIZE,
  async fn() {
    await using fake = startQueueingSource();
    const slots = new Slots({ max: 1, maxPerPeer: 1, maxQueue: 0 });
    let ran = false;
    const { pool, ended } = newPool(slots, () => {
      ran = true;
      return Promise.resolve();
    });
    pool.launch([sourceAt(fake.port)]);
    await fake.queued;
    await waitUntil(() => slots.active === 0, {
      timeoutMs: 2000,
      what: "the local slot is given back",
      everyMs: 10,
    });
    const other = slots.tryAcquireDownload("elsewhere:1");
    assert.ok(other, "the freed slot went to another download");
    fake.admit();
    await ended;
    await fake.closed;
    assert.equal(ran, false);
    assert.match(pool.lastError, /admitted from its queue, but no local transfer slot is free/);
    other.release();
    assert.equal(slots.active, 0);
  },
});

/** A source that answers every GetInfo with Busy(retryAfterMs) and counts the connections. */
function startBusySource(retryAfterMs: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let connections = 0;
  const answering = new Set<Promise<void>>();
  const served = (async () => {
    for await (const conn of listener) {
      connections++;
      const framed = new FramedConn(conn);
      const answer = (async () => {
        const first = await framed.readMessage();
        if (first === null) return;
        await framed.send(reply(MsgType.Busy, first.requestId, {
          retryAfterMs,
          message: "Cannot serve now: all 1 transfer slots are busy",
        }));
      })().catch(() => {}).finally(() => {
        framed.close();
        answering.delete(answer);
      });
      answering.add(answer);
    }
  })().catch(() => {});
  return {
    port: listener.addr.port,
    get connections() {
      return connections;
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      await Promise.all([served, ...answering]);
    },
  };
}

Deno.test({
  name: "SourcePool does not ask a busy source again before the retryAfterMs it gave",
  ...SANITIZE,
  async fn() {
    await using fake = startBusySource(1500);
    const slots = new Slots({ max: 2, maxPerPeer: 2, maxQueue: 0 });
    const { pool, abort } = newPool(slots, () => Promise.resolve());
    const source = sourceAt(fake.port);
    pool.launch([source]);
    await waitUntil(() => pool.working === 0 && /busy/.test(pool.lastError), {
      timeoutMs: 2000,
      what: "the Busy answer",
      everyMs: 10,
    });
    assert.equal(fake.connections, 1);
    const wait = pool.retryInMs();
    assert.ok(wait > 1000 && wait <= 1500, `retryInMs ${wait} follows the source's 1500 ms`);
    // Asked again at once (a fetch's next round): the source is left alone.
    pool.launch([source]);
    assert.equal(pool.working, 0, "no connection to a source that asked for time");
    await pool.describe([source], () => Promise.resolve(undefined));
    assert.equal(fake.connections, 1);
    // Once its time has passed it is asked again.
    await new Promise((resolve) => setTimeout(resolve, pool.retryInMs() + 20));
    assert.equal(pool.retryInMs(), 0);
    pool.launch([source]);
    await waitUntil(() => fake.connections === 2 && pool.working === 0, {
      timeoutMs: 2000,
      what: "the second connection",
      everyMs: 10,
    });
    abort.abort();
    await pool.drain();
    assert.equal(slots.active, 0);
  },
});

Deno.test({
  name: "SourcePool caps the wait a Busy answer asks for at MAX_RETRY_AFTER_MS",
  ...SANITIZE,
  async fn() {
    await using fake = startBusySource(0xffff_ffff);
    const slots = new Slots({ max: 2, maxPerPeer: 2, maxQueue: 0 });
    const { pool, abort } = newPool(slots, () => Promise.resolve());
    pool.launch([sourceAt(fake.port)]);
    await waitUntil(() => pool.working === 0 && /busy/.test(pool.lastError), {
      timeoutMs: 2000,
      what: "the Busy answer",
      everyMs: 10,
    });
    const wait = pool.retryInMs();
    assert.ok(wait > 0 && wait <= MAX_RETRY_AFTER_MS, `retryInMs ${wait}`);
    abort.abort();
    await pool.drain();
  },
});
