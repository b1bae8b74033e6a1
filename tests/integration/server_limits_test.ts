// The index server's limits over real sockets on 127.0.0.1: small frames before Hello, and the
// caps on connections and sessions, each refusal an Error `busy` followed by the close.
import assert from "node:assert/strict";
import { encodeHeader, reply, request } from "../../shared/encode.ts";
import { type Message, MsgType } from "../../shared/protocol.ts";
import { shortId } from "../../shared/identity.ts";
import { MAX_UNREGISTERED_BODY_BYTES } from "../../server/session.ts";
import { runServerCommand } from "../../server/shell.ts";
import { ServerOps } from "../../server/ops.ts";
import { connectRaw, fileEntry, pollUntil, type RawClient, startTestServer } from "./_server.ts";

const SANITIZE = { sanitizeResources: true, sanitizeOps: true } as const;

/** Asserts that the server sent one Error `code` (its text naming `text`) and then closed. */
async function assertRefused(client: RawClient, code: string, text: RegExp): Promise<void> {
  const seen: Message[] = await client.readUntilClosed();
  assert.equal(seen.length, 1, JSON.stringify(seen));
  const [error] = seen;
  assert.equal(error!.type, MsgType.Error);
  if (error!.type !== MsgType.Error) return;
  assert.equal(error!.body.code, code, error!.body.message);
  assert.match(error!.body.message, /^Cannot /);
  assert.match(error!.body.message, text);
}

Deno.test({
  name: "runSession() refuses a frame over the pre-Hello limit before reading its body",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using client = await connectRaw(server.tcpPort);
    // Only the header: a server that waited for the body would never answer.
    await client.sendBytes(
      encodeHeader({
        type: MsgType.Hello,
        flags: 0,
        requestId: 1,
        bodyBytes: MAX_UNREGISTERED_BODY_BYTES + 1,
      }),
    );
    await assertRefused(client, "too-large", new RegExp(`limit is ${MAX_UNREGISTERED_BODY_BYTES}`));
    assert.equal(server.live.size, 0);
  },
});

Deno.test({
  name: "runSession() takes frames over the pre-Hello limit once the session is registered",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using client = await connectRaw(server.tcpPort);
    await client.hello("alpha", 4000);
    // The server's `discover` asks the peer for its shares: a reply far over 16 KiB.
    const files = Array.from({ length: 400 }, (_, i) => fileEntry(`shared-file-${i}.bin`));
    client.answer((message) =>
      message.type === MsgType.ListShares
        ? reply(MsgType.Shares, message.requestId, { files })
        : undefined
    );
    const answer = await runServerCommand(new ServerOps(server), "discover alpha");
    assert.ok(
      answer.lines[0]!.endsWith(`: 400 file(s) (live), device ${shortId(client.identity.id)}`),
      answer.lines[0],
    );
    assert.equal(answer.lines.length, 401);
  },
});

Deno.test({
  name: "startServer() refuses the connection over --max-connections with busy",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer({ maxConnections: 3 });
    const held: RawClient[] = [];
    try {
      for (let i = 0; i < 3; i++) held.push(await connectRaw(server.tcpPort));
      await using extra = await connectRaw(server.tcpPort);
      await assertRefused(extra, "busy", /limit of 3 connections/);
      // The ones admitted are served.
      await held[0]!.hello("alpha", 4000);
    } finally {
      for (const client of held) await client.close();
    }
  },
});

Deno.test({
  name:
    "startServer() refuses a connection over --max-unregistered-per-address; a Hello frees the slot",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer({ maxUnregisteredPerAddress: 2 });
    await using first = await connectRaw(server.tcpPort);
    await using second = await connectRaw(server.tcpPort);
    {
      await using third = await connectRaw(server.tcpPort);
      await assertRefused(third, "busy", /127\.0\.0\.1 already has 2 connections that have not/);
    }
    await first.hello("alpha", 4000);
    await using fourth = await connectRaw(server.tcpPort);
    await fourth.hello("bravo", 4000);
    await second.hello("charlie", 4000);
    assert.equal(server.live.size, 3);
  },
});

Deno.test({
  name: "runSession() refuses a Hello over --max-sessions-per-address with busy and closes",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer({ maxSessionsPerAddress: 2 });
    await using a = await connectRaw(server.tcpPort);
    await using b = await connectRaw(server.tcpPort);
    await a.hello("alpha", 4000);
    await b.hello("bravo", 4000);
    {
      await using c = await connectRaw(server.tcpPort);
      await c.send(
        request(MsgType.Hello, 7, await c.helloBody("charlie", 4000)),
      );
      await assertRefused(c, "busy", /127\.0\.0\.1 already holds 2 sessions/);
    }
    assert.deepEqual((await server.catalog.sessions()).map((s) => s.hostname), ["alpha", "bravo"]);
    // A session that ends gives its place back.
    await a.close();
    await pollUntil(() => Promise.resolve(server.live.size === 1 ? true : undefined), {
      timeoutMs: 5000,
      what: "the server to notice the close",
    });
    await using d = await connectRaw(server.tcpPort);
    await d.hello("delta", 4000);
    assert.deepEqual((await server.catalog.sessions()).map((s) => s.hostname), ["bravo", "delta"]);
  },
});
