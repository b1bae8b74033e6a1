import assert from "node:assert/strict";
import { encodeMessage, request } from "../../shared/encode.ts";
import { ProtocolError } from "../../shared/errors.ts";
import { type ByteConn, FramedConn } from "../../shared/framing.ts";
import { MsgType } from "../../shared/protocol.ts";

/** A socket whose writes complete only when the test says so, recording what was written. */
class GatedConn implements ByteConn {
  readonly writes: number[][] = [];
  #gates: PromiseWithResolvers<void>[] = [];
  #arrival: PromiseWithResolvers<void> | undefined;
  failWith: Error | undefined;

  read(): Promise<number | null> {
    return Promise.resolve(null);
  }

  async write(p: Uint8Array): Promise<number> {
    const gate = Promise.withResolvers<void>();
    this.#gates.push(gate);
    this.#arrival?.resolve();
    await gate.promise;
    if (this.failWith) throw this.failWith;
    this.writes.push([...p]);
    return p.length;
  }

  /** Waits until a write has reached the socket (and waits there). */
  async arrived(): Promise<void> {
    while (this.#gates.length === 0) {
      this.#arrival = Promise.withResolvers();
      await this.#arrival.promise;
    }
  }

  /** Waits until the next write reaches the socket, then lets it complete. */
  async releaseNext(): Promise<void> {
    await this.arrived();
    this.#gates.shift()!.resolve();
  }

  close(): void {}
}

Deno.test("FramedConn.sendBytes() sends made in one synchronous run go out in one write", async () => {
  const conn = new GatedConn();
  const framed = new FramedConn(conn);
  const sent = [
    framed.sendBytes(new Uint8Array([1])),
    framed.sendBytes(new Uint8Array([2]), new Uint8Array([3])),
    framed.sendBytes(new Uint8Array([4])),
  ];
  assert.equal(framed.queuedBytes, 4);
  await conn.releaseNext();
  await Promise.all(sent);
  assert.deepEqual(conn.writes, [[1, 2, 3, 4]]);
  assert.equal(framed.queuedBytes, 0);
});

Deno.test("FramedConn.sendBytes() joins sends queued behind a write into one write, in order", async () => {
  const conn = new GatedConn();
  const framed = new FramedConn(conn);
  const first = framed.sendBytes(new Uint8Array([1]));
  await conn.arrived();
  const rest = [
    framed.sendBytes(new Uint8Array([2]), new Uint8Array([3])),
    framed.sendBytes(new Uint8Array([4])),
  ];
  assert.equal(framed.queuedBytes, 4);
  await conn.releaseNext();
  await first;
  await conn.releaseNext();
  await Promise.all(rest);
  assert.deepEqual(conn.writes, [[1], [2, 3, 4]]);
  assert.equal(framed.queuedBytes, 0);
});

Deno.test("FramedConn writes frames that lie side by side in one buffer as one view of it", async () => {
  const written: Uint8Array[] = [];
  const conn: ByteConn = {
    read: () => Promise.resolve(null),
    write: (p) => {
      written.push(p);
      return Promise.resolve(p.length);
    },
    close: () => {},
  };
  const framed = new FramedConn(conn);
  const slab = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
  // Adjacent: one write of the slab's own bytes, nothing copied.
  void framed.sendBytes(slab.subarray(0, 2));
  void framed.sendBytes(slab.subarray(2, 5));
  await framed.sendBytes(slab.subarray(5, 6));
  assert.equal(written.length, 1);
  assert.equal(written[0]!.buffer, slab.buffer);
  assert.deepEqual([...written[0]!], [1, 2, 3, 4, 5, 6]);
  // A gap (byte 7 left out) or another buffer: joined in a copy, in order.
  void framed.sendBytes(slab.subarray(0, 2));
  void framed.sendBytes(slab.subarray(3, 4));
  await framed.sendBytes(new Uint8Array([9]));
  assert.equal(written.length, 2);
  assert.notEqual(written[1]!.buffer, slab.buffer);
  assert.deepEqual([...written[1]!], [1, 2, 4, 9]);
});

Deno.test("FramedConn.exclusiveWrite() runs after earlier sends and before later ones", async () => {
  const conn = new GatedConn();
  const framed = new FramedConn(conn);
  const done = [
    framed.sendBytes(new Uint8Array([1])),
    framed.exclusiveWrite(async (write) => {
      await write(new Uint8Array([2]));
      await write(new Uint8Array([3]));
      return "streamed";
    }),
    framed.sendBytes(new Uint8Array([4])),
  ];
  for (let i = 0; i < 4; i++) await conn.releaseNext();
  assert.deepEqual(await Promise.all(done), [undefined, "streamed", undefined]);
  assert.deepEqual(conn.writes, [[1], [2], [3], [4]]);
});

Deno.test("FramedConn.sendBytes() rejects every send of a failed write, and later ones go on", async () => {
  const conn = new GatedConn();
  const framed = new FramedConn(conn);
  const first = framed.sendBytes(new Uint8Array([1]));
  await conn.arrived();
  const joined = [framed.sendBytes(new Uint8Array([2])), framed.sendBytes(new Uint8Array([3]))];
  await conn.releaseNext();
  await first;
  conn.failWith = new Error("broken pipe");
  await conn.releaseNext();
  for (const send of joined) await assert.rejects(send, /broken pipe/);
  conn.failWith = undefined;
  const after = framed.sendBytes(new Uint8Array([9]));
  await conn.releaseNext();
  await after;
  assert.deepEqual(conn.writes, [[1], [9]]);
  assert.equal(framed.queuedBytes, 0);
});

/** A socket that returns scripted reads: byte chunks, then an end or an error. */
class ScriptedConn implements ByteConn {
  readonly #reads: (Uint8Array | null | Error)[];

  constructor(reads: (Uint8Array | null | Error)[]) {
    this.#reads = reads;
  }

  read(p: Uint8Array): Promise<number | null> {
    const next = this.#reads.shift() ?? null;
    if (next instanceof Error) return Promise.reject(next);
    if (next === null) return Promise.resolve(null);
    p.set(next);
    return Promise.resolve(next.length);
  }

  write(p: Uint8Array): Promise<number> {
    return Promise.resolve(p.length);
  }

  close(): void {}
}

Deno.test("FramedConn.fill() buffers each read until a message is whole, and a reset between frames ends the stream", async () => {
  const frame = encodeMessage(request(MsgType.WhoHas, 9, { fname: "a.txt" }));
  const framed = new FramedConn(
    new ScriptedConn([frame.slice(0, 5), frame.slice(5), new Deno.errors.ConnectionReset("reset")]),
  );
  assert.equal(await framed.fill(), true);
  assert.equal(framed.bufferedMessage(), undefined, "5 bytes are not a frame");
  assert.equal(await framed.fill(), true);
  assert.deepEqual(framed.bufferedMessage(), request(MsgType.WhoHas, 9, { fname: "a.txt" }));
  assert.equal(await framed.fill(), false);
});

Deno.test("FramedConn.fill() throws truncated when the stream ends inside a frame", async () => {
  const frame = encodeMessage(request(MsgType.WhoHas, 9, { fname: "a.txt" }));
  const framed = new FramedConn(new ScriptedConn([frame.slice(0, 20), null]));
  assert.equal(await framed.fill(), true);
  await assert.rejects(
    framed.fill(),
    (err) => err instanceof ProtocolError && err.code === "truncated",
  );
});

Deno.test("FramedConn.fill() lets a local read error through", async () => {
  const framed = new FramedConn(new ScriptedConn([new Deno.errors.PermissionDenied("no")]));
  await assert.rejects(framed.fill(), Deno.errors.PermissionDenied);
});

Deno.test("FramedConn.setMaxBodyBytes() applies to the headers read after it", async () => {
  const small = encodeMessage(request(MsgType.WhoHas, 1, { fname: "a.txt" }));
  const large = encodeMessage(request(MsgType.WhoHas, 2, { fname: "b".repeat(200) }));
  const framed = new FramedConn(new ScriptedConn([small, large, large]), {
    limits: { maxBodyBytes: 100, maxDataBytes: 0 },
  });
  assert.equal((await framed.readMessage())?.requestId, 1);
  framed.setMaxBodyBytes(1000);
  assert.equal(framed.maxBodyBytes, 1000);
  assert.equal((await framed.readMessage())?.requestId, 2);
  framed.setMaxBodyBytes(100);
  await assert.rejects(
    framed.readMessage(),
    (err: unknown) => err instanceof ProtocolError && err.code === "too-large",
  );
  assert.throws(() => framed.setMaxBodyBytes(-1), RangeError);
});

Deno.test("FramedConn.close() drops what was buffered and reads nothing more", async () => {
  const frame = encodeMessage(request(MsgType.WhoHas, 1, { fname: "a.txt" }));
  const framed = new FramedConn(new ScriptedConn([frame.slice(0, 20), frame.slice(20)]));
  assert.equal(await framed.fill(), true);
  framed.close();
  assert.equal(framed.bufferedMessage(), undefined);
  assert.equal(await framed.fill(), false);
});
