import assert from "node:assert/strict";
import { resolvePeerConfig, TEST_CORRUPT_ENV } from "../../peer/config.ts";
import { peerRunArgs } from "../../peer/launch.ts";
import { ConfigError } from "../../shared/errors.ts";

const peerDefaults = { hostname: () => "host", broadcast: () => ["10.0.0.255"] };

Deno.test("resolvePeerConfig() help lists no test-only option", () => {
  const parsed = resolvePeerConfig(["--help"], {}, peerDefaults);
  assert.equal(parsed.kind, "help");
  if (parsed.kind !== "help") return;
  assert.match(parsed.text, /--repo/);
  assert.match(parsed.text, /\[env LANSHARE_P2P_PORT\]/);
  assert.doesNotMatch(parsed.text, /corrupt|TEST ONLY/i);
});

Deno.test("resolvePeerConfig() serves corrupt pieces only under the test variable", () => {
  const run = (env: Record<string, string>) => {
    const parsed = resolvePeerConfig([], env, peerDefaults);
    assert.equal(parsed.kind, "run");
    return parsed.kind === "run" && parsed.config.debugCorrupt;
  };
  assert.equal(run({}), false);
  assert.equal(run({ [TEST_CORRUPT_ENV]: "1" }), true);
  assert.throws(() => resolvePeerConfig(["--debug-corrupt"], {}, peerDefaults), ConfigError);
});

Deno.test("peerRunArgs() grants exactly the repository the peer is given", () => {
  const grants = (args: string[], env?: string) =>
    peerRunArgs(args, env, "/app/peer/main.ts").filter((a) => /^--allow-(read|write)=/.test(a));
  assert.deepEqual(grants(["--repo", "/srv/files", "--json"]), [
    "--allow-read=/srv/files",
    "--allow-write=/srv/files",
  ]);
  assert.deepEqual(grants(["--repo=my repo"]), ["--allow-read=my repo", "--allow-write=my repo"]);
  assert.deepEqual(grants([], "/from/env"), ["--allow-read=/from/env", "--allow-write=/from/env"]);
  assert.deepEqual(grants(["--json"]), [
    "--allow-read=./lanshare-repo",
    "--allow-write=./lanshare-repo",
  ]);
  // The peer gets its arguments unchanged, after the script.
  assert.deepEqual(
    peerRunArgs(["--repo", "r", "--server", "a:1"], undefined, "/app/peer/main.ts").slice(-5),
    ["/app/peer/main.ts", "--repo", "r", "--server", "a:1"],
  );
  assert.throws(() => peerRunArgs(["--repo", "a,b"], undefined, "m.ts"), /contains a comma/);
});

Deno.test("peerRunArgs() also grants reading the --network-key-file, and nothing else", () => {
  const grants = (args: string[], envKey?: string) =>
    peerRunArgs(args, undefined, "/app/peer/main.ts", envKey).filter((a) =>
      /^--allow-(read|write)=/.test(a)
    );
  assert.deepEqual(grants(["--repo", "r", "--network-key-file", "/etc/lan.key"]), [
    "--allow-read=r,/etc/lan.key",
    "--allow-write=r",
  ]);
  assert.deepEqual(grants(["--repo=r", "--network-key-file=k"]), [
    "--allow-read=r,k",
    "--allow-write=r",
  ]);
  assert.deepEqual(grants(["--repo", "r"], "/from/env.key"), [
    "--allow-read=r,/from/env.key",
    "--allow-write=r",
  ]);
  assert.throws(
    () => peerRunArgs(["--network-key-file", "a,b"], undefined, "m.ts"),
    /network key file path "a,b" contains a comma/,
  );
});
