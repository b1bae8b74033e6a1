// The peer's HTTP API without a browser: access checks, every route's answers and errors (bad
// JSON, wrong types, huge bodies, unknown routes), uploads and downloads.
import assert from "node:assert/strict";
import { join } from "node:path";
import { startTestServer } from "./_server.ts";
import { answer, rawRequest, startPeerWithUi } from "./_ui.ts";

const SANITIZE = { sanitizeResources: true, sanitizeOps: true } as const;
const encoder = new TextEncoder();

async function withPeer(
  fn: (t: Awaited<ReturnType<typeof startPeerWithUi>>, repo: string) => Promise<void>,
  args: string[] = [],
): Promise<void> {
  await using server = await startTestServer();
  const repo = await Deno.makeTempDir({ prefix: "lanshare-peer-api-" });
  try {
    await using t = await startPeerWithUi(server, repo, { args });
    await fn(t, repo);
  } finally {
    await Deno.remove(repo, { recursive: true });
  }
}

/** Names in the repository and its metadata folder (what an upload may leave behind). */
async function listing(repo: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(repo)) names.push(e.name);
  for await (const e of Deno.readDir(join(repo, ".lanshare"))) names.push(`.lanshare/${e.name}`);
  return names.sort();
}

Deno.test({
  name: "peer API: no token or a wrong one gets 401 and no data, on every route and the page",
  ...SANITIZE,
  async fn() {
    await withPeer(async (t, repo) => {
      const routes = [
        ["GET", "/api/status"],
        ["GET", "/api/shares"],
        ["GET", "/api/search?q=a"],
        ["GET", "/api/files"],
        ["GET", "/api/download?path=x"],
        ["GET", "/api/logs"],
        ["GET", "/api/events"],
        ["POST", "/api/publish"],
        ["POST", "/api/fetch"],
        ["POST", "/api/files?fname=a"],
        ["GET", "/api/nonexistent"],
      ];
      for (const token of [null, "0".repeat(64), t.ui.token.slice(0, -1)]) {
        for (const [method, path] of routes) {
          const r = await answer(t.call(path!, { method: method!, token }));
          assert.equal(r.status, 401, `${method} ${path} with token ${token}`);
          const text = JSON.stringify(r.body);
          assert.ok(!text.includes(repo) && !text.includes("tester"), `${path} leaks: ${text}`);
        }
      }
      const page = await t.call("/", { token: null });
      const html = await page.text();
      assert.equal(page.status, 401);
      assert.ok(!html.includes(t.ui.token));
      assert.ok(!/<script/i.test(html), "the page that asks for the token carries no script");
    });
  },
});

Deno.test({
  name: "peer API: the page trades ?token= for an HttpOnly cookie that then works",
  ...SANITIZE,
  async fn() {
    await withPeer(async (t) => {
      // The page itself sets the cookie (no redirect first) and carries its first answers,
      // never the token; its script strips the token from the address (replaceState).
      const traded = await t.call(`/?token=${t.ui.token}`, { token: null, redirect: "manual" });
      const tradedHtml = await traded.text();
      assert.equal(traded.status, 200);
      assert.equal(traded.headers.get("referrer-policy"), "no-referrer");
      assert.ok(!tradedHtml.includes(t.ui.token), "the page does not hold the token");
      const embedded = tradedHtml.match(
        /<script type="application\/json" id="first-answers">(.*?)<\/script>/,
      );
      assert.ok(embedded, "the first answers come with the page");
      const first = JSON.parse(embedded[1]!);
      assert.equal(first["/api/status"].hostname, "tester");
      assert.ok(Array.isArray(first["/api/logs"].lines));
      const cookie = traded.headers.get("set-cookie")!;
      assert.match(cookie, /HttpOnly/);
      assert.match(cookie, /SameSite=Strict/);
      const pair = cookie.split(";")[0]!;
      const status = await answer(
        t.call("/api/status", { token: null, headers: { cookie: pair } }),
      );
      assert.equal(status.status, 200);
      assert.equal(status.body.hostname, "tester");
      const page = await t.call("/", { token: null, headers: { cookie: pair } });
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<div id="app"><header/, "the cookie opens the app");
      const wrong = await t.call("/?token=nope", { token: null, redirect: "manual" });
      await wrong.body?.cancel();
      assert.equal(wrong.status, 401);
      assert.equal(wrong.headers.get("set-cookie"), null);
    });
  },
});

Deno.test({
  name: "peer API: a foreign Host is refused even with the token (DNS rebinding)",
  ...SANITIZE,
  async fn() {
    await withPeer(async (t) => {
      const auth = { authorization: `Bearer ${t.ui.token}` };
      for (const host of ["evil.example", `evil.example:${t.ui.port}`, "127.0.0.1:1"]) {
        const r = await rawRequest(t.ui.port, {
          method: "GET",
          path: "/api/status",
          host,
          headers: auth,
        });
        assert.equal(r.status, 403, host);
        assert.match(r.text, /not this server's address/);
        assert.ok(!r.text.includes("tester"), "nothing about the peer leaks");
        const page = await rawRequest(t.ui.port, {
          method: "GET",
          path: `/?token=${t.ui.token}`,
          host,
        });
        assert.equal(page.status, 403, `page for ${host}`);
        assert.ok(!page.text.includes("set-cookie"));
      }
      for (const host of [`localhost:${t.ui.port}`, `127.0.0.1:${t.ui.port}`]) {
        const r = await rawRequest(t.ui.port, {
          method: "GET",
          path: "/api/status",
          host,
          headers: auth,
        });
        assert.equal(r.status, 200, host);
      }
    });
  },
});

Deno.test({
  name: "peer API: a cross-origin POST is refused and changes nothing (CSRF)",
  ...SANITIZE,
  async fn() {
    await withPeer(async (t, repo) => {
      await Deno.writeTextFile(join(repo, "a.txt"), "hello");
      for (
        const headers of [
          { origin: "http://evil.example" },
          { origin: `http://localhost:${t.ui.port + 1}` },
          { "sec-fetch-site": "cross-site" },
        ]
      ) {
        const r = await answer(t.call("/api/publish", {
          method: "POST",
          headers: { "content-type": "application/json", ...headers },
          body: JSON.stringify({ lname: "a.txt" }),
        }));
        assert.equal(r.status, 403, JSON.stringify(headers));
      }
      assert.deepEqual(t.ops.list(), []);
      const ok = await answer(t.post("/api/publish", { lname: "a.txt" }));
      assert.equal(ok.status, 200);
      assert.equal(ok.body.fname, "a.txt");
    });
  },
});

Deno.test({
  name: "peer API: every answer carries CSP, nosniff and frame-ancestors",
  ...SANITIZE,
  async fn() {
    await withPeer(async (t) => {
      for (const path of ["/", "/api/status", "/api/nope", "/assets/app.css", "/?token=nope"]) {
        const r = await t.call(path);
        await r.body?.cancel();
        assert.match(r.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
        assert.equal(r.headers.get("x-content-type-options"), "nosniff");
        assert.equal(r.headers.get("x-frame-options"), "DENY");
      }
    });
  },
});

Deno.test({
  name:
    "peer API: Cross-Origin-Opener-Policy same-origin on every answer but the signed-in page the user opened",
  ...SANITIZE,
  async fn() {
    await withPeer(async (t) => {
      const coop = async (path: string, site: string | null, token?: string | null) => {
        const headers = new Headers();
        if (site !== null) headers.set("sec-fetch-site", site);
        const r = await t.call(path, { headers, ...token === undefined ? {} : { token } });
        await r.body?.cancel();
        return `${r.status} ${r.headers.get("cross-origin-opener-policy")}`;
      };
      // The signed-in page, opened by the user (address bar, bookmark, terminal) or by itself:
      // no foreign opener to cut off, so no second renderer process for it.
      assert.equal(await coop("/", "none"), "200 unsafe-none");
      assert.equal(await coop("/", "same-origin"), "200 unsafe-none");
      assert.equal(await coop(`/?token=${t.ui.token}`, "none", null), "200 unsafe-none");
      // Opened by another page: a page of the same host on another port is same-site and its
      // navigation carries the SameSite=Strict cookie, so it is cut off by COOP; so is a
      // browser that sends no Fetch Metadata (and every browser on a plain-HTTP LAN address).
      for (const site of ["same-site", "cross-site", null]) {
        assert.equal(await coop("/", site), "200 same-origin", `Sec-Fetch-Site ${site}`);
      }
      // The sign-in page, wrong tokens, the API and its errors: always same-origin.
      for (const site of ["none", "same-origin", "cross-site", null]) {
        assert.equal(await coop("/", site, null), "401 same-origin", `sign-in, ${site}`);
        assert.equal(await coop("/?token=nope", site, null), "401 same-origin", `${site}`);
        assert.equal(await coop("/api/status", site), "200 same-origin", `API, ${site}`);
        assert.equal(await coop("/api/status", site, null), "401 same-origin", `API, ${site}`);
        assert.equal(await coop("/api/nope", site), "404 same-origin", `404, ${site}`);
      }
    });
  },
});

Deno.test({
  name: "peer API: bad JSON, wrong types, huge bodies, unknown routes and methods",
  ...SANITIZE,
  async fn() {
    await withPeer(async (t) => {
      const raw = (body: BodyInit, type = "application/json") =>
        answer(t.call("/api/publish", {
          method: "POST",
          headers: { "content-type": type, origin: t.base },
          body,
        }));
      assert.equal((await raw("{not json")).status, 400);
      assert.equal((await raw("[1,2]")).status, 400);
      assert.equal((await raw("null")).status, 400);
      assert.equal((await raw(new Uint8Array([0x7b, 0xff, 0x7d]))).status, 400);
      assert.equal((await raw('{"lname":"a"}', "text/plain")).status, 415);
      const huge = await raw(JSON.stringify({ lname: "x".repeat(200_000) }));
      assert.equal(huge.status, 413);
      // A body without a length, growing past the cap (2 MiB in all), is refused at the cap.
      let chunks = 0;
      const long = new ReadableStream<Uint8Array>({
        pull(c) {
          if (chunks++ === 128) c.close();
          else c.enqueue(encoder.encode(" ".repeat(16_384)));
        },
      });
      assert.equal((await raw(long)).status, 413);
      for (
        const [path, body, field] of [
          ["/api/publish", { lname: 5 }, "lname"],
          ["/api/publish", { lname: "a", fname: ["b"] }, "fname"],
          ["/api/unpublish", {}, "fname"],
          ["/api/fetch", { fname: "a", force: "yes" }, "force"],
          ["/api/fetch", { fname: "a", hash: 12 }, "hash"],
          ["/api/cancel", { fname: null }, "fname"],
          ["/api/rename", { fname: "a" }, "to"],
        ] as const
      ) {
        const r = await answer(t.post(path, body));
        assert.equal(r.status, 400, `${path} ${JSON.stringify(body)}`);
        assert.match(r.body.error, new RegExp(`"${field}"`));
        assert.equal(r.body.ok, false);
      }
      for (
        const q of ["limit=0", "limit=1001", "limit=abc", "offset=-1", "offset=1.5"]
      ) {
        assert.equal((await answer(t.call(`/api/search?${q}`))).status, 400, q);
      }
      assert.equal((await answer(t.call("/api/files?limit=0"))).status, 400);
      assert.equal((await answer(t.call("/api/nope"))).status, 404);
      assert.equal((await answer(t.call("/nope"))).status, 404);
      assert.equal((await answer(t.call("/api/status", { method: "POST" }))).status, 405);
      assert.equal((await answer(t.call("/api/publish"))).status, 405);
      assert.equal((await answer(t.post("/api/unpublish", { fname: "never" }))).status, 404);
    });
  },
});

Deno.test({
  name: "peer API: publish, list, rename, unpublish and search through the index",
  ...SANITIZE,
  async fn() {
    await withPeer(async (t, repo) => {
      await Deno.writeTextFile(join(repo, "notes.txt"), "some notes");
      const published = await answer(t.post("/api/publish", { lname: "notes.txt" }));
      assert.equal(published.status, 200);
      assert.equal(published.body.status, "created");
      const shares = await answer(t.call("/api/shares"));
      assert.deepEqual(shares.body.files.map((f: { fname: string }) => f.fname), ["notes.txt"]);
      const files = await answer(t.call("/api/files"));
      assert.deepEqual(files.body.files[0].published, ["notes.txt"]);
      const renamed = await answer(t.post("/api/rename", { fname: "notes.txt", to: "memo.txt" }));
      assert.equal(renamed.status, 200);
      assert.deepEqual(t.ops.list().map((f) => f.fname), ["memo.txt"]);
      assert.equal((await answer(t.post("/api/rename", { fname: "nope", to: "x" }))).status, 404);
      const found = await answer(t.call("/api/search?q=memo&limit=10"));
      assert.equal(found.status, 200);
      assert.equal(found.body.total, 1);
      assert.equal(found.body.groups[0].fname, "memo.txt");
      assert.equal(found.body.groups[0].versions[0].liveSources, 1);
      const status = await answer(t.call("/api/status"));
      assert.equal(status.body.connected, true);
      assert.equal(typeof status.body.serverRttMs, "number");
      const gone = await answer(t.post("/api/unpublish", { fname: "memo.txt" }));
      assert.equal(gone.body.removed, true);
      assert.deepEqual(t.ops.list(), []);
    });
  },
});

Deno.test({
  name: "peer API: uploads stream into the repository, publish, and download back byte-exact",
  ...SANITIZE,
  async fn() {
    await withPeer(async (t, repo) => {
      const bytes = new Uint8Array(300_000).map((_, i) => (i * 7919) % 251);
      // Sent in pieces without a length, as a browser streams a large file.
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          for (let i = 0; i < bytes.length; i += 65_536) c.enqueue(bytes.subarray(i, i + 65_536));
          c.close();
        },
      });
      const added = await answer(t.call("/api/files?fname=photo%20one.jpg", {
        method: "POST",
        headers: { origin: t.base },
        body,
      }));
      assert.equal(added.status, 201, JSON.stringify(added.body));
      assert.equal(added.body.fname, "photo one.jpg");
      assert.deepEqual(t.ops.list().map((f) => f.fname), ["photo one.jpg"]);
      assert.deepEqual(await Deno.readFile(join(repo, "photo one.jpg")), bytes);
      const again = await answer(t.call("/api/files?fname=photo%20one.jpg", {
        method: "POST",
        headers: { origin: t.base },
        body: "x",
      }));
      assert.equal(again.status, 409);
      const down = await t.call(`/api/download?path=${encodeURIComponent("photo one.jpg")}`);
      assert.equal(down.status, 200);
      assert.match(down.headers.get("content-disposition")!, /attachment/);
      assert.deepEqual(new Uint8Array(await down.arrayBuffer()), bytes);
      assert.equal((await answer(t.call("/api/download?path=missing.bin"))).status, 404);
      assert.equal((await answer(t.call("/api/download"))).status, 400);
      assert.deepEqual(
        await listing(repo),
        [
          ".lanshare",
          "photo one.jpg",
          ".lanshare/hashes.json",
          ".lanshare/identity",
          ".lanshare/partial",
          ".lanshare/published.json",
          ".lanshare/ui-token",
        ].sort(),
      );
    });
  },
});

Deno.test({
  name: "peer API: an upload over --max-file-size gets 413 and leaves nothing behind",
  ...SANITIZE,
  async fn() {
    await withPeer(async (t, repo) => {
      const before = await listing(repo);
      const declared = await answer(t.call("/api/files?fname=big.bin", {
        method: "POST",
        headers: { origin: t.base },
        body: new Uint8Array(100_001),
      }));
      assert.equal(declared.status, 413);
      assert.match(declared.body.error, /--max-file-size 100000/);
      // Without a length (4 MiB in pieces): refused once past the limit.
      let chunks = 0;
      const long = new ReadableStream<Uint8Array>({
        pull(c) {
          if (chunks++ === 128) c.close();
          else c.enqueue(new Uint8Array(32_768));
        },
      });
      const streamed = await answer(t.call("/api/files?fname=big.bin", {
        method: "POST",
        headers: { origin: t.base },
        body: long,
      }));
      assert.equal(streamed.status, 413);
      assert.deepEqual(await listing(repo), before);
      assert.deepEqual(t.ops.list(), []);
      const small = await answer(t.call("/api/files?fname=small.bin", {
        method: "POST",
        headers: { origin: t.base },
        body: new Uint8Array(100_000),
      }));
      assert.equal(small.status, 201);
    }, ["--max-file-size", "100000"]);
  },
});

Deno.test({
  name: "peer API: traversal and reserved names are refused on every route, nothing written",
  ...SANITIZE,
  async fn() {
    await withPeer(async (t, repo) => {
      const outside = await Deno.makeTempFile({ prefix: "lanshare-outside-" });
      try {
        const before = await listing(repo);
        for (const name of ["../evil", "a/b", "..", ".lanshare", "a\\b", "", "x\u0001"]) {
          const up = await answer(t.call(`/api/files?fname=${encodeURIComponent(name)}`, {
            method: "POST",
            headers: { origin: t.base },
            body: "data",
          }));
          assert.equal(up.status, 400, `upload ${JSON.stringify(name)}`);
          const fetched = await answer(t.post("/api/fetch", { fname: name }));
          assert.equal(fetched.status, 400, `fetch ${JSON.stringify(name)}`);
          const published = await answer(t.post("/api/publish", { lname: "x", fname: name }));
          assert.equal(published.status, 400, `publish as ${JSON.stringify(name)}`);
        }
        for (const lname of ["../x", outside, ".lanshare/published.json", "."]) {
          const r = await answer(t.post("/api/publish", { lname }));
          assert.ok([400, 404].includes(r.status), `publish ${lname}: ${r.status}`);
          const d = await answer(t.call(`/api/download?path=${encodeURIComponent(lname)}`));
          assert.ok([400, 404].includes(d.status), `download ${lname}: ${d.status}`);
        }
        assert.deepEqual(await listing(repo), before);
        assert.deepEqual(t.ops.list(), []);
      } finally {
        await Deno.remove(outside);
      }
    });
  },
});

Deno.test({
  name: "peer API: path and publish errors have their status by code, whatever the names say",
  ...SANITIZE,
  async fn() {
    await withPeer(async (t) => {
      // Each name below reads like another error's message: once, the status came from the text.
      const cases: [string, Promise<Response>, number, string][] = [
        [
          "download outside",
          t.call(`/api/download?path=${encodeURIComponent("../no such file")}`),
          400,
          "outside",
        ],
        ["publish missing", t.post("/api/publish", { lname: "being fetched.txt" }), 404, "missing"],
        ["publish outside", t.post("/api/publish", { lname: "../not shared" }), 400, "bad-path"],
        [
          "publish bad fname",
          t.post("/api/publish", { lname: "x", fname: "being fetched/x" }),
          400,
          "invalid-fname",
        ],
        [
          "download missing",
          t.call(`/api/download?path=${encodeURIComponent("not shared")}`),
          404,
          "missing",
        ],
      ];
      for (const [what, request, status, code] of cases) {
        const r = await answer(request);
        assert.equal(r.status, status, `${what}: ${r.body.error}`);
        assert.equal(r.body.code, code, what);
      }
    });
  },
});

Deno.test({
  name: "peer API: the event stream reports a publish, and fetch errors have their status",
  ...SANITIZE,
  async fn() {
    await withPeer(async (t, repo) => {
      const events = await t.call("/api/events");
      assert.equal(events.headers.get("content-type"), "text/event-stream; charset=utf-8");
      const reader = events.body!.pipeThrough(new TextDecoderStream()).getReader();
      await Deno.writeTextFile(join(repo, "e.txt"), "event");
      assert.equal((await answer(t.post("/api/publish", { lname: "e.txt" }))).status, 200);
      let text = "";
      while (!text.includes("event: published")) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended early: ${text}`);
        text += value;
      }
      assert.match(text, /"fname":"e.txt"/);
      await reader.cancel();
      // The status comes from the error's code, not its text: this name once read as a 409.
      const misleading = await answer(t.post("/api/fetch", { fname: "already exists.txt" }));
      assert.equal(misleading.status, 404, misleading.body.error);
      assert.equal(misleading.body.code, "not-shared");
      const none = await answer(t.post("/api/fetch", { fname: "nobody-has-this" }));
      assert.equal(none.status, 404);
      assert.equal(none.body.code, "not-shared");
      assert.match(none.body.error, /no live peer shares it/);
      const exists = await answer(t.post("/api/fetch", { fname: "e.txt" }));
      assert.equal(exists.status, 409);
      assert.equal(exists.body.code, "exists");
      const cancel = await answer(t.post("/api/cancel", { fname: "e.txt" }));
      assert.deepEqual(cancel.body, { ok: true, fname: "e.txt", running: false, partials: 0 });
      const logs = await answer(t.call("/api/logs"));
      assert.ok(Array.isArray(logs.body.lines));
    });
  },
});

/** The SHA-256 of `text` as a CSP source, 'sha256-BASE64'. */
async function cspSource(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(text));
  return `'sha256-${new Uint8Array(digest).toBase64()}'`;
}

Deno.test({
  name:
    "peer UI page: first view rendered, script and style inline and allowed by their CSP hashes only",
  ...SANITIZE,
  async fn() {
    await withPeer(async (t, repo) => {
      await Deno.writeTextFile(join(repo, "a <b>.txt"), "hello");
      const page = await t.call("/", { headers: { "accept-encoding": "identity" } });
      const html = await page.text();
      const csp = page.headers.get("content-security-policy")!;
      const script = html.match(/<script>(.*?)<\/script><\/body>/s)?.[1];
      const style = html.match(/<style>(.*?)<\/style>/s)?.[1];
      assert.ok(script && style, "script and style sheet inline");
      assert.ok(csp.includes(`script-src ${await cspSource(script)};`), csp);
      assert.ok(csp.includes(`style-src ${await cspSource(style)};`), csp);
      assert.ok(!/'self'|'unsafe/.test(csp.match(/script-src [^;]*/)![0]), csp);
      assert.ok(!/'self'|'unsafe/.test(csp.match(/style-src [^;]*/)![0]), csp);
      // Nothing else for the page to load: no request between the HTML and its first paint.
      assert.ok(!/<script src|<link rel="stylesheet"/.test(html));
      // The first view holds the data (the status, the repository's files, escaped).
      const view = html.match(/<div id="app">(.*?)<\/div><script type="application\/json"/s)?.[1];
      assert.ok(view, "the first view is rendered in the page");
      assert.match(view, /elementtiming="first-data"/);
      assert.match(view, /tester/);
      assert.match(view, /a &lt;b>\.txt|a &lt;b&gt;\.txt/);
      assert.ok(!view.includes("a <b>"), "file names are escaped");
      // Compressed when asked (by Deno.serve), the same page.
      const packed = await t.call("/");
      assert.equal(packed.headers.get("content-encoding"), "gzip");
      assert.match(await packed.text(), /<div id="app"><header/);
      assert.equal(packed.headers.get("cache-control"), "no-store");
      const gone = await t.call("/assets/app.js");
      await gone.body?.cancel();
      assert.equal(gone.status, 404, "no asset routes");
    });
  },
});
