// Index business rules: who may register, what a valid entry is, what lookups return.
// Talks only to a Store; knows nothing of sockets.
import { fnameProblem, quoted, textProblem } from "../shared/fname.ts";
import { logger } from "../shared/log.ts";
import {
  DEFAULT_LIMITS,
  type FileEntry,
  MAX_HOSTNAME_BYTES,
  MAX_SEARCH_PATTERN_BYTES,
  MAX_SEARCH_WILDCARDS,
  type PublishedBody,
  type SourceInfo,
} from "../shared/protocol.ts";
import { RequestError } from "../shared/rpc.ts";
import { MAX_LIST_ITEMS } from "../shared/schema.ts";
import { pieceCount, pieceSizeFor } from "../shared/pieces.ts";
import {
  EntryLimitError,
  type PublishOutcome,
  type SearchPage,
  type SessionRow,
  type Store,
  UnknownSessionError,
} from "./store.ts";

const log = logger("server", "catalog");

/** Entries one session may publish unless configured otherwise; see CatalogOptions. */
export const DEFAULT_MAX_ENTRIES_PER_SESSION = 10_000;

/** The session a publish comes from, as logs name it. */
export type Publisher = Pick<SessionRow, "sessionId" | "hostname" | "port">;

/** Options for `Catalog`. */
export interface CatalogOptions {
  /** Id of this server process. */
  serverId: string;
  /** How long a session stays valid without a heartbeat, in ms. */
  leaseMs: number;
  /** Clock, for tests. @default Date.now */
  now?: () => number;
  /**
   * Most entries one session may publish; a publish of one more fname fails with `quota`.
   * @default DEFAULT_MAX_ENTRIES_PER_SESSION (10,000: what one `Shares` answer can list)
   */
  maxEntriesPerSession?: number;
}

/** How often a catalogue over a shared store measures its clock against the store's again. */
const CLOCK_SYNC_INTERVAL_MS = 60_000;

/** Most search results in one reply. */
export const MAX_SEARCH_LIMIT = 1000;

const encoder = new TextEncoder();
/** White space and C0/C1 control characters, which a hostname may not contain. */
// deno-lint-ignore no-control-regex
const HOSTNAME_FORBIDDEN = /[\s\u0000-\u001f\u007f-\u009f]/;

/** The index: registers sessions and answers catalogue requests through a Store. */
export class Catalog {
  readonly store: Store;
  readonly serverId: string;
  readonly leaseMs: number;
  readonly maxEntriesPerSession: number;
  readonly #clock: () => number;
  /** The store's clock minus ours (see syncClock()); 0 for a store of our own. */
  #clockOffsetMs = 0;
  #clockSyncedAtMs = -Infinity;
  /** Lookups answered since start (who-has and search), for the dashboard's rate. */
  lookups = 0;

  /** @param store where the index lives */
  constructor(store: Store, options: CatalogOptions) {
    this.store = store;
    this.serverId = options.serverId;
    this.leaseMs = options.leaseMs;
    this.#clock = options.now ?? Date.now;
    this.maxEntriesPerSession = options.maxEntriesPerSession ?? DEFAULT_MAX_ENTRIES_PER_SESSION;
  }

  /**
   * Current time in ms: the injected clock, moved to the shared store's clock once
   * syncClock() has measured the difference. Leases are written and judged in this time.
   */
  now(): number {
    return this.#clock() + this.#clockOffsetMs;
  }

  /**
   * Measures how far the shared store's clock is from ours (no-op for a store without one),
   * so that servers whose clocks disagree still agree on which leases have ended. Takes the
   * middle of the round trip; returns the offset, ms.
   */
  async syncClock(): Promise<number> {
    if (!this.store.clockMs) return 0;
    const sentAt = this.#clock();
    const storeMs = await this.store.clockMs();
    const receivedAt = this.#clock();
    // Whole milliseconds: times are stored as integers.
    this.#clockOffsetMs = Math.round(storeMs - (sentAt + receivedAt) / 2);
    this.#clockSyncedAtMs = receivedAt;
    return this.#clockOffsetMs;
  }

  /**
   * Registers a session after checking the hello fields. With the Hello's `sharesDigest`, the
   * device's session (offline from before a restart, or still live when the peer reconnects) is
   * resumed with its entries when they are the set the digest names (Store.registerSession());
   * otherwise the session starts empty.
   *
   * @returns the new row; the session this one replaced, if it was live; whether the entries
   *   were kept
   * @throws {RequestError} on an invalid hostname or port
   */
  async register(
    session: Omit<SessionRow, "serverId" | "openedAtMs">,
    sharesDigest?: string,
  ): Promise<{ row: SessionRow; replaced: SessionRow | undefined; kept: boolean }> {
    const bytes = encoder.encode(session.hostname).length;
    const problem = textProblem(session.hostname);
    if (problem !== undefined) {
      throw new RequestError(
        "bad-body",
        `Cannot register: hostname ${quoted(session.hostname)} is refused: ${problem}`,
      );
    }
    if (bytes === 0 || bytes > MAX_HOSTNAME_BYTES || HOSTNAME_FORBIDDEN.test(session.hostname)) {
      throw new RequestError(
        "bad-body",
        `Cannot register: hostname ${
          quoted(session.hostname)
        } must be 1–${MAX_HOSTNAME_BYTES} bytes without spaces or control characters`,
      );
    }
    if (session.port === 0) throw new RequestError("bad-body", "Cannot register: P2P port is 0");
    const now = this.now();
    const row: SessionRow = { ...session, serverId: this.serverId, openedAtMs: now };
    const registration = await this.store.registerSession(row, now + this.leaseMs, sharesDigest);
    return { row, ...registration };
  }

  /** Ends a session; its entries vanish with it. */
  unregister(sessionId: string): Promise<void> {
    return this.store.closeSession(sessionId);
  }

  /**
   * Extends the leases of this server's sessions (every heartbeat round).
   *
   * @returns the held sessions that were taken over through another server
   */
  async renewLeases(held: readonly string[]): Promise<string[]> {
    // Clocks drift: measure again now and then (one query a minute).
    if (this.store.clockMs && this.#clock() - this.#clockSyncedAtMs >= CLOCK_SYNC_INTERVAL_MS) {
      await this.syncClock();
    }
    return await this.store.renewLeases(this.serverId, held, this.now() + this.leaseMs);
  }

  /**
   * Adds or updates one entry, after checking that it is consistent: the piece size the
   * protocol gives its size, and a `have` bitfield of exactly its piece count. Logs overwrites
   * and conflicts.
   *
   * @returns the `Published` answer
   * @throws {RequestError} invalid-fname, bad-body for an inconsistent entry, quota when the
   * session publishes as many files as it may, not-registered when it has ended
   */
  async publish(session: Publisher, entry: FileEntry): Promise<PublishedBody> {
    checkFname(entry.fname, "publish");
    checkLayout(entry);
    let outcome: PublishOutcome;
    try {
      outcome = await this.store.publish(session.sessionId, entry, {
        nowMs: this.now(),
        maxEntries: this.maxEntriesPerSession,
      });
    } catch (err) {
      // Requests pipelined on a connection whose session a newer Hello from the same host and
      // port has just replaced: the peer's mistake to hear about, not a server failure.
      if (err instanceof UnknownSessionError) {
        throw new RequestError(
          "not-registered",
          `Cannot publish "${entry.fname}": this session has ended (replaced by a newer one)`,
        );
      }
      if (err instanceof EntryLimitError) throw new RequestError("quota", err.message);
      throw err;
    }
    const answer: PublishedBody = { fname: entry.fname, status: outcome.status };
    if (outcome.status === "overwrite" || outcome.status === "conflict") {
      answer.rootHash = entry.rootHash;
    }
    if (outcome.previousRootHash !== undefined) {
      answer.previousRootHash = outcome.previousRootHash;
      log.info("{host}:{port} overwrote {fname}: root {old} is now {root}", {
        host: session.hostname,
        port: session.port,
        fname: quoted(entry.fname),
        old: outcome.previousRootHash,
        root: entry.rootHash,
      });
    }
    if (outcome.conflictRootHash !== undefined) {
      answer.conflictRootHash = outcome.conflictRootHash;
      log.warn("Conflict on {fname}: {host}:{port} publishes root {root}, another peer {other}", {
        fname: quoted(entry.fname),
        host: session.hostname,
        port: session.port,
        root: entry.rootHash,
        other: outcome.conflictRootHash,
      });
    }
    return answer;
  }

  /** Removes one entry. @throws {RequestError} invalid-fname */
  unpublish(sessionId: string, fname: string): Promise<boolean> {
    checkFname(fname, "unpublish");
    return this.store.unpublish(sessionId, fname);
  }

  /** Live holders of `fname`, never the asker. @throws {RequestError} invalid-fname */
  whoHas(fname: string, askerSessionId: string): SourceInfo[] | Promise<SourceInfo[]> {
    checkFname(fname, "look up");
    this.lookups++;
    const sources = this.store.whoHas(fname, askerSessionId, this.now());
    return sources instanceof Promise ? sources.then(firstListed) : firstListed(sources);
  }

  /**
   * One page of the catalogue, sorted by fname then host.
   *
   * @throws {RequestError} bad-body for a pattern longer than MAX_SEARCH_PATTERN_BYTES or with
   * more than MAX_SEARCH_WILDCARDS wildcards
   */
  search(
    pattern: string,
    page: { offset: number; limit: number; includeOffline?: boolean },
  ): Promise<SearchPage> {
    const bytes = encoder.encode(pattern).length;
    if (bytes > MAX_SEARCH_PATTERN_BYTES) {
      throw new RequestError(
        "bad-body",
        `Cannot search: the pattern is ${bytes} UTF-8 bytes, limit is ${MAX_SEARCH_PATTERN_BYTES}`,
      );
    }
    const wildcards = pattern.match(/[*?]/g)?.length ?? 0;
    if (wildcards > MAX_SEARCH_WILDCARDS) {
      throw new RequestError(
        "bad-body",
        `Cannot search: the pattern has ${wildcards} wildcards (* and ?), limit is ${MAX_SEARCH_WILDCARDS}`,
      );
    }
    this.lookups++;
    return this.store.search(pattern, {
      offset: page.offset,
      limit: Math.min(page.limit, MAX_SEARCH_LIMIT),
      includeOffline: page.includeOffline ?? false,
    }, this.now());
  }

  /** Live sessions of one hostname, or all. */
  sessions(hostname?: string): Promise<SessionRow[]> {
    return this.store.sessions(hostname, this.now());
  }

  /** Counts of live sessions and entries. */
  counts(): Promise<{ sessions: number; entries: number }> {
    return this.store.counts(this.now());
  }
}

function checkFname(fname: string, action: string): void {
  const problem = fnameProblem(fname);
  if (problem) {
    throw new RequestError("invalid-fname", `Cannot ${action} ${quoted(fname)}: ${problem}`);
  }
}

/** Most bytes the `Sources` list may take in its answer: the frame limit, less room for `fname`. */
const SOURCES_BUDGET_BYTES = DEFAULT_LIMITS.maxBodyBytes - 4096;
/**
 * JSON bytes of one SourceInfo besides its strings: field names, quotes, commas and braces
 * (about 110) and five numbers of at most 16 digits.
 */
const SOURCE_FIXED_BYTES = 200;
/**
 * JSON bytes of one UTF-16 unit of a checked name, at most: 3 for a character of U+0800–U+FFFF,
 * 2 for an escaped quote or backslash (names hold no control characters or lone surrogates,
 * which JSON would escape in 6).
 */
const JSON_BYTES_PER_UNIT = 3;

/**
 * The first sources that fit one answer: at most MAX_LIST_ITEMS, and few enough that the
 * `Sources` frame stays under the frame limit whatever the names and bitfields (the rest are
 * left off, as beyond MAX_LIST_ITEMS). Checked only when the count could exceed it.
 */
function firstListed(sources: SourceInfo[]): SourceInfo[] {
  const listed = sources.length > MAX_LIST_ITEMS ? sources.slice(0, MAX_LIST_ITEMS) : sources;
  // Checked entries (≤ 255-byte fname, ≤ 253-byte hostname, ≤ 1,368-character bitfield, an
  // ID and a signature of at most 128 characters) take under 3 KB each by the sum below.
  if (listed.length * 8192 <= SOURCES_BUDGET_BYTES) return listed;
  let bytes = 0;
  for (let i = 0; i < listed.length; i++) {
    const s = listed[i]!;
    bytes += SOURCE_FIXED_BYTES + s.rootHash.length + (s.have?.length ?? 0) +
      JSON_BYTES_PER_UNIT * (s.fname.length + s.hostname.length + s.address.length) +
      s.id.length + s.sig.length;
    if (bytes > SOURCES_BUDGET_BYTES) return listed.slice(0, i);
  }
  return listed;
}

/**
 * Checks an entry's piece layout: the piece size the protocol gives a file of its size (so
 * that content has one identity), and a `have` bitfield of exactly its piece count in
 * canonical base64 with the spare bits clear.
 *
 * @throws {RequestError} bad-body
 */
function checkLayout(entry: FileEntry): void {
  const { fname, size, pieceSize, have } = entry;
  const expected = pieceSizeFor(size);
  if (pieceSize !== expected) {
    throw new RequestError(
      "bad-body",
      `Cannot publish "${fname}": piece size ${pieceSize} is wrong for ${size} bytes, expected ${expected}`,
    );
  }
  if (have === undefined) return;
  const pieces = pieceCount(size, pieceSize);
  const wantBytes = Math.ceil(pieces / 8);
  const bad = (detail: string) =>
    new RequestError(
      "bad-body",
      `Cannot publish "${fname}": have bitfield ${detail}; ${pieces} pieces need ${wantBytes} bytes`,
    );
  // The base64 text is at most 4/3 of the bytes: a longer one is refused before decoding.
  if (have.length !== Math.ceil(wantBytes / 3) * 4) {
    throw bad(`is ${have.length} base64 characters`);
  }
  let bits: Uint8Array;
  try {
    bits = Uint8Array.fromBase64(have, { lastChunkHandling: "strict" });
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    throw bad(`is not canonical base64 (${err.message})`);
  }
  if (bits.length !== wantBytes) throw bad(`holds ${bits.length} bytes`);
  const spareBits = wantBytes * 8 - pieces;
  if (spareBits > 0 && (bits[wantBytes - 1]! & ((1 << spareBits) - 1)) !== 0) {
    throw bad(`sets bits beyond the last piece`);
  }
}
