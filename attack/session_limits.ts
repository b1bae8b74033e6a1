// Attack 9, session limits: one address opens many sessions (a Hello each, held open), and one
// session publishes a great many entries. A server with limits refuses some of them (an Error
// reply or a closed connection); one without accepts everything until it runs out of memory or
// file descriptors. Passes when both floods met a cap and the server still answers.
import { MsgType } from "../shared/protocol.ts";
import type { ServerProgram } from "../tests/e2e/_programs.ts";
import { type Attack, Verdict } from "./_attack.ts";
import { formatHealth, probeServer, settleSessions } from "./_health.ts";
import type { Lab } from "./_lab.ts";
import { formatRss } from "./_meter.ts";
import { fakeEntry, frame, joinBytes } from "./_frames.ts";
import { errorText, hostAddress, NoChallengeError, pause, WireClient } from "./_wire.ts";

/** Hellos in flight at once. */
const HELLO_CONCURRENCY = 200;
/** Publish frames per write. */
const PUBLISH_BATCH = 1000;
/** Publishes sent but not yet answered before the writer waits (the reader keeps up). */
const PUBLISH_WINDOW = 5000;

export const sessionLimits: Attack = {
  name: "session-limits",
  summary: "10,000 Hellos from one address, 100,000 Publish on one session → a cap answers",
  budgetMs: (scale) => scale.quick ? 60_000 : 110_000,
  async run(lab, scale) {
    const verdict = new Verdict();
    const server = await lab.server();
    const rss = lab.watchRss(server);
    const hellos = await floodHellos(lab, server, {
      count: scale.quick ? 1000 : 10_000,
      timeMs: scale.quick ? 15_000 : 40_000,
    });
    verdict.require(
      hellos.refused > 0,
      `Hellos from one address: ${hellos.accepted} accepted, ${hellos.refused} refused, ${hellos.unanswered} unanswered of ${hellos.attempted} attempted${
        hellos.connectErrors > 0 ? `, ${hellos.connectErrors} connects failed` : ""
      } in ${hellos.seconds} s`,
    );
    verdict.require(hellos.health.ok, `health with them held ${formatHealth(hellos.health)}`);
    const left = await settleSessions(server, 0, 10_000);
    verdict.require(left === 0, `sessions left after closing them ${left}`);

    const publishes = await floodPublishes(lab, server, {
      count: scale.quick ? 20_000 : 100_000,
      timeMs: scale.quick ? 15_000 : 40_000,
    });
    verdict.require(
      publishes.refused > 0 || publishes.closed,
      `Publish on one session: ${publishes.accepted} accepted, ${publishes.refused} refused${
        publishes.closed ? " then closed" : ""
      }, ${publishes.unanswered} unanswered of ${publishes.attempted} sent in ${publishes.seconds} s`,
    );
    const health = await probeServer(server.tcpPort);
    verdict.require(health.ok, `health after ${formatHealth(health)}`);
    verdict.require(await lab.alive(server), `server ${lab.describeExit(server)}`);
    verdict.note(formatRss(rss.stop()));
    return verdict.outcome();
  },
};

/** Opens `count` connections from 127.0.0.1, each saying Hello as another peer; holds them. */
async function floodHellos(
  lab: Lab,
  server: ServerProgram,
  options: { count: number; timeMs: number },
) {
  const started = performance.now();
  const deadline = started + options.timeMs;
  const inTime = lab.within(options.timeMs);
  const clients: WireClient[] = [];
  lab.defer(() => clients.forEach((c) => c.close()));
  let next = 0;
  let accepted = 0;
  let refused = 0;
  let unanswered = 0;
  let connectErrors = 0;
  await Promise.all(Array.from({ length: HELLO_CONCURRENCY }, async () => {
    while (next < options.count && inTime()) {
      const i = next++;
      let client: WireClient;
      try {
        client = await WireClient.connect(server.tcpPort, { timeoutMs: 5000 });
      } catch (err) {
        connectErrors++;
        if (connectErrors === 1) console.error(`  first connect error: ${errorText(err)}`);
        continue;
      }
      clients.push(client);
      const hostname = `flood-${i}`;
      let hello: Uint8Array;
      try {
        hello = await client.helloFrame(hostname, 1 + i % 65535);
      } catch (err) {
        // Over a cap the server refuses before its Challenge (Error busy, then closes): a
        // refusal like any other; the health probe and the liveness check judge the server.
        if (!(err instanceof NoChallengeError)) throw err;
        refused++;
        continue;
      }
      await client.write(hello);
      const outcome = await client.until(
        (m) => m.requestId === 1,
        Math.max(deadline - performance.now(), 1000),
      );
      if (outcome.kind === "timeout") unanswered++;
      else if (outcome.kind === "message" && outcome.message.type === MsgType.Welcome) accepted++;
      else refused++;
    }
  }));
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const health = await probeServer(server.tcpPort, 5000);
  for (const client of clients) client.close();
  return { attempted: next, accepted, refused, unanswered, connectErrors, seconds, health };
}

/** One session publishes `count` entries, pipelined; counts what was accepted and refused. */
async function floodPublishes(
  lab: Lab,
  server: ServerProgram,
  options: { count: number; timeMs: number },
) {
  const started = performance.now();
  const deadline = started + options.timeMs;
  const inTime = lab.within(options.timeMs);
  // Another host than the Hello flood's, whose sessions may still be closing.
  using client = await WireClient.connect(server.tcpPort, { from: hostAddress(1) });
  await client.write(
    await client.helloFrame("flood-publisher", 9),
  );
  const welcome = await client.until((m) => m.requestId === 1, 5000);
  if (welcome.kind !== "message" || welcome.message.type !== MsgType.Welcome) {
    throw new Error("Cannot flood publishes: the Hello got no Welcome");
  }
  let sent = 0;
  let accepted = 0;
  let refused = 0;
  let closed = false;
  const reading = (async () => {
    while (accepted + refused < options.count && inTime()) {
      const outcome = await client.read(Math.max(deadline - performance.now(), 1));
      if (outcome.kind === "closed") {
        closed = true;
        return;
      }
      if (outcome.kind === "timeout") return;
      const { message } = outcome;
      if (!message.reply) continue; // the server's pings
      if (message.type === MsgType.Published) accepted++;
      else refused++;
    }
  })();
  while (sent < options.count && !closed && inTime()) {
    if (sent - accepted - refused >= PUBLISH_WINDOW) {
      await pause(5);
      continue;
    }
    const frames: Uint8Array[] = [];
    for (let i = 0; i < PUBLISH_BATCH && sent < options.count; i++, sent++) {
      frames.push(frame(MsgType.Publish, sent + 2, fakeEntry(`flood-${sent}.bin`)));
    }
    if (!await client.write(joinBytes(frames))) closed = true;
  }
  await reading;
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  return {
    attempted: sent,
    accepted,
    refused,
    closed,
    unanswered: closed ? 0 : sent - accepted - refused,
    seconds,
  };
}
