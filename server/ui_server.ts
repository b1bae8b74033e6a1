// The server's dashboard: the HTTP server, its event stream (peers joining and leaving, stats
// samples, log records) and the API over ServerOps. Started by main.ts when --ui is not off.
import { logger } from "../shared/log.ts";
import { EventHub } from "../shared/http/event_hub.ts";
import { LogFeed } from "../shared/http/log_feed.ts";
import { loadOrCreateToken, newToken } from "../shared/http/token.ts";
import { startUiServer, type UiServer } from "../shared/http/ui_server.ts";
import { SERVER_ASSETS } from "../shared/http/ui_assets.gen.ts";
import { renderServerApp, SERVER_FIRST_PATHS } from "../shared/http/ui_render.gen.js";
import { createServerApi } from "./api.ts";
import type { ServerOps } from "./ops.ts";
import type { StatsAnswer } from "./answers.ts";

const log = logger("server", "ui");

/** ms between stats samples (the chart's resolution). */
const SAMPLE_INTERVAL_MS = 1000;
/** Samples kept: ten minutes. */
const SAMPLES_KEPT = 600;
/** ms between looks at who joined or left, while a page listens. */
const PEERS_TICK_MS = 500;
/** More changes than this in one tick are sent as a count: the page reloads its page of rows. */
const MAX_LISTED_CHANGES = 50;

/** Where the dashboard listens. */
export interface ServerUiOptions {
  hostname: string;
  /** 0: any free port. */
  port: number;
  /** Ports tried after `port` when it is taken. */
  nextPorts: number;
  /** File keeping the token (beside the database); undefined: a new token each start. */
  tokenPath: string | undefined;
}

/** The token file of a server whose database is `db` (none for :memory: or PostgreSQL). */
export function serverTokenPath(db: string): string | undefined {
  if (db === ":memory:" || /^postgres(ql)?:/.test(db)) return undefined;
  return `${db}.ui-token`;
}

/** Starts the dashboard over `ops`. */
export async function startServerUi(ops: ServerOps, options: ServerUiOptions): Promise<UiServer> {
  const token = options.tokenPath === undefined
    ? newToken()
    : await loadOrCreateToken(options.tokenPath);
  const hub = new EventHub();
  const logs = new LogFeed(hub);
  const samples: StatsAnswer[] = [];
  const sample = async () => {
    const stats = await ops.stats();
    samples.push(stats);
    if (samples.length > SAMPLES_KEPT) samples.shift();
    hub.publish("stats", stats);
  };
  let sampling = false;
  const sampler = setInterval(() => {
    if (sampling) return; // a slow store: skip rather than pile up
    sampling = true;
    sample().catch((err) =>
      log.warn("Cannot sample the dashboard's stats: {error}", { error: String(err) })
    ).finally(() => sampling = false);
  }, SAMPLE_INTERVAL_MS);
  let known = new Map<string, { hostname: string; address: string; port: number }>();
  const watcher = setInterval(() => {
    if (hub.size === 0) {
      known = new Map();
      return;
    }
    const live = ops.server.live;
    const joined = [];
    for (const [id, session] of live) {
      if (!known.has(id)) {
        const row = session.row;
        joined.push({
          sessionId: id,
          hostname: row.hostname,
          address: row.address,
          port: row.port,
        });
      }
    }
    const left = [];
    for (const [id, row] of known) if (!live.has(id)) left.push({ sessionId: id, ...row });
    if (joined.length === 0 && left.length === 0) return;
    known = new Map(
      [...live].map(([id, s]) => [id, {
        hostname: s.row.hostname,
        address: s.row.address,
        port: s.row.port,
      }]),
    );
    const many = joined.length + left.length > MAX_LISTED_CHANGES;
    hub.publish("peers", {
      sessions: live.size,
      joined: many ? joined.length : joined,
      left: many ? left.length : left,
    });
  }, PEERS_TICK_MS);
  const stopTimers = () => {
    clearInterval(sampler);
    clearInterval(watcher);
    logs[Symbol.dispose]();
  };
  let server: UiServer;
  try {
    server = startUiServer({
      hostname: options.hostname,
      port: options.port,
      nextPorts: options.nextPorts,
      token,
      assets: SERVER_ASSETS,
      hub,
      api: createServerApi(ops, logs, () => samples),
      // What the page shows first comes with it, already drawn (no script, then request).
      firstAnswers: SERVER_FIRST_PATHS,
      render: renderServerApp,
    });
  } catch (err) {
    stopTimers();
    throw err;
  }
  const close = async () => {
    stopTimers();
    await server.close();
  };
  return { ...server, close, [Symbol.asyncDispose]: close };
}
