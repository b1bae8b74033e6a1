// An index server on its own thread, for tests that must keep their timers running while the
// server works (or hangs): startTestServer() in a Worker. Messages: in, `{ overrides }` to
// start and "close" to stop; out, `{ port }` once listening and "closed".
/// <reference lib="deno.worker" />
import type { ServerConfig } from "../../server/config.ts";
import type { RunningServer } from "../../server/server.ts";
import { startTestServer } from "./_server.ts";

let server: RunningServer | undefined;

self.onmessage = async (event: MessageEvent<{ overrides: Partial<ServerConfig> } | "close">) => {
  if (event.data === "close") {
    await server?.close();
    self.postMessage("closed");
    return;
  }
  server = await startTestServer(event.data.overrides);
  self.postMessage({ port: server.tcpPort });
};
