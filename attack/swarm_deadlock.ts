// Attack 6, swarm deadlock: one seed with 2 session slots, a queue of 1 and a 4 MB/s upload
// cap, and four default peers fetching the same 20 MiB file at once while serving each other
// the pieces they have. Every fetch must end, done or with a clear error, within the bound.
import { join } from "node:path";
import type { PeerProgram } from "../tests/e2e/_programs.ts";
import { type Attack, Verdict } from "./_attack.ts";
import { setUp } from "./_lab.ts";
import { errorText } from "./_wire.ts";

const MIB = 1024 * 1024;
const FILE_BYTES = 20 * MIB;
const FETCHERS = 4;
const SEED_ARGS = ["--max-sessions", "2", "--max-queue", "1", "--max-upload-rate", "4000000"];

export const swarmDeadlock: Attack = {
  name: "swarm-deadlock",
  summary: "seed (2 slots, queue 1, 4 MB/s) and 4 fetchers of one 20 MiB file → all fetches end",
  budgetMs: (scale) => scale.quick ? 50_000 : 70_000,
  async run(lab, scale) {
    const verdict = new Verdict();
    const boundMs = scale.quick ? 30_000 : 45_000;
    await lab.randomFile(join(lab.repo("seed"), "swarm.bin"), FILE_BYTES, 9);
    const server = await lab.server();
    const seed = await lab.peer("seed", { server, args: SEED_ARGS });
    await setUp(seed, "publish swarm.bin");
    const fetchers: PeerProgram[] = [];
    for (let i = 0; i < FETCHERS; i++) fetchers.push(await lab.peer(`fetcher-${i}`, { server }));

    const started = performance.now();
    const results = await Promise.all(fetchers.map(async (peer) => {
      try {
        const answer = await peer.command("fetch swarm.bin", { timeoutMs: boundMs });
        const seconds = ((performance.now() - started) / 1000).toFixed(1);
        if (answer.ok === true) return { ended: true, ok: true, text: `ok ${seconds} s` };
        const clear = typeof answer.error === "string" && answer.error.startsWith("Cannot");
        return { ended: clear, ok: false, text: `error ${seconds} s: ${answer.error}` };
      } catch (err) {
        const text = err instanceof Error && err.message.includes("Timed out")
          ? `no answer in ${boundMs / 1000} s`
          : errorText(err).split("\n")[0]!;
        return { ended: false, ok: false, text };
      }
    }));
    const ended = results.filter((r) => r.ended).length;
    const ok = results.filter((r) => r.ok).length;
    verdict.require(ended === FETCHERS, `fetches ended ${ended}/${FETCHERS} (${ok} ok)`);
    verdict.note(results.map((r, i) => `fetcher-${i} ${r.text}`).join("; "));
    const crashed = [seed, ...fetchers].filter((p) => lab.exitOf(p) !== undefined);
    verdict.require(crashed.length === 0, `peers exited ${crashed.length}`);
    return verdict.outcome();
  },
};
