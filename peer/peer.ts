// A running peer: repository, share table, P2P server, index session and the operations the
// shell offers (publish, unpublish, fetch, search, status, cancel). No stdin/stdout here.
import { basename } from "node:path";
import { Bitfield } from "../shared/bitfield.ts";
import { pieceCount } from "../shared/pieces.ts";
import type { HostPort } from "../shared/cli.ts";
import { fnameProblem } from "../shared/fname.ts";
import { logger } from "../shared/log.ts";
import { type CatalogEntry, MsgType, type PublishStatus } from "../shared/protocol.ts";
import { expectType } from "../shared/rpc.ts";
import { Activity, type FetchInfo, type UploadInfo } from "./activity.ts";
import type { PeerConfig } from "./config.ts";
import { discoverServers } from "./discover.ts";
import { fetchFile, type FetchOptions, type FetchResult } from "./fetch.ts";
import { IndexClient } from "./index_client.ts";
import { startP2pServer } from "./p2p_server.ts";
import { PartialDownload, type PartialRecord } from "./partial.ts";
import { TokenBucket } from "./rate.ts";
import { PathError, Repository } from "./repo.ts";
import { shareEntry, Shares } from "./shares.ts";
import { Slots } from "./slots.ts";
import type { HashProgress } from "./hashing.ts";

const log = logger("peer");

/** A user-facing failure of a shell operation. */
export class PeerError extends Error {
  /** @param message "Cannot x: detail" */
  constructor(message: string) {
    super(message);
    this.name = "PeerError";
  }
}

/** Answer of `publish`. */
export interface PublishResult {
  fname: string;
  path: string;
  size: number;
  rootHash: string;
  status: PublishStatus;
}

/** Answer of `status`. */
export interface StatusReport {
  server: string | undefined;
  connected: boolean;
  slots: { active: number; max: number; queued: number };
  uploads: UploadInfo[];
  fetches: FetchInfo[];
  /** Interrupted downloads on disk that `fetch` resumes. */
  partials: {
    fname: string;
    rootHash: string;
    size: number;
    verifiedPieces: number;
    pieces: number;
  }[];
}

/** A running peer. */
export class Peer implements AsyncDisposable {
  readonly config: PeerConfig;
  readonly repo: Repository;
  readonly shares: Shares;
  readonly activity: Activity;
  readonly slots: Slots;
  readonly index: IndexClient;
  readonly p2pPort: number;
  readonly #p2p: { close(): Promise<void> };
  readonly #download: TokenBucket;
  /** Running fetches: how to stop each, and when it has let go of its files. */
  readonly #running = new Map<string, { abort: AbortController; settled: Promise<unknown> }>();

  private constructor(
    config: PeerConfig,
    parts: {
      repo: Repository;
      shares: Shares;
      slots: Slots;
      activity: Activity;
      p2p: { port: number; close(): Promise<void> };
      download: TokenBucket;
    },
  ) {
    this.config = config;
    this.activity = parts.activity;
    this.repo = parts.repo;
    this.shares = parts.shares;
    this.slots = parts.slots;
    this.#p2p = parts.p2p;
    this.p2pPort = parts.p2p.port;
    this.#download = parts.download;
    this.index = new IndexClient({
      locate: () => this.#locate(),
      hostname: config.hostname,
      p2pPort: this.p2pPort,
      listShares: () => ({ files: this.shares.list().map(shareEntry) }),
      onConnected: async () => {
        // A (re)connected session starts empty on the index: publish everything again.
        await Promise.all(this.shares.list().map((share) => this.announce(share.fname)));
      },
    });
  }

  /**
   * Opens the repository, starts serving and registers with the index.
   *
   * @throws {Error} when the repository cannot be opened or no index server is found
   */
  static async start(config: PeerConfig, onHashProgress?: HashProgress): Promise<Peer> {
    const repo = await Repository.open(config.repo);
    const shares = await Shares.load(repo, onHashProgress);
    const slots = new Slots({
      max: config.maxSessions,
      maxPerPeer: config.maxPerPeer,
      maxQueue: config.maxQueue,
    });
    const activity = new Activity();
    const p2p = startP2pServer({ hostname: config.host, port: config.port }, {
      repo,
      shares,
      slots,
      upload: new TokenBucket(config.maxUploadRate),
      activity,
      idleTimeoutMs: 30_000,
      stallTimeoutMs: config.stallTimeoutMs,
      retryAfterMs: 1000,
      debugCorrupt: config.debugCorrupt,
    });
    const download = new TokenBucket(config.maxDownloadRate);
    const peer = new Peer(config, { repo, shares, slots, activity, p2p, download });
    try {
      await peer.index.start();
    } catch (err) {
      await p2p.close();
      throw err;
    }
    return peer;
  }

  async #locate(): Promise<HostPort[]> {
    if (this.config.servers.length > 0) return this.config.servers;
    const found = await discoverServers({
      announcePort: this.config.announcePort,
      broadcast: this.config.broadcast,
      timeoutMs: this.config.discoverTimeoutMs,
    });
    return found.map(({ hostname, port }) => ({ hostname, port }));
  }

  /** Sends a share's current entry to the index. */
  async announce(fname: string): Promise<PublishStatus> {
    const share = this.shares.get(fname);
    if (!share) throw new PeerError(`Cannot announce "${fname}": not shared`);
    const reply = expectType(
      await this.index.request(MsgType.Publish, shareEntry(share)),
      MsgType.Published,
    );
    return reply.body.status;
  }

  /**
   * Shares the repository file `lname` under the name `fname` (default: its base name).
   *
   * @throws {PeerError} for a path outside the repository, a missing file or a bad fname
   */
  async publish(
    lname: string,
    fname = basename(lname),
    onProgress?: HashProgress,
  ): Promise<PublishResult> {
    const problem = fnameProblem(fname);
    if (problem) throw new PeerError(`Cannot publish as "${fname}": ${problem}`);
    let path: string;
    try {
      path = await this.repo.resolveFile(lname);
    } catch (err) {
      if (err instanceof PathError) throw new PeerError(err.message);
      throw err;
    }
    const existing = this.shares.get(fname);
    if (existing?.have) throw new PeerError(`Cannot publish as "${fname}": it is being fetched`);
    const hashes = await this.shares.hashesOf(path, onProgress);
    await this.shares.set({ fname, path, hashes });
    const status = await this.announce(fname);
    return {
      fname,
      path: this.repo.relative(path),
      size: hashes.size,
      rootHash: hashes.rootHash,
      status,
    };
  }

  /** Stops sharing `fname`. @returns whether it was shared */
  async unpublish(fname: string): Promise<boolean> {
    const existed = await this.shares.delete(fname);
    if (this.index.connected || existed) {
      await this.index.request(MsgType.Unpublish, { fname });
    }
    return existed;
  }

  /** Fetches `fname` from other peers (see fetchFile). */
  async fetch(fname: string, options: Omit<FetchOptions, "signal"> = {}): Promise<FetchResult> {
    if (this.#running.has(fname)) {
      throw new PeerError(`Cannot fetch "${fname}": already fetching it`);
    }
    const abort = new AbortController();
    const fetching = fetchFile(
      {
        repo: this.repo,
        shares: this.shares,
        slots: this.slots,
        index: this.index,
        activity: this.activity,
        download: this.#download,
        self: `${this.config.hostname}:${this.p2pPort}`,
        ttfbTimeoutMs: this.config.ttfbTimeoutMs,
        stallTimeoutMs: this.config.stallTimeoutMs,
        maxSources: this.config.maxSources,
        maxFileSize: this.config.maxFileSize,
        announce: (f) => this.announce(f).then(() => {}),
      },
      fname,
      { ...options, signal: abort.signal },
    );
    const settled = fetching.finally(() => this.#running.delete(fname)).catch(() => {});
    this.#running.set(fname, { abort, settled });
    return await fetching;
  }

  /**
   * Cancels a running fetch of `fname` and deletes its partial download.
   *
   * @returns what was cancelled
   */
  async cancel(fname: string): Promise<{ running: boolean; partials: number }> {
    const running = this.#running.get(fname);
    running?.abort.abort();
    // Wait for the fetch to save and release its partial file before deleting it.
    await running?.settled;
    let partials = 0;
    for (const record of await PartialDownload.list(this.repo)) {
      if (record.fname !== fname) continue;
      await PartialDownload.remove(this.repo, record.rootHash);
      partials++;
    }
    return { running: running !== undefined, partials };
  }

  /** A page of the index's catalogue. */
  async search(
    pattern: string,
    offset = 0,
    limit = 100,
  ): Promise<{ entries: CatalogEntry[]; total: number; capped?: boolean }> {
    return expectType(
      await this.index.request(MsgType.Search, { pattern, offset, limit }),
      MsgType.SearchResult,
    ).body;
  }

  /** Live and interrupted transfers. */
  async status(): Promise<StatusReport> {
    const partials = (await PartialDownload.list(this.repo)).filter((r) =>
      !this.activity.fetches.has(r.fname)
    ).map(
      (r: PartialRecord) => {
        const pieces = pieceCount(r.size, r.pieceSize);
        const verifiedPieces = Bitfield.fromBase64(pieces, r.have).count;
        return { fname: r.fname, rootHash: r.rootHash, size: r.size, verifiedPieces, pieces };
      },
    );
    return {
      server: this.index.server,
      connected: this.index.connected,
      slots: { active: this.slots.active, max: this.config.maxSessions, queued: this.slots.queued },
      uploads: [...this.activity.uploads.values()],
      fetches: [...this.activity.fetches.values()],
      partials,
    };
  }

  /** Says goodbye to the index, stops fetches and serving. */
  async close(): Promise<void> {
    const running = [...this.#running.values()];
    for (const { abort } of running) abort.abort();
    await Promise.all(running.map((r) => r.settled));
    await this.index.close();
    await this.#p2p.close();
    log.info("Peer stopped");
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
