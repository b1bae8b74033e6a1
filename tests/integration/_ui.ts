// Fixtures for the UI API tests: an in-process peer or server with its UI on 127.0.0.1 port 0,
// and a small HTTP client that sends the token, a Host and an Origin as a browser would.
import { join } from "node:path";
import { resolvePeerConfig } from "../../peer/config.ts";
import { PeerOps } from "../../peer/ops.ts";
import { Peer } from "../../peer/peer.ts";
import { startPeerUi } from "../../peer/ui_server.ts";
import { ServerOps } from "../../server/ops.ts";
import type { RunningServer } from "../../server/server.ts";
import { startServerUi } from "../../server/ui_server.ts";
import type { UiServer } from "../../shared/http/ui_server.ts";

/** A UI under test and how to call it. */
export interface UiUnderTest extends AsyncDisposable {
  ui: UiServer;
  /** http://127.0.0.1:port */
  base: string;
  /** fetch() with the token as a bearer header, unless `init.token` says otherwise. */
  call(path: string, init?: RequestInit & { token?: string | null }): Promise<Response>;
  /** POSTs JSON from the page's own origin. */
  post(path: string, body: unknown): Promise<Response>;
}

function client(ui: UiServer): Omit<UiUnderTest, typeof Symbol.asyncDispose | "ui"> {
  const base = `http://127.0.0.1:${ui.port}`;
  const call = (path: string, init: RequestInit & { token?: string | null } = {}) => {
    const headers = new Headers(init.headers);
    const token = init.token === undefined ? ui.token : init.token;
    if (token !== null && !headers.has("authorization")) {
      headers.set("authorization", `Bearer ${token}`);
    }
    return fetch(`${base}${path}`, { ...init, headers });
  };
  const post = (path: string, body: unknown) =>
    call(path, {
      method: "POST",
      headers: { "content-type": "application/json", origin: base },
      body: JSON.stringify(body),
    });
  return { base, call, post };
}

/** A peer (in process) registered with `server`, serving its UI. */
export async function startPeerWithUi(
  server: RunningServer,
  repo: string,
  options: { hostname?: string; args?: string[] } = {},
): Promise<UiUnderTest & { ops: PeerOps; peer: Peer }> {
  const parsed = resolvePeerConfig(
    [
      "--repo",
      repo,
      "--server",
      `127.0.0.1:${server.tcpPort}`,
      "--host",
      "127.0.0.1",
      "--hostname",
      options.hostname ?? "tester",
      "--log-level",
      "error",
      // startTestServer() runs plaintext (its tests write raw frames): the peer must match.
      "--insecure-plaintext",
      ...options.args ?? [],
    ],
    {},
    { hostname: () => "tester", broadcast: () => ["127.255.255.255"] },
  );
  if (parsed.kind !== "run") throw new Error("Cannot build a peer config");
  const peer = await Peer.start(parsed.config);
  const ops = new PeerOps(peer);
  const ui = await startPeerUi(ops, { hostname: "127.0.0.1", port: 0, nextPorts: 0 });
  return {
    ...client(ui),
    ui,
    ops,
    peer,
    [Symbol.asyncDispose]: async () => {
      await ui.close();
      await peer.close();
    },
  };
}

/** The dashboard of `server`, its token kept in `dir`. */
export async function startDashboard(
  server: RunningServer,
  dir: string,
): Promise<UiUnderTest & { ops: ServerOps }> {
  const ops = new ServerOps(server);
  const ui = await startServerUi(ops, {
    hostname: "127.0.0.1",
    port: 0,
    nextPorts: 0,
    tokenPath: join(dir, "index.db.ui-token"),
  });
  return { ...client(ui), ui, ops, [Symbol.asyncDispose]: () => ui.close() };
}

/** Reads one JSON answer and its status. */
export async function answer(
  response: Promise<Response>,
  // deno-lint-ignore no-explicit-any
): Promise<{ status: number; body: any; headers: Headers }> {
  const r = await response;
  const text = await r.text();
  return {
    status: r.status,
    body: text.startsWith("{") ? JSON.parse(text) : text,
    headers: r.headers,
  };
}

/**
 * Sends one HTTP/1.1 request over a raw socket (fetch() will not send a Host header of our
 * choosing) and returns the status and body.
 */
export async function rawRequest(
  port: number,
  head: { method: string; path: string; host: string; headers?: Record<string, string> },
): Promise<{ status: number; text: string }> {
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const lines = [
    `${head.method} ${head.path} HTTP/1.1`,
    `host: ${head.host}`,
    "connection: close",
    ...Object.entries(head.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
  ];
  await conn.write(new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n"));
  let text = "";
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(65_536);
  for (;;) {
    const n = await conn.read(buffer);
    if (n === null) break;
    text += decoder.decode(buffer.subarray(0, n), { stream: true });
  }
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text };
}
