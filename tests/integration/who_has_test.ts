// Who-has answers over real sessions of a real server, through every change that alters them:
// the catalogue holds each entry in its answer's shape and replaces it on change (see
// server/memory_catalogue.ts), so a stale answer would show here. Each answer is compared as
// the JSON text it came in: values, keys and their order.
import assert from "node:assert/strict";
import { MsgType, type SignedFileEntry, type SourceInfo } from "../../shared/protocol.ts";
import {
  answerPings,
  connectRaw,
  fakeHash,
  fileEntry,
  pollUntil,
  type RawClient,
  startTestServer,
  testIdentity,
} from "./_server.ts";

const SANITIZE = { sanitizeResources: true, sanitizeOps: true } as const;

Deno.test({
  name: "who-has answers follow publish, update, unpublish, disconnect and reconnect",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    const id = (await testIdentity()).id;
    const source = (hostname: string, port: number, entry: SignedFileEntry): SourceInfo => {
      const listed: SourceInfo = {
        fname: entry.fname,
        size: entry.size,
        mtimeMs: entry.mtimeMs,
        rootHash: entry.rootHash,
        pieceSize: entry.pieceSize,
        hostname,
        address: "127.0.0.1",
        port,
        id,
        sig: entry.sig,
      };
      if (entry.have !== undefined) listed.have = entry.have;
      return listed;
    };
    const join = async (hostname: string, port: number): Promise<RawClient> => {
      const client = await connectRaw(server.tcpPort);
      await client.hello(hostname, port);
      client.answer(answerPings);
      return client;
    };
    const asker = await join("asker", 4000);
    const answerOf = async (fname: string) => JSON.stringify(await asker.whoHas(fname));
    const expect = async (fname: string, sources: SourceInfo[], step: string) =>
      assert.equal(await answerOf(fname), JSON.stringify(sources), step);

    const bravo = await join("bravo", 4002);
    const alpha = await join("alpha", 4001);
    const v1 = fileEntry("report.pdf", { rootHash: fakeHash("1") });
    const v1Have = { ...v1, have: "gA==" };
    await bravo.publish(v1Have);
    await alpha.publish(v1);
    await asker.publish(v1); // the asker's own entry is never listed to it
    await expect(
      "report.pdf",
      [source("alpha", 4001, v1), source("bravo", 4002, v1Have)],
      "publish",
    );

    const v2 = fileEntry("report.pdf", { rootHash: fakeHash("2"), size: 2_000_000, mtimeMs: 7 });
    await alpha.publish(v2);
    await expect(
      "report.pdf",
      [source("alpha", 4001, v2), source("bravo", 4002, v1Have)],
      "update",
    );
    await bravo.publish(v1); // the bitfield dropped: complete now
    await expect("report.pdf", [source("alpha", 4001, v2), source("bravo", 4002, v1)], "complete");

    const removed = await alpha.expect(MsgType.Unpublish, { fname: "report.pdf" }, MsgType.Ok);
    assert.equal(removed.body.removed, true);
    await expect("report.pdf", [source("bravo", 4002, v1)], "unpublish");
    await alpha.publish(v1);
    await expect("report.pdf", [source("alpha", 4001, v1), source("bravo", 4002, v1)], "again");

    await bravo.close();
    await pollUntil(
      async () => (await answerOf("report.pdf")).includes('"bravo"') ? undefined : true,
      { timeoutMs: 5000, what: "bravo's entry to go with its session" },
    );
    await expect("report.pdf", [source("alpha", 4001, v1)], "disconnect");

    // Back on the same endpoint (a new session) and on a new port of the same host.
    const bravoAgain = await join("bravo", 4002);
    const bravoOther = await join("bravo", 4012);
    await expect("report.pdf", [source("alpha", 4001, v1)], "reconnected, nothing published");
    await bravoOther.publish(v2);
    await bravoAgain.publish(v1Have);
    await expect("report.pdf", [
      source("alpha", 4001, v1),
      source("bravo", 4002, v1Have),
      source("bravo", 4012, v2),
    ], "republished");

    await alpha.close();
    await bravoAgain.close();
    await bravoOther.close();
    await pollUntil(
      async () => (await answerOf("report.pdf")) === "[]" ? true : undefined,
      { timeoutMs: 5000, what: "every holder to go" },
    );
    await expect("nothing.txt", [], "a name nobody has");
    await asker.close();
  },
});
