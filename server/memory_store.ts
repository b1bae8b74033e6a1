// The embedded store: the catalogue lives in memory (MemoryCatalogue) and every read is
// answered from there; SQLite keeps a copy that survives restarts. Writes change memory at once
// and resolve once committed, in one transaction with the other writes of the same moment
// (group commit): a lookup costs a Map access instead of a query, and under load a publish
// costs one row in a shared commit instead of a commit of its own.
import { logger } from "../shared/log.ts";
import type { CatalogEntry, FileEntry, SourceInfo } from "../shared/protocol.ts";
import { compareBytewise } from "../shared/compare_bytewise.ts";
import { MemoryCatalogue, type NameRecord, smallest } from "./memory_catalogue.ts";
import type { EntryArrayRow, SqliteStore, SqliteWrite } from "./sqlite_store.ts";
import { type BatchWriter, InlineBatchWriter } from "./sqlite_writer.ts";
import type {
  DeviceStatus,
  PublishOptions,
  PublishOutcome,
  Registration,
  SearchOptions,
  SearchPage,
  SessionRow,
  Store,
} from "./store.ts";

const log = logger("server", "store");

/**
 * Under load, writes are committed together this long after the first of them, ms. A commit
 * writes every page its rows touched, so the fewer commits the less work per row (measured
 * here: 45 µs per row one at a time, 25 at 50 per commit, 20 at 500); a publish's reply waits
 * this much longer. Without load (the last batch was small) a write is committed at the end
 * of the event loop's turn, so that a peer publishing one file after another is not slowed.
 */
const COMMIT_DELAY_MS = 20;
/** A batch at least this long means load: the next one waits COMMIT_DELAY_MS to grow. */
const LOADED_BATCH_WRITES = 32;
/** A batch this long is committed at once, bounding the memory and the length of one commit. */
const MAX_BATCH_WRITES = 5000;
/** A search scans names for at most this long before letting other work run, ms. */
const SEARCH_SLICE_MS = 2;

/**
 * A Store for one server: the catalogue in memory, SQLite behind it. Leases live in memory only:
 * with one server they only matter while it runs, and a restart marks every session offline.
 */
export class MemoryStore implements Store {
  readonly shared = false;
  readonly #db: SqliteStore;
  readonly #makeWriter: () => BatchWriter;
  #writer: BatchWriter | undefined;
  readonly #catalogue = new MemoryCatalogue();
  #loaded = false;
  #pending: PendingWrite[] = [];
  #flushTimer: ReturnType<typeof setTimeout> | undefined;
  #lastBatchWrites = 0;

  /**
   * @param db the SQLite store that persists the catalogue (this store owns it)
   * @param makeWriter what commits the writes, made once the database is migrated
   *   @default writes through `db` on this thread
   */
  constructor(db: SqliteStore, makeWriter: () => BatchWriter = () => new InlineBatchWriter(db)) {
    this.#db = db;
    this.#makeWriter = makeWriter;
  }

  /** Migrates the database, then loads it into memory (once). */
  async migrate(): Promise<void> {
    await this.#db.migrate();
    if (this.#loaded) return;
    // An offline session's time to come back counts from this start: its peer had no chance
    // while no server ran (and the lease in the database is as of its last registration).
    const startMs = Date.now();
    const t0 = performance.now();
    let sessions = 0;
    for (const session of this.#db.readSessions()) {
      this.#catalogue.loadSession(session.online ? session : { ...session, leaseUntilMs: startMs });
      sessions++;
    }
    const t1 = performance.now();
    this.#catalogue.loadEntries(this.#db.entryRows(), (row) => row[0], entryOfRow);
    this.#loaded = true;
    const { entries } = this.#catalogue.counts(startMs);
    log.info(
      "Loaded {sessions} session(s) in {sessionsMs} ms, {entries} entries in {entriesMs} ms",
      {
        sessions,
        sessionsMs: Math.round(t1 - t0),
        entries,
        entriesMs: Math.round(performance.now() - t1),
      },
    );
    this.#writer = this.#makeWriter();
    await this.#writer.ready();
  }

  /** One change in memory, and one write for the database: a resume or an open. */
  registerSession(
    session: SessionRow,
    leaseUntilMs: number,
    sharesDigest?: string,
  ): Promise<Registration> {
    return Promise.try(() => {
      const { replaced, resumedId } = this.#catalogue.registerSession(
        session,
        leaseUntilMs,
        sharesDigest,
      );
      const row = { ...session };
      const write: SqliteWrite = resumedId === undefined
        ? { kind: "open", session: row, leaseUntilMs }
        : { kind: "resume", storedId: resumedId, session: row, leaseUntilMs };
      return this.#persist(write, { replaced, kept: resumedId !== undefined });
    });
  }

  closeSession(sessionId: string): Promise<void> {
    return Promise.try(() => {
      const storedId = this.#catalogue.closeSession(sessionId);
      if (storedId === undefined) return;
      return this.#persist({ kind: "close", sessionId: storedId }, undefined);
    });
  }

  renewLeases(serverId: string, held: readonly string[], leaseUntilMs: number): Promise<string[]> {
    return Promise.try(() => {
      const { gone, revived } = this.#catalogue.renewLeases(serverId, held, leaseUntilMs);
      // Only a change of online state is persisted: leases matter while this process runs.
      return revived ? this.#persist({ kind: "online", serverId, leaseUntilMs }, gone) : gone;
    });
  }

  markOffline(filter: { serverId?: string; leaseEndedBeforeMs?: number }): Promise<number> {
    return Promise.try(() => {
      const changed = this.#catalogue.markOffline(filter, Date.now());
      const all = filter.serverId === undefined && filter.leaseEndedBeforeMs === undefined;
      if (changed.length === 0) return 0;
      return this.#persist({ kind: "offline", sessionIds: all ? "all" : changed }, changed.length);
    });
  }

  dropOffline(beforeMs: number): Promise<number> {
    return Promise.try(async () => {
      const dropped = this.#catalogue.dropOffline(beforeMs);
      await Promise.all(dropped.map((sessionId) => this.#persist({ kind: "close", sessionId }, 0)));
      return dropped.length;
    });
  }

  publish(sessionId: string, entry: FileEntry, options: PublishOptions): Promise<PublishOutcome> {
    return Promise.try(() => {
      const { outcome, changed } = this.#catalogue.publish(sessionId, entry, options);
      if (!changed) return outcome;
      const storedId = this.#catalogue.storedId(sessionId)!;
      return this.#persist({ kind: "publish", sessionId: storedId, entry }, outcome);
    });
  }

  unpublish(sessionId: string, fname: string): Promise<boolean> {
    return Promise.try(() => {
      const removed = this.#catalogue.unpublish(sessionId, fname);
      if (!removed) return false;
      const storedId = this.#catalogue.storedId(sessionId)!;
      return this.#persist({ kind: "unpublish", sessionId: storedId, fname }, true);
    });
  }

  /** Answers from memory, synchronously. */
  whoHas(fname: string, excludeSessionId: string, nowMs: number): SourceInfo[] {
    return this.#catalogue.whoHas(fname, excludeSessionId, nowMs);
  }

  /**
   * Finds the matching names (a substring through the name blocks' string search, a glob by
   * testing each name) in slices of SEARCH_SLICE_MS, letting lookups run in between, then sorts
   * only what the page needs. Counts are exact (never `capped`). The empty pattern walks the
   * names kept in byte order instead (#everyName()).
   */
  async search(pattern: string, options: SearchOptions, nowMs: number): Promise<SearchPage> {
    // "" and a glob of stars alone list every name: in byte order, without a search.
    if (/^\**$/.test(pattern)) return await this.#everyName(options, nowMs);
    const includeOffline = options.includeOffline ?? false;
    let found: NameRecord[] = [];
    let total = 0;
    const slice = new SearchSlice();
    let yielded = false;
    for (const name of this.#catalogue.matchingNames(pattern)) {
      if (name === undefined) {
        if (await slice.pauseIfDue()) yielded = true;
        continue;
      }
      const count = this.#catalogue.visibleCount(name, includeOffline, nowMs);
      if (count === 0) continue;
      found.push(name);
      total += count;
    }
    // A name removed and published again during a pause is seen twice: keep one.
    if (yielded) found = [...new Map(found.map((name) => [name.fname, name])).values()];
    const byName = (a: NameRecord, b: NameRecord) => compareBytewise(a.fname, b.fname);
    // Every name found lists at least one entry, so the page lies within the first `wanted`.
    const wanted = Math.min(found.length, options.offset + options.limit);
    const ordered = smallest(found, wanted, byName);
    const entries: CatalogEntry[] = [];
    let skip = options.offset;
    for (const name of ordered) {
      if (entries.length >= options.limit) break;
      for (const entry of this.#catalogue.visibleEntries(name, includeOffline, nowMs)) {
        if (skip > 0) {
          skip--;
          continue;
        }
        if (entries.length >= options.limit) break;
        entries.push(entry);
      }
    }
    return { entries, total };
  }

  /**
   * The empty pattern's page (the dashboard's first view): a walk over the names in byte order
   * that stops at the page's end, pausing as search() does; the total is a sum per session.
   * Milliseconds at a million names, where finding and ordering every match took a second.
   */
  async #everyName(options: SearchOptions, nowMs: number): Promise<SearchPage> {
    const includeOffline = options.includeOffline ?? false;
    const total = this.#catalogue.visibleEntryCount(includeOffline, nowMs);
    const entries: CatalogEntry[] = [];
    if (options.limit <= 0 || options.offset >= total) return { entries, total };
    let skip = options.offset;
    // When every entry is listed, a name's count is its number of holders: no liveness check
    // per holder while skipping to a deep page.
    const everyEntryListed = total === this.#catalogue.counts(nowMs).entries;
    const slice = new SearchSlice();
    for (const names of this.#catalogue.namesInOrder()) {
      for (const name of names) {
        if (skip > 0) {
          // Skipping costs a count, not a copy of the entries.
          const count = everyEntryListed
            ? name.holders.length
            : this.#catalogue.visibleCount(name, includeOffline, nowMs);
          if (count <= skip) {
            skip -= count;
            continue;
          }
        }
        for (const entry of this.#catalogue.visibleEntries(name, includeOffline, nowMs)) {
          if (skip > 0) {
            skip--;
            continue;
          }
          entries.push(entry);
          if (entries.length >= options.limit) return { entries, total };
        }
      }
      await slice.pauseIfDue();
    }
    return { entries, total };
  }

  sessions(hostname: string | undefined, nowMs: number): Promise<SessionRow[]> {
    return Promise.try(() => this.#catalogue.sessions(hostname, nowMs));
  }

  entriesOf(sessionId: string): Promise<FileEntry[]> {
    return Promise.try(() => this.#catalogue.entriesOf(sessionId));
  }

  /** Read from SQLite: decisions are rare and read once at start. */
  deviceStatuses(): Promise<Map<string, DeviceStatus>> {
    return this.#db.deviceStatuses();
  }

  /** Written to SQLite at once (beside the writer's batches; its own table, rare writes). */
  setDeviceStatus(deviceId: string, status: DeviceStatus): Promise<void> {
    return this.#db.setDeviceStatus(deviceId, status);
  }

  counts(nowMs: number): Promise<{ sessions: number; entries: number }> {
    return Promise.try(() => this.#catalogue.counts(nowMs));
  }

  /** Commits what is pending, then closes the database. */
  async close(): Promise<void> {
    await this.flush();
    await this.#writer?.close();
    await this.#db.close();
  }

  /** Hands every pending write to the writer now (normally a timer does); resolves once done. */
  async flush(): Promise<void> {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    if (this.#pending.length === 0) return;
    const batch = this.#pending;
    this.#pending = [];
    this.#lastBatchWrites = batch.length;
    let failed: Map<SqliteWrite, Error>;
    try {
      if (!this.#writer) throw new Error("the store is not migrated yet");
      const failures = await this.#writer.apply(batch.map((p) => p.write));
      failed = new Map(failures.map(({ write, error }) => [write, error]));
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      failed = new Map(batch.map(({ write }) => [write, error]));
    }
    for (const { write, done } of batch) {
      const error = failed.get(write);
      if (error === undefined) done.resolve();
      else done.reject(new Error(`Cannot save the change to the index database: ${error.message}`));
    }
    // Said once per batch, not once per write: a broken database fails every write of it. The
    // changes stand in memory (and so for every peer) until the next restart.
    if (failed.size > 0) {
      log.error("Cannot persist {n} of {total} write(s) to the index database: {error}", {
        n: failed.size,
        total: batch.length,
        error: failed.values().next().value!.message,
      });
    }
  }

  /** Queues a write for the next commit; resolves to `result` once it is committed. */
  #persist<T>(write: SqliteWrite, result: T): Promise<T> {
    const done = Promise.withResolvers<void>();
    this.#pending.push({ write, done });
    if (this.#pending.length >= MAX_BATCH_WRITES) void this.flush();
    else {
      const delayMs = this.#lastBatchWrites >= LOADED_BATCH_WRITES ? COMMIT_DELAY_MS : 0;
      this.#flushTimer ??= setTimeout(() => void this.flush(), delayMs);
    }
    return done.promise.then(() => result);
  }
}

/**
 * A database row as the catalogue's entry object, built once and handed over (no copy): the same
 * fields in the same order as MemoryCatalogue's own copies, so that they share a shape.
 */
function entryOfRow(row: EntryArrayRow): FileEntry {
  const entry: FileEntry = {
    fname: row[1],
    size: row[2],
    mtimeMs: row[3],
    rootHash: row[4],
    pieceSize: row[5],
  };
  if (row[6] !== null) entry.have = row[6];
  if (row[7] !== null) entry.sig = row[7];
  return entry;
}

/** The time slice of one search: pauses once it ran SEARCH_SLICE_MS, letting lookups run. */
class SearchSlice {
  #startMs = performance.now();

  /** Pauses (one turn of the event loop) if the slice is used up. @returns whether it paused */
  async pauseIfDue(): Promise<boolean> {
    if (performance.now() - this.#startMs <= SEARCH_SLICE_MS) return false;
    await new Promise((resolve) => setTimeout(resolve, 0));
    this.#startMs = performance.now();
    return true;
  }
}

/** A write waiting for its commit. */
interface PendingWrite {
  write: SqliteWrite;
  done: PromiseWithResolvers<void>;
}
