import assert from "node:assert/strict";
import { defaultBroadcastAddresses, parseHostPort, splitWords } from "../../shared/cli.ts";
import { ConfigError } from "../../shared/errors.ts";
import { resolveServerConfig } from "../../server/config.ts";
import { resolvePeerConfig } from "../../peer/config.ts";

const peerDefaults = { hostname: () => "host", broadcast: () => ["10.0.0.255"] };

Deno.test("splitWords() groups quoted words and honours escapes", () => {
  assert.deepEqual(splitWords('publish "my file.txt" \'it\'"s"'), [
    "publish",
    "my file.txt",
    "its",
  ]);
  assert.deepEqual(splitWords("fetch a\\ b  --force "), ["fetch", "a b", "--force"]);
  assert.deepEqual(splitWords('fetch ""'), ["fetch", ""]);
  assert.deepEqual(splitWords("   "), []);
  assert.throws(() => splitWords('publish "open'), SyntaxError);
  assert.throws(() => splitWords("publish x\\"), SyntaxError);
});

Deno.test("parseHostPort() reads host:port and [v6]:port and rejects the rest", () => {
  assert.deepEqual(parseHostPort("10.1.2.3:7070"), { hostname: "10.1.2.3", port: 7070 });
  assert.deepEqual(parseHostPort("[::1]:80"), { hostname: "::1", port: 80 });
  for (const bad of ["host", "host:0", "host:65536", ":80", "a:b"]) {
    assert.throws(() => parseHostPort(bad), RangeError, bad);
  }
});

Deno.test("defaultBroadcastAddresses() adds each IPv4 interface's directed broadcast", () => {
  assert.deepEqual(
    defaultBroadcastAddresses([
      { family: "IPv4", address: "127.0.0.1", netmask: "255.0.0.0" },
      { family: "IPv4", address: "192.168.1.20", netmask: "255.255.255.0" },
      { family: "IPv6", address: "::1", netmask: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
    ]),
    ["255.255.255.255", "127.255.255.255", "192.168.1.255"],
  );
});

Deno.test("resolveServerConfig() takes flags over env over defaults", () => {
  const parsed = resolveServerConfig(["--port", "9000"], {
    LANSHARE_PORT: "8000",
    LANSHARE_DB: ":memory:",
  }, () => ["x"]);
  assert.equal(parsed.kind, "run");
  if (parsed.kind !== "run") return;
  assert.equal(parsed.config.port, 9000);
  assert.equal(parsed.config.db, ":memory:");
  assert.equal(parsed.config.announcePort, 7071);
  assert.deepEqual(parsed.config.broadcast, ["x"]);
});

Deno.test("resolveServerConfig() reads the connection caps from flags and env, each at least 1", () => {
  const parsed = resolveServerConfig(["--max-connections", "50"], {
    LANSHARE_MAX_SESSIONS_PER_ADDRESS: "3",
  }, () => []);
  assert.equal(parsed.kind, "run");
  if (parsed.kind !== "run") return;
  assert.equal(parsed.config.maxConnections, 50);
  assert.equal(parsed.config.maxSessionsPerAddress, 3);
  assert.equal(parsed.config.maxUnregisteredPerAddress, 8);
  assert.throws(
    () => resolveServerConfig(["--max-unregistered-per-address", "0"], {}, () => []),
    (error: unknown) =>
      error instanceof ConfigError &&
      /--max-unregistered-per-address must be at least 1/.test(error.message),
  );
});

Deno.test("resolveServerConfig() reports every invalid field in one ConfigError", () => {
  assert.throws(
    () =>
      resolveServerConfig(
        ["--port", "70000", "--log-level", "loud", "--ping-timeout-ms", "10"],
        {},
        () => [],
      ),
    (error: unknown) =>
      error instanceof ConfigError && error.problems.length === 3 && /--port/.test(error.message),
  );
  assert.throws(
    () => resolveServerConfig(["--log-level", "loud", "--ping-timeout-ms", "10"], {}, () => []),
    (error: unknown) => error instanceof ConfigError && error.problems.length === 2,
  );
  assert.throws(() => resolveServerConfig(["--bogus"], {}, () => []), ConfigError);
});

Deno.test("resolvePeerConfig() parses servers, derives max-per-peer and rejects bad values", () => {
  const parsed = resolvePeerConfig(
    ["--server", "a:1,b:2", "--max-sessions", "6"],
    {},
    peerDefaults,
  );
  assert.equal(parsed.kind, "run");
  if (parsed.kind !== "run") return;
  assert.deepEqual(parsed.config.servers, [{ hostname: "a", port: 1 }, { hostname: "b", port: 2 }]);
  assert.equal(parsed.config.maxPerPeer, 3);
  assert.equal(parsed.config.hostname, "host");
  assert.deepEqual(parsed.config.broadcast, ["10.0.0.255"]);
  assert.throws(() => resolvePeerConfig(["--server", "nope"], {}, peerDefaults), /--server/);
  assert.throws(() => resolvePeerConfig(["--max-sessions", "0"], {}, peerDefaults), /at least 1/);
  assert.equal(resolvePeerConfig(["--help"], {}, peerDefaults).kind, "help");
});

Deno.test("resolveServerConfig() takes --max-entries-per-session, its env and default", () => {
  const run = (args: string[], env: Record<string, string> = {}) => {
    const parsed = resolveServerConfig(args, env, () => ["x"]);
    assert.equal(parsed.kind, "run");
    return parsed.kind === "run" ? parsed.config.maxEntriesPerSession : undefined;
  };
  assert.equal(run([]), 10_000);
  assert.equal(run([], { LANSHARE_MAX_ENTRIES_PER_SESSION: "50" }), 50);
  assert.equal(
    run(["--max-entries-per-session", "7"], { LANSHARE_MAX_ENTRIES_PER_SESSION: "50" }),
    7,
  );
  assert.throws(
    () => resolveServerConfig(["--max-entries-per-session", "0"], {}, () => ["x"]),
    /--max-entries-per-session must be at least 1/,
  );
  const help = resolveServerConfig(["--help"], {}, () => ["x"]);
  assert.equal(help.kind, "help");
  if (help.kind === "help") assert.match(help.text, /postgres:\/\//);
});
