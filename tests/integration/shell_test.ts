// The operator's shell against a running server with raw clients registered: each command's
// answer lines, including live ListShares and Ping round trips to the peers.
import { shortId } from "../../shared/identity.ts";
import assert from "node:assert/strict";
import { reply } from "../../shared/encode.ts";
import { type FileEntry, type Message, MsgType } from "../../shared/protocol.ts";
import { runServerCommand } from "../../server/shell.ts";
import { MAX_PAGE, ServerOps } from "../../server/ops.ts";
import { PostgresStore } from "../../server/postgres_store.ts";
import { PG_URL, pgStep, statementTap, tempSchema } from "../_pg.ts";
import {
  answerPings,
  connectRaw,
  fakeHash,
  fileEntry,
  type RawClient,
  type Responder,
  startTestServer,
} from "./_server.ts";

const SANITIZE = { sanitizeResources: true, sanitizeOps: true } as const;

/** Answers ListShares with `files` and Ping with Pong; counts what it was asked. */
function peerResponder(files: FileEntry[], asked: MsgType[] = []): Responder {
  return (message: Message) => {
    asked.push(message.type);
    if (message.type === MsgType.ListShares) {
      return reply(MsgType.Shares, message.requestId, { files });
    }
    return answerPings(message);
  };
}

/** A port nothing listens on: bound, read and released. */
function closedTcpPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

async function registered(port: number, hostname: string, p2pPort: number): Promise<RawClient> {
  const client = await connectRaw(port);
  await client.hello(hostname, p2pPort);
  return client;
}

Deno.test({
  name: "runServerCommand() help lists every command",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    const { lines, quit } = await runServerCommand(new ServerOps(server), "help");
    assert.equal(quit, undefined);
    for (
      const command of ["discover <hostname>", "ping <hostname>", "peers", "files", "stats", "quit"]
    ) {
      assert.ok(lines.some((l) => l.startsWith(command)), `help lacks ${command}`);
    }
  },
});

Deno.test({
  name: "runServerCommand() stats counts sessions and entries and shows the memory",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using alpha = await registered(server.tcpPort, "alpha", 4001);
    await alpha.publish(fileEntry("a.txt"));
    const { lines } = await runServerCommand(new ServerOps(server), "stats");
    assert.equal(lines[0], "1 live session(s) (1 here), 1 entries");
    assert.match(
      lines[1]!,
      /^memory: rss \d+ MiB, heap \d+ MiB used of \d+ MiB, external \d+ MiB$/,
    );
    assert.equal(
      lines[2],
      `this server: device ${shortId(server.identity.id)} (${server.identity.id})`,
    );
  },
});

Deno.test({
  name: "runServerCommand() peers lists live sessions with address and P2P port",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    assert.deepEqual((await runServerCommand(new ServerOps(server), "peers")).lines, [
      "0 peer(s), 0 entries",
    ]);
    await using alpha = await registered(server.tcpPort, "alpha", 4001);
    await using beta = await registered(server.tcpPort, "beta", 4002);
    await alpha.publish(fileEntry("a.txt"));
    const { lines } = await runServerCommand(new ServerOps(server), "peers");
    assert.equal(lines[0], "2 peer(s), 1 entry");
    assert.equal(lines.length, 3);
    assert.match(
      lines[1]!,
      new RegExp(
        `^ {2}alpha {2}127\\.0\\.0\\.1:4001 {2}device ${
          shortId(alpha.identity.id)
        } {2}since \\d{4}-\\d\\d-\\d\\dT`,
      ),
    );
    assert.ok(
      lines[2]!.startsWith(`  beta  127.0.0.1:4002  device ${shortId(beta.identity.id)}  since `),
      lines[2],
    );
    assert.doesNotMatch(lines.join("\n"), /via server/);
    await beta.publish(fileEntry("b.txt"));
    assert.equal(
      (await runServerCommand(new ServerOps(server), "peers")).lines[0],
      "2 peer(s), 2 entries",
    );
  },
});

Deno.test({
  name: "runServerCommand() files lists the catalogue, filtered by a pattern",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using alpha = await registered(server.tcpPort, "alpha", 4001);
    await using beta = await registered(server.tcpPort, "beta", 4002);
    await alpha.publish(fileEntry("notes.txt", { size: 512, rootHash: fakeHash("1") }));
    await alpha.publish(fileEntry("movie.mkv", { size: 3 * 1024 * 1024, rootHash: fakeHash("2") }));
    await beta.publish(
      fileEntry("notes.txt", { size: 512, rootHash: fakeHash("1"), have: "gA==" }),
    );
    assert.deepEqual((await runServerCommand(new ServerOps(server), "files")).lines, [
      "3 file(s)",
      `  movie.mkv  3.00 MiB  ${"2".repeat(12)}  @alpha:4001`,
      `  notes.txt  512 B  ${"1".repeat(12)}  @alpha:4001`,
      `  notes.txt  512 B  ${"1".repeat(12)} (partial)  @beta:4002`,
    ]);
    assert.deepEqual((await runServerCommand(new ServerOps(server), "files *.mkv")).lines, [
      "1 file(s)",
      `  movie.mkv  3.00 MiB  ${"2".repeat(12)}  @alpha:4001`,
    ]);
    assert.deepEqual((await runServerCommand(new ServerOps(server), "files nothing")).lines, [
      "0 file(s)",
    ]);
  },
});

Deno.test({
  name: "runServerCommand() discover asks the peer live for its shares",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using alpha = await registered(server.tcpPort, "alpha", 4001);
    // What the peer says live differs from what it published: the shell must show the former.
    await alpha.publish(fileEntry("published-only.txt"));
    const asked: MsgType[] = [];
    alpha.answer(peerResponder([
      fileEntry("live.iso", { size: 2048, rootHash: fakeHash("b") }),
      fileEntry("half.bin", { size: 10, rootHash: fakeHash("c"), have: "gA==" }),
    ], asked));
    const { lines } = await runServerCommand(new ServerOps(server), "discover alpha");
    assert.deepEqual(lines, [
      `alpha 127.0.0.1:4001: 2 file(s) (live), device ${shortId(alpha.identity.id)}`,
      `  live.iso  2.00 KiB  ${"b".repeat(12)}`,
      `  half.bin  10 B  ${"c".repeat(12)} (partial)`,
    ]);
    assert.deepEqual(asked, [MsgType.ListShares]);
  },
});

Deno.test({
  name: "runServerCommand() discover asks every session of the hostname",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using first = await registered(server.tcpPort, "alpha", 4001);
    await using second = await registered(server.tcpPort, "alpha", 4002);
    first.answer(peerResponder([fileEntry("one.txt")]));
    second.answer(peerResponder([]));
    const { lines } = await runServerCommand(new ServerOps(server), "discover alpha");
    assert.deepEqual(lines, [
      `alpha 127.0.0.1:4001: 1 file(s) (live), device ${shortId(first.identity.id)}`,
      `  one.txt  1000 B  ${"a".repeat(12)}`,
      `alpha 127.0.0.1:4002: 0 file(s) (live), device ${shortId(second.identity.id)}`,
    ]);
  },
});

Deno.test({
  name: "runServerCommand() discover reports a peer that answers with the wrong type",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using alpha = await registered(server.tcpPort, "alpha", 4001);
    alpha.answer((message) =>
      message.type === MsgType.ListShares ? reply(MsgType.Ok, message.requestId, {}) : undefined
    );
    const { lines } = await runServerCommand(new ServerOps(server), "discover alpha");
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^error: Cannot use reply: expected Shares, got Ok/);
  },
});

Deno.test({
  name: "runServerCommand() ping reports the rtt and an open P2P port",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    using p2p = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    await using alpha = await registered(server.tcpPort, "alpha", p2p.addr.port);
    const asked: MsgType[] = [];
    alpha.answer(peerResponder([], asked));
    const { lines } = await runServerCommand(new ServerOps(server), "ping alpha");
    assert.equal(lines.length, 1);
    assert.match(
      lines[0]!,
      new RegExp(
        `^alpha 127\\.0\\.0\\.1: rtt \\d+\\.\\d\\d ms; P2P port ${p2p.addr.port} open \\(connect \\d+\\.\\d\\d ms\\)$`,
      ),
    );
    assert.deepEqual(asked, [MsgType.Ping]);
  },
});

Deno.test({
  name: "runServerCommand() ping reports a closed P2P port",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    const port = closedTcpPort();
    await using alpha = await registered(server.tcpPort, "alpha", port);
    alpha.answer();
    const { lines } = await runServerCommand(new ServerOps(server), "ping alpha");
    assert.equal(lines.length, 1);
    assert.match(
      lines[0]!,
      new RegExp(`^alpha 127\\.0\\.0\\.1: rtt [\\d.]+ ms; P2P port ${port} closed \\(`),
    );
  },
});

Deno.test({
  name: "runServerCommand() discover and ping name an unknown hostname",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using _alpha = await registered(server.tcpPort, "alpha", 4001);
    assert.deepEqual((await runServerCommand(new ServerOps(server), "discover nobody")).lines, [
      'no live peer named "nobody"',
    ]);
    assert.deepEqual((await runServerCommand(new ServerOps(server), "ping nobody")).lines, [
      'no live peer named "nobody"',
    ]);
    // A hostname is matched exactly, not as a pattern or prefix.
    assert.deepEqual((await runServerCommand(new ServerOps(server), "ping alp")).lines, [
      'no live peer named "alp"',
    ]);
  },
});

Deno.test({
  name: "runServerCommand() answers bad command lines with an error or usage line",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    assert.deepEqual((await runServerCommand(new ServerOps(server), "bogus")).lines, [
      'error: unknown command "bogus" (try help)',
    ]);
    assert.deepEqual((await runServerCommand(new ServerOps(server), "discover")).lines, [
      "usage: discover <hostname>",
    ]);
    assert.deepEqual((await runServerCommand(new ServerOps(server), "ping a b")).lines, [
      "usage: ping <hostname>",
    ]);
    const unterminated = await runServerCommand(new ServerOps(server), 'discover "alpha');
    assert.equal(unterminated.lines.length, 1);
    assert.match(unterminated.lines[0]!, /^error: Cannot parse line: unterminated " quote/);
    assert.deepEqual(await runServerCommand(new ServerOps(server), "   "), { lines: [] });
    assert.deepEqual(await runServerCommand(new ServerOps(server), "quit"), {
      lines: ["bye"],
      quit: true,
    });
  },
});

Deno.test({
  name:
    "runServerCommand() peers lists more than a page of sessions with one listing and one count",
  ...SANITIZE,
  async fn(t) {
    await pgStep(t, async () => {
      await using schema = await tempSchema();
      // The server's statements, read on the wire: each page of the old loop listed and counted
      // the whole catalogue again.
      await using tap = statementTap();
      const url = new URL(tap.url);
      url.searchParams.set("search_path", schema.name);
      await using server = await startTestServer({ db: url.href });
      // Sessions of another server of the same database, as after a restart or with two servers.
      const other = new PostgresStore(PG_URL, { schema: schema.name });
      const sessions = MAX_PAGE + 200;
      try {
        const rows = Array.from({ length: sessions }, (_, i) => ({
          sessionId: `other-${i}`,
          serverId: "other-server",
          hostname: `host-${String(i).padStart(5, "0")}`,
          address: "127.0.0.1",
          port: 4000,
          openedAtMs: Date.now(),
          deviceId: `${String(i).padStart(5, "0")}${"d".repeat(47)}`,
        }));
        for (let i = 0; i < rows.length; i += 100) {
          await Promise.all(
            rows.slice(i, i + 100).map((row) => other.registerSession(row, Date.now() + 60_000)),
          );
        }
      } finally {
        await other.close();
      }
      const before = tap.statements.length;
      const { lines } = await runServerCommand(new ServerOps(server), "peers");
      assert.equal(lines[0], `${sessions} peer(s), 0 entries`);
      assert.equal(lines.length, sessions + 1);
      assert.match(lines[1]!, /^ {2}host-00000 {2}127\.0\.0\.1:4000 .* \(via server other-se\)$/);
      const sent = tap.statements.slice(before);
      assert.equal(
        sent.filter((s) => /SELECT \* FROM sessions WHERE online/.test(s)).length,
        1,
        sent.join("\n"),
      );
      assert.equal(
        sent.filter((s) => /count\(\*\) FROM entries/.test(s)).length,
        1,
        sent.join("\n"),
      );
    });
  },
});
