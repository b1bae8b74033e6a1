// The mutation fuzzer: seeded cases of valid frames, mutated (attack/_mutate.ts), sent on
// fresh connections to the live index server and to a live peer's P2P port. After each batch
// the process must be alive and answer a health request within a bound; at the end no fuzz
// session may remain on the server and RSS must stay within a bound.
import { join } from "node:path";
import { type Message, MsgType, PROTOCOL_VERSION } from "../shared/protocol.ts";
import type { Program } from "../tests/e2e/_programs.ts";
import { type Attack, type Scale, Verdict } from "./_attack.ts";
import { type Health, liveSessions, probePeer, probeServer, settleSessions } from "./_health.ts";
import { type Lab, setUp } from "./_lab.ts";
import { formatRss, mb, readCpuMs, type RssFigures } from "./_meter.ts";
import {
  type CaseContext,
  caseRng,
  indexMessage,
  mutatedFrame,
  transferMessage,
} from "./_mutate.ts";
import { frame } from "./_frames.ts";
import type { Rng } from "../tests/unit/_rng.ts";
import { errorText, hostAddress, WireClient } from "./_wire.ts";

/** Fuzz connections open at once. */
const CONCURRENCY = 8;
/** Frames between two health checks. */
const BATCH_FRAMES = 250;
/** How long a case reads what the target answers before closing. */
const LINGER_MS = 150;
const HEALTH_BOUND_MS = 2000;
const RETRY_BOUND_MS = 5000;
const RSS_BOUND_BYTES = 200 * 1024 * 1024;
const SHARED_BYTES = 256 * 1024;

export const fuzz: Attack = {
  name: "fuzz",
  summary: "seeded mutations of valid frames → server and peer P2P port: no crash, no hang",
  budgetMs: (scale) => scale.quick ? 50_000 : 110_000,
  async run(lab, scale) {
    const verdict = new Verdict();
    const frames = scale.quick ? 1500 : 10_000;
    const timeMs = scale.quick ? 8000 : 35_000;
    const server = await lab.server();
    await lab.randomFile(join(lab.repo("target"), "fuzz.bin"), SHARED_BYTES, 11);
    const peer = await lab.peer("target", { server });
    const shared = await setUp(peer, "publish fuzz.bin");
    const sessionsBefore = await liveSessions(server);

    const onServer = await fuzzTarget(lab, server, {
      scale,
      frames,
      timeMs,
      port: server.tcpPort,
      build: (rand, n) => {
        const messages: Message[] = [];
        if (rand.chance(0.7)) {
          messages.push({
            type: MsgType.Hello,
            requestId: 1,
            reply: false,
            // Replaced by a Hello with a valid proof in runCase() (it needs the connection's
            // Challenge); this one's fields are what it keeps.
            body: {
              hostname: `fuzz-${n}`,
              p2pPort: rand.range(1, 65535),
              protocol: PROTOCOL_VERSION,
              id: "a".repeat(52),
              cert: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
              proof: new Uint8Array(64).toBase64(),
            },
          });
        }
        for (let i = rand.range(1, 6); i > 0; i--) messages.push(indexMessage(rand, n));
        return messages;
      },
      probe: (boundMs) => probeServer(server.tcpPort, boundMs),
    });
    report(verdict, lab, "server", server, onServer);
    const sessionsAfter = await settleSessions(server, sessionsBefore, 5000);
    verdict.require(
      sessionsAfter <= sessionsBefore,
      `server ghost sessions ${Math.max(sessionsAfter - sessionsBefore, 0)}`,
    );

    const ctx: CaseContext = { fname: "fuzz.bin", rootHash: shared.rootHash, size: SHARED_BYTES };
    const onPeer = await fuzzTarget(lab, peer, {
      scale,
      frames,
      timeMs,
      port: peer.p2pPort,
      build: (rand, n) => {
        const messages: Message[] = [];
        if (rand.chance(0.7)) {
          messages.push({
            type: MsgType.GetInfo,
            requestId: 1,
            reply: false,
            body: { fname: "fuzz.bin", from: `fuzz-${n}:1` },
          });
        }
        for (let i = rand.range(1, 6); i > 0; i--) messages.push(transferMessage(rand, n, ctx));
        return messages;
      },
      probe: (boundMs) => probePeer(peer.p2pPort, "fuzz.bin", boundMs),
    });
    report(verdict, lab, "peer", peer, onPeer);
    verdict.note(`seed ${scale.seed}`);
    return verdict.outcome();
  },
};

interface FuzzOptions {
  scale: Scale;
  frames: number;
  timeMs: number;
  port: number;
  /** The valid messages of case `n`, before mutation. */
  build: (rand: Rng, n: number) => Message[];
  probe: (boundMs: number) => Promise<Health>;
}

interface FuzzResult {
  frames: number;
  cases: number;
  batches: number;
  crashed: boolean;
  /** Batches after which the health probe failed twice. */
  hangs: number;
  /** Probes that failed once and then answered. */
  slowProbes: number;
  /** Where it went wrong: "cases 1200-1260: reason". */
  firstFailure: string | undefined;
  rss: RssFigures;
  growthBytes: number;
  /** CPU time the target spent while fuzzed, ms. */
  cpuMs: number | undefined;
  clientErrors: Map<string, number>;
}

function report(verdict: Verdict, lab: Lab, name: string, program: Program, r: FuzzResult) {
  verdict.note(
    `${name}: ${r.frames} frames in ${r.cases} cases, ${r.batches} batches, cpu ${
      r.cpuMs === undefined ? "?" : `${(r.cpuMs / 1000).toFixed(1)} s`
    }`,
  );
  verdict.require(
    !r.crashed,
    `${name} crashes ${r.crashed ? 1 : 0}${r.crashed ? ` (${lab.describeExit(program)})` : ""}`,
  );
  verdict.require(
    r.hangs === 0,
    `${name} hangs ${r.hangs}${r.slowProbes > 0 ? ` (+${r.slowProbes} slow probes)` : ""}`,
  );
  if (r.firstFailure) verdict.note(`${name} first failure after ${r.firstFailure}`);
  verdict.require(
    r.growthBytes <= RSS_BOUND_BYTES,
    `${name} ${formatRss(r.rss)} (growth ${mb(r.growthBytes)})`,
  );
  if (r.clientErrors.size > 0) {
    verdict.note(
      `${name} client errors ${[...r.clientErrors].map(([t, n]) => `${n}× ${t}`).join("; ")}`,
    );
  }
}

async function fuzzTarget(lab: Lab, program: Program, options: FuzzOptions): Promise<FuzzResult> {
  const rss = lab.watchRss(program);
  const cpuBeforeMs = readCpuMs(program.child.pid);
  const inTime = lab.within(options.timeMs);
  const result: Omit<FuzzResult, "rss" | "growthBytes" | "cpuMs"> = {
    frames: 0,
    cases: 0,
    batches: 0,
    crashed: false,
    hangs: 0,
    slowProbes: 0,
    firstFailure: undefined,
    clientErrors: new Map(),
  };
  while (result.frames < options.frames && inTime()) {
    const firstCase = result.cases;
    const batchEnd = Math.min(result.frames + BATCH_FRAMES, options.frames);
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (result.frames < batchEnd && inTime()) {
        const n = result.cases++;
        const rand = caseRng(options.scale.seed, n);
        const messages = options.build(rand, n);
        result.frames += messages.length;
        try {
          await runCase(options.port, hostAddress(n % 5000), rand, messages);
        } catch (err) {
          const text = errorText(err);
          result.clientErrors.set(text, (result.clientErrors.get(text) ?? 0) + 1);
        }
      }
    }));
    result.batches++;
    const where = `cases ${firstCase}-${result.cases - 1} (seed ${options.scale.seed})`;
    const health = await options.probe(HEALTH_BOUND_MS);
    if (!health.ok) {
      if (!await lab.alive(program)) {
        result.crashed = true;
        result.firstFailure ??= `${where}: ${lab.describeExit(program)}`;
        break;
      }
      // One slow answer can be load; two in a row, the second with a longer bound, is a hang.
      const again = await options.probe(RETRY_BOUND_MS);
      if (again.ok) {
        result.slowProbes++;
      } else {
        result.hangs++;
        result.firstFailure ??= `${where}: ${health.reason}`;
        break;
      }
    }
  }
  if (!result.crashed && !await lab.alive(program, 100)) result.crashed = true;
  const growthBytes = rss.growthBytes;
  const cpuAfterMs = readCpuMs(program.child.pid);
  const cpuMs = cpuBeforeMs === undefined || cpuAfterMs === undefined
    ? undefined
    : cpuAfterMs - cpuBeforeMs;
  return { ...result, rss: rss.stop(), growthBytes, cpuMs };
}

/** One fresh connection: the case's frames (mutated), in one or a few writes; then close. */
async function runCase(
  port: number,
  from: string,
  rand: Rng,
  messages: Message[],
): Promise<void> {
  using client = await WireClient.connect(port, { from });
  // An opening Hello or GetInfo answers this connection's Challenge for real, so that the
  // mutations reach the handlers behind the protocol-2 checks.
  const first = messages[0];
  if (first?.type === MsgType.Hello) {
    messages[0] = await client.helloMessage(first.body.hostname, first.body.p2pPort);
  } else if (first?.type === MsgType.GetInfo) {
    const { fname, from } = first.body;
    messages[0] = await client.getInfoMessage(from === undefined ? { fname } : { fname, from });
  }
  const parts = messages.map((m, i) =>
    // The opening frame (Hello, GetInfo) stays valid more often, so that mutations reach the
    // handlers behind it.
    mutatedFrame(rand, m, i === 0 ? 0.2 : 0.8).bytes
  );
  for (const bytes of parts) {
    if (!await client.write(bytes)) return;
  }
  if (rand.chance(0.2)) return; // close at once, mid-answer
  await client.until(() => false, LINGER_MS);
  if (rand.chance(0.1)) await client.write(frame(MsgType.Goodbye, 0, { reason: "fuzz" }));
}
