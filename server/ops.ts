// The server's operations, called by its shell and by the dashboard's HTTP API alike: peers,
// files, discover, ping, stats. Answers as data; each caller formats them.
import { MsgType } from "../shared/protocol.ts";
import { expectType } from "../shared/rpc.ts";
import type { RunningServer } from "./server.ts";
import type { SessionRow } from "./store.ts";
import type {
  CataloguePage,
  DiscoverAnswer,
  PeerRow,
  PeersPage,
  PingAnswer,
  StatsAnswer,
} from "./answers.ts";

/** ms to wait for a peer's answer to `discover` or `ping`. */
const PEER_TIMEOUT_MS = 5000;
/** ms to wait for a peer's P2P port to accept during `ping`. */
const CONNECT_TIMEOUT_MS = 2000;
/** Largest page of peers or files. */
export const MAX_PAGE = 1000;

/** A refused argument; the HTTP API answers 400 (invalid) or 404 (not-found). */
export class ServerOpError extends Error {
  readonly kind: "invalid" | "not-found";

  /** @param message "Cannot x: detail" */
  constructor(kind: "invalid" | "not-found", message: string) {
    super(message);
    this.name = "ServerOpError";
    this.kind = kind;
  }
}

/** The operations over one running server. */
export class ServerOps {
  readonly server: RunningServer;
  /** Last measured round trip by session id (only sessions still live are kept). */
  readonly #rtt = new Map<string, number>();

  constructor(server: RunningServer) {
    this.server = server;
  }

  /**
   * A page of live sessions, by hostname substring (empty: all), with the number of entries
   * of each (one store query per row).
   */
  async peers(args: { pattern: string; offset: number; limit: number }): Promise<PeersPage> {
    checkPage(args);
    const needle = args.pattern.toLowerCase();
    const all = await this.server.catalog.sessions();
    const matching = needle === ""
      ? all
      : all.filter((s) => s.hostname.toLowerCase().includes(needle));
    const page = matching.slice(args.offset, args.offset + args.limit);
    this.#forgetEnded();
    const peers = await Promise.all(
      page.map(async (s) =>
        this.#peerRow(s, (await this.server.catalog.store.entriesOf(s.sessionId)).length)
      ),
    );
    const { entries } = await this.server.catalog.counts();
    return { peers, total: matching.length, entries };
  }

  /**
   * Every live session (without file counts) and the catalogue's entry count: what the shell's
   * `peers` prints. One listing and one count, where paging with peers() would list and count
   * again for every page (with a shared PostgreSQL at 10,000 sessions, minutes behind a
   * restart's publishes).
   */
  async allPeers(): Promise<{ peers: PeerRow[]; entries: number }> {
    const all = await this.server.catalog.sessions();
    this.#forgetEnded();
    const { entries } = await this.server.catalog.counts();
    return { peers: all.map((s) => this.#peerRow(s, null)), entries };
  }

  /** Drops the round trips of sessions that ended. */
  #forgetEnded(): void {
    for (const id of this.#rtt.keys()) {
      if (!this.server.live.has(id)) this.#rtt.delete(id);
    }
  }

  #peerRow(s: SessionRow, files: number | null): PeerRow {
    return {
      sessionId: s.sessionId,
      hostname: s.hostname,
      address: s.address,
      port: s.port,
      openedAtMs: s.openedAtMs,
      deviceId: s.deviceId ?? null,
      here: this.server.live.has(s.sessionId),
      serverId: s.serverId,
      files,
      lastRttMs: this.#rtt.get(s.sessionId) ?? null,
    };
  }

  /** A page of the catalogue (offline entries included), sorted by fname then host. */
  async files(
    args: { pattern: string; offset: number; limit: number },
  ): Promise<CataloguePage> {
    checkPage(args);
    const page = await this.server.catalog.search(args.pattern, {
      offset: args.offset,
      limit: args.limit,
      includeOffline: true,
    });
    return { ...page, offset: args.offset, limit: args.limit };
  }

  /** The files each session of `hostname` shares, asked live where this server holds it. */
  async discover(hostname: string): Promise<DiscoverAnswer[]> {
    const sessions = await this.#sessionsOf(hostname);
    return await Promise.all(sessions.map(async (row) => {
      const base = {
        hostname: row.hostname,
        address: row.address,
        port: row.port,
        deviceId: row.deviceId ?? null,
      };
      const session = this.server.live.get(row.sessionId);
      if (!session) {
        // Held by another server over the same database: answer from the index.
        const files = await this.server.catalog.store.entriesOf(row.sessionId);
        return { ...base, source: "index" as const, files };
      }
      const reply = expectType(
        await session.rpc.request(MsgType.ListShares, {}, PEER_TIMEOUT_MS),
        MsgType.Shares,
      );
      return { ...base, source: "live" as const, files: reply.body.files };
    }));
  }

  /** Round trip over each session of `hostname`, and whether its P2P port accepts. */
  async ping(hostname: string): Promise<PingAnswer[]> {
    const sessions = await this.#sessionsOf(hostname);
    return await Promise.all(sessions.map(async (row) => {
      const answer: PingAnswer = {
        hostname: row.hostname,
        address: row.address,
        port: row.port,
        rttMs: null,
        p2pOpen: false,
      };
      const session = this.server.live.get(row.sessionId);
      if (!session) answer.rttError = "not on this server";
      else {
        const t0 = performance.now();
        try {
          await session.rpc.request(MsgType.Ping, { sentAtMs: Date.now() }, PEER_TIMEOUT_MS);
          answer.rttMs = Math.round((performance.now() - t0) * 100) / 100;
          this.#rtt.set(row.sessionId, answer.rttMs);
        } catch (err) {
          answer.rttError = err instanceof Error ? err.message : String(err);
        }
      }
      const t1 = performance.now();
      try {
        const conn = await Deno.connect({
          hostname: row.address,
          port: row.port,
          signal: AbortSignal.timeout(CONNECT_TIMEOUT_MS),
        });
        conn.close();
        answer.p2pOpen = true;
        answer.connectMs = Math.round((performance.now() - t1) * 100) / 100;
      } catch (err) {
        answer.p2pError = err instanceof Error ? err.message : String(err);
      }
      return answer;
    }));
  }

  /** Sessions, entries, lookups since start and this process's memory. */
  async stats(): Promise<StatsAnswer> {
    const counts = await this.server.catalog.counts();
    const memory = Deno.memoryUsage();
    return {
      sessions: counts.sessions,
      here: this.server.live.size,
      entries: counts.entries,
      lookups: this.server.catalog.lookups,
      memory: {
        rss: memory.rss,
        heapUsed: memory.heapUsed,
        heapTotal: memory.heapTotal,
        external: memory.external,
      },
      timeMs: Date.now(),
      serverDeviceId: this.server.identity.id,
    };
  }

  async #sessionsOf(hostname: string) {
    if (hostname === "") throw new ServerOpError("invalid", "Cannot look up a peer: no hostname");
    const sessions = await this.server.catalog.sessions(hostname);
    if (sessions.length === 0) {
      throw new ServerOpError("not-found", `Cannot find a live peer named "${hostname}"`);
    }
    return sessions;
  }
}

function checkPage(args: { offset: number; limit: number }): void {
  if (!Number.isSafeInteger(args.offset) || args.offset < 0) {
    throw new ServerOpError("invalid", `Cannot list: offset must be a whole number`);
  }
  if (!Number.isSafeInteger(args.limit) || args.limit < 1 || args.limit > MAX_PAGE) {
    throw new ServerOpError("invalid", `Cannot list: limit must be 1 to ${MAX_PAGE}`);
  }
}
