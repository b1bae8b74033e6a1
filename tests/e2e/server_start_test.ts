// End to end: starting the server with the permissions a user gives it. `make server` grants
// access to the database named in ARGS; a server denied access says which flags grant it.
import { helloRequest } from "../_handshake.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { FramedConn } from "../../shared/framing.ts";
import { MsgType } from "../../shared/protocol.ts";
import { settleWithin } from "../../shared/timeout.ts";
import {
  exists,
  LOOPBACK_ARGS,
  pipedCommand,
  runToExit,
  ServerProgram,
  tempDir,
} from "./_programs.ts";

/**
 * `deno run` of the server from the repository root, allowed the network, LANSHARE_* variables,
 * host names and reading its own code, but no database file; the server's own flags follow.
 */
const RUN_SERVER = [
  "run",
  "--quiet",
  "--allow-net",
  "--allow-env=LANSHARE_*",
  "--allow-sys=hostname,networkInterfaces",
  "--allow-read=server,shared",
  "server/main.ts",
];

Deno.test("a server denied its --db names the flags and the make command that grant it, exit 2", async () => {
  await using dir = await tempDir("lanshare-e2e-");
  const db = join(dir.path, "i.db");
  const { code, stdout, stderr: text } = await runToExit(Deno.execPath(), [
    ...RUN_SERVER,
    "--db",
    db,
    "--port",
    "0",
    "--announce-port",
    "0",
  ]);
  assert.equal(code, 2, text);
  assert.equal(stdout, "");
  assert.match(text, new RegExp(`^Cannot start: Requires read access to "${db}"`));
  const files = [db, `${db}-wal`, `${db}-shm`, `${db}-journal`].join(",");
  assert.ok(text.includes(`--allow-read=${files} --allow-write=${files}`), text);
  assert.ok(text.includes(`make server ARGS="--db ${db}"`), text);
});

Deno.test('make server ARGS="--db FILE" serves from that database and quits cleanly', async () => {
  await using dir = await tempDir("lanshare-e2e-");
  const db = join(dir.path, "elsewhere.db");
  const server = new ServerProgram(
    "make server",
    pipedCommand("make", [
      "--no-print-directory",
      "server",
      `ARGS=--db ${db} --port 0 --announce-port 0 --broadcast 127.255.255.255`,
    ]),
  );
  try {
    assert.equal((await server.listening()).db, db);
    assert.ok(await exists(db), `${db} was not created`);
    await server.send("quit");
    assert.equal((await server.status).code, 0, server.context());
  } finally {
    // make's child is the server: end it through its shell, never by killing make alone.
    if (!await settleWithin(server.status, 0)) {
      await server.send("quit");
      await settleWithin(server.status, 10_000);
    }
    await server.kill();
  }
});

Deno.test('make server ARGS="--join key --network-key-file FILE" reads a key kept anywhere', async () => {
  await using dir = await tempDir("lanshare-e2e-");
  const key = join(dir.path, "network.key");
  await Deno.writeFile(key, crypto.getRandomValues(new Uint8Array(32)), { mode: 0o600 });
  const identity = join(dir.path, "identity");
  const server = new ServerProgram(
    "make server",
    pipedCommand("make", [
      "--no-print-directory",
      "server",
      `ARGS=--db :memory: --identity ${identity} --join key --network-key-file ${key} ` +
      "--port 0 --announce-port 0 --broadcast 127.255.255.255",
    ]),
  );
  try {
    const listening = await server.listening();
    assert.equal(listening.event, "listening", server.context());
    assert.ok(await exists(join(identity, "key.pem")), "the identity was not created");
    await server.send("quit");
    assert.equal((await server.status).code, 0, server.context());
  } finally {
    if (!await settleWithin(server.status, 0)) {
      await server.send("quit");
      await settleWithin(server.status, 10_000);
    }
    await server.kill();
  }
});

Deno.test("a server out of file descriptors keeps accepting once connections close", async () => {
  await using identity = await tempDir("lanshare-identity-");
  // A low open-files limit, reached with the connections below; bash execs into the server.
  const server = new ServerProgram(
    "server",
    pipedCommand("bash", [
      "-c",
      'ulimit -n 64 && exec "$0" "$@"',
      Deno.execPath(),
      // RUN_SERVER's permissions plus the identity folder.
      ...RUN_SERVER.filter((arg) => !arg.startsWith("--allow-read") && arg !== "server/main.ts"),
      `--allow-read=server,shared,${identity.path}`,
      `--allow-write=${identity.path}`,
      "server/main.ts",
      "--db",
      ":memory:",
      "--identity",
      identity.path,
      // The flood below speaks raw frames: this test is about descriptors, not TLS.
      "--insecure-plaintext",
      "--host",
      "127.0.0.1",
      ...LOOPBACK_ARGS,
      // This test is about descriptors, not about the per-address cap.
      "--max-unregistered-per-address",
      "1000",
    ]),
  );
  await using _server = server;
  const port = (await server.listening()).tcp as number;
  const flood: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < 80; i++) flood.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    await pollUntilStderr(server, /Cannot accept connections: .*open files/);
  } finally {
    for (const conn of flood) conn.close();
  }
  using client = new FramedConn(await Deno.connect({ hostname: "127.0.0.1", port }));
  await client.send(await helloRequest(client, { hostname: "after", p2pPort: 4000 }));
  const welcome = await Promise.race([
    client.readMessage(),
    new Promise<null>((resolve) => setTimeout(() => resolve(null), 10_000)),
  ]);
  assert.equal(welcome?.type, MsgType.Welcome, server.context());
});

/** Waits (bounded) until the program's stderr matches `pattern`. */
async function pollUntilStderr(program: ServerProgram, pattern: RegExp): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!pattern.test(program.stderr)) {
    if (performance.now() > deadline) throw new Error(`No ${pattern} in\n${program.context()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
