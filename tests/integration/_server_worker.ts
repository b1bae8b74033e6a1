// An index server on its own thread, for tests that must keep their timers running while the
// server works (or hangs): startTestServer() in a Worker. Messages: in, `{ overrides }` to
// start, `{ stallMs }` to block the thread that long (a server too busy to accept), and "close"
// to stop; out, `{ port }` once listening, "stalling" then "stalled", and "closed".
/// <reference lib="deno.worker" />
import type { ServerConfig } from "../../server/config.ts";
import type { RunningServer } from "../../server/server.ts";
import { startTestServer } from "./_server.ts";

let server: RunningServer | undefined;

type Request = { overrides: Partial<ServerConfig> } | { stallMs: number } | "close";

self.onmessage = async (event: MessageEvent<Request>) => {
  if (event.data === "close") {
    await server?.close();
    self.postMessage("closed");
    return;
  }
  if ("stallMs" in event.data) {
    self.postMessage("stalling");
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, event.data.stallMs);
    self.postMessage("stalled");
    return;
  }
  server = await startTestServer(event.data.overrides);
  self.postMessage({ port: server.tcpPort });
};
