// The peer's web UI: the HTTP server, its event stream (transfers, publishes, log records) and
// the API over PeerOps. Started by main.ts when --ui is not off.
import { join } from "node:path";
import { EventHub } from "../shared/http/event_hub.ts";
import { LogFeed } from "../shared/http/log_feed.ts";
import { loadOrCreateToken } from "../shared/http/token.ts";
import { startUiServer, type UiServer } from "../shared/http/ui_server.ts";
import { PEER_ASSETS } from "../shared/http/ui_assets.gen.ts";
import { PEER_FIRST_PATHS, renderPeerApp } from "../shared/http/ui_render.gen.js";
import { createPeerApi } from "./api.ts";
import type { PeerOps } from "./ops.ts";
import type { TransfersSnapshot } from "./answers.ts";

/** ms between looks at the running transfers while a page is open: at most 5 updates/s. */
const TRANSFERS_TICK_MS = 200;

/** Where the peer's UI listens. */
export interface PeerUiOptions {
  hostname: string;
  /** 0: any free port. */
  port: number;
  /** Ports tried after `port` when it is taken. */
  nextPorts: number;
}

/** Name of the token file in the repository's metadata folder. */
export const PEER_TOKEN_FILE = "ui-token";

/** Starts the peer's UI over `ops`. */
export async function startPeerUi(ops: PeerOps, options: PeerUiOptions): Promise<UiServer> {
  const token = await loadOrCreateToken(join(ops.peer.repo.metaDir, PEER_TOKEN_FILE));
  const hub = new EventHub();
  const logs = new LogFeed(hub);
  const stopEvents = ops.onEvent((event) => hub.publish(event.type, event.data));
  // Transfers change all the time: a snapshot goes out when it differs from the last one sent,
  // at most every TRANSFERS_TICK_MS, and only while a page listens.
  let lastSnapshot = "";
  const ticker = setInterval(() => {
    if (hub.size === 0) {
      lastSnapshot = "";
      return;
    }
    const peer = ops.peer;
    const snapshot: TransfersSnapshot = {
      progress: [...peer.activity.fetches.values()].map((info) => ops.progress(info)),
      uploads: [...peer.activity.uploads.values()],
      slots: { active: peer.slots.active, max: peer.config.maxSessions, queued: peer.slots.queued },
      connected: peer.index.connected,
    };
    const text = JSON.stringify(snapshot);
    if (text === lastSnapshot) return;
    lastSnapshot = text;
    hub.publish("transfers", snapshot);
  }, TRANSFERS_TICK_MS);
  let server: UiServer;
  try {
    server = startUiServer({
      hostname: options.hostname,
      port: options.port,
      nextPorts: options.nextPorts,
      token,
      assets: PEER_ASSETS,
      hub,
      api: createPeerApi(ops, logs),
      // What the page shows first comes with it, already drawn (no script, then request).
      firstAnswers: PEER_FIRST_PATHS,
      render: renderPeerApp,
    });
  } catch (err) {
    clearInterval(ticker);
    stopEvents();
    logs[Symbol.dispose]();
    throw err;
  }
  const close = async () => {
    clearInterval(ticker);
    stopEvents();
    logs[Symbol.dispose]();
    await server.close();
  };
  return { ...server, close, [Symbol.asyncDispose]: close };
}
