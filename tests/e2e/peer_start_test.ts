// End to end: starting a peer the ways the README says, with the permissions they grant. The
// `deno task peer` launcher runs a peer on any repository; a peer run without the access it
// needs says which flag or command grants it, instead of Deno's bare permission error.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  PeerProgram,
  pipedCommand,
  type ProgramOutput,
  runToExit,
  spawnServer,
  tempDir,
} from "./_programs.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
/** The permission flags of deno.json's `peer` task (what `deno task peer` runs with). */
const PEER_TASK = (JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)).tasks.peer as string)
  .split(" ");

function runPeer(permissions: string[], args: string[]): Promise<ProgramOutput> {
  return runToExit(
    Deno.execPath(),
    ["run", "--quiet", ...permissions, join(ROOT, "peer/main.ts"), ...args],
  );
}

Deno.test("a peer without access to its repository or host names what grants it", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  const repo = join(dir.path, "repo");
  const elsewhere = join(dir.path, "elsewhere");
  const base = ["--allow-net", "--allow-env=LANSHARE_*"];
  const args = ["--repo", repo, "--server", "127.0.0.1:1", "--hostname", "p"];

  const noRepo = await runPeer(
    [...base, "--allow-sys=hostname,networkInterfaces", `--allow-read=${elsewhere}`],
    args,
  );
  assert.equal(noRepo.code, 1, noRepo.stderr);
  assert.match(
    noRepo.stderr,
    new RegExp(`^Cannot start: no (read|write) access to "${repo}.*"`),
  );
  assert.ok(noRepo.stderr.includes(`\`deno task peer --repo ${repo}\``), noRepo.stderr);
  assert.ok(noRepo.stderr.includes(`\`make peer REPO=${repo}\``), noRepo.stderr);
  assert.match(noRepo.stderr, new RegExp(`add --allow-(read|write)=${repo} to deno run\n$`));

  const noSys = await runPeer([...base, `--allow-read=${repo}`, `--allow-write=${repo}`], args);
  assert.equal(noSys.code, 1, noSys.stderr);
  assert.match(noSys.stderr, /^Cannot start: no sys access to "networkInterfaces"/);
  assert.match(noSys.stderr, /add --allow-sys=hostname,networkInterfaces to deno run\n$/);
  assert.doesNotMatch(noSys.stderr, /Uncaught|\n\s+at /);
});

Deno.test("deno task peer runs a peer on the repository given with --repo", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  await using server = await spawnServer();
  const repo = join(dir.path, "another repo");
  await Deno.mkdir(repo);
  await Deno.writeTextFile(join(repo, "shared.txt"), "shared");
  const launcher = PEER_TASK.slice(PEER_TASK.indexOf("run") + 1);
  const peer = new PeerProgram(
    "launched",
    pipedCommand(Deno.execPath(), [
      ...launcher,
      "--repo",
      repo,
      "--server",
      `127.0.0.1:${server.tcpPort}`,
      "--announce-port",
      String(server.udpPort),
      "--hostname",
      "launched",
      "--json",
    ]),
  );
  try {
    assert.equal((await peer.listening()).repo, await Deno.realPath(repo));
    const published = await peer.command("publish shared.txt");
    assert.equal(published.ok, true, JSON.stringify(published));
    assert.equal(published.status, "created");
    await peer.command("quit");
    assert.equal((await peer.status).code, 0);
  } finally {
    // SIGTERM, not SIGKILL: the launcher passes it on, so no peer outlives the test.
    await peer.kill("SIGTERM");
  }
});
