// The shapes of the server's answers: what its shell prints as data, what the dashboard's HTTP
// API sends and what the dashboard reads. Types only, importing only modules without Deno APIs,
// so that the browser code (ui/, checked with the DOM library) type-checks against the same
// declarations the server builds its answers with.
import type { CatalogEntry, FileEntry } from "../shared/protocol.ts";
import type { SearchPage } from "./store.ts";

/** One live session as the peers table shows it. */
export interface PeerRow {
  sessionId: string;
  hostname: string;
  address: string;
  port: number;
  openedAtMs: number;
  /** The device (ID) that proved its key for this session; null for rows from before IDs. */
  deviceId: string | null;
  /** Held by this server process (else by another over the same database). */
  here: boolean;
  serverId: string;
  /** Entries it publishes (null when not counted). */
  files: number | null;
  /** Round trip of the last `ping`, ms; null before one. */
  lastRttMs: number | null;
}

/** The files of one session, as `discover` reports them. */
export interface DiscoverAnswer {
  hostname: string;
  address: string;
  port: number;
  /** The session's device (ID); null for rows from before IDs. */
  deviceId: string | null;
  /** "live": asked the peer now; "index": held by another server, from the index. */
  source: "live" | "index";
  files: FileEntry[];
}

/** The round trips of one session, as `ping` reports them. */
export interface PingAnswer {
  hostname: string;
  address: string;
  port: number;
  /** Round trip over the index session, ms; null when not held here or no answer. */
  rttMs: number | null;
  rttError?: string;
  p2pOpen: boolean;
  /** ms the P2P connect took, when open. */
  connectMs?: number;
  p2pError?: string;
}

/** Sessions, entries, lookups and memory. */
export interface StatsAnswer {
  sessions: number;
  /** Sessions held by this process. */
  here: number;
  entries: number;
  /** Lookups answered since start. */
  lookups: number;
  memory: { rss: number; heapUsed: number; heapTotal: number; external: number };
  timeMs: number;
  /** This server's own device ID. */
  serverDeviceId: string;
}

/** A page of live sessions (`GET /api/peers`). */
export interface PeersPage {
  peers: PeerRow[];
  /** Sessions matching the pattern, in all pages. */
  total: number;
  /** Entries in the whole catalogue. */
  entries: number;
}

/** A page of the catalogue, offline entries included (`GET /api/files`). */
export interface CataloguePage extends SearchPage {
  offset: number;
  limit: number;
  entries: CatalogEntry[];
}

/** `GET /api/stats`: the stats now and the samples of the last minutes, oldest first. */
export interface StatsWithSamples extends StatsAnswer {
  samples: readonly StatsAnswer[];
}
