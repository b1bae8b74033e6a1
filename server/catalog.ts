// Index business rules: who may register, what a valid entry is, what lookups return.
// Talks only to a Store; knows nothing of sockets.
import { fnameProblem } from "../shared/fname.ts";
import {
  type FileEntry,
  MAX_HOSTNAME_BYTES,
  type PublishStatus,
  type SourceInfo,
} from "../shared/protocol.ts";
import { RequestError } from "../shared/rpc.ts";
import { MAX_LIST_ITEMS } from "../shared/schema.ts";
import { pieceCount } from "../shared/pieces.ts";
import { type SearchPage, type SessionRow, type Store, UnknownSessionError } from "./store.ts";

/** Options for `Catalog`. */
export interface CatalogOptions {
  /** Id of this server process. */
  serverId: string;
  /** How long a session stays valid without a heartbeat, in ms. */
  leaseMs: number;
  /** Clock, for tests. @default Date.now */
  now?: () => number;
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
  readonly #clock: () => number;
  /** The store's clock minus ours (see syncClock()); 0 for a store of our own. */
  #clockOffsetMs = 0;
  #clockSyncedAtMs = -Infinity;

  /** @param store where the index lives */
  constructor(store: Store, options: CatalogOptions) {
    this.store = store;
    this.serverId = options.serverId;
    this.leaseMs = options.leaseMs;
    this.#clock = options.now ?? Date.now;
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
   * Registers a session after checking the hello fields.
   *
   * @returns the session this one replaced, if it was live
   * @throws {RequestError} on an invalid hostname or port
   */
  async register(
    session: Omit<SessionRow, "serverId" | "openedAtMs">,
  ): Promise<{ row: SessionRow; replaced: SessionRow | undefined }> {
    const bytes = encoder.encode(session.hostname).length;
    if (bytes === 0 || bytes > MAX_HOSTNAME_BYTES || HOSTNAME_FORBIDDEN.test(session.hostname)) {
      throw new RequestError(
        "bad-body",
        `Cannot register: hostname "${session.hostname}" must be 1–${MAX_HOSTNAME_BYTES} bytes without spaces or control characters`,
      );
    }
    if (session.port === 0) throw new RequestError("bad-body", "Cannot register: P2P port is 0");
    const now = this.now();
    const row: SessionRow = { ...session, serverId: this.serverId, openedAtMs: now };
    const replaced = await this.store.openSession(row, now + this.leaseMs);
    return { row, replaced };
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
   * Adds or updates one entry.
   *
   * @throws {RequestError} invalid-fname, or bad-body for an inconsistent entry
   */
  publish(sessionId: string, entry: FileEntry): Promise<PublishStatus> {
    checkFname(entry.fname, "publish");
    if (entry.have !== undefined) {
      const bitfieldBytes = Math.ceil(pieceCount(entry.size, entry.pieceSize) / 8);
      if (entry.have.length !== Math.ceil(bitfieldBytes / 3) * 4) {
        throw new RequestError(
          "bad-body",
          `Cannot publish: have bitfield must hold ${bitfieldBytes} bytes for ${entry.size} bytes in pieces of ${entry.pieceSize}`,
        );
      }
    }
    return this.store.publish(sessionId, entry).catch((err) => {
      // Requests pipelined on a connection whose session a newer Hello from the same host and
      // port has just replaced: the peer's mistake to hear about, not a server failure.
      if (!(err instanceof UnknownSessionError)) throw err;
      throw new RequestError(
        "not-registered",
        `Cannot publish "${entry.fname}": this session has ended (replaced by a newer one)`,
      );
    });
  }

  /** Removes one entry. @throws {RequestError} invalid-fname */
  unpublish(sessionId: string, fname: string): Promise<boolean> {
    checkFname(fname, "unpublish");
    return this.store.unpublish(sessionId, fname);
  }

  /** Live holders of `fname`, never the asker. @throws {RequestError} invalid-fname */
  whoHas(fname: string, askerSessionId: string): SourceInfo[] | Promise<SourceInfo[]> {
    checkFname(fname, "look up");
    const sources = this.store.whoHas(fname, askerSessionId, this.now());
    return sources instanceof Promise ? sources.then(firstListed) : firstListed(sources);
  }

  /** One page of the catalogue, sorted by fname then host. */
  search(
    pattern: string,
    page: { offset: number; limit: number; includeOffline?: boolean },
  ): Promise<SearchPage> {
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
  if (problem) throw new RequestError("invalid-fname", `Cannot ${action} "${fname}": ${problem}`);
}

/** At most MAX_LIST_ITEMS sources: what one answer carries. */
function firstListed(sources: SourceInfo[]): SourceInfo[] {
  return sources.length > MAX_LIST_ITEMS ? sources.slice(0, MAX_LIST_ITEMS) : sources;
}
