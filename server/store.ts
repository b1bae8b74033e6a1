// The index's persistence boundary: what the catalog needs from a database, nothing more.
// Implemented by SqliteStore (embedded default) and PostgresStore (several servers, one index).
import type { CatalogEntry, FileEntry, PublishStatus, SourceInfo } from "../shared/protocol.ts";

/** What `Store.publish()` needs besides the entry. */
export interface PublishOptions {
  /** Current time, ms since the epoch: which other holders are live (for `conflict`). */
  nowMs: number;
  /** Most entries one session may hold; a publish of a new fname beyond it fails. */
  maxEntries: number;
}

/** What a publish did, as the `Published` reply reports it. */
export interface PublishOutcome {
  /**
   * `created`, `unchanged`, `updated` (same content, other size/mtime/have), `overwrite` (this
   * session published other content under the name before), or `conflict`: another live session
   * publishes other content under the name (the publish still took effect).
   */
  status: PublishStatus;
  /** This session's previous root hash for the name, when it was another one. */
  previousRootHash?: string;
  /** Another live session's root hash for the name (the first by hostname, port), if different. */
  conflictRootHash?: string;
}

/**
 * Combines what a store found into the outcome: `conflict` over `overwrite` over the entry's
 * own change. The hashes are reported whatever the status.
 *
 * @param change what happened to this session's entry
 * @param previousRootHash the entry's root hash before, if it existed
 * @param conflictRootHash another live holder's different root hash, if any
 */
export function publishOutcome(
  change: "created" | "unchanged" | "updated",
  entry: FileEntry,
  found: { previousRootHash: string | undefined; conflictRootHash: string | undefined },
): PublishOutcome {
  const outcome: PublishOutcome = { status: change };
  const { previousRootHash, conflictRootHash } = found;
  if (previousRootHash !== undefined && previousRootHash !== entry.rootHash) {
    outcome.status = "overwrite";
    outcome.previousRootHash = previousRootHash;
  }
  if (conflictRootHash !== undefined) {
    outcome.status = "conflict";
    outcome.conflictRootHash = conflictRootHash;
  }
  return outcome;
}

/** A peer's session as the index knows it. */
export interface SessionRow {
  sessionId: string;
  /** The server process holding the session. */
  serverId: string;
  hostname: string;
  /** Address the peer connected from. */
  address: string;
  /** The peer's P2P port. */
  port: number;
  /** Time the session was opened, ms since the epoch. */
  openedAtMs: number;
  /**
   * The device ID the peer proved in its Hello. Absent only for rows from before protocol 2:
   * such a row belongs to no device, and any device may take its {hostname, port} over.
   */
  deviceId?: string;
  /** The device's certificate (PEM), returned with its entries for fetchers to pin. */
  cert?: string;
}

/**
 * The operator's decision about a device, or `index`: a server of this catalogue (servers
 * sharing one PostgreSQL record themselves, so that each one's peers accept the others' tickets).
 */
export type DeviceStatus = "approved" | "revoked" | "index";

/** A page of search results. */
export interface SearchPage {
  entries: CatalogEntry[];
  /** Number of matches in all pages (a lower bound when `capped`). */
  total: number;
  /** Set when counting stopped early: at least `total` entries match. */
  capped?: boolean;
}

/** Search options. */
export interface SearchOptions {
  /** Rows to skip. */
  offset: number;
  /** Most rows to return. */
  limit: number;
  /** Also list entries whose owner is offline (after an index restart). @default false */
  includeOffline?: boolean;
}

/** What Store.registerSession() did. */
export interface Registration {
  /** The session it replaced, if that one was still live (its connection is to end). */
  replaced: SessionRow | undefined;
  /** Whether the pair's session was resumed with its entries. */
  kept: boolean;
}

/**
 * Persistence for the index. Every method may throw; a failure fails one request, never the
 * server. `nowMs` parameters make lease checks deterministic in tests.
 */
export interface Store {
  /** Brings the schema to the current version. Idempotent. */
  migrate(): Promise<void>;
  /**
   * Registers the session of a Hello for `{hostname, port}`, in one step (one transaction on a
   * database, one lock of the pair): a restart herd of thousands of peers pays for one, not one
   * to try resuming and another to open.
   *
   * Resumes when `sharesDigest` is given and the pair's session is of the same device
   * (`deviceId`, proved in the Hello; never a row without one; see mayResume()), and
   * `sharesDigest` (shared/shares_digest.ts) of its entries is the one given: the peer published
   * exactly these before it lost its connection or the server restarted, so it need not publish
   * them again. The row becomes `session` (its new id, server, address, opening time,
   * certificate), live until `leaseUntilMs`, and its entries are that session's. When the old
   * session was still live (a reconnect before its end was noticed, or a session of a server
   * that has since restarted, whose lease in a shared database has not run out), it is returned
   * as `replaced`, and its connection ends as on a takeover.
   *
   * Otherwise opens `session` afresh, taking over any earlier session of the pair (see
   * mayTakeOver()): the pair's old entries are dropped, and the (re)connecting peer publishes
   * its files again. A live session of ANOTHER device keeps the pair: nothing changes and
   * ConflictError is thrown. (An offline one is taken over: its device is not there to keep it.)
   *
   * Either way, the offline sessions of the same hostname on other ports go: the peer came back
   * on a new port, and its rows from before are stale.
   *
   * @param sharesDigest the Hello's digest of the set the peer publishes, if it sent one
   * @returns the session it replaced, if that one was still live, and whether the entries were
   *   kept (resumed)
   * @throws {ConflictError} when a live session of another device holds the pair
   */
  registerSession(
    session: SessionRow,
    leaseUntilMs: number,
    sharesDigest?: string,
  ): Promise<Registration>;
  /** Ends a session and removes its entries at once. No-op for an unknown or replaced session. */
  closeSession(sessionId: string): Promise<void>;
  /**
   * Heartbeat: extends the lease of every session of `serverId` and marks them online again (a
   * server that stalled past its lease may have been marked offline by another server).
   *
   * @param held the sessions the server holds connections for
   * @returns those of `held` that are no longer in the store: taken over through another
   * server, so their connections must close
   */
  renewLeases(serverId: string, held: readonly string[], leaseUntilMs: number): Promise<string[]>;
  /**
   * Marks sessions offline, keeping their entries so search can still show them: all of them
   * when `filter` is empty (a single-server database after a restart), those of one server,
   * or those whose lease ended before a time (servers that died). Returns how many changed.
   */
  markOffline(filter: { serverId?: string; leaseEndedBeforeMs?: number }): Promise<number>;
  /**
   * Removes the offline sessions (and their entries) whose lease ended before `beforeMs`: peers
   * that did not come back within the time the server keeps them for. An offline session's
   * lease end is when it went offline, or, for one loaded at start, no earlier than the start.
   *
   * @returns how many sessions were removed
   */
  dropOffline(beforeMs: number): Promise<number>;
  /** true when several servers may share this store (PostgreSQL); false for embedded SQLite. */
  readonly shared: boolean;
  /**
   * The store's own clock, ms since the epoch, for a shared store: servers on several hosts
   * write and judge each other's leases, and their own clocks may disagree. Absent for a store
   * that one server uses alone.
   */
  clockMs?(): Promise<number>;
  /**
   * Adds or updates one entry of a live session, and says how (see PublishOutcome).
   *
   * @throws {UnknownSessionError} when the session is not in the store
   * @throws {EntryLimitError} when the entry is new and the session holds `maxEntries` already
   */
  publish(sessionId: string, entry: FileEntry, options: PublishOptions): Promise<PublishOutcome>;
  /** Removes one entry. @returns whether it existed */
  unpublish(sessionId: string, fname: string): Promise<boolean>;
  /**
   * Live holders of `fname` whose lease runs past `nowMs`, except `excludeSessionId`. A store
   * that holds the catalogue in memory answers synchronously: the lookup is the index's
   * hottest request, and a promise per lookup is a measurable share of its cost.
   */
  whoHas(
    fname: string,
    excludeSessionId: string,
    nowMs: number,
  ): SourceInfo[] | Promise<SourceInfo[]>;
  /** Catalogue search: case-insensitive substring, or glob when `pattern` has `*` or `?`. */
  search(pattern: string, options: SearchOptions, nowMs: number): Promise<SearchPage>;
  /** Live sessions whose hostname is `hostname` (all hosts when undefined). */
  sessions(hostname: string | undefined, nowMs: number): Promise<SessionRow[]>;
  /** Entries of one session. */
  entriesOf(sessionId: string): Promise<FileEntry[]>;
  /** The operator's decisions about devices, by device ID. */
  deviceStatuses(): Promise<Map<string, DeviceStatus>>;
  /** Records a decision about a device, replacing any earlier one. */
  setDeviceStatus(deviceId: string, status: DeviceStatus): Promise<void>;
  /** Counts for status displays. */
  counts(nowMs: number): Promise<{ sessions: number; entries: number }>;
  /** Releases the connection(s). */
  close(): Promise<void>;
}

/** A write named a session the store does not hold: it ended, or a newer one replaced it. */
export class UnknownSessionError extends Error {
  /** @param message what could not be done, and for which session */
  constructor(message: string) {
    super(message);
    this.name = "UnknownSessionError";
  }
}

/** A session for a {hostname, port} that a live session of another device holds. */
export class ConflictError extends Error {
  /** The session that keeps the pair. */
  readonly owner: SessionRow;

  /**
   * @param message what could not be done, and why
   * @param owner the session that keeps the pair
   */
  constructor(message: string, owner: SessionRow) {
    super(message);
    this.name = "ConflictError";
    this.owner = owner;
  }
}

/**
 * Whether a Hello of `deviceId` may resume `old` (see Store.registerSession()), before its
 * digest is compared: `old` was proved by that very device. Live or not: a device back before
 * its old session ended (a quick reconnect, or a restarted server whose predecessor's sessions
 * still hold their leases in a shared database) keeps its entries as after a restart, and the
 * old connection is replaced, as the same device's takeover would replace it.
 */
export function mayResume(old: SessionRow, deviceId: string | undefined): boolean {
  return old.deviceId !== undefined && old.deviceId === deviceId;
}

/**
 * Whether a new session of `deviceId` may take over `old`: it is offline, or the same device's,
 * or from before devices had IDs.
 */
export function mayTakeOver(
  old: SessionRow,
  online: boolean,
  deviceId: string | undefined,
): boolean {
  return !online || old.deviceId === undefined || old.deviceId === deviceId;
}

/** The ConflictError for `session` against the live `owner` of its pair. */
export function conflictError(session: SessionRow, owner: SessionRow): ConflictError {
  return new ConflictError(
    `Cannot register as ${session.hostname}:${session.port}: held by another device (${
      owner.deviceId?.slice(0, 12)
    }); choose another --hostname or stop that peer`,
    owner,
  );
}

/** A publish of a new fname by a session that holds as many entries as it may. */
export class EntryLimitError extends Error {
  /** The limit that was reached. */
  readonly maxEntries: number;

  /**
   * @param message what could not be done, and why
   * @param maxEntries the limit
   */
  constructor(message: string, maxEntries: number) {
    super(message);
    this.name = "EntryLimitError";
    this.maxEntries = maxEntries;
  }
}

/** Converts a user pattern to a SQL LIKE pattern with `\` as the escape character. */
export function likePattern(pattern: string): string {
  const escaped = pattern.replace(/[\\%_]/g, (c) => `\\${c}`);
  if (/[*?]/.test(pattern)) return escaped.replace(/\*/g, "%").replace(/\?/g, "_");
  return `%${escaped}%`;
}
