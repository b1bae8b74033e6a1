// The shell and the HTTP API call the same operations: a name the shell refuses, the API refuses
// with the same message (and a 4xx status), and what one does the other sees.
import assert from "node:assert/strict";
import { join } from "node:path";
import { runPeerCommand, type ShellOutput } from "../../peer/shell.ts";
import { runServerCommand } from "../../server/shell.ts";
import { startTestServer } from "./_server.ts";
import { answer, startDashboard, startPeerWithUi } from "./_ui.ts";

const SANITIZE = { sanitizeResources: true, sanitizeOps: true } as const;

/** Runs one shell line and returns its JSON answer. */
async function shell(
  ops: Parameters<typeof runPeerCommand>[0],
  line: string,
): Promise<Record<string, unknown>> {
  let data: Record<string, unknown> | undefined;
  const out: ShellOutput = {
    answer: (d) => data = d,
    progress: () => {},
    hashing: () => {},
  };
  await runPeerCommand(ops, line, out);
  return data!;
}

Deno.test({
  name: "peer shell and API refuse traversal and bad names with the same message",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    const repo = await Deno.makeTempDir({ prefix: "lanshare-parity-" });
    try {
      await using t = await startPeerWithUi(server, repo);
      await Deno.writeTextFile(join(repo, "ok.txt"), "fine");
      const cases: [string, string, unknown][] = [
        ["publish ../../etc/passwd", "/api/publish", { lname: "../../etc/passwd" }],
        ["publish /etc/passwd", "/api/publish", { lname: "/etc/passwd" }],
        ["publish .lanshare/published.json", "/api/publish", { lname: ".lanshare/published.json" }],
        ['publish ok.txt "../up"', "/api/publish", { lname: "ok.txt", fname: "../up" }],
        ["publish ok.txt .lanshare", "/api/publish", { lname: "ok.txt", fname: ".lanshare" }],
        ["fetch ../secret", "/api/fetch", { fname: "../secret" }],
        ["fetch a/b", "/api/fetch", { fname: "a/b" }],
        ["fetch x --hash zz", "/api/fetch", { fname: "x", hash: "zz" }],
      ];
      for (const [line, path, body] of cases) {
        const fromShell = await shell(t.ops, line);
        const fromApi = await answer(t.post(path, body));
        assert.equal(fromShell.ok, false, line);
        assert.ok(fromApi.status >= 400 && fromApi.status < 500, `${path}: ${fromApi.status}`);
        assert.equal(fromApi.body.error, fromShell.error, line);
      }
      assert.deepEqual(t.ops.list(), []);
      // What the shell publishes, the API lists; what the API unpublishes, the shell no longer has.
      assert.equal((await shell(t.ops, "publish ok.txt")).ok, true);
      const shares = await answer(t.call("/api/shares"));
      assert.deepEqual(shares.body.files, (await shell(t.ops, "list")).files);
      assert.equal((await answer(t.post("/api/unpublish", { fname: "ok.txt" }))).status, 200);
      assert.deepEqual((await shell(t.ops, "list")).files, []);
    } finally {
      await Deno.remove(repo, { recursive: true });
    }
  },
});

Deno.test({
  name: "server shell and dashboard API answer from the same operations",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    const dir = await Deno.makeTempDir({ prefix: "lanshare-parity-" });
    try {
      await using t = await startDashboard(server, dir);
      const lines = (await runServerCommand(t.ops, "ping nobody")).lines;
      assert.deepEqual(lines, ['no live peer named "nobody"']);
      const api = await answer(t.post("/api/ping", { hostname: "nobody" }));
      assert.equal(api.status, 404);
      assert.match(api.body.error, /no.*"nobody"|"nobody"/i);
      const stats = await answer(t.call("/api/stats"));
      const shellStats = (await runServerCommand(t.ops, "stats")).lines[0]!;
      assert.equal(
        shellStats,
        `${stats.body.sessions} live session(s) (${stats.body.here} here), ${stats.body.entries} entries`,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
