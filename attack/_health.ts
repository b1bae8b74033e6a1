// Health probes the attacks judge by: does the process still answer a plain request from a
// fresh connection within a bound, and how many sessions does the server hold.
import { type Message, MsgType } from "../shared/protocol.ts";
import type { ServerProgram } from "../tests/e2e/_programs.ts";
import { frame, joinBytes } from "./_frames.ts";
import { describeOutcome, errorText, probeAddress, WireClient } from "./_wire.ts";

/** A probe's answer: its latency, or why it failed. */
export type Health = { ok: true; ms: number } | { ok: false; reason: string };

/** "ok 3 ms" or "FAILED (reason)" */
export function formatHealth(health: Health): string {
  return health.ok ? `ok ${health.ms.toFixed(0)} ms` : `FAILED (${health.reason})`;
}

let probes = 0;

/** What one probe sends on its connection and which reply it waits for. */
interface ProbeExchange {
  /**
   * The frames to send on `client` (after reading its Challenge); `n` numbers this probe (its
   * own host name and source address).
   */
  request(client: WireClient, n: number): Promise<Uint8Array>;
  /** Picks the reply to judge; other messages are read past. */
  isAnswer(message: Message): boolean;
  /** The reply type that means healthy. */
  expected: MsgType;
  /** The reply's name in the "no … in N ms" reason. */
  awaited: string;
}

/**
 * Sends `exchange`'s request on a fresh connection from the probe's own loopback address and
 * judges the answer: healthy when the expected reply comes within `boundMs` (connect included).
 */
async function probe(port: number, boundMs: number, exchange: ProbeExchange): Promise<Health> {
  const started = performance.now();
  const n = ++probes;
  let client: WireClient;
  try {
    client = await WireClient.connect(port, { timeoutMs: boundMs, from: probeAddress(n) });
  } catch (err) {
    return { ok: false, reason: `connect: ${errorText(err)}` };
  }
  using _ = client;
  let bytes: Uint8Array;
  try {
    bytes = await exchange.request(client, n);
  } catch (err) {
    return { ok: false, reason: `handshake: ${errorText(err)}` };
  }
  if (!await client.write(bytes)) return { ok: false, reason: "closed on write" };
  const left = boundMs - (performance.now() - started);
  const outcome = await client.until(exchange.isAnswer, Math.max(left, 1));
  if (outcome.kind === "timeout") {
    return { ok: false, reason: `no ${exchange.awaited} in ${boundMs} ms` };
  }
  if (outcome.kind === "closed") return { ok: false, reason: `closed: ${outcome.reason}` };
  if (outcome.message.type !== exchange.expected) {
    return { ok: false, reason: `answered ${describeOutcome(outcome)}` };
  }
  return { ok: true, ms: performance.now() - started };
}

/**
 * Registers a throwaway session on a fresh connection and asks who has a file: the server is
 * healthy when `Sources` comes back within `boundMs` (connect included). Probes come from
 * their own loopback addresses, as another host of the LAN would.
 */
export function probeServer(
  port: number,
  boundMs = 2000,
  fname = "health-probe.bin",
): Promise<Health> {
  return probe(port, boundMs, {
    request: async (client, n) =>
      joinBytes([
        await client.helloFrame(`attack-probe-${n}`, 9),
        frame(MsgType.WhoHas, 2, { fname }),
      ]),
    isAnswer: (m) => m.reply && m.requestId === 2,
    expected: MsgType.Sources,
    awaited: "answer",
  });
}

/**
 * Asks a peer's P2P port for the Info of a file it shares, on a fresh connection: healthy when
 * `Info` comes within `boundMs` (a `Queued` interim reply is waited through).
 */
export function probePeer(port: number, fname: string, boundMs = 2000): Promise<Health> {
  return probe(port, boundMs, {
    request: (client, n) => client.getInfoFrame({ fname, from: `attack-probe-${n}:9` }),
    isAnswer: (m) => m.type !== MsgType.Queued,
    expected: MsgType.Info,
    awaited: "Info",
  });
}

/** The server's own count of live sessions, from its `stats` shell command. */
export async function liveSessions(server: ServerProgram, timeoutMs = 5000): Promise<number> {
  const lines = await server.command("stats", /live session/, timeoutMs);
  const match = /(\d+) live session/.exec(lines.at(-1) ?? "");
  if (!match) throw new Error(`Cannot read the session count from "${lines.join(" / ")}"`);
  return Number(match[1]);
}

/**
 * Polls `liveSessions` until it is at most `target` or `timeoutMs` passes (sessions close
 * asynchronously after their connections do); returns the last count.
 */
export async function settleSessions(
  server: ServerProgram,
  target: number,
  timeoutMs: number,
): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const count = await liveSessions(server, Math.max(deadline - performance.now(), 1000));
    if (count <= target || performance.now() >= deadline) return count;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
