// Attack 1, oversized reply: two entries whose `have` bitfields are ~12 MB of base64 each (72
// million pieces of 1 byte) are each a legal frame, but a search listing both would be a reply
// above the 16 MiB frame limit. The server must survive and keep answering.
import { MsgType } from "../shared/protocol.ts";
import { type Attack, Verdict } from "./_attack.ts";
import { formatHealth, probeServer } from "./_health.ts";
import { formatRss } from "./_meter.ts";
import { frame, ZERO_SIG } from "./_frames.ts";
import { describeOutcome, WireClient } from "./_wire.ts";

const SIZE = 72_000_000;
const PIECE_SIZE = 1;

export const oversizedReply: Attack = {
  name: "oversized-reply",
  summary: 'Hello, two Publish with ~12 MB `have` each, Search "" → server alive and answering',
  budgetMs: () => 60_000,
  async run(lab) {
    const verdict = new Verdict();
    const server = await lab.server();
    const rss = lab.watchRss(server);
    using client = await WireClient.connect(server.tcpPort);
    const have = new Uint8Array(Math.ceil(SIZE / PIECE_SIZE / 8)).fill(0xff).toBase64();
    await client.write(await client.helloFrame("oversized", 9));
    const replies: string[] = [];
    const welcome = await client.until((m) => m.requestId === 1, 10_000);
    replies.push(describeOutcome(welcome));
    for (const id of [2, 3]) {
      const entry = {
        fname: `oversized-${id}.bin`,
        size: SIZE,
        mtimeMs: 0,
        rootHash: "cd".repeat(32),
        pieceSize: PIECE_SIZE,
        have,
        sig: ZERO_SIG,
      };
      if (!await client.write(frame(MsgType.Publish, id, entry))) break;
      replies.push(describeOutcome(await client.until((m) => m.requestId === id, 15_000)));
    }
    await client.write(frame(MsgType.Search, 4, { pattern: "", offset: 0, limit: 1000 }));
    const search = await client.until((m) => m.requestId === 4, 15_000);
    replies.push(describeOutcome(search));
    client.close();

    const health = await probeServer(server.tcpPort);
    const again = await probeServer(server.tcpPort);
    const figures = rss.stop();
    verdict.note(`replies ${replies.join(" / ")}`);
    const alive = await lab.alive(server);
    verdict.require(alive, `server ${lab.describeExit(server)}`);
    verdict.require(
      health.ok && again.ok,
      `who-has on a fresh connection ${formatHealth(health)}, ${formatHealth(again)}`,
    );
    verdict.require(search.kind !== "timeout", `search answer: ${describeOutcome(search)}`);
    verdict.note(formatRss(figures));
    return verdict.outcome();
  },
};
