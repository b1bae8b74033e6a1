// End to end: the real server and real peers as processes, found by broadcast on loopback,
// driven through their shells. Publish, fetch, verify bytes; bad paths refused; operator shell.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type Answer,
  exists,
  type PeerProgram,
  sha256File,
  spawnPeer,
  spawnServer,
  tempDir,
  writeRandomFile,
} from "./_programs.ts";

const MIB = 1024 * 1024;

Deno.test("three peers found by broadcast publish and fetch byte-exact copies", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await using server = await spawnServer();
  const repos = ["a", "b", "c"].map((n) => join(dir.path, n));
  await Deno.mkdir(repos[0]!, { recursive: true });
  await writeRandomFile(join(repos[0]!, "big.bin"), 100 * MIB, 7);
  await Deno.writeFile(join(repos[0]!, "empty.txt"), new Uint8Array(0));
  await Deno.writeTextFile(join(repos[0]!, "notes.txt"), "naïve café ✓\n");
  await using a = await spawnPeer({ repo: repos[0]!, hostname: "alpha", server });
  await using b = await spawnPeer({ repo: repos[1]!, hostname: "beta", server });
  await using c = await spawnPeer({ repo: repos[2]!, hostname: "gamma", server });

  const published = await a.command("publish big.bin");
  assert.equal(published.ok, true, JSON.stringify(published));
  assert.equal(published.status, "created");
  assert.equal(published.size, 100 * MIB);
  assert.equal((await a.command("publish empty.txt")).ok, true);
  const unicode = await a.command('publish notes.txt "résumé 日本語.txt"');
  assert.equal(unicode.ok, true, JSON.stringify(unicode));
  assert.equal((await a.command("publish big.bin")).status, "unchanged");

  const search = await b.command("search");
  assert.deepEqual(search.entries.map((e: { fname: string }) => e.fname), [
    "big.bin",
    "empty.txt",
    "résumé 日本語.txt",
  ]);
  const fnames = (answer: Answer) => answer.entries.map((e: { fname: string }) => e.fname);
  const page = await b.command("search --offset 1 --limit 1");
  assert.equal(page.total, 3);
  assert.deepEqual(fnames(page), ["empty.txt"]);
  assert.deepEqual(fnames(await b.command("search *.BIN")), ["big.bin"]);
  assert.deepEqual(fnames(await b.command("search ÉSUMÉ")), [], "case folding is ASCII only");
  assert.deepEqual(fnames(await b.command("search SUM")), ["résumé 日本語.txt"]);
  assert.match((await b.command("search --limit 0")).error, /usage/);

  for (const fname of ["empty.txt", "résumé 日本語.txt", "big.bin"]) {
    const answer = await b.command(`fetch "${fname}"`);
    assert.equal(answer.ok, true, JSON.stringify(answer));
    assert.equal(
      await sha256File(join(repos[1]!, fname)),
      await sha256File(join(repos[0]!, fname === "résumé 日本語.txt" ? "notes.txt" : fname)),
    );
  }
  assert.equal((await Deno.stat(join(repos[1]!, "empty.txt"))).size, 0);

  // The fetched copy spread: gamma now sees two sources and uses both.
  const spread = await c.command("fetch big.bin");
  assert.equal(spread.ok, true, JSON.stringify(spread));
  assert.equal(spread.versions[0].sources, 2);
  assert.equal(
    await sha256File(join(repos[2]!, "big.bin")),
    await sha256File(join(repos[0]!, "big.bin")),
  );
  console.log(
    `100 MiB fetch: ${(spread.bytesPerSecond / MIB).toFixed(0)} MiB/s from ${
      Object.keys(spread.bySource).length
    } sources`,
  );

  // Fetching again refuses to overwrite; --force replaces.
  const again = await b.command("fetch big.bin");
  assert.equal(again.ok, false);
  assert.match(again.error, /already exists/);
});

Deno.test("five peers fetch different files from one source at once", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await using server = await spawnServer();
  const sourceRepo = join(dir.path, "source");
  await Deno.mkdir(sourceRepo, { recursive: true });
  for (let i = 0; i < 5; i++) {
    await writeRandomFile(join(sourceRepo, `f${i}.bin`), 8 * MIB + i, 100 + i);
  }
  await using source = await spawnPeer({
    repo: sourceRepo,
    hostname: "source",
    server,
    args: ["--max-sessions", "5"],
  });
  for (let i = 0; i < 5; i++) assert.equal((await source.command(`publish f${i}.bin`)).ok, true);
  const fetchers: PeerProgram[] = [];
  try {
    for (let i = 0; i < 5; i++) {
      fetchers.push(
        await spawnPeer({ repo: join(dir.path, `p${i}`), hostname: `p${i}`, server, direct: true }),
      );
    }
    const answers = await Promise.all(fetchers.map((p, i) => p.command(`fetch f${i}.bin`)));
    for (const [i, answer] of answers.entries()) {
      assert.equal(answer.ok, true, JSON.stringify(answer));
      assert.equal(
        await sha256File(join(dir.path, `p${i}`, `f${i}.bin`)),
        await sha256File(join(sourceRepo, `f${i}.bin`)),
      );
    }
  } finally {
    await Promise.all(fetchers.map((p) => p.kill()));
  }
});

Deno.test("publish refuses paths outside the repository and fetch refuses bad names", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await using server = await spawnServer();
  const repo = join(dir.path, "repo");
  await Deno.mkdir(join(repo, "sub"), { recursive: true });
  await Deno.writeTextFile(join(dir.path, "secret.txt"), "outside");
  await Deno.writeTextFile(join(repo, "ok.txt"), "inside");
  await Deno.symlink(join(dir.path, "secret.txt"), join(repo, "escape.txt"));
  await Deno.symlink(dir.path, join(repo, "sub", "up"));
  await using peer = await spawnPeer({ repo, hostname: "careful", server });

  for (
    const [line, pattern] of [
      ["publish ../secret.txt", /outside the repository/],
      [`publish ${join(dir.path, "secret.txt")}`, /outside the repository/],
      ["publish /etc/hostname", /outside the repository/],
      ["publish escape.txt", /outside the repository/],
      ["publish sub/up/secret.txt", /outside the repository/],
      ["publish missing.txt", /no such file/],
      ["publish sub", /not a regular file/],
      ["publish .lanshare/hashes.json", /not a shareable file|no such file/],
      ["publish ok.txt ../evil", /path separator|'\.\.'/],
      ["fetch ../../etc/passwd", /path separator/],
      ['fetch ""', /usage|empty/],
      ["fetch nobody-has-this", /no live peer shares it/],
    ] as const
  ) {
    const answer = await peer.command(line);
    assert.equal(answer.ok, false, `${line}: ${JSON.stringify(answer)}`);
    assert.match(answer.error, pattern, line);
  }
  const ok = await peer.command("publish ok.txt");
  assert.equal(ok.ok, true);
  const list = await peer.command("list");
  assert.deepEqual(list.files.map((f: { fname: string }) => f.fname), ["ok.txt"]);
});

Deno.test("killing the only source mid-transfer leaves no file under the final name", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await using server = await spawnServer();
  const sourceRepo = join(dir.path, "source");
  const fetchRepo = join(dir.path, "fetcher");
  await Deno.mkdir(sourceRepo, { recursive: true });
  await writeRandomFile(join(sourceRepo, "movie.bin"), 64 * MIB, 3);
  // The source sends at 8 MiB/s so the transfer is surely in progress when it dies.
  await using source = await spawnPeer({
    repo: sourceRepo,
    hostname: "source",
    server,
    args: ["--max-upload-rate", String(8 * MIB)],
  });
  await using fetcher = await spawnPeer({
    repo: fetchRepo,
    hostname: "fetcher",
    server,
    args: ["--ttfb-timeout-ms", "1000"],
  });
  assert.equal((await source.command("publish movie.bin")).ok, true);
  const from = fetcher.stdout.lines.length;
  const answer = fetcher.command("fetch movie.bin", { timeoutMs: 60_000 });
  await fetcher.waitLine(
    (l) => l.includes('"event":"progress"') && JSON.parse(l).doneBytes > 4 * MIB,
    "progress",
    { from },
  );
  await source.kill();
  const result = await answer;
  assert.equal(result.ok, false, JSON.stringify(result));
  assert.match(result.error, /no source left/);
  assert.equal(await exists(join(fetchRepo, "movie.bin")), false);
  const status = await fetcher.command("status");
  assert.equal(status.partials.length, 1);
  assert.ok(status.partials[0].verifiedPieces > 0);
});

Deno.test("server shell discover and ping reach a live peer", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await using server = await spawnServer();
  const repo = join(dir.path, "repo");
  await Deno.mkdir(repo, { recursive: true });
  await Deno.writeTextFile(join(repo, "doc.txt"), "hello");
  await using peer = await spawnPeer({ repo, hostname: "shelly", server });
  assert.equal((await peer.command("publish doc.txt")).ok, true);

  const discover = await server.command("discover shelly", /doc\.txt/);
  assert.match(discover.join("\n"), /shelly 127\.0\.0\.1:\d+: 1 file\(s\) \(live\)/);
  const ping = await server.command("ping shelly", /shelly/);
  assert.match(ping.at(-1)!, /rtt \d+\.\d+ ms; P2P port \d+ open/);
  // Wait for the answer's last line, so that the next command's answer starts after it.
  const peers = await server.command("peers", /^\s+shelly\s/);
  assert.match(peers[0]!, /1 peer\(s\), 1 entry/);
  const unknown = await server.command("ping nobody", /no live peer/);
  assert.match(unknown[0]!, /no live peer named "nobody"/);
});
