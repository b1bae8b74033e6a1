// The P2P server's transfer slots under a slot-starvation attack, on a real listener: fetchers
// that claim many identities from one address and never read what they asked for. Attackers
// come from 127.0.0.1, the honest fetcher from ::1, so the two are different remote addresses.
import assert from "node:assert/strict";
import { join } from "node:path";
import { request } from "../../shared/encode.ts";
import { FramedConn } from "../../shared/framing.ts";
import { type Message, MsgType } from "../../shared/protocol.ts";
import { Activity } from "../../peer/activity.ts";
import { startP2pServer } from "../../peer/p2p_server.ts";
import { TokenBucket } from "../../peer/rate.ts";
import { Repository } from "../../peer/repo.ts";
import { Shares } from "../../peer/shares.ts";
import { Slots } from "../../peer/slots.ts";
import { waitUntil } from "./_server.ts";

const MIB = 1024 * 1024;
/** Large enough that the socket buffers cannot take a whole range. */
const SIZE = 64 * MIB;
const STALL_MS = 1000;

/** A real P2P server sharing one SIZE-byte file, on port 0 of every address. */
async function startSharingServer(slots: Slots, idleTimeoutMs = 30_000) {
  const dir = await Deno.makeTempDir({ prefix: "lanshare-slots-" });
  const repo = await Repository.open(dir);
  const path = join(repo.root, "big.bin");
  await Deno.writeFile(path, new Uint8Array(0));
  await Deno.truncate(path, SIZE);
  const shares = await Shares.load(repo);
  const hashes = await shares.hashesOf(await repo.resolveFile("big.bin"));
  await shares.set({ fname: "big.bin", path, hashes });
  const server = startP2pServer({ hostname: "::", port: 0 }, {
    repo,
    shares,
    slots,
    upload: new TokenBucket(0),
    activity: new Activity(),
    caps: { maxTotal: 256, maxPerAddress: 64 },
    idleTimeoutMs,
    stallTimeoutMs: STALL_MS,
    retryAfterMs: 1000,
    debugCorrupt: false,
    // Plain TCP: these tests write raw frames (TLS is tested end to end, tests/e2e).
  }, { plaintext: true });
  return {
    port: server.port,
    rootHash: hashes.rootHash,
    async [Symbol.asyncDispose]() {
      await server.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Connects, sends GetInfo claiming `from`, returns the framed connection. */
async function ask(hostname: string, port: number, from: string): Promise<FramedConn> {
  const framed = new FramedConn(await Deno.connect({ hostname, port }));
  await framed.send(request(MsgType.GetInfo, 1, { fname: "big.bin", from }));
  return framed;
}

/** Reads the next message, failing after `ms`. */
async function nextWithin(framed: FramedConn, ms: number): Promise<Message | null> {
  const timer = setTimeout(() => framed.close(), ms);
  try {
    return await framed.readMessage();
  } finally {
    clearTimeout(timer);
  }
}

/** Waits for admission (reading Queued updates), then asks a whole file and reads no more. */
async function attack(framed: FramedConn, rootHash: string): Promise<void> {
  for (;;) {
    const message = await framed.readMessage().catch(() => null);
    if (message === null) return;
    if (message.type !== MsgType.Info) continue;
    await framed.send(request(MsgType.GetRange, 2, {
      fname: "big.bin",
      rootHash,
      offset: 0,
      bytes: SIZE,
    }));
    return;
  }
}

Deno.test({
  name:
    "P2P server: forged `from` and unread ranges cannot starve honest fetchers or own downloads",
  sanitizeResources: true,
  sanitizeOps: true,
  async fn() {
    const slots = new Slots({ max: 4, maxPerPeer: 2, maxQueue: 8 });
    await using server = await startSharingServer(slots);
    // Four attackers from one address, each under another name: once admitted, each asks for
    // 64 MiB (the most one request may ask) and never reads it.
    const attackers: FramedConn[] = [];
    const attacks: Promise<void>[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        const framed = await ask("127.0.0.1", server.port, `victim-${i}:${1000 + i}`);
        attackers.push(framed);
        attacks.push(attack(framed, server.rootHash));
      }
      await waitUntil(() => slots.active + slots.queued === 4, {
        timeoutMs: 5000,
        what: "all attackers are admitted",
        everyMs: 20,
      });
      assert.equal(
        slots.active,
        2,
        "one address holds at most maxPerPeer slots, whatever it claims",
      );

      // The peer's own download still gets a slot at once.
      const download = await slots.acquireDownload("127.0.0.1:9", AbortSignal.timeout(STALL_MS));
      download.release();

      // An honest fetcher from another address is served at once, not queued.
      const honest = await ask("::1", server.port, "honest:1");
      try {
        const info = await nextWithin(honest, STALL_MS * 5);
        assert.equal(info?.type, MsgType.Info, `honest fetcher got ${JSON.stringify(info)}`);
        await honest.send(request(MsgType.GetRange, 2, {
          fname: "big.bin",
          rootHash: server.rootHash,
          offset: 0,
          bytes: MIB,
        }));
        const data = await nextWithin(honest, STALL_MS * 5);
        assert.equal(data?.type, MsgType.Data);
        await honest.readRawInto(new Uint8Array(MIB));
      } finally {
        honest.close();
      }

      // Stalled uploads are closed after the stall timeout and give their slots back; the
      // queued attackers then get slots, stall in turn, and are closed too.
      await waitUntil(() => slots.active === 0 && slots.queued === 0, {
        timeoutMs: STALL_MS * 10,
        what: "slots free",
        everyMs: 20,
      });
    } finally {
      for (const framed of attackers) framed.close();
      await Promise.allSettled(attacks);
    }
  },
});

Deno.test({
  name: "P2P server answers Ping with Pong in a transfer session",
  sanitizeResources: true,
  sanitizeOps: true,
  async fn() {
    await using server = await startSharingServer(
      new Slots({ max: 2, maxPerPeer: 2, maxQueue: 0 }),
    );
    const framed = await ask("::1", server.port, "pinger:1");
    try {
      assert.equal((await nextWithin(framed, 5000))?.type, MsgType.Info);
      await framed.send(request(MsgType.Ping, 3, { sentAtMs: 42 }));
      const pong = await nextWithin(framed, 5000);
      assert.deepEqual(
        pong && { type: pong.type, requestId: pong.requestId, body: pong.body },
        { type: MsgType.Pong, requestId: 3, body: { sentAtMs: 42 } },
      );
    } finally {
      framed.close();
    }
  },
});

Deno.test({
  name: "P2P server closes a session that only pings once it is idle for the idle timeout",
  sanitizeResources: true,
  sanitizeOps: true,
  async fn() {
    const slots = new Slots({ max: 2, maxPerPeer: 2, maxQueue: 0 });
    await using server = await startSharingServer(slots, 300);
    const framed = await ask("::1", server.port, "pinger:1");
    try {
      assert.equal((await nextWithin(framed, 5000))?.type, MsgType.Info);
      // Ping every 100 ms, well within the 300 ms idle timeout, until the server closes; each
      // Pong is read, so the session is never stalled, only idle. Bounded: 100 pings.
      let closed = false;
      for (let id = 2; id < 102 && !closed; id++) {
        await framed.send(request(MsgType.Ping, id, { sentAtMs: id })).catch(() => closed = true);
        if (!closed) closed = (await nextWithin(framed, 5000).catch(() => null)) === null;
        await new Promise((resolve) => setTimeout(resolve, 100)); // pacing, not a wait for state
      }
      assert.ok(closed, "the server closed the session");
      await waitUntil(() => slots.active === 0, {
        timeoutMs: 5000,
        what: "its slot is free",
        everyMs: 20,
      });
    } finally {
      framed.close();
    }
  },
});
