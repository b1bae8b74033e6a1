// The whole catalogue of one index server in memory: sessions, entries and the name index that
// who-has and search read. Synchronous and pure (no I/O, no timers): MemoryStore puts the
// persistence around it. Semantics are the Store contract's, checked by the same test suite.
import type { CatalogEntry, FileEntry, SourceInfo } from "../shared/protocol.ts";
import { compareBytewise } from "../shared/compare_bytewise.ts";
import { Glob } from "./glob.ts";
import { type BlockItem, NameBlocks } from "./name_blocks.ts";
import { SortedNames } from "./sorted_names.ts";
import { sharesDigest } from "../shared/shares_digest.ts";
import {
  conflictError,
  EntryLimitError,
  mayResume,
  mayTakeOver,
  type PublishOptions,
  type PublishOutcome,
  publishOutcome,
  type SessionRow,
  UnknownSessionError,
} from "./store.ts";

/** A session as held in memory. */
export interface SessionRecord {
  /** Replaced when the session is resumed by a new connection (registerSession()). */
  row: SessionRow;
  /**
   * The session id its rows carry in the database: its own, or for a resumed session the one
   * they were written under. Moving a hundred entry rows to the new id per returning peer cost
   * the database writer more than writing them had (9.6 s for 10,000 peers, 8.5 s to insert).
   */
  readonly storedId: string;
  /** false after markOffline(): listed by search with `online: false`, never by who-has. */
  online: boolean;
  leaseUntilMs: number;
  /** This session's entries by fname. */
  readonly entries: Map<string, HeldEntry>;
}

/** One published entry and its owner. */
interface HeldEntry {
  entry: FileEntry;
  readonly session: SessionRecord;
}

/** Every entry of one fname. */
export interface NameRecord extends BlockItem {
  /** The fname; entries of this name share this string. */
  readonly fname: string;
  /** fname with ASCII letters lower-cased, as search compares it (SQL LIKE's case rule). */
  readonly folded: string;
  /** Sorted by the owner's hostname then port, the order answers list them in. */
  readonly holders: HeldEntry[];
}

/** A session as loaded from the database at start. */
export interface LoadedSession {
  row: SessionRow;
  online: boolean;
  leaseUntilMs: number;
}

/**
 * Glob steps between two pause points of a search: about 0.1 ms of work, far below the
 * search's time slice, so that a costly pattern cannot stretch one slice.
 */
const STEPS_PER_PAUSE = 100_000;

/** A compiled search pattern: true when a folded fname matches. */
export type NameMatcher = (folded: string) => boolean;

/**
 * The catalogue in memory. Every method runs in time proportional to what it touches (a name's
 * holders, a session's entries), except search, which MemoryStore runs in slices.
 */
export class MemoryCatalogue {
  readonly #sessions = new Map<string, SessionRecord>();
  readonly #byEndpoint = new Map<string, SessionRecord>();
  /** Sessions by hostname: a peer back on a new port replaces its offline ones. */
  readonly #byHostname = new Map<string, Set<SessionRecord>>();
  readonly #names = new Map<string, NameRecord>();
  /** The same names, for substring search. */
  readonly #blocks = new NameBlocks<NameRecord>();
  /** The same names in byte order, for the unfiltered page. */
  readonly #sorted = new SortedNames<NameRecord>(compareBytewise);
  #entryCount = 0;

  /** Adds a session read from the database (at start). */
  loadSession(session: LoadedSession): void {
    const record = this.#addSession(session.row, session.leaseUntilMs);
    record.online = session.online;
  }

  /**
   * Adds the entries read from the database (at start); entries of unknown sessions are
   * skipped. The catalogue keeps the object `entryOf` returns, not a copy (a million at start):
   * it must be a fresh object of the entry's fields only.
   *
   * @param rows the database's rows, in any order
   * @param sessionOf a row's session id
   * @param entryOf a row as a new entry object
   */
  loadEntries<R>(
    rows: Iterable<R>,
    sessionOf: (row: R) => string,
    entryOf: (row: R) => FileEntry,
  ): void {
    let record: SessionRecord | undefined;
    for (const row of rows) {
      const sessionId = sessionOf(row);
      // A peer's entries mostly lie together in the database: no lookup while they last.
      if (record?.row.sessionId !== sessionId) record = this.#sessions.get(sessionId);
      if (!record) continue;
      const entry = entryOf(row);
      if (!record.entries.has(entry.fname)) this.#put(record, entry, true);
    }
  }

  /**
   * Registers a Hello's session in one step: resumes the session (live or offline) of the same
   * {hostname, port} and device with its entries when their digest is `digest`, else records
   * `row` as a new live session, taking over the pair's session (or throwing ConflictError,
   * changing nothing) and dropping the hostname's offline ones; see Store.registerSession().
   * A resumed record keeps its entries and its place in every name's holders (same hostname
   * and port): only its row and keys change.
   *
   * @returns the session it replaced, if that one was live, and the stored id of the session
   *   resumed (its rows keep it), undefined when it opened `row` afresh
   * @throws {ConflictError} when a live session of another device holds the pair
   */
  registerSession(
    row: SessionRow,
    leaseUntilMs: number,
    digest?: string,
  ): { replaced: SessionRow | undefined; resumedId: string | undefined } {
    const old = this.#byEndpoint.get(endpointKey(row));
    if (
      old && digest !== undefined && mayResume(old.row, row.deviceId) &&
      sharesDigest([...old.entries.values()].map((held) => held.entry)) === digest
    ) {
      const replaced = old.online ? old.row : undefined;
      this.#dropOtherOffline(row.hostname, old);
      this.#sessions.delete(old.row.sessionId);
      old.row = { ...row };
      old.online = true;
      old.leaseUntilMs = leaseUntilMs;
      this.#sessions.set(row.sessionId, old);
      return { replaced, resumedId: old.storedId };
    }
    if (old && !mayTakeOver(old.row, old.online, row.deviceId)) throw conflictError(row, old.row);
    if (old) this.#removeSession(old);
    this.#dropOtherOffline(row.hostname, undefined);
    this.#addSession(row, leaseUntilMs);
    return { replaced: old?.online ? old.row : undefined, resumedId: undefined };
  }

  /** Removes the offline sessions of `hostname` but `kept` (a resumed one). */
  #dropOtherOffline(hostname: string, kept: SessionRecord | undefined): void {
    for (const stale of this.#byHostname.get(hostname) ?? []) {
      if (stale !== kept && !stale.online) this.#removeSession(stale);
    }
  }

  /** The id the rows of session `sessionId` carry in the database (see SessionRecord). */
  storedId(sessionId: string): string | undefined {
    return this.#sessions.get(sessionId)?.storedId;
  }

  /** Removes a session and its entries. @returns its stored id, or undefined if unknown */
  closeSession(sessionId: string): string | undefined {
    const record = this.#sessions.get(sessionId);
    if (!record) return undefined;
    this.#removeSession(record);
    return record.storedId;
  }

  /**
   * Extends the leases of `serverId`'s sessions and marks them online.
   *
   * @returns the ids of `held` that are gone, and whether any session came back online
   */
  renewLeases(
    serverId: string,
    held: readonly string[],
    leaseUntilMs: number,
  ): { gone: string[]; revived: boolean } {
    let revived = false;
    for (const record of this.#sessions.values()) {
      if (record.row.serverId !== serverId) continue;
      record.leaseUntilMs = leaseUntilMs;
      if (!record.online) revived = record.online = true;
    }
    return { gone: held.filter((id) => !this.#sessions.has(id)), revived };
  }

  /**
   * Marks sessions offline, keeping their entries; see Store. Their lease ends at `nowMs`: the
   * time dropOffline() counts from.
   *
   * @returns the stored ids of the sessions changed
   */
  markOffline(
    filter: { serverId?: string; leaseEndedBeforeMs?: number },
    nowMs: number,
  ): string[] {
    const changed: string[] = [];
    for (const record of this.#sessions.values()) {
      if (!record.online) continue;
      if (filter.serverId !== undefined && record.row.serverId !== filter.serverId) continue;
      if (
        filter.leaseEndedBeforeMs !== undefined && record.leaseUntilMs >= filter.leaseEndedBeforeMs
      ) continue;
      record.online = false;
      record.leaseUntilMs = nowMs;
      changed.push(record.storedId);
    }
    return changed;
  }

  /** Removes the offline sessions whose lease ended before `beforeMs`. @returns stored ids */
  dropOffline(beforeMs: number): string[] {
    const dropped: SessionRecord[] = [];
    for (const record of this.#sessions.values()) {
      if (!record.online && record.leaseUntilMs < beforeMs) dropped.push(record);
    }
    for (const record of dropped) this.#removeSession(record);
    return dropped.map((record) => record.storedId);
  }

  /**
   * Adds or updates an entry; see Store.publish().
   *
   * @returns the outcome, and whether the stored entry changed (else there is nothing to save)
   * @throws {UnknownSessionError} when the session is unknown
   * @throws {EntryLimitError} when the entry is new and the session is full
   */
  publish(
    sessionId: string,
    entry: FileEntry,
    options: PublishOptions,
  ): { outcome: PublishOutcome; changed: boolean } {
    const record = this.#sessions.get(sessionId);
    if (!record) {
      throw new UnknownSessionError(`Cannot publish "${entry.fname}": no session ${sessionId}`);
    }
    const held = record.entries.get(entry.fname);
    let change: "created" | "unchanged" | "updated";
    const previousRootHash = held?.entry.rootHash;
    if (!held) {
      if (record.entries.size >= options.maxEntries) {
        throw new EntryLimitError(
          `Cannot publish "${entry.fname}": this session already publishes ${record.entries.size} files, the limit`,
          options.maxEntries,
        );
      }
      this.#put(record, entry);
      change = "created";
    } else {
      const old = held.entry;
      if (
        old.size === entry.size && old.mtimeMs === entry.mtimeMs &&
        old.rootHash === entry.rootHash && old.pieceSize === entry.pieceSize &&
        old.have === entry.have && old.sig === entry.sig
      ) change = "unchanged";
      else {
        held.entry = copyEntry(old.fname, entry, this.#sharedRoot(entry.fname, entry.rootHash));
        change = "updated";
      }
    }
    const conflictRootHash = this.#otherContent(record, entry, options.nowMs);
    return {
      outcome: publishOutcome(change, entry, { previousRootHash, conflictRootHash }),
      changed: change !== "unchanged",
    };
  }

  /** The root hash string an existing holder of `fname` uses for `rootHash`, else `rootHash`. */
  #sharedRoot(fname: string, rootHash: string): string {
    const name = this.#names.get(fname);
    return name ? sharedRoot(name.holders, rootHash) : rootHash;
  }

  /** The root hash of the first live holder of `entry.fname` but `record` with other content. */
  #otherContent(record: SessionRecord, entry: FileEntry, nowMs: number): string | undefined {
    const name = this.#names.get(entry.fname);
    if (!name) return undefined;
    for (const { entry: theirs, session } of name.holders) {
      if (session === record || theirs.rootHash === entry.rootHash) continue;
      if (isLive(session, nowMs)) return theirs.rootHash;
    }
    return undefined;
  }

  /** Removes one entry. @returns whether it existed */
  unpublish(sessionId: string, fname: string): boolean {
    const record = this.#sessions.get(sessionId);
    const held = record?.entries.get(fname);
    if (!record || !held) return false;
    record.entries.delete(fname);
    this.#unindex(held);
    return true;
  }

  /** Live holders of `fname` except `excludeSessionId`, by hostname then port. */
  whoHas(fname: string, excludeSessionId: string, nowMs: number): SourceInfo[] {
    const name = this.#names.get(fname);
    if (!name) return [];
    const sources: SourceInfo[] = [];
    for (const { entry, session } of name.holders) {
      if (!isLive(session, nowMs) || session.row.sessionId === excludeSessionId) continue;
      const deviceId = session.row.deviceId;
      // A source a protocol-2 fetcher cannot pin or check (no device or no signature) is useless.
      if (deviceId === undefined || entry.sig === undefined) continue;
      // A literal of fixed shape: several times cheaper than spreading the entry. Who published
      // it and the proof are strings already held, nothing copied per lookup.
      const source: SourceInfo = {
        fname: entry.fname,
        size: entry.size,
        mtimeMs: entry.mtimeMs,
        rootHash: entry.rootHash,
        pieceSize: entry.pieceSize,
        hostname: session.row.hostname,
        address: session.row.address,
        port: session.row.port,
        id: deviceId,
        sig: entry.sig,
      };
      if (entry.have !== undefined) source.have = entry.have;
      sources.push(source);
    }
    return sources;
  }

  /**
   * The names that match a search pattern (see compilePattern()), in no order. Between them
   * come `undefined`s: points where a caller may pause (not elsewhere); changes made during a
   * pause may or may not show up, and a name may then come twice.
   */
  *matchingNames(pattern: string): Generator<NameRecord | undefined> {
    const folded = foldAscii(pattern);
    if (!/[*?]/.test(folded)) {
      yield* this.#blocks.containing(folded);
      return;
    }
    const glob = new Glob(folded);
    let scanned = 0;
    let pausedAtSteps = 0;
    for (const name of this.#names.values()) {
      if (glob.matches(name.folded)) yield name;
      // A pause point every so many names, or sooner when the names cost many steps each.
      if ((++scanned & 1023) === 0 || glob.steps - pausedAtSteps >= STEPS_PER_PAUSE) {
        pausedAtSteps = glob.steps;
        yield undefined;
      }
    }
  }

  /**
   * Every name in byte order of fname, as the empty pattern lists them, in blocks: a caller
   * may pause between two; the walk resumes after the last name it gave, so changes during a
   * pause never make a name come twice.
   */
  namesInOrder(): Generator<readonly NameRecord[]> {
    return this.#sorted.blocksFrom();
  }

  /**
   * How many entries the empty pattern lists: those of live sessions (of every session with
   * `includeOffline`). Costs one step per session, not per entry.
   */
  visibleEntryCount(includeOffline: boolean, nowMs: number): number {
    let count = 0;
    for (const record of this.#sessions.values()) {
      if (includeOffline || isLive(record, nowMs)) count += record.entries.size;
    }
    return count;
  }

  /** How many entries of `name` a search lists. */
  visibleCount(name: NameRecord, includeOffline: boolean, nowMs: number): number {
    if (includeOffline) return name.holders.length;
    let count = 0;
    for (const { session } of name.holders) if (isLive(session, nowMs)) count++;
    return count;
  }

  /** The entries of `name` a search lists, by hostname then port. */
  visibleEntries(name: NameRecord, includeOffline: boolean, nowMs: number): CatalogEntry[] {
    const entries: CatalogEntry[] = [];
    for (const { entry, session } of name.holders) {
      const online = isLive(session, nowMs);
      if (!online && !includeOffline) continue;
      const listed: CatalogEntry = {
        ...entry,
        hostname: session.row.hostname,
        port: session.row.port,
        online,
      };
      if (session.row.deviceId !== undefined) listed.id = session.row.deviceId;
      entries.push(listed);
    }
    return entries;
  }

  /** Live sessions of `hostname` (all hosts when undefined), by hostname then port. */
  sessions(hostname: string | undefined, nowMs: number): SessionRow[] {
    const rows: SessionRow[] = [];
    for (const record of this.#sessions.values()) {
      if (hostname !== undefined && record.row.hostname !== hostname) continue;
      if (isLive(record, nowMs)) rows.push(record.row);
    }
    return rows.sort(compareHosts);
  }

  /** Entries of one session, in byte order of fname. */
  entriesOf(sessionId: string): FileEntry[] {
    const record = this.#sessions.get(sessionId);
    if (!record) return [];
    return [...record.entries.values()].map((held) => held.entry)
      .sort((a, b) => compareBytewise(a.fname, b.fname));
  }

  /** Live sessions and all entries. */
  counts(nowMs: number): { sessions: number; entries: number } {
    let sessions = 0;
    for (const record of this.#sessions.values()) if (isLive(record, nowMs)) sessions++;
    return { sessions, entries: this.#entryCount };
  }

  #addSession(row: SessionRow, leaseUntilMs: number): SessionRecord {
    const record: SessionRecord = {
      row: { ...row },
      storedId: row.sessionId,
      online: true,
      leaseUntilMs,
      entries: new Map(),
    };
    this.#sessions.set(row.sessionId, record);
    this.#byEndpoint.set(endpointKey(row), record);
    let sameHost = this.#byHostname.get(row.hostname);
    if (!sameHost) this.#byHostname.set(row.hostname, sameHost = new Set());
    sameHost.add(record);
    return record;
  }

  #removeSession(record: SessionRecord): void {
    this.#sessions.delete(record.row.sessionId);
    if (this.#byEndpoint.get(endpointKey(record.row)) === record) {
      this.#byEndpoint.delete(endpointKey(record.row));
    }
    const sameHost = this.#byHostname.get(record.row.hostname);
    sameHost?.delete(record);
    if (sameHost?.size === 0) this.#byHostname.delete(record.row.hostname);
    for (const held of record.entries.values()) this.#unindex(held);
    record.entries.clear();
  }

  /** Indexes `entry` under `record`: a copy of it, or, when `adopt`, the object itself. */
  #put(record: SessionRecord, entry: FileEntry, adopt = false): void {
    let name = this.#names.get(entry.fname);
    if (!name) {
      name = {
        fname: entry.fname,
        folded: foldAscii(entry.fname),
        holders: [],
        place: undefined,
      };
      this.#names.set(entry.fname, name);
      this.#blocks.add(name);
      this.#sorted.add(name);
    }
    // Holders of one name mostly share content: share the root hash string too (memory).
    const rootHash = sharedRoot(name.holders, entry.rootHash);
    let kept: FileEntry;
    if (adopt) {
      kept = entry;
      kept.fname = name.fname;
      kept.rootHash = rootHash;
    } else kept = copyEntry(name.fname, entry, rootHash);
    const held: HeldEntry = { entry: kept, session: record };
    // Keep the holders in answer order (a name has few holders, and lookups outnumber
    // publishes): insert after every holder that sorts before this one.
    let at = name.holders.length;
    while (at > 0 && compareHosts(name.holders[at - 1]!.session.row, record.row) > 0) at--;
    if (at === name.holders.length) name.holders.push(held);
    else name.holders.splice(at, 0, held);
    record.entries.set(name.fname, held);
    this.#entryCount++;
  }

  #unindex(held: HeldEntry): void {
    const name = this.#names.get(held.entry.fname);
    this.#entryCount--;
    if (!name) return;
    const at = name.holders.indexOf(held);
    if (at >= 0) name.holders.splice(at, 1);
    if (name.holders.length === 0) {
      this.#names.delete(name.fname);
      this.#blocks.remove(name);
      this.#sorted.remove(name.fname);
    }
  }
}

/**
 * Compiles a search pattern: a case-insensitive (ASCII) substring, or, with `*` or `?`, a glob
 * anchored at both ends where `?` is one character; everything else is literal. The same
 * rules as the SQL stores' LIKE. A glob runs in time bounded by name × pattern length (see
 * glob.ts); `glob.steps` counts its work.
 */
export function compilePattern(pattern: string): NameMatcher {
  const folded = foldAscii(pattern);
  if (!/[*?]/.test(folded)) return (name) => name.includes(folded);
  const glob = new Glob(folded);
  return (name) => glob.matches(name);
}

/** Lower-cases ASCII letters only, as SQLite's LIKE does. */
export function foldAscii(text: string): string {
  return /[A-Z]/.test(text) ? text.replace(/[A-Z]/g, (c) => c.toLowerCase()) : text;
}

function compareHosts(
  a: { hostname: string; port: number },
  b: { hostname: string; port: number },
): number {
  return compareBytewise(a.hostname, b.hostname) || a.port - b.port;
}

function isLive(record: SessionRecord, nowMs: number): boolean {
  return record.online && record.leaseUntilMs > nowMs;
}

function endpointKey(row: { hostname: string; port: number }): string {
  return `${row.port} ${row.hostname}`;
}

/** The entry's fields only (a decoded body may carry more), with shared strings. */
function copyEntry(fname: string, entry: FileEntry, rootHash: string): FileEntry {
  const copy: FileEntry = {
    fname,
    size: entry.size,
    mtimeMs: entry.mtimeMs,
    rootHash,
    pieceSize: entry.pieceSize,
  };
  if (entry.have !== undefined) copy.have = entry.have;
  if (entry.sig !== undefined) copy.sig = entry.sig;
  return copy;
}

/**
 * The `count` smallest items in order. Sorts everything when that is most of them; otherwise
 * keeps a bounded max-heap, so a broad search over many names sorts only one page's worth.
 */
export function smallest<T>(items: T[], count: number, compare: (a: T, b: T) => number): T[] {
  if (count <= 0) return [];
  if (count * 4 >= items.length) return items.sort(compare).slice(0, count);
  const heap: T[] = []; // max-heap: heap[0] is the largest kept
  const above = (i: number, j: number) => compare(heap[i]!, heap[j]!) > 0;
  const swap = (i: number, j: number) => {
    const t = heap[i]!;
    heap[i] = heap[j]!;
    heap[j] = t;
  };
  for (const item of items) {
    if (heap.length < count) {
      heap.push(item);
      for (let i = heap.length - 1; i > 0;) {
        const parent = (i - 1) >> 1;
        if (!above(i, parent)) break;
        swap(i, parent);
        i = parent;
      }
      continue;
    }
    if (compare(item, heap[0]!) >= 0) continue;
    heap[0] = item;
    for (let i = 0;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let top = i;
      if (left < heap.length && above(left, top)) top = left;
      if (right < heap.length && above(right, top)) top = right;
      if (top === i) break;
      swap(i, top);
      i = top;
    }
  }
  return heap.sort(compare);
}

/**
 * The root hash string a holder in `holders` uses for `rootHash` (equal text, maybe another
 * string in memory), else `rootHash`: holders of one content keep one string between them.
 */
function sharedRoot(holders: readonly HeldEntry[], rootHash: string): string {
  for (const holder of holders) {
    if (holder.entry.rootHash === rootHash) return holder.entry.rootHash;
  }
  return rootHash;
}
