// Authentication and authorization on the index (protocol 2) over real sockets on 127.0.0.1:
// proofs of identity, sessions bound to their device, the join modes and the operator's
// approve and revoke.
import assert from "node:assert/strict";
import { request } from "../../shared/encode.ts";
import { importNetworkKey } from "../../shared/handshake.ts";
import { createIdentity, type Identity, shortId } from "../../shared/identity.ts";
import { type ErrorCode, type Message, MsgType } from "../../shared/protocol.ts";
import { approveDevice, revokeDevice } from "../../server/devices.ts";
import { ServerOps } from "../../server/ops.ts";
import { runServerCommand } from "../../server/shell.ts";
import { ticketProblem } from "../../shared/ticket.ts";
import { connectRaw, fileEntry, startTestServer } from "./_server.ts";

const SANITIZE = { sanitizeResources: true, sanitizeOps: true } as const;

/** Asserts that `message` is an Error frame with `code` and a "Cannot ..." text. */
function assertError(message: Message | null | undefined, code: ErrorCode): string {
  assert.ok(message, `expected an Error frame "${code}", got nothing`);
  assert.equal(message.type, MsgType.Error, `expected Error "${code}", got ${message.type}`);
  if (message.type !== MsgType.Error) return "";
  assert.equal(message.body.code, code, message.body.message);
  assert.match(message.body.message, /^Cannot /);
  return message.body.message;
}

let devices: Promise<Identity[]> | undefined;
/** Two devices besides the test run's default one: the owner and the intruder. */
function twoDevices(): Promise<Identity[]> {
  return devices ??= Promise.all([createIdentity(), createIdentity()]);
}

/** A temporary network key file holding `text`; removed on dispose. */
async function keyFile(text: string): Promise<AsyncDisposable & { path: string }> {
  const path = await Deno.makeTempFile({ prefix: "lanshare-netkey-" });
  await Deno.writeTextFile(path, text);
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path) };
}

// --- proofs ------------------------------------------------------------------------------------

Deno.test({
  name: "runSession() sends a Challenge with a fresh nonce and the server's ID before anything",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using a = await connectRaw(server.tcpPort);
    await using b = await connectRaw(server.tcpPort);
    const first = await a.takeChallenge();
    const second = await b.takeChallenge();
    assert.equal(first.id, server.identity.id);
    assert.equal(Uint8Array.fromBase64(first.nonce).length, 32);
    assert.notEqual(first.nonce, second.nonce);
  },
});

Deno.test({
  name: "runSession() refuses a Hello whose proof was made for another nonce with bad-proof",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using replayed = await connectRaw(server.tcpPort);
    await using client = await connectRaw(server.tcpPort);
    // A valid Hello of another connection, replayed here: its nonce is not this one's.
    const body = await replayed.helloBody("alpha", 4000);
    await client.takeChallenge();
    await client.send(request(MsgType.Hello, 1, body));
    const seen = await client.readUntilClosed();
    const text = assertError(seen[0], "bad-proof");
    assert.match(text, /not device .*'s signature/);
    assert.equal(server.live.size, 0);
  },
});

Deno.test({
  name: "runSession() refuses a Hello whose certificate is another device's with bad-proof",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    const [other] = await twoDevices();
    await using client = await connectRaw(server.tcpPort);
    const body = { ...await client.helloBody("alpha", 4000), cert: other!.certPem };
    await client.send(request(MsgType.Hello, 1, body));
    const seen = await client.readUntilClosed();
    assert.match(assertError(seen[0], "bad-proof"), /certificate is device/);
    assert.equal(server.live.size, 0);
  },
});

// --- sessions bound to their device ------------------------------------------------------------

Deno.test({
  name: "runSession() refuses another device's Hello for a held {hostname, port} with conflict; " +
    "the owner keeps its session and entries",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    const [owner, intruder] = await twoDevices();
    await using victim = await connectRaw(server.tcpPort, owner);
    const welcome = await victim.hello("alpha", 4000);
    assert.equal(await victim.publish(fileEntry("thesis.pdf")), "created");

    await using attacker = await connectRaw(server.tcpPort, intruder);
    await attacker.send(request(MsgType.Hello, 1, await attacker.helloBody("alpha", 4000)));
    const seen = await attacker.readUntilClosed();
    const text = assertError(seen[0], "conflict");
    assert.match(text, new RegExp(`held by device ${shortId(owner!.id)}`));
    assert.match(text, /choose another --hostname or stop that peer/);

    // The owner's session is untouched: still live, still listed, still served.
    assert.ok(server.live.has(welcome.body.sessionId));
    assert.deepEqual(victim.unsolicited, []);
    await using asker = await connectRaw(server.tcpPort);
    await asker.hello("asker", 4001);
    const sources = await asker.whoHas("thesis.pdf");
    assert.deepEqual(sources.map((s) => [s.hostname, s.port]), [["alpha", 4000]]);
    assert.equal(await victim.publish(fileEntry("more.pdf")), "created");
  },
});

Deno.test({
  name: "runSession() lets the same device take its {hostname, port} over (a reconnect)",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    const [owner] = await twoDevices();
    await using before = await connectRaw(server.tcpPort, owner);
    await before.hello("alpha", 4000);
    await using after = await connectRaw(server.tcpPort, owner);
    const welcome = await after.hello("alpha", 4000);
    assert.deepEqual([...server.live.keys()], [welcome.body.sessionId]);
  },
});

// --- --join key --------------------------------------------------------------------------------

Deno.test({
  name: "--join key refuses a wrong or missing network proof with bad-proof and admits the key",
  ...SANITIZE,
  async fn() {
    const secret = "correct horse battery staple 2026";
    await using file = await keyFile(secret);
    await using server = await startTestServer({ join: "key", networkKeyFile: file.path });
    const encoder = new TextEncoder();
    const wrong = importNetworkKey(encoder.encode("not the network key at all"));
    const right = importNetworkKey(encoder.encode(secret));

    for (const networkKey of [wrong, undefined]) {
      await using client = await connectRaw(server.tcpPort);
      const body = await client.helloBody("alpha", 4000, networkKey ? { networkKey } : {});
      await client.send(request(MsgType.Hello, 1, body));
      const seen = await client.readUntilClosed();
      const text = assertError(seen[0], "bad-proof");
      assert.match(text, /wrong network key/);
      assert.ok(!text.includes(secret));
    }
    assert.equal(server.live.size, 0);

    await using member = await connectRaw(server.tcpPort);
    await member.hello("alpha", 4000, { networkKey: right });
    assert.equal(server.live.size, 1);
  },
});

Deno.test({
  name: "startServer() with --join key refuses a network key file that is missing or too short",
  ...SANITIZE,
  async fn() {
    await using short = await keyFile("short");
    await assert.rejects(
      startTestServer({ join: "key", networkKeyFile: short.path }),
      /Cannot use the network key file ".*": it holds 5 bytes, at least 16 are needed/,
    );
    await assert.rejects(
      startTestServer({ join: "key", networkKeyFile: `${short.path}.absent` }),
      /Cannot read the network key file ".*\.absent": NotFound/,
    );
  },
});

// --- --join approve, approve and revoke --------------------------------------------------------

Deno.test({
  name: "--join approve: pending, then approve, then the device joins",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer({ join: "approve" });
    const [newcomer] = await twoDevices();
    {
      await using client = await connectRaw(server.tcpPort, newcomer);
      await client.send(request(MsgType.Hello, 1, await client.helloBody("alpha", 4000)));
      const seen = await client.readUntilClosed();
      const text = assertError(seen[0], "not-approved");
      assert.match(text, new RegExp(`waiting for approval: .*approve ${shortId(newcomer!.id)}`));
    }
    assert.equal(server.live.size, 0);
    const pending = await runServerCommand(new ServerOps(server), "pending");
    assert.match(pending.lines.join("\n"), new RegExp(`${shortId(newcomer!.id)}  alpha from`));

    const approved = await runServerCommand(
      new ServerOps(server),
      `approve ${shortId(newcomer!.id)}`,
    );
    assert.deepEqual(approved.lines, [`approved ${shortId(newcomer!.id)} (${newcomer!.id})`]);
    assert.match(
      (await runServerCommand(new ServerOps(server), "pending")).lines[0]!,
      /no device waits/,
    );

    await using client = await connectRaw(server.tcpPort, newcomer);
    await client.hello("alpha", 4000);
    assert.equal(await client.publish(fileEntry("a.txt")), "created");
  },
});

Deno.test({
  name: "approve and revoke decisions survive a restart on the same SQLite database",
  ...SANITIZE,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "lanshare-auth-" });
    try {
      const db = `${dir}/index.db`;
      const [kept, banned] = await twoDevices();
      {
        await using server = await startTestServer({ join: "approve", db });
        await approveDevice(server, kept!.id);
        await revokeDevice(server, banned!.id);
      }
      await using server = await startTestServer({ join: "approve", db });
      await using ok = await connectRaw(server.tcpPort, kept);
      await ok.hello("alpha", 4000);
      await using refused = await connectRaw(server.tcpPort, banned);
      await refused.send(request(MsgType.Hello, 1, await refused.helloBody("beta", 4000)));
      assertError((await refused.readUntilClosed())[0], "revoked");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "revoke closes the device's session at once, removes its entries, and refuses it after",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    const [target] = await twoDevices();
    await using victim = await connectRaw(server.tcpPort, target);
    await victim.hello("alpha", 4000);
    assert.equal(await victim.publish(fileEntry("leak.bin")), "created");
    await using asker = await connectRaw(server.tcpPort);
    await asker.hello("asker", 4001);
    assert.equal((await asker.whoHas("leak.bin")).length, 1);

    const answer = await runServerCommand(
      new ServerOps(server),
      `revoke ${target!.id.slice(0, 6)}`,
    );
    assert.deepEqual(answer.lines, [
      `revoked ${shortId(target!.id)} (${target!.id}); 1 session(s) closed`,
    ]);
    // Gone from the index before the command answered.
    assert.deepEqual(await asker.whoHas("leak.bin"), []);
    assert.equal(server.live.size, 1);
    const told = await victim.readUntilClosed();
    assertError(told.find((m) => m.type === MsgType.Error), "revoked");

    await using again = await connectRaw(server.tcpPort, target);
    await again.send(request(MsgType.Hello, 1, await again.helloBody("alpha", 4000)));
    assert.match(
      assertError((await again.readUntilClosed())[0], "revoked"),
      /revoked by the operator/,
    );
  },
});

Deno.test({
  name: "approve and revoke explain an ID prefix that names no device or several",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    assert.match(
      (await runServerCommand(new ServerOps(server), "approve zzzz")).lines[0]!,
      /^error: Cannot find the device: no known ID starts with "zzzz"/,
    );
    const [one, two] = await twoDevices();
    await approveDevice(server, one!.id);
    await approveDevice(server, two!.id);
    // Base32 IDs begin with one of 32 digits: an empty-ish prefix of one digit may fit both;
    // the dashes of the short form are accepted, and a full ID always names one device.
    assert.match(
      (await runServerCommand(new ServerOps(server), `revoke ${shortId(one!.id)}`)).lines[0]!,
      new RegExp(`^revoked ${shortId(one!.id)}`),
    );
    assert.deepEqual((await runServerCommand(new ServerOps(server), "revoke")).lines, [
      "usage: revoke <id|prefix>",
    ]);
    const twins = ["a".repeat(52), "a".repeat(51) + "b"];
    assert.throws(
      () => server.join.resolve("aaaa", twins),
      /Cannot find the device: "aaaa" fits 2 IDs \(aaaa-aaaa-aaaa, aaaa-aaaa-aaaa\); give more digits/,
    );
  },
});

// --- tickets -----------------------------------------------------------------------------------

Deno.test({
  name: "Welcome carries a ticket for the device, signed by the index; GetTicket returns one",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using client = await connectRaw(server.tcpPort);
    const welcome = await client.hello("alpha", 4000);
    const { ticket } = welcome.body;
    assert.equal(ticket.fetcher, client.identity.id);
    assert.equal(ticket.index, server.identity.id);
    const check = {
      fetcherId: client.identity.id,
      trustedIndexIds: [server.identity.id],
      nowMs: Date.now(),
    };
    assert.equal(await ticketProblem(ticket, check), undefined);
    const renewed = await client.expect(MsgType.GetTicket, {}, MsgType.Ticket);
    // Still young: the same ticket, no new signature.
    assert.deepEqual(renewed.body.ticket, ticket);
  },
});
