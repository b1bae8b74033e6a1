// End to end: the index across a restart. The catalogue survives in SQLite, entries of peers
// that are gone stay listed as offline, and live peers reconnect and publish again by themselves.
import assert from "node:assert/strict";
import { join } from "node:path";
import { pollUntil, type ServerProgram, spawnPeer, spawnServer, tempDir } from "./_programs.ts";

Deno.test("a restarted index keeps its catalogue and its peers come back", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  const db = join(dir.path, "index", "lanshare-index.db");
  await Deno.mkdir(join(dir.path, "index"));
  let server: ServerProgram = await spawnServer({
    db,
    args: ["--ping-interval-ms", "200", "--ping-timeout-ms", "1000"],
  });
  try {
    const repos = ["stays", "gone", "asker"].map((n) => join(dir.path, n));
    for (const repo of repos) await Deno.mkdir(repo, { recursive: true });
    await Deno.writeTextFile(join(repos[0]!, "kept.txt"), "kept");
    await Deno.writeTextFile(join(repos[1]!, "orphan.txt"), "orphan");
    await using stays = await spawnPeer({
      repo: repos[0]!,
      hostname: "stays",
      server,
      direct: true,
    });
    await using gone = await spawnPeer({ repo: repos[1]!, hostname: "gone", server, direct: true });
    await using asker = await spawnPeer({
      repo: repos[2]!,
      hostname: "asker",
      server,
      direct: true,
    });
    assert.equal((await stays.command("publish kept.txt")).ok, true);
    assert.equal((await gone.command("publish orphan.txt")).ok, true);

    // The index dies without a word, and so does one peer while the index is down.
    const { tcpPort, udpPort } = server;
    await server.kill("SIGKILL");
    await gone.kill("SIGKILL");
    const restartedAt = performance.now();
    server = await spawnServer({
      db,
      port: tcpPort,
      announcePort: udpPort,
      args: ["--ping-interval-ms", "200", "--ping-timeout-ms", "1000"],
    });

    // Live peers reconnect with backoff and publish again: both are back well within 10 s.
    await pollUntil(
      async () => /^2 peer\(s\)/.test((await server.command("peers", /peer\(s\)/)).at(-1)!),
      10_000,
    );
    console.log(`peers back ${(performance.now() - restartedAt).toFixed(0)} ms after the restart`);

    // The dead peer's entry is still listed, as offline; who-has never returns it.
    const files = await server.command("files", /orphan\.txt/);
    assert.match(files.join("\n"), /orphan\.txt .*@gone:\d+ \(offline\)/);
    const orphan = await asker.command("fetch orphan.txt");
    assert.equal(orphan.ok, false);
    assert.match(orphan.error, /no live peer shares it/);
    // The reconnected peer's file is fetchable again.
    await pollUntil(async () => (await asker.command("fetch kept.txt")).ok, 10_000);
    assert.equal(await Deno.readTextFile(join(repos[2]!, "kept.txt")), "kept");
  } finally {
    await server.kill();
  }
});
