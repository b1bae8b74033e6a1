// End to end: two index servers over one PostgreSQL serve one catalogue. A peer on server A is
// found through server B; when A dies (SIGKILL) its peers move to B and the entries of peers
// that cannot follow stop being returned once their lease ends.
import assert from "node:assert/strict";
import { join } from "node:path";
import { PG_URL, pgStep, tempSchema } from "../_pg.ts";
import {
  type PeerProgram,
  pollUntil,
  type ServerProgram,
  spawnPeer,
  spawnServer,
  tempDir,
} from "./_programs.ts";

// Pings every 200 ms, dropped after 1 s silent; leases last twice that.
const FAST = ["--ping-interval-ms", "200", "--ping-timeout-ms", "1000"];

Deno.test("two servers over one PostgreSQL share a catalogue and take over each other's peers", async (t) => {
  await pgStep(t, async () => {
    await using schema = await tempSchema();
    const url = new URL(PG_URL);
    url.searchParams.set("search_path", schema.name);
    await using dir = await tempDir("lanshare-e2e-");
    const procs: (ServerProgram | PeerProgram)[] = [];
    try {
      const a = await spawnServer({ db: url.href, args: FAST });
      procs.push(a);
      const b = await spawnServer({ db: url.href, args: FAST });
      procs.push(b);
      const repos = ["mover", "stuck", "asker"].map((n) => join(dir.path, n));
      for (const repo of repos) await Deno.mkdir(repo, { recursive: true });
      await Deno.writeTextFile(join(repos[0]!, "shared.txt"), "through A, then B");
      await Deno.writeTextFile(join(repos[1]!, "stale.txt"), "only on A");
      const both = `127.0.0.1:${a.tcpPort},127.0.0.1:${b.tcpPort}`;
      // "mover" knows both servers, "stuck" only A, "asker" only B.
      const mover = await spawnPeer({
        repo: repos[0]!,
        hostname: "mover",
        server: a,
        args: ["--server", both],
      });
      procs.push(mover);
      const stuck = await spawnPeer({
        repo: repos[1]!,
        hostname: "stuck",
        server: a,
        direct: true,
      });
      procs.push(stuck);
      const asker = await spawnPeer({
        repo: repos[2]!,
        hostname: "asker",
        server: b,
        direct: true,
      });
      procs.push(asker);
      assert.equal((await mover.command("publish shared.txt")).ok, true);
      assert.equal((await stuck.command("publish stale.txt")).ok, true);

      // Cross-server: the asker on B fetches from the mover registered on A.
      const fetched = await asker.command("fetch shared.txt");
      assert.equal(fetched.ok, true, JSON.stringify(fetched));
      assert.equal(await Deno.readTextFile(join(repos[2]!, "shared.txt")), "through A, then B");
      // B's shell reaches A's peer: discover from the index, ping through its P2P port.
      const discover = await b.command("discover mover", /shared\.txt/);
      assert.match(discover.join("\n"), /mover 127\.0\.0\.1:\d+: 1 file\(s\) \(from the index\)/);
      const ping = await b.command("ping mover", /mover/);
      assert.match(ping.at(-1)!, /not on this server; P2P port \d+ open/);

      await a.kill("SIGKILL");
      const killedAt = performance.now();
      // The mover reconnects to B and publishes again; the stuck peer's entry expires with its
      // lease and is no longer returned.
      await pollUntil(async () => {
        const answer = await b.command(
          "discover mover",
          /\(live\)|\(from the index\)|no live peer/,
        );
        return /\(live\)/.test(answer.at(-1)!);
      }, 10_000);
      await pollUntil(async () => {
        // Until the lease ends the stuck peer is still listed (and, alive, still serves).
        const answer = await asker.command("fetch stale.txt --force");
        return answer.ok === false && /no live peer shares it/.test(answer.error);
      }, 10_000);
      console.log(
        `stale entries gone ${(performance.now() - killedAt).toFixed(0)} ms after the kill`,
      );
      const again = await asker.command("fetch shared.txt --force");
      assert.equal(again.ok, true, JSON.stringify(again));
      const files = await b.command("files", /stale\.txt .*@stuck/);
      assert.match(files.join("\n"), /stale\.txt .*@stuck:\d+ \(offline\)/);
    } catch (err) {
      for (const p of procs) console.error(p.context());
      throw err;
    } finally {
      await Promise.all(procs.map((p) => p.kill()));
    }
  });
});
