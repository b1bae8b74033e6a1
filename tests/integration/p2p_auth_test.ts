// Who may fetch, over real sockets: a source sends a Challenge first and serves GetInfo only to
// a fetcher that proves its ID and shows a ticket of the index the source trusts, unexpired.
import assert from "node:assert/strict";
import { encodeMessage, request } from "../../shared/encode.ts";
import { FramedConn } from "../../shared/framing.ts";
import { createIdentity, type Identity } from "../../shared/identity.ts";
import { type Message, MsgType, type Ticket } from "../../shared/protocol.ts";
import { issueTicket, TICKET_LIFETIME_MS } from "../../shared/ticket.ts";
import { getInfoRequest } from "../_handshake.ts";
import { startP2pFixture } from "./_p2p.ts";

const SANITIZE = { sanitizeResources: true, sanitizeOps: true } as const;

const [source, index, fetcher, stranger] = await Promise.all([
  createIdentity(),
  createIdentity(),
  createIdentity(),
  createIdentity(),
]);

/** A source sharing `a.txt` that trusts `index`'s tickets. */
async function authSource() {
  const fixture = await startP2pFixture({
    auth: { identity: source, trustedIndexIds: () => [index.id] },
  });
  await Deno.writeTextFile(`${fixture.dir}/repo/a.txt`, "hello");
  await fixture.publish("a.txt", "a.txt");
  return fixture;
}

/** Opens a connection, answers the Challenge as `identity` with `ticket`, returns the reply. */
async function ask(port: number, identity: Identity, ticket: Ticket): Promise<Message | null> {
  using framed = new FramedConn(await Deno.connect({ hostname: "127.0.0.1", port }));
  await framed.send(await getInfoRequest(framed, { fname: "a.txt" }, { identity, ticket }));
  return await framed.readMessage();
}

function assertRefused(message: Message | null, code: string, text: RegExp): void {
  assert.equal(message?.type, MsgType.Error, JSON.stringify(message));
  if (message?.type !== MsgType.Error) return;
  assert.equal(message.body.code, code);
  assert.match(message.body.message, /^Cannot serve /);
  assert.match(message.body.message, text);
}

Deno.test({
  name: "p2p server: a fetcher with a valid ticket of the trusted index gets Info",
  ...SANITIZE,
  async fn() {
    await using fixture = await authSource();
    const ticket = await issueTicket(index, fetcher.id, Date.now());
    assert.equal((await ask(fixture.port, fetcher, ticket))?.type, MsgType.Info);
  },
});

Deno.test({
  name: "p2p server: an expired ticket is refused with bad-ticket",
  ...SANITIZE,
  async fn() {
    await using fixture = await authSource();
    const ticket = await issueTicket(index, fetcher.id, Date.now() - TICKET_LIFETIME_MS - 120_000);
    assertRefused(await ask(fixture.port, fetcher, ticket), "bad-ticket", /ticket expired at/);
  },
});

Deno.test({
  name: "p2p server: a forged, foreign or borrowed ticket is refused with bad-ticket",
  ...SANITIZE,
  async fn() {
    await using fixture = await authSource();
    const forged = { ...await issueTicket(stranger, fetcher.id, Date.now()), index: index.id };
    assertRefused(await ask(fixture.port, fetcher, forged), "bad-ticket", /not signed by index/);
    const foreign = await issueTicket(stranger, fetcher.id, Date.now());
    assertRefused(
      await ask(fixture.port, fetcher, foreign),
      "bad-ticket",
      /not the index this peer uses/,
    );
    // A valid ticket of another device, shown by a stranger proving its own ID.
    const borrowed = await issueTicket(index, fetcher.id, Date.now());
    assertRefused(await ask(fixture.port, stranger, borrowed), "bad-ticket", /device .*'s, not/);
  },
});

Deno.test({
  name:
    "p2p server: a GetInfo without proof and ticket, or with another device's proof, is refused",
  ...SANITIZE,
  async fn() {
    await using fixture = await authSource();
    {
      using framed = new FramedConn(
        await Deno.connect({ hostname: "127.0.0.1", port: fixture.port }),
      );
      const challenge = await framed.readMessage();
      assert.equal(challenge?.type, MsgType.Challenge);
      assert.ok(challenge?.type === MsgType.Challenge && challenge.body.id === source.id);
      await framed.sendBytes(encodeMessage(request(MsgType.GetInfo, 1, { fname: "a.txt" })));
      assertRefused(await framed.readMessage(), "bad-ticket", /must carry id, ticket and proof/);
    }
    // A proof made by the stranger but claiming the fetcher's ID.
    using framed = new FramedConn(
      await Deno.connect({ hostname: "127.0.0.1", port: fixture.port }),
    );
    const ticket = await issueTicket(index, fetcher.id, Date.now());
    const message = await getInfoRequest(framed, { fname: "a.txt" }, {
      identity: stranger,
      ticket,
    });
    assert.ok(message.type === MsgType.GetInfo);
    await framed.send({ ...message, body: { ...message.body, id: fetcher.id } });
    assertRefused(await framed.readMessage(), "bad-proof", /not device .*'s signature/);
  },
});
