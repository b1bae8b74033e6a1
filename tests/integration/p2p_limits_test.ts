// The P2P listener's limits on what arrives before a transfer is asked for, on a real listener:
// frame bodies far above any fetcher request, and connections beyond the per-address cap.
import assert from "node:assert/strict";
import { encodeHeader, request } from "../../shared/encode.ts";
import { FramedConn } from "../../shared/framing.ts";
import { type Message, MsgType } from "../../shared/protocol.ts";
import { askOnce, startP2pFixture } from "./_p2p.ts";

/** Reads until the server closes the connection or `ms` pass; returns the bytes read. */
async function readUntilClosed(conn: Deno.TcpConn, ms: number): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  const timer = setTimeout(() => conn.close(), ms);
  try {
    const buffer = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) return chunks;
      chunks.push(buffer.slice(0, n));
    }
  } catch (err) {
    // Closed with our bytes unread: a reset is the server's close too.
    if (err instanceof Deno.errors.ConnectionReset) return chunks;
    if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) {
      throw new Error(`Timed out after ${ms} ms waiting for the server to close`);
    }
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

Deno.test({
  name: "P2P server refuses a first frame announcing a 16 MiB body before reading the body",
  sanitizeResources: true,
  sanitizeOps: true,
  async fn() {
    await using fixture = await startP2pFixture();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: fixture.port });
    // The header alone: the old server waited (and buffered) for the 16 MiB that never come.
    await conn.write(
      encodeHeader({ type: MsgType.GetInfo, flags: 0, requestId: 1, bodyBytes: 16 * 1024 * 1024 }),
    );
    const framed = new FramedConn(conn);
    // The old server waited for the body: this bound then ends the read with nothing.
    const timer = setTimeout(() => framed.close(), 5000);
    const answer = await framed.readMessage().catch(() => null).finally(() => clearTimeout(timer));
    framed.close();
    assert.equal(answer?.type, MsgType.Error, "no Error frame: the server waited for the body");
    if (answer?.type !== MsgType.Error) return;
    assert.equal(answer.body.code, "too-large");
  },
});

Deno.test({
  name: "P2P server closes connections beyond its per-address cap at once, and frees the count",
  sanitizeResources: true,
  sanitizeOps: true,
  async fn() {
    await using fixture = await startP2pFixture({ caps: { maxTotal: 64, maxPerAddress: 3 } });
    await Deno.writeTextFile(`${fixture.repo.root}/a.txt`, "hello");
    await fixture.publish("a.txt", "a.txt");
    const getInfo = request(MsgType.GetInfo, 1, { fname: "a.txt" });
    const held: Deno.TcpConn[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        held.push(await Deno.connect({ hostname: "127.0.0.1", port: fixture.port }));
      }
      // The fourth is closed unread by the server: the read ends without a byte.
      const over = await Deno.connect({ hostname: "127.0.0.1", port: fixture.port });
      assert.deepEqual(await readUntilClosed(over, 5000), []);
      over.close();
    } finally {
      for (const conn of held) conn.close();
    }
    // Once those close, the address is served again (the server notices the closes on its own
    // schedule: a bounded number of tries).
    let answer: Message | null = null;
    for (let attempt = 0; attempt < 50 && answer?.type !== MsgType.Info; attempt++) {
      answer = await askOnce(fixture.port, getInfo).catch(() => null);
    }
    assert.equal(answer?.type, MsgType.Info);
  },
});
