// A running peer: repository, share table, P2P server, index session and the operations the
// shell offers (publish, unpublish, fetch, search, status, cancel). No stdin/stdout here.
import { basename } from "node:path";
import { Bitfield } from "../shared/bitfield.ts";
import { pieceCount } from "../shared/pieces.ts";
import { fnameProblem } from "../shared/fname.ts";
import { logger } from "../shared/log.ts";
import {
  type CatalogEntry,
  type FileEntry,
  MsgType,
  type PublishedBody,
} from "../shared/protocol.ts";
import { expectType } from "../shared/rpc.ts";
import { Activity } from "./activity.ts";
import type { PeerConfig } from "./config.ts";
import { locateIndex } from "./index_locator.ts";
import { peerIdentity } from "./identity_file.ts";
import { ServerPins } from "./server_pins.ts";
import type { TransportMode } from "../shared/transport.ts";
import { FetchError, fetchFile, type FetchOptions } from "./fetch.ts";
import type { AnnounceStatus, FetchResult, PublishResult, StatusReport } from "./answers.ts";
import { IndexClient, IndexUnavailableError } from "./index_client.ts";
import {
  describeIndexState,
  type IndexState,
  type IndexTarget,
  unavailableReason,
} from "./index_state.ts";
import { connectionCapsFor } from "./connection_caps.ts";
import { startP2pServer } from "./p2p_server.ts";
import { PartialDownload, type PartialRecord } from "./partial.ts";
import { TokenBucket } from "./rate.ts";
import { PathError, Repository } from "./repo.ts";
import { shareEntry, Shares } from "./shares.ts";
import { Slots } from "./slots.ts";
import type { HashProgress } from "./hashing.ts";
import { type Identity, sign } from "../shared/identity.ts";
import type { NetworkKey } from "../shared/handshake.ts";
import { publishStatement } from "../shared/statements.ts";
import { loadNetworkKey } from "./network_key.ts";
import { TicketKeeper } from "./ticket_keeper.ts";

const log = logger("peer");

/** How often published files are checked for edits made behind the peer's back. */
const RESCAN_INTERVAL_MS = 10_000;

/** Why a shell operation failed, for programs (the HTTP API maps it to a status). */
export type PeerErrorCode =
  /** No share by that fname. */
  | "not-shared"
  /** The fname is not valid (see fnameProblem). */
  | "invalid-fname"
  /** The file to publish does not exist. */
  | "missing"
  /** The path to publish is refused (outside the repository, not a file…). */
  | "bad-path"
  /** The fname names a download still in progress. */
  | "being-fetched";

/** A user-facing failure of a shell operation. */
export class PeerError extends Error {
  /** Why, for programs: never read from the message, which quotes the user's names. */
  readonly code: PeerErrorCode;

  /**
   * @param code why, for programs
   * @param message "Cannot x: detail"
   */
  constructor(code: PeerErrorCode, message: string) {
    super(message);
    this.name = "PeerError";
    this.code = code;
  }
}

/** Callbacks of a running peer (for the shell's output). */
export interface PeerHooks {
  /** Hashing progress of shares loaded at start. */
  onHashProgress?: HashProgress;
  /** Every change of the peer's standing with the index. */
  onIndexState?: (state: IndexState, summary: string) => void;
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
  /** This peer's device identity: signs Hello and every publish. */
  readonly identity: Identity;
  /** The index servers this peer has pinned (`forget-server` removes one). */
  readonly pins: ServerPins;
  readonly #p2p: { close(): Promise<void> };
  readonly #download: TokenBucket;
  readonly #describeIndex: (state: IndexState) => string;
  /** The fetch ticket from the index, and the index whose tickets this peer's sources accept. */
  readonly tickets: TicketKeeper;
  #lastIndexKind: IndexState["kind"] = "looking";
  /** Running fetches: how to stop each, and when it has let go of its files. */
  readonly #running = new Map<string, { abort: AbortController; settled: Promise<unknown> }>();
  #rescan: ReturnType<typeof setInterval> | undefined;

  private constructor(
    config: PeerConfig,
    parts: {
      repo: Repository;
      shares: Shares;
      slots: Slots;
      activity: Activity;
      p2p: { port: number; close(): Promise<void> };
      download: TokenBucket;
      identity: Identity;
      pins: ServerPins;
      networkKey: NetworkKey | undefined;
    },
    hooks: PeerHooks,
  ) {
    this.config = config;
    this.activity = parts.activity;
    this.repo = parts.repo;
    this.shares = parts.shares;
    this.slots = parts.slots;
    this.#p2p = parts.p2p;
    this.p2pPort = parts.p2p.port;
    this.#download = parts.download;
    this.identity = parts.identity;
    this.pins = parts.pins;
    this.tickets = new TicketKeeper(async () =>
      expectType(await this.index.request(MsgType.GetTicket, {}), MsgType.Ticket).body.ticket
    );
    const target: IndexTarget = {
      servers: config.servers.map(({ hostname, port }) => `${hostname}:${port}`),
      announcePort: config.announcePort,
      self: `${config.hostname}:${this.p2pPort}`,
    };
    this.#describeIndex = (state) => describeIndexState(state, target);
    this.index = new IndexClient({
      locate: (signal) => locateIndex(config, this.pins, signal),
      plaintext: config.insecurePlaintext,
      unavailableReason: (state) => unavailableReason(state, target),
      // Each new kind of state, not each failed attempt while looking.
      onStateChange: (state) => {
        if (state.kind === this.#lastIndexKind) return;
        this.#lastIndexKind = state.kind;
        hooks.onIndexState?.(state, describeIndexState(state, target));
      },
      hostname: config.hostname,
      p2pPort: this.p2pPort,
      identity: parts.identity,
      networkKey: parts.networkKey,
      onRegistered: (indexIds, ticket) => this.tickets.registered(indexIds, ticket),
      listShares: () => ({ files: this.shares.list().map(shareEntry) }),
      onConnected: async (client, kept) => {
        // A (re)connected session starts empty on the index: publish everything again. Unless
        // the index kept what this peer had published: then only what changed meanwhile.
        if (kept) await this.#sendChanges(client.published);
        else await Promise.all(this.shares.list().map((share) => this.announce(share.fname)));
      },
    });
    this.shares.onChange = (changes) => void this.#announceChanges(changes);
  }

  /**
   * Brings the index from `held` (what it kept for this peer) to the shares of now: publishes
   * the shares it lacks or holds in another state, unpublishes the names no longer shared.
   */
  async #sendChanges(held: ReadonlyMap<string, FileEntry>): Promise<void> {
    const gone = new Set(held.keys());
    const stale: string[] = [];
    for (const share of this.shares.list()) {
      gone.delete(share.fname);
      const entry = shareEntry(share);
      const kept = held.get(share.fname);
      if (!kept || !sameFile(kept, entry)) stale.push(share.fname);
    }
    if (stale.length > 0 || gone.size > 0) {
      log.info("The index kept this peer's entries: sending {n} change(s)", {
        n: stale.length + gone.size,
      });
    }
    await Promise.all([
      ...stale.map((fname) => this.announce(fname)),
      ...[...gone].map((fname) =>
        this.index.request(MsgType.Unpublish, { fname }).catch((err) => {
          // Lost again meanwhile: the next session starts from what the index answered.
          if (!(err instanceof IndexUnavailableError)) throw err;
        })
      ),
    ]);
  }

  /** Tells the index about names whose content changed on disk or that went away. */
  async #announceChanges(changes: { fname: string; removed: boolean }[]): Promise<void> {
    for (const { fname, removed } of changes) {
      try {
        if (removed) await this.index.request(MsgType.Unpublish, { fname });
        else await this.announce(fname);
      } catch (err) {
        log.warn("Cannot announce the change of {fname}: {error}", { fname, error: String(err) });
      }
    }
  }

  /**
   * Opens the repository and starts serving, then looks for the index in the background (it
   * may start later; `status` says how that goes).
   *
   * @throws {Error} when the repository cannot be opened or the P2P port cannot be bound
   */
  static async start(config: PeerConfig, hooks: PeerHooks = {}): Promise<Peer> {
    const networkKey = await loadNetworkKey(config);
    const repo = await Repository.open(config.repo);
    const identity = await peerIdentity(repo);
    const pins = await ServerPins.load(repo);
    const shares = await Shares.load(repo, hooks.onHashProgress);
    const slots = new Slots({
      max: config.maxSessions,
      maxPerPeer: config.maxPerPeer,
      maxQueue: config.maxQueue,
    });
    const activity = new Activity();
    // Set once the peer exists; a fetcher before the first registration finds no trusted index.
    let registeredWith: () => readonly string[] = () => [];
    const p2p = startP2pServer({ hostname: config.host, port: config.port }, {
      repo,
      shares,
      slots,
      upload: new TokenBucket(config.maxUploadRate),
      activity,
      caps: connectionCapsFor(config.maxSessions, config.maxQueue),
      idleTimeoutMs: 30_000,
      stallTimeoutMs: config.stallTimeoutMs,
      retryAfterMs: 1000,
      debugCorrupt: config.debugCorrupt,
      auth: {
        identity,
        trustedIndexIds: () => [...registeredWith()],
      },
    }, transportOf(config, identity));
    const download = new TokenBucket(config.maxDownloadRate);
    const peer = new Peer(
      config,
      { repo, shares, slots, activity, p2p, download, identity, pins, networkKey },
      hooks,
    );
    registeredWith = () => peer.tickets.indexIds;
    peer.index.start();
    peer.#rescan = setInterval(() => {
      peer.shares.rescan().catch((err) =>
        log.error("Cannot rescan published files: {error}", { error: String(err) })
      );
    }, RESCAN_INTERVAL_MS);
    return peer;
  }

  /**
   * Sends a share's current entry to the index; returns the index's `Published` answer.
   * Without a session the status is "pending": the share is announced on (re)connection,
   * with every other one the index does not hold as it is now.
   */
  async announce(
    fname: string,
  ): Promise<Omit<PublishedBody, "status"> & { status: AnnounceStatus }> {
    const share = this.shares.get(fname);
    if (!share) throw new PeerError("not-shared", `Cannot announce "${fname}": not shared`);
    try {
      const unsigned = shareEntry(share);
      const statement = publishStatement(unsigned.fname, unsigned.size, unsigned.rootHash);
      const entry = { ...unsigned, sig: (await sign(this.identity, statement)).toBase64() };
      const reply = expectType(
        await this.index.request(MsgType.Publish, entry),
        MsgType.Published,
      );
      return reply.body;
    } catch (err) {
      if (err instanceof IndexUnavailableError) return { fname, status: "pending" };
      throw err;
    }
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
    if (problem) throw new PeerError("invalid-fname", `Cannot publish as "${fname}": ${problem}`);
    let path: string;
    try {
      path = await this.repo.resolveFile(lname);
    } catch (err) {
      if (err instanceof PathError) {
        throw new PeerError(err.code === "missing" ? "missing" : "bad-path", err.message);
      }
      throw err;
    }
    const existing = this.shares.get(fname);
    if (existing?.have) {
      throw new PeerError("being-fetched", `Cannot publish as "${fname}": it is being fetched`);
    }
    // A session being opened publishes every share it finds: let it open first, so that this
    // share is announced on its own and its status (created, updated) is this publish's.
    await this.index.settle();
    const hashes = await this.shares.hashesOf(path, onProgress);
    await this.shares.set({ fname, path, hashes });
    const answer = await this.announce(fname);
    const result: PublishResult = {
      fname,
      path: this.repo.relative(path),
      size: hashes.size,
      rootHash: hashes.rootHash,
      status: answer.status,
    };
    if (answer.status === "pending") result.pendingReason = this.#describeIndex(this.index.state);
    if (answer.previousRootHash !== undefined) result.previousRootHash = answer.previousRootHash;
    if (answer.conflictRootHash !== undefined) result.conflictRootHash = answer.conflictRootHash;
    return result;
  }

  /**
   * Stops sharing `fname`. Without a session with the index there is nothing to tell it: a new
   * session starts empty and gets only the shares left.
   *
   * @returns whether it was shared
   */
  async unpublish(fname: string): Promise<boolean> {
    const existed = await this.shares.delete(fname);
    if (this.index.connected || existed) {
      try {
        await this.index.request(MsgType.Unpublish, { fname });
      } catch (err) {
        if (!(err instanceof IndexUnavailableError)) throw err;
      }
    }
    return existed;
  }

  /**
   * Connects to the index now: takes this peer's identity back after another peer replaced
   * it, or skips the wait before the next attempt.
   *
   * @returns the server connected to
   */
  reconnect(): Promise<string> {
    return this.index.reconnect();
  }

  /** Fetches `fname` from other peers (see fetchFile). */
  async fetch(fname: string, options: Omit<FetchOptions, "signal"> = {}): Promise<FetchResult> {
    if (this.#running.has(fname)) {
      throw new FetchError("busy", `Cannot fetch "${fname}": already fetching it`);
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
        plaintext: this.config.insecurePlaintext,
        maxFileSize: this.config.maxFileSize,
        announce: (f) => this.announce(f).then(() => {}),
        credentials: { identity: this.identity, ticket: () => this.tickets.ticket },
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
      id: this.identity.id,
      server: this.index.server,
      serverId: this.index.serverDeviceId,
      connected: this.index.connected,
      index: { state: this.index.state.kind, summary: this.#describeIndex(this.index.state) },
      slots: { active: this.slots.active, max: this.config.maxSessions, queued: this.slots.queued },
      uploads: [...this.activity.uploads.values()],
      fetches: [...this.activity.fetches.values()],
      partials,
    };
  }

  /** Says goodbye to the index, stops fetches and serving. */
  async close(): Promise<void> {
    clearInterval(this.#rescan);
    this.tickets[Symbol.dispose]();
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

/**
 * Whether the index's entry describes the share as it is: the same fields but the signature
 * (which signs fname, size and root hash, so it is the same when they are).
 */
function sameFile(held: FileEntry, entry: FileEntry): boolean {
  return held.size === entry.size && held.mtimeMs === entry.mtimeMs &&
    held.rootHash === entry.rootHash && held.pieceSize === entry.pieceSize &&
    held.have === entry.have;
}

/** How this peer's P2P port is carried: TLS with its own certificate, or plaintext. */
function transportOf(config: PeerConfig, identity: Identity): TransportMode {
  return config.insecurePlaintext
    ? { plaintext: true }
    : { plaintext: false, certPem: identity.certPem, keyPem: identity.keyPem };
}
