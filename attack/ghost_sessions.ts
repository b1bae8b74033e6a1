// Attack 3, ghost sessions: many connections each send Hello + Publish + undecodable bytes in
// one write, then close. Every such session must be gone afterwards: none left in the
// server's own count, and no published name still listed by who-has for a clean client.
import { MsgType } from "../shared/protocol.ts";
import { type Attack, Verdict } from "./_attack.ts";
import { formatHealth, probeServer, settleSessions } from "./_health.ts";
import { formatRss } from "./_meter.ts";
import { fakeEntry, frame, joinBytes } from "./_frames.ts";
import { errorText, hostAddress, probeAddress, WireClient } from "./_wire.ts";

/** Connections open at once while attacking. */
const CONCURRENCY = 64;
/** How long a connection waits for the server to close it before closing itself. */
const LINGER_MS = 1000;
/** Bytes no frame starts with: a bad magic, decoded right after the Publish. */
const GARBAGE = new Uint8Array(16).fill(0xff);

export const ghostSessions: Attack = {
  name: "ghost-sessions",
  summary: "N connections send Hello + Publish + garbage in one write → zero sessions left",
  budgetMs: (scale) => scale.quick ? 30_000 : 60_000,
  async run(lab, scale) {
    const verdict = new Verdict();
    const total = scale.quick ? 200 : 2000;
    const inTime = lab.within(scale.quick ? 10_000 : 30_000);
    const server = await lab.server();
    const rss = lab.watchRss(server);
    let next = 0;
    let sent = 0;
    const failures = new Map<string, number>();
    const worker = async () => {
      while (next < total && inTime()) {
        const i = next++;
        try {
          // Each from its own address: many hosts, so per-address limits do not hide ghosts.
          using client = await WireClient.connect(server.tcpPort, { from: hostAddress(i) });
          const bytes = joinBytes([
            await client.helloFrame(`ghost-${i}`, 10_000 + i),
            frame(MsgType.Publish, 2, fakeEntry(`ghost-${i}.bin`)),
            GARBAGE,
          ]);
          if (await client.write(bytes)) sent++;
          // Let the server answer and close; whatever it sends is not judged here.
          await client.until(() => false, LINGER_MS);
        } catch (err) {
          const text = errorText(err);
          failures.set(text, (failures.get(text) ?? 0) + 1);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));

    // Sessions end asynchronously after their connection: give them a bounded while.
    const live = await settleSessions(server, 0, 5000);
    const listed = await countListed(server.tcpPort, next);
    const health = await probeServer(server.tcpPort);
    const alive = await lab.alive(server);
    verdict.note(`${sent}/${total} connections sent Hello+Publish+garbage`);
    if (failures.size > 0) {
      verdict.note(`client errors ${[...failures].map(([t, n]) => `${n}× ${t}`).join("; ")}`);
    }
    verdict.require(alive, `server ${lab.describeExit(server)}`);
    verdict.require(live === 0, `ghost sessions ${live} (server stats)`);
    verdict.require(listed === 0, `ghost names listed by who-has ${listed}`);
    verdict.require(health.ok, `who-has on a fresh connection ${formatHealth(health)}`);
    verdict.note(formatRss(rss.stop()));
    return verdict.outcome();
  },
};

/** Asks a clean session who has each `ghost-<i>.bin`; returns how many still have sources. */
async function countListed(port: number, count: number): Promise<number> {
  using client = await WireClient.connect(port, { from: probeAddress(1) });
  await client.write(
    await client.helloFrame("ghost-checker", 9),
  );
  const welcome = await client.until((m) => m.requestId === 1, 5000);
  if (welcome.kind !== "message" || welcome.message.type !== MsgType.Welcome) {
    throw new Error(`Cannot check for ghosts: the checker's Hello got no Welcome`);
  }
  let listed = 0;
  const batch = 500;
  for (let from = 0; from < count; from += batch) {
    const ids: number[] = [];
    const frames: Uint8Array[] = [];
    for (let i = from; i < Math.min(count, from + batch); i++) {
      ids.push(i + 2);
      frames.push(frame(MsgType.WhoHas, i + 2, { fname: `ghost-${i}.bin` }));
    }
    await client.write(joinBytes(frames));
    let answered = 0;
    const last = await client.until(
      (m) => {
        if (!m.reply) return false;
        if (m.type === MsgType.Sources && m.body.sources.length > 0) listed++;
        return ++answered === ids.length;
      },
      10_000,
    );
    if (last.kind !== "message") {
      throw new Error(`Cannot check for ghosts: ${answered}/${ids.length} who-has answered`);
    }
  }
  return listed;
}
