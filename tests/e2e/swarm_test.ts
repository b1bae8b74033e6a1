// End to end: a flash crowd on a seed with few slots and a short queue (issue 10, the swarm
// deadlock). Every fetch must end, complete or with a clear error, within a bound set by its
// timeouts: none may hang on a slot held by a connection waiting in a queue or with nothing to
// ask, nor on a socket the other side has closed.
import assert from "node:assert/strict";
import { join } from "node:path";
import { sha256File, spawnPeer, spawnServer, tempDir, writeRandomFile } from "./_programs.ts";

const MIB = 1024 * 1024;
/** Short timeouts, so that a hang shows within the bound. */
const TIMEOUTS = ["--stall-timeout-ms", "3000", "--ttfb-timeout-ms", "1000"];
/**
 * Every fetch answers within this, ms. The fetches need ~3 s at the seed's rate; stalls end
 * within a few stall timeouts. Before the fix they lasted until the seed's 30 s idle timeout
 * (minutes with the default 10 s stall timeout).
 */
const BOUND_MS = 25_000;

Deno.test("a flash crowd on a seed with 2 slots and a queue of 1: every fetch ends in time", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await using server = await spawnServer();
  const seedRepo = join(dir.path, "seed");
  await Deno.mkdir(seedRepo, { recursive: true });
  await writeRandomFile(join(seedRepo, "crowd.bin"), 8 * MIB, 91);
  // On one host every peer connects from 127.0.0.1: --max-per-peer lets each count as one
  // peer of its own, as on a LAN, where the per-address cap would not bind.
  await using seed = await spawnPeer({
    repo: seedRepo,
    hostname: "seed",
    server,
    args: [
      ...["--max-sessions", "2", "--max-per-peer", "2", "--max-queue", "1"],
      ...["--max-upload-rate", "4000000", ...TIMEOUTS],
    ],
  });
  assert.equal((await seed.command("publish crowd.bin")).ok, true);
  const fetchers = await Promise.all(
    [0, 1, 2, 3].map((i) =>
      spawnPeer({
        repo: join(dir.path, `f${i}`),
        hostname: `f${i}`,
        server,
        args: ["--max-per-peer", "4", ...TIMEOUTS],
      })
    ),
  );
  try {
    const answers = await Promise.all(
      fetchers.map((f) => f.command("fetch crowd.bin", { timeoutMs: BOUND_MS })),
    );
    const original = await sha256File(join(seedRepo, "crowd.bin"));
    for (const [i, answer] of answers.entries()) {
      if (answer.ok) {
        assert.equal(await sha256File(join(dir.path, `f${i}`, "crowd.bin")), original);
      } else {
        assert.match(answer.error, /^Cannot fetch "crowd.bin": /, JSON.stringify(answer));
      }
    }
    assert.ok(answers.some((a) => a.ok), `some fetch completes: ${JSON.stringify(answers)}`);
  } finally {
    for (const f of fetchers) await f.kill();
  }
});
