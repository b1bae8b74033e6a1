// The dashboard's HTTP API without a browser: access checks, each route with registered raw
// clients (peers, files, discover, ping, stats), errors, and the token file.
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileEntry, startTestServer } from "./_server.ts";
import { connectRaw } from "./_server.ts";
import { answer, rawRequest, startDashboard } from "./_ui.ts";
import { reply } from "../../shared/encode.ts";
import { MsgType } from "../../shared/protocol.ts";

const SANITIZE = { sanitizeResources: true, sanitizeOps: true } as const;

Deno.test({
  name: "dashboard API: no token 401, foreign Host 403, cross-origin POST 403",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using dir = await tempDir();
    await using t = await startDashboard(server, dir.path);
    for (const path of ["/api/stats", "/api/peers", "/api/files", "/api/logs", "/api/events"]) {
      const r = await answer(t.call(path, { token: null }));
      assert.equal(r.status, 401, path);
      assert.ok(!JSON.stringify(r.body).includes(server.serverId));
    }
    const host = await rawRequest(t.ui.port, {
      method: "GET",
      path: "/api/stats",
      host: "rebind.example",
      headers: { authorization: `Bearer ${t.ui.token}` },
    });
    assert.equal(host.status, 403);
    const csrf = await answer(t.call("/api/ping", {
      method: "POST",
      headers: { "content-type": "application/json", origin: "http://evil.example" },
      body: JSON.stringify({ hostname: "alpha" }),
    }));
    assert.equal(csrf.status, 403);
  },
});

Deno.test({
  name: "dashboard API: peers, files, discover, ping and stats over registered sessions",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using dir = await tempDir();
    await using t = await startDashboard(server, dir.path);
    const p2p = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      await using alpha = await connectRaw(server.tcpPort);
      await alpha.hello("alpha", p2p.addr.port);
      await alpha.publish(fileEntry("song.ogg"));
      await alpha.publish(fileEntry("film.mkv"));
      alpha.answer((m) =>
        m.type === MsgType.ListShares
          ? reply(MsgType.Shares, m.requestId, { files: [fileEntry("song.ogg")] })
          : m.type === MsgType.Ping
          ? reply(MsgType.Pong, m.requestId, m.body)
          : undefined
      );
      await using beta = await connectRaw(server.tcpPort);
      await beta.hello("beta", 9);

      const peers = await answer(t.call("/api/peers"));
      assert.equal(peers.status, 200);
      assert.equal(peers.body.total, 2);
      assert.equal(peers.body.entries, 2);
      const row = peers.body.peers.find((p: { hostname: string }) => p.hostname === "alpha");
      assert.equal(row.files, 2);
      assert.equal(row.here, true);
      assert.equal(row.lastRttMs, null);
      const paged = await answer(t.call("/api/peers?limit=1&offset=1"));
      assert.equal(paged.body.peers.length, 1);
      assert.equal(paged.body.total, 2);
      const filtered = await answer(t.call("/api/peers?q=BET"));
      assert.deepEqual(filtered.body.peers.map((p: { hostname: string }) => p.hostname), ["beta"]);

      const files = await answer(t.call("/api/files?q=*.mkv&limit=10"));
      assert.equal(files.body.total, 1);
      assert.equal(files.body.entries[0].fname, "film.mkv");

      const discovered = await answer(t.post("/api/discover", { hostname: "alpha" }));
      assert.equal(discovered.status, 200);
      assert.equal(discovered.body.sessions[0].source, "live");
      assert.deepEqual(
        discovered.body.sessions[0].files.map((f: { fname: string }) => f.fname),
        ["song.ogg"],
      );

      const pinged = await answer(t.post("/api/ping", { hostname: "alpha" }));
      assert.equal(pinged.status, 200);
      assert.equal(typeof pinged.body.sessions[0].rttMs, "number");
      assert.equal(pinged.body.sessions[0].p2pOpen, true);
      const after = await answer(t.call("/api/peers?q=alpha"));
      assert.equal(after.body.peers[0].lastRttMs, pinged.body.sessions[0].rttMs);

      assert.equal((await answer(t.post("/api/ping", { hostname: "nobody" }))).status, 404);
      assert.equal((await answer(t.post("/api/discover", { hostname: "" }))).status, 400);

      const stats = await answer(t.call("/api/stats"));
      assert.equal(stats.body.sessions, 2);
      assert.equal(stats.body.entries, 2);
      assert.ok(stats.body.lookups >= 1, "the files search counts as a lookup");
      assert.ok(stats.body.memory.rss > 0);
    } finally {
      p2p.close();
    }
  },
});

Deno.test({
  name: "dashboard API: bad JSON, wrong types, huge bodies, bad paging, unknown routes",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using dir = await tempDir();
    await using t = await startDashboard(server, dir.path);
    const raw = (body: string) =>
      answer(t.call("/api/ping", {
        method: "POST",
        headers: { "content-type": "application/json", origin: t.base },
        body,
      }));
    assert.equal((await raw("{")).status, 400);
    assert.equal((await raw('"alpha"')).status, 400);
    assert.equal((await raw('{"hostname": 7}')).status, 400);
    assert.equal((await raw(JSON.stringify({ hostname: "h".repeat(100_000) }))).status, 413);
    for (const q of ["limit=0", "limit=5000", "offset=x"]) {
      assert.equal((await answer(t.call(`/api/peers?${q}`))).status, 400, q);
      assert.equal((await answer(t.call(`/api/files?${q}`))).status, 400, q);
    }
    assert.equal((await answer(t.call("/api/sessions"))).status, 404);
    assert.equal((await answer(t.call("/api/ping"))).status, 405);
    assert.equal((await answer(t.call("/api/stats", { method: "DELETE" }))).status, 405);
  },
});

Deno.test({
  name: "dashboard token: kept 0600 beside the database, the same after a restart",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using dir = await tempDir();
    let first: string;
    {
      await using t = await startDashboard(server, dir.path);
      first = t.ui.token;
    }
    const path = join(dir.path, "index.db.ui-token");
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.equal((await Deno.readTextFile(path)).trim(), first);
    await using again = await startDashboard(server, dir.path);
    assert.equal(again.ui.token, first);
    assert.ok(again.ui.url.endsWith(`/?token=${first}`));
  },
});

async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "lanshare-dash-" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

Deno.test({
  name: "dashboard events: a peer joining and leaving, stats samples; logs answer",
  ...SANITIZE,
  async fn() {
    await using server = await startTestServer();
    await using dir = await tempDir();
    await using t = await startDashboard(server, dir.path);
    const events = await t.call("/api/events");
    const reader = events.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    const waitFor = async (pattern: RegExp) => {
      while (!pattern.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended early: ${text}`);
        text += value;
      }
    };
    {
      await using gamma = await connectRaw(server.tcpPort);
      await gamma.hello("gamma", 4242);
      await waitFor(/event: peers\ndata: \{[^\n]*"joined":\[\{[^\n]*"hostname":"gamma"/);
    }
    await waitFor(/event: peers\ndata: \{[^\n]*"left":\[\{[^\n]*"hostname":"gamma"/);
    await waitFor(/event: stats\ndata: \{"sessions":/);
    await reader.cancel();
    const logs = await answer(t.call("/api/logs"));
    assert.equal(logs.status, 200);
    assert.ok(Array.isArray(logs.body.lines));
  },
});
