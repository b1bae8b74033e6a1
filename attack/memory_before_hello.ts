// Attack 8, memory before Hello: connections that send a frame header announcing a 16 MiB
// body (the protocol's limit) and then the body one byte short, and stay open. Nobody has
// said who they are, yet a server that buffers each body holds 16 MiB per connection. The
// index server and a peer's P2P port must keep their RSS within RSS_BOUND_BYTES of where it
// started, and keep answering.
import { join } from "node:path";
import { encodeHeader } from "../shared/encode.ts";
import { DEFAULT_LIMITS, MsgType } from "../shared/protocol.ts";
import type { Program } from "../tests/e2e/_programs.ts";
import { type Attack, Verdict } from "./_attack.ts";
import { formatHealth, type Health, probePeer, probeServer } from "./_health.ts";
import { type Lab, setUp } from "./_lab.ts";
import { formatRss, mb } from "./_meter.ts";
import { errorText, hostAddress, pause, WireClient, withinMs } from "./_wire.ts";

const BODY_BYTES = DEFAULT_LIMITS.maxBodyBytes;
const RSS_BOUND_BYTES = 200 * 1024 * 1024;
/** Connections sending their body at once. */
const CONCURRENCY = 8;

export const memoryBeforeHello: Attack = {
  name: "memory-before-hello",
  summary:
    "48 connections send a 16 MiB header and the body minus one byte, held open → RSS bounded",
  budgetMs: (scale) => scale.quick ? 60_000 : 100_000,
  async run(lab, scale) {
    const verdict = new Verdict();
    const connections = scale.quick ? 12 : 48;
    const sendMs = scale.quick ? 12_000 : 30_000;
    const server = await lab.server();
    await lab.randomFile(join(lab.repo("victim"), "probe.bin"), 1024, 3);
    const peer = await lab.peer("victim", { server });
    await setUp(peer, "publish probe.bin");

    const targets: [string, Program, number, MsgType, () => Promise<Health>][] = [
      ["server", server, server.tcpPort, MsgType.Hello, () => probeServer(server.tcpPort)],
      ["peer P2P", peer, peer.p2pPort, MsgType.GetInfo, () => probePeer(peer.p2pPort, "probe.bin")],
    ];
    for (const [name, program, port, type, probe] of targets) {
      const result = await hold(lab, program, { port, type, connections, sendMs, probe });
      verdict.require(
        result.growthBytes <= RSS_BOUND_BYTES,
        `${name}: ${formatRss(result.rss)} (growth ${mb(result.growthBytes)}, bound ${
          mb(RSS_BOUND_BYTES)
        })`,
      );
      verdict.note(
        `${name}: ${result.sent}/${connections} bodies sent, ${result.refused} refused${
          result.errors.length > 0 ? ` (first error: ${result.errors[0]})` : ""
        }`,
      );
      verdict.require(result.health.ok, `${name} health while held ${formatHealth(result.health)}`);
      verdict.require(await lab.alive(program), `${name} ${lab.describeExit(program)}`);
    }
    return verdict.outcome();
  },
};

interface HoldOptions {
  port: number;
  type: MsgType;
  connections: number;
  sendMs: number;
  probe: () => Promise<Health>;
}

/** Opens the connections, sends the short bodies, probes, then closes them; with RSS figures. */
async function hold(lab: Lab, program: Program, options: HoldOptions) {
  const rss = lab.watchRss(program);
  const header = encodeHeader({
    type: options.type,
    flags: 0,
    requestId: 1,
    bodyBytes: BODY_BYTES,
  });
  const body = new Uint8Array(BODY_BYTES - 1).fill(0x20);
  const clients: WireClient[] = [];
  lab.defer(() => clients.forEach((c) => c.close()));
  const deadline = performance.now() + options.sendMs;
  const inTime = lab.within(options.sendMs);
  let next = 0;
  let sent = 0;
  let refused = 0;
  const errors: string[] = [];
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < options.connections && inTime()) {
      // Each from its own address: per-address limits are not what this attack tests.
      const from = hostAddress(next++);
      let client: WireClient;
      try {
        client = await WireClient.connect(options.port, { from });
      } catch (err) {
        refused++;
        errors.push(`connect: ${errorText(err)}`);
        continue;
      }
      clients.push(client);
      const writing = client.write(header).then((ok) => ok && client.write(body)).catch((err) => {
        errors.push(errorText(err));
        return false;
      });
      const wrote = await withinMs(writing, deadline - performance.now());
      if (wrote === true) sent++;
      else if (wrote === false) refused++;
    }
  }));
  const health = await options.probe();
  for (const client of clients) client.close();
  // Let the process notice the closes and free what it held.
  const settleUntil = performance.now() + 3000;
  while (performance.now() < settleUntil && (rss.sample() ?? 0) > (rss.beforeBytes ?? 0) * 2) {
    await pause(200);
  }
  const figures = rss.stop();
  return { rss: figures, growthBytes: rss.growthBytes, sent, refused, errors, health };
}
