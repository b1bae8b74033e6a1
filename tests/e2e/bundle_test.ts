// End to end: `deno bundle` output (what `make bundle` ships where `deno compile` cannot fetch
// its runtime) runs as the real programs: a bundled server (with its SQLite writer worker) and
// two bundled peers share a file; a bundled server run without what it needs says what and exits.
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import {
  LOOPBACK_ARGS,
  type ProgramOutput,
  runToExit,
  sha256File,
  spawnPeer,
  spawnServer,
  tempDir,
  writeRandomFile,
} from "./_programs.ts";

async function bundle(entry: string, out: string): Promise<void> {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", "-o", out, entry],
    cwd: new URL("../../", import.meta.url).pathname,
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
}

Deno.test("bundled server and peers publish and fetch like the sources", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  const server = join(dir.path, "lanshare-server.js");
  const peer = join(dir.path, "lanshare-peer.js");
  await bundle("server/main.ts", server);
  await bundle("peer/main.ts", peer);
  // A database file, so that the bundle also starts itself as the SQLite writer worker.
  await Deno.mkdir(join(dir.path, "index"));
  await using index = await spawnServer({ script: server, db: join(dir.path, "index", "i.db") });
  const repos = ["one", "two"].map((n) => join(dir.path, n));
  await Deno.mkdir(repos[0]!, { recursive: true });
  await writeRandomFile(join(repos[0]!, "payload.bin"), 5 * 1024 * 1024 + 3, 11);
  await using one = await spawnPeer({
    repo: repos[0]!,
    hostname: "one",
    server: index,
    script: peer,
  });
  await using two = await spawnPeer({
    repo: repos[1]!,
    hostname: "two",
    server: index,
    script: peer,
  });
  assert.equal((await one.command("publish payload.bin")).ok, true);
  const fetched = await two.command("fetch payload.bin");
  assert.equal(fetched.ok, true, JSON.stringify(fetched));
  assert.equal(
    await sha256File(join(repos[1]!, "payload.bin")),
    await sha256File(join(repos[0]!, "payload.bin")),
  );
});

/** Runs a bundled program to its exit (bounded), outside this repository (no deno.json). */
function runBundled(script: string, flags: string[], args: string[]): Promise<ProgramOutput> {
  return runToExit(
    Deno.execPath(),
    ["run", "--quiet", "--no-config", ...flags, script, ...args],
    { cwd: dirname(script) },
  );
}

Deno.test("a bundled server whose SQLite writer cannot start exits 1 and never says listening", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await bundle("server/main.ts", join(dir.path, "lanshare-server.js"));
  const index = join(dir.path, "index");
  await Deno.mkdir(index);
  // Read access to the database folder only: the writer thread cannot load the bundle.
  const run = await runBundled(
    join(dir.path, "lanshare-server.js"),
    [
      "--unstable-net",
      "--allow-net",
      "--allow-env",
      "--allow-sys",
      `--allow-read=${index}`,
      `--allow-write=${index}`,
    ],
    [...LOOPBACK_ARGS, "--db", join(index, "i.db")],
  );
  assert.equal(run.code, 1, run.stderr);
  assert.doesNotMatch(run.stdout, /listening/);
  assert.match(run.stderr, /Cannot start: Cannot write the index database: .*--allow-read/);
});

Deno.test("a bundled server run without --unstable-net names the flag and exits 2", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await bundle("server/main.ts", join(dir.path, "lanshare-server.js"));
  const run = await runBundled(
    join(dir.path, "lanshare-server.js"),
    ["--allow-net", "--allow-env", "--allow-sys", "--allow-read", "--allow-write"],
    [...LOOPBACK_ARGS, "--db", ":memory:"],
  );
  assert.equal(run.code, 2, run.stderr);
  assert.equal(
    run.stderr.trim(),
    "Cannot start: Cannot start discovery: UDP needs Deno's --unstable-net flag (deno run --unstable-net ...)",
  );
  assert.doesNotMatch(run.stdout, /listening/);
});

Deno.test("a bundled peer run without --unstable-net names the flag and exits 2", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  const peer = join(dir.path, "lanshare-peer.js");
  await bundle("peer/main.ts", peer);
  const repo = join(dir.path, "repo");
  const run = await runBundled(
    peer,
    ["--allow-net", "--allow-env", "--allow-sys", `--allow-read=${repo}`, `--allow-write=${repo}`],
    ["--repo", repo, ...LOOPBACK_ARGS],
  );
  assert.equal(run.code, 2, run.stderr);
  assert.equal(
    run.stderr.trim(),
    "Cannot start: finding and checking index servers needs UDP, which Deno enables with --unstable-net (deno run --unstable-net ...)",
  );
  assert.doesNotMatch(run.stdout, /listening/);
});
