// Attack 2, search freeze: a glob of k `*?` pairs ending in a character no name holds
// (`*?*?*?*?*?*?*?*#` for k = 7) against an 84-character name costs a backtracking matcher
// about 84^k steps. While such a search runs, another connection's who-has must still be
// answered within WHO_HAS_BOUND_MS, and the search itself answered or refused in SEARCH_BOUND_MS.
import { MsgType } from "../shared/protocol.ts";
import type { ServerProgram } from "../tests/e2e/_programs.ts";
import { type Attack, Verdict } from "./_attack.ts";
import type { Lab } from "./_lab.ts";
import { fakeEntry, frame, joinBytes } from "./_frames.ts";
import { describeOutcome, pause, probeAddress, WireClient } from "./_wire.ts";

const WHO_HAS_BOUND_MS = 2000;
const SEARCH_BOUND_MS = 5000;
/** Time between two who-has of the watching connection. */
const WATCH_INTERVAL_MS = 100;
/** Most who-has one variant sends (the time bound ends the loop first). */
const MAX_WHO_HAS = 200;
/** 84 characters, none of them `#`. */
const LONG_NAME = `${"long-file-name-".repeat(5)}abcdefghi`;

export const searchFreeze: Attack = {
  name: "search-freeze",
  summary: "glob `*?`×k + `*#` (k=5..8) on an 84-char name → who-has elsewhere answered in 2 s",
  budgetMs: (scale) => scale.quick ? 30_000 : 60_000,
  async run(lab, scale) {
    const verdict = new Verdict();
    const ks = scale.quick ? [5, 7] : [5, 6, 7, 8];
    let server: ServerProgram | undefined;
    for (const k of ks) {
      // A frozen server stays frozen: each variant gets a fresh one if the last did not pass.
      server ??= await lab.server();
      const pattern = `${"*?".repeat(k)}*#`;
      const result = await searchWhileWatching(lab, server, pattern);
      const passed = result.searchMs !== undefined && !result.whoHasHung && result.alive;
      verdict.require(
        passed,
        `k=${k}: search ${result.search}, who-has worst ${
          result.whoHasHung ? `no answer in ${WHO_HAS_BOUND_MS} ms` : `${result.worstWhoHasMs} ms`
        } (${result.whoHasCount} asked)${
          result.alive ? "" : `, server ${lab.describeExit(server)}`
        }`,
      );
      if (!passed) {
        await server.kill();
        server = undefined;
      }
    }
    return verdict.outcome();
  },
};

interface FreezeResult {
  /** What the search got: its answer and time, or that none came. */
  search: string;
  searchMs: number | undefined;
  worstWhoHasMs: number;
  whoHasHung: boolean;
  whoHasCount: number;
  alive: boolean;
}

async function searchWhileWatching(
  lab: Lab,
  server: ServerProgram,
  pattern: string,
): Promise<FreezeResult> {
  using publisher = await WireClient.connect(server.tcpPort);
  await publisher.write(joinBytes([
    await publisher.helloFrame("freeze-publisher", 9),
    frame(MsgType.Publish, 2, fakeEntry(LONG_NAME)),
    frame(MsgType.Publish, 3, fakeEntry("watched.bin")),
  ]));
  await publisher.until((m) => m.requestId === 3, 5000);
  using watcher = await WireClient.connect(server.tcpPort, { from: probeAddress(0) });
  await watcher.write(
    await watcher.helloFrame("freeze-watcher", 9),
  );
  await watcher.until((m) => m.requestId === 1, 5000);
  using searcher = await WireClient.connect(server.tcpPort);
  await searcher.write(joinBytes([
    await searcher.helloFrame("freeze-searcher", 9),
    frame(MsgType.Search, 2, { pattern, offset: 0, limit: 100 }),
  ]));

  const started = performance.now();
  const searched = searcher.until((m) => m.requestId === 2, SEARCH_BOUND_MS).then((outcome) => ({
    outcome,
    ms: performance.now() - started,
  }));
  let searchDone = false;
  void searched.then(() => searchDone = true);

  let worst = 0;
  let hung = false;
  let asked = 0;
  // Ask until the search is answered (and once more after), or a who-has goes unanswered.
  const inTime = lab.within(SEARCH_BOUND_MS + 1000);
  for (let id = 2; !hung && inTime() && id < MAX_WHO_HAS; id++) {
    const sentAt = performance.now();
    asked++;
    await watcher.write(frame(MsgType.WhoHas, id, { fname: "watched.bin" }));
    const outcome = await watcher.until((m) => m.requestId === id, WHO_HAS_BOUND_MS);
    const ms = Math.round(performance.now() - sentAt);
    if (outcome.kind !== "message") hung = true;
    worst = Math.max(worst, ms);
    if (searchDone) break;
    await pause(WATCH_INTERVAL_MS);
  }
  const { outcome, ms } = await searched;
  return {
    search: outcome.kind === "timeout"
      ? `no answer in ${SEARCH_BOUND_MS} ms`
      : `${describeOutcome(outcome)} in ${ms.toFixed(0)} ms`,
    searchMs: outcome.kind === "timeout" ? undefined : ms,
    worstWhoHasMs: worst,
    whoHasHung: hung,
    whoHasCount: asked,
    alive: await lab.alive(server, 100),
  };
}
