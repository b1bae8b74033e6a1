// Attack 5, slot starvation: connections to a peer's P2P port each ask for 64 MiB under a
// forged `from` (so the per-peer cap does not apply) and never read. A legitimate fetch from
// another peer process must still complete within FETCH_BOUND_MS, and so must the victim's own
// fetch of a file from a third peer.
import { join } from "node:path";
import { MsgType } from "../shared/protocol.ts";
import type { PeerProgram } from "../tests/e2e/_programs.ts";
import { type Attack, Verdict } from "./_attack.ts";
import { setUp } from "./_lab.ts";
import { formatRss } from "./_meter.ts";
import { frame, joinBytes } from "./_frames.ts";
import { errorText, pause, WireClient } from "./_wire.ts";

const MIB = 1024 * 1024;
const BIG_BYTES = 64 * MIB;
const FETCH_BOUND_MS = 30_000;
/** How long the attack waits for the victim to report its slots taken. */
const SETTLE_MS = 5000;

export const slotStarvation: Attack = {
  name: "slot-starvation",
  summary: "6 non-reading 64 MiB GetRange with forged `from` → legit fetches still complete",
  budgetMs: () => 75_000,
  async run(lab) {
    const verdict = new Verdict();
    const attackers = 6;
    await Deno.mkdir(lab.repo("victim"), { recursive: true });
    // Zeros are enough: the attack needs the size, not the content.
    await Deno.writeFile(join(lab.repo("victim"), "big.bin"), new Uint8Array(0));
    await Deno.truncate(join(lab.repo("victim"), "big.bin"), BIG_BYTES);
    await lab.randomFile(join(lab.repo("victim"), "small.bin"), MIB, 5);
    await lab.randomFile(join(lab.repo("third"), "third.bin"), MIB, 6);

    const server = await lab.server();
    const victim = await lab.peer("victim", { server });
    const third = await lab.peer("third", { server });
    const legit = await lab.peer("legit", { server });
    const big = await setUp(victim, "publish big.bin");
    await setUp(victim, "publish small.bin");
    await setUp(third, "publish third.bin");
    const rss = lab.watchRss(victim);

    const clients: WireClient[] = [];
    lab.defer(() => clients.forEach((c) => c.close()));
    for (let i = 0; i < attackers; i++) {
      const client = await WireClient.connect(victim.p2pPort);
      clients.push(client);
      const from = `forged-${i}:${1000 + i}`;
      await client.write(joinBytes([
        await client.getInfoFrame({ fname: "big.bin", from }),
        frame(MsgType.GetRange, 2, {
          fname: "big.bin",
          rootHash: big.rootHash,
          offset: 0,
          bytes: BIG_BYTES,
        }),
      ]));
    }
    const held = await waitForSlots(victim, attackers);
    verdict.note(`victim slots while attacked: ${held}`);

    const [legitFetch, ownFetch] = await Promise.all([
      timedFetch(legit, "small.bin"),
      timedFetch(victim, "third.bin"),
    ]);
    verdict.require(legitFetch.ok, `legit peer's fetch from the victim ${legitFetch.text}`);
    verdict.require(ownFetch.ok, `victim's own fetch ${ownFetch.text}`);
    verdict.require(await lab.alive(victim), `victim ${lab.describeExit(victim)}`);
    verdict.note(formatRss(rss.stop()));
    return verdict.outcome();
  },
};

/** Polls the victim's `status` until the attackers hold or wait for slots, within SETTLE_MS. */
async function waitForSlots(victim: PeerProgram, attackers: number): Promise<string> {
  const deadline = performance.now() + SETTLE_MS;
  let text = "unknown";
  while (performance.now() < deadline) {
    const status = await victim.command("status", { timeoutMs: SETTLE_MS });
    const slots = status.slots as { active: number; max: number; queued: number } | undefined;
    if (slots) {
      text = `${slots.active}/${slots.max} busy, ${slots.queued} queued`;
      if (slots.active + slots.queued >= Math.min(attackers, slots.max)) return text;
    }
    await pause(200);
  }
  return text;
}

/** Runs `fetch fname` on `peer` and says how it ended within FETCH_BOUND_MS. */
async function timedFetch(
  peer: PeerProgram,
  fname: string,
): Promise<{ ok: boolean; text: string }> {
  const started = performance.now();
  try {
    const answer = await peer.command(`fetch ${fname}`, { timeoutMs: FETCH_BOUND_MS });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    return answer.ok === true
      ? { ok: true, text: `ok in ${seconds} s` }
      : { ok: false, text: `failed in ${seconds} s: ${answer.error}` };
  } catch (err) {
    const text = err instanceof Error && err.message.startsWith("Timed out")
      ? `no answer in ${FETCH_BOUND_MS / 1000} s`
      : errorText(err).split("\n")[0]!;
    return { ok: false, text };
  }
}
