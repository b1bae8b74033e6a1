// Fetching a file: ask the index who has it, choose the content, then pull verified pieces from
// every live source at once into a partial file, and move it to its final name only when all
// pieces are verified. Survives sources dying or lying, and resumes after being killed.
import { fromBase64 } from "../shared/base64.ts";
import { Bitfield } from "../shared/bitfield.ts";
import { fnameProblem } from "../shared/fname.ts";
import { formatRate } from "../shared/format.ts";
import { logger } from "../shared/log.ts";
import { MsgType, type SourceInfo } from "../shared/protocol.ts";
import { HASH_BYTES, pieceCount, rootHash } from "../shared/pieces.ts";
import { expectType } from "../shared/rpc.ts";
import type { Activity, FetchInfo } from "./activity.ts";
import { type IndexClient, IndexUnavailableError } from "./index_client.ts";
import { PartialDownload } from "./partial.ts";
import { StorageError } from "./disk_space.ts";
import type { TokenBucket } from "./rate.ts";
import { pathExists, type Repository } from "./repo.ts";
import { PieceScheduler } from "./scheduler.ts";
import type { Shares } from "./shares.ts";
import type { SlotLease, Slots } from "./slots.ts";
import {
  SourceConnection,
  SourceError,
  type SourceHooks,
  sourceKey,
  type SourceParams,
} from "./source.ts";

const log = logger("peer", "fetch");

/** A fetch failure the user should read. */
export class FetchError extends Error {
  /** @param message "Cannot fetch …: detail" */
  constructor(message: string) {
    super(message);
    this.name = "FetchError";
  }
}

/** What a fetch needs from the peer. */
export interface FetchContext {
  repo: Repository;
  shares: Shares;
  slots: Slots;
  index: IndexClient;
  activity: Activity;
  download: TokenBucket;
  /** This peer as "hostname:port", sent to sources. */
  self: string;
  ttfbTimeoutMs: number;
  stallTimeoutMs: number;
  maxSources: number;
  /** 0: no limit. */
  maxFileSize: number;
  /** Publishes (or re-publishes) a share's entry to the index. */
  announce(fname: string): Promise<void>;
}

/** Options of one fetch. */
export interface FetchOptions {
  /** Choose the content whose root hash starts with this. */
  hashPrefix?: string;
  /** Replace an existing file of that name. */
  force?: boolean;
  /** Called once, when the first verified piece has been written. */
  onFirstByte?: () => void;
  /** Called about every 250 ms and at the end. */
  onProgress?: (info: FetchInfo) => void;
  signal?: AbortSignal;
}

/** One content version found under an fname. */
export interface ContentVersion {
  rootHash: string;
  size: number;
  sources: number;
}

/** The outcome of a successful fetch. */
export interface FetchResult {
  fname: string;
  path: string;
  size: number;
  rootHash: string;
  durationMs: number;
  /**
   * ms from the start of the fetch until its first verified piece was written to disk (the
   * time to first byte on disk); 0 for an empty file, or when every piece was resumed.
   */
  firstByteMs: number;
  /** Bytes received in this run (excludes what a resume kept). */
  fetchedBytes: number;
  /** Bytes already on disk from an earlier, interrupted run. */
  resumedBytes: number;
  bytesPerSecond: number;
  bySource: Record<string, number>;
  /** Sources dropped for sending corrupt data. */
  badSources: string[];
  /** Every content version published under the fname, most sources first. */
  versions: ContentVersion[];
}

/** Rounds of asking the index again when every source failed. */
const MAX_ROUNDS = 4;
/** ms between progress callbacks. */
const PROGRESS_INTERVAL_MS = 250;
/** ms between re-announcing our partial pieces and looking for new sources. */
const REFRESH_INTERVAL_MS = 250;
/**
 * A source delivering less than this while it has requests outstanding, with other sources
 * working, is dropped and its pieces go to the others, bytes/s.
 */
const MIN_SOURCE_RATE = 64 * 1024;
/** Longest wait in one source's queue, ms. */
const QUEUE_TIMEOUT_MS = 120_000;

/** Groups sources by content, most sources first (ties: more complete sources first). */
export function groupVersions(sources: readonly SourceInfo[]): Map<string, SourceInfo[]> {
  const groups = new Map<string, SourceInfo[]>();
  for (const s of sources) {
    const list = groups.get(s.rootHash) ?? [];
    list.push(s);
    groups.set(s.rootHash, list);
  }
  const complete = (list: SourceInfo[]) => list.filter((s) => s.have === undefined).length;
  return new Map(
    [...groups].sort(([, a], [, b]) => b.length - a.length || complete(b) - complete(a)),
  );
}

/**
 * Fetches `fname` from the peers that hold it.
 *
 * @throws {FetchError} with a message for the user; a partial download is kept for resume
 */
export async function fetchFile(
  ctx: FetchContext,
  fname: string,
  options: FetchOptions = {},
): Promise<FetchResult> {
  const problem = fnameProblem(fname);
  if (problem) throw new FetchError(`Cannot fetch "${fname}": ${problem}`);
  const finalPath = ctx.repo.finalPath(fname);
  if (!options.force && await pathExists(finalPath)) {
    throw new FetchError(
      `Cannot fetch "${fname}": ${finalPath} already exists (use fetch "${fname}" --force to replace it)`,
    );
  }
  if (ctx.activity.fetches.has(fname)) {
    throw new FetchError(`Cannot fetch "${fname}": already fetching it`);
  }
  const started = performance.now();
  let firstByteAt: number | undefined;

  const found = await whoHas(ctx, fname);
  if (found.length === 0) throw new FetchError(`Cannot fetch "${fname}": no live peer shares it`);
  const groups = groupVersions(found);
  const versions = [...groups].map(([root, list]) => ({
    rootHash: root,
    size: list[0]!.size,
    sources: list.length,
  }));
  let chosen = versions[0]!;
  if (options.hashPrefix !== undefined) {
    const matches = versions.filter((v) =>
      v.rootHash.startsWith(options.hashPrefix!.toLowerCase())
    );
    if (matches.length !== 1) {
      throw new FetchError(
        `Cannot fetch "${fname}": ${
          matches.length === 0 ? "no" : "more than one"
        } version matches --hash ${options.hashPrefix} ` +
          `(versions: ${
            versions.map((v) => `${v.rootHash.slice(0, 12)} ${v.size} B, ${v.sources} source(s)`)
              .join("; ")
          })`,
      );
    }
    chosen = matches[0]!;
  } else if (versions.length > 1) {
    log.warn(
      "{fname} has {n} different contents; taking {root} ({k} sources); choose with --hash",
      {
        fname,
        n: versions.length,
        root: chosen.rootHash.slice(0, 12),
        k: chosen.sources,
      },
    );
  }
  if (ctx.maxFileSize > 0 && chosen.size > ctx.maxFileSize) {
    throw new FetchError(
      `Cannot fetch "${fname}": ${chosen.size} bytes exceeds --max-file-size ${ctx.maxFileSize}`,
    );
  }
  const storage = await PartialDownload.storageProblem(ctx.repo, chosen);
  if (storage) throw new FetchError(`Cannot fetch "${fname}": ${storage}`);
  const run = new FetchRun(ctx, fname, chosen.rootHash, {
    ...options,
    onFirstByte: () => {
      firstByteAt ??= performance.now();
      options.onFirstByte?.();
    },
  });
  try {
    const outcome = await run.execute(groups.get(chosen.rootHash)!);
    const durationMs = performance.now() - started;
    return {
      ...outcome,
      fname,
      path: finalPath,
      durationMs,
      firstByteMs: firstByteAt === undefined ? 0 : firstByteAt - started,
      bytesPerSecond: outcome.fetchedBytes / Math.max(durationMs / 1000, 1e-6),
      versions,
    };
  } finally {
    await run.dispose();
  }
}

async function whoHas(ctx: FetchContext, fname: string): Promise<SourceInfo[]> {
  try {
    return expectType(await ctx.index.request(MsgType.WhoHas, { fname }), MsgType.Sources).body
      .sources;
  } catch (err) {
    // An unreachable index says why without its own "Cannot …" prefix.
    const why = err instanceof IndexUnavailableError ? err.reason : (err as Error).message;
    throw new FetchError(`Cannot fetch "${fname}": ${why}`);
  }
}

/** The state of one fetch while it runs. */
class FetchRun {
  readonly #ctx: FetchContext;
  readonly #fname: string;
  readonly #rootHash: string;
  readonly #options: FetchOptions;
  readonly #abort = new AbortController();
  readonly #tried = new Map<string, "active" | "busy" | "bad" | "gone">();
  readonly #workers = new Set<Promise<void>>();
  readonly #badSources: string[] = [];
  /** Sources whose BUSY answer was logged already. */
  readonly #busyLogged = new Set<string>();
  /** Open source connections, and the bytes each had delivered at the last rate check. */
  readonly #connections = new Map<string, { conn: SourceConnection; bytesAtCheck: number }>();
  #lastRateCheck = performance.now();
  #partial: PartialDownload | undefined;
  #scheduler: PieceScheduler | undefined;
  #params: SourceParams | undefined;
  #changed = Promise.withResolvers<void>();
  #info: FetchInfo | undefined;
  #lastError = "";
  #timers: ReturnType<typeof setInterval>[] = [];
  #fetchedBytes = 0;
  #announcedHave = "";
  /** Pieces being verified and written (not yet counted as verified). */
  readonly #storing = new Set<number>();

  constructor(ctx: FetchContext, fname: string, rootHash: string, options: FetchOptions) {
    this.#ctx = ctx;
    this.#fname = fname;
    this.#rootHash = rootHash;
    this.#options = options;
    options.signal?.addEventListener("abort", () => this.#abort.abort(options.signal!.reason), {
      once: true,
    });
  }

  async execute(
    initial: SourceInfo[],
  ): Promise<
    Omit<
      FetchResult,
      "fname" | "path" | "durationMs" | "firstByteMs" | "bytesPerSecond" | "versions"
    >
  > {
    const ctx = this.#ctx;
    const info: FetchInfo = {
      fname: this.#fname,
      rootHash: this.#rootHash,
      size: initial[0]!.size,
      doneBytes: 0,
      bySource: {},
      activeSources: 0,
      queuedSources: 0,
      queuedAt: {},
      startedAtMs: Date.now(),
      lastByteAtMs: Date.now(),
    };
    this.#info = info;
    ctx.activity.fetches.set(this.#fname, info);
    // From the start: a fetch waiting in its first source's queue shows where it waits.
    this.#timers.push(setInterval(() => this.#progress(), PROGRESS_INTERVAL_MS));
    const record = await PartialDownload.find(ctx.repo, this.#rootHash);
    let sources = initial;
    let first: { conn: SourceConnection; lease: SlotLease } | undefined;
    if (record) {
      await this.#start({
        size: record.size,
        mtimeMs: 0,
        pieceSize: record.pieceSize,
        pieceHashes: fromBase64(record.pieceHashes),
        rootHash: record.rootHash,
      });
    }
    for (let round = 0; round < MAX_ROUNDS && !this.#abort.signal.aborted; round++) {
      if (!this.#partial) {
        first = await this.#describe(sources);
        if (!first) {
          sources = await this.#askAgain(round);
          continue;
        }
      }
      if (this.#scheduler!.done) break;
      this.#launch(sources, first);
      first = undefined;
      // Done as soon as every piece is verified: connections still draining their pipelines
      // are aborted by dispose() instead of being waited for.
      while (this.#workers.size > 0 && !this.#scheduler!.done) {
        await Promise.race([...this.#workers, this.#changed.promise]);
      }
      if (this.#scheduler!.done) break;
      sources = await this.#askAgain(round);
    }
    if (this.#abort.signal.aborted) {
      const reason = this.#abort.signal.reason;
      const why = reason instanceof StorageError ? reason.message : "cancelled";
      throw new FetchError(`Cannot fetch "${this.#fname}": ${why}`);
    }
    if (!this.#scheduler?.done) {
      const missing = this.#scheduler
        ? this.#scheduler.count - this.#partial!.have.count
        : undefined;
      throw new FetchError(
        `Cannot fetch "${this.#fname}": no source left${
          missing === undefined ? "" : ` (${missing} piece(s) missing, kept for resume)`
        }` +
          (this.#lastError ? `; last error: ${this.#lastError}` : ""),
      );
    }
    return await this.#complete();
  }

  /** Looks for a source that describes the chosen content; checks its piece hashes. */
  async #describe(
    sources: SourceInfo[],
  ): Promise<{ conn: SourceConnection; lease: SlotLease } | undefined> {
    for (const source of sources) {
      const key = sourceKey(source);
      if (this.#tried.get(key) === "bad") continue;
      const lease = await this.#ctx.slots.acquireDownload(key, this.#abort.signal);
      const queuedAt = this.#info!.queuedAt;
      try {
        const conn = await SourceConnection.open(
          source,
          this.#openParams(),
          { queued: (position) => queuedAt[key] = position },
          this.#abort.signal,
        ).finally(() => delete queuedAt[key]);
        const body = conn.info!;
        const hashes = fromBase64(body.pieceHashes);
        if (
          body.rootHash !== this.#rootHash ||
          hashes.length !== pieceCount(body.size, body.pieceSize) * HASH_BYTES ||
          rootHash(body.size, body.pieceSize, hashes) !== this.#rootHash
        ) {
          conn.close();
          this.#markBad(
            key,
            `piece hashes from ${key} do not match root ${this.#rootHash.slice(0, 12)}`,
          );
          lease.release();
          continue;
        }
        await this.#start({
          size: body.size,
          mtimeMs: 0,
          pieceSize: body.pieceSize,
          pieceHashes: hashes,
          rootHash: this.#rootHash,
        });
        return { conn, lease };
      } catch (err) {
        lease.release();
        this.#noteFailure(key, err);
      }
    }
    return undefined;
  }

  #openParams() {
    return {
      fname: this.#fname,
      rootHash: this.#rootHash,
      from: this.#ctx.self,
      ttfbTimeoutMs: this.#ctx.ttfbTimeoutMs,
      queueTimeoutMs: QUEUE_TIMEOUT_MS,
    };
  }

  async #start(
    hashes: {
      size: number;
      mtimeMs: number;
      pieceSize: number;
      pieceHashes: Uint8Array;
      rootHash: string;
    },
  ) {
    if (this.#partial) return;
    const ctx = this.#ctx;
    const partial = await PartialDownload.open(ctx.repo, this.#fname, hashes, {
      // Resuming a one-piece file saves nothing: skip its record (and the fsyncs).
      resumable: pieceCount(hashes.size, hashes.pieceSize) > 1,
    });
    this.#partial = partial;
    partial.onFailure = (err) => this.#abort.abort(err); // a full disk fails every source
    const count = pieceCount(hashes.size, hashes.pieceSize);
    this.#scheduler = new PieceScheduler(partial.have, Math.floor(Math.random() * 2 ** 32));
    this.#params = {
      fname: this.#fname,
      rootHash: this.#rootHash,
      size: hashes.size,
      pieceSize: hashes.pieceSize,
      from: ctx.self,
      ttfbTimeoutMs: ctx.ttfbTimeoutMs,
      stallTimeoutMs: ctx.stallTimeoutMs,
      queueTimeoutMs: QUEUE_TIMEOUT_MS,
      // Under a download limit, the bucket is asked after every 64 KiB (or less), so that the
      // flow stays smooth; without one, a whole piece is read in one go (bytes are still
      // accounted per socket read, so a slow source's rate shows within a piece).
      chunkBytes: ctx.download.rate === 0
        ? hashes.pieceSize
        : Math.min(64 * 1024, ctx.download.chunkBytes),
    };
    this.#info!.doneBytes = partial.doneBytes;
    if (partial.resumedPieces > 0) {
      log.info("Resuming {fname}: {n} of {count} pieces already on disk", {
        fname: this.#fname,
        n: partial.resumedPieces,
        count,
      });
    }
    // Serve what we verify while we fetch (partial seeding), unless a complete copy is shared.
    // A one-piece file has nothing to share before it is complete. The announcement is not
    // awaited: the first request must not wait on the index.
    if (!ctx.shares.get(this.#fname) && count > 1) {
      await ctx.shares.set({
        fname: this.#fname,
        path: partial.path,
        hashes: partial.hashes,
        have: partial.have,
      });
      void this.#announcePartial();
    }
    this.#timers.push(setInterval(() => void this.#refresh(), REFRESH_INTERVAL_MS));
  }

  async #announcePartial(): Promise<void> {
    const share = this.#ctx.shares.get(this.#fname);
    if (!share?.have) return;
    const have = share.have.toBase64();
    if (have === this.#announcedHave) return;
    this.#announcedHave = have;
    await this.#ctx.announce(this.#fname).catch((err) =>
      log.debug("Cannot announce partial {fname}: {error}", {
        fname: this.#fname,
        error: String(err),
      })
    );
  }

  /** Periodically: tell the index what we have, and pick up new sources (e.g. other fetchers). */
  async #refresh(): Promise<void> {
    if (this.#abort.signal.aborted || this.#scheduler?.done) return;
    this.#dropSlowSources();
    await this.#announcePartial();
    try {
      const fresh = (await whoHas(this.#ctx, this.#fname)).filter((s) =>
        s.rootHash === this.#rootHash
      );
      this.#updateAvailability(fresh);
      const active = [...this.#tried.values()].filter((s) => s === "active").length;
      if (active < this.#ctx.maxSources) this.#launch(fresh, undefined);
    } catch (err) {
      log.debug("Cannot refresh sources of {fname}: {error}", {
        fname: this.#fname,
        error: String(err),
      });
    }
  }

  #dropSlowSources(): void {
    const now = performance.now();
    const seconds = (now - this.#lastRateCheck) / 1000;
    // Judged over 3 s at least: a fair share of a busy seeder can be bursty.
    if (seconds < 3) return;
    this.#lastRateCheck = now;
    const bySource = this.#info!.bySource;
    // The only complete source is never dropped: slow as it may be, the others may lack pieces.
    const complete = [...this.#connections.values()].filter((c) => c.conn.have === undefined);
    const working = [...this.#connections].filter(([, c]) =>
      c.conn.outstanding > 0 && !(complete.length === 1 && complete[0] === c)
    );
    for (const [key, entry] of working) {
      const bytes = bySource[key] ?? 0;
      const rate = (bytes - entry.bytesAtCheck) / seconds;
      entry.bytesAtCheck = bytes;
      if (working.length > 1 && rate < MIN_SOURCE_RATE && entry.conn.outstanding > 0) {
        log.warn("Dropping slow source {key} for {fname}: {rate}", {
          key,
          fname: this.#fname,
          rate: formatRate(rate),
        });
        entry.conn.close();
      }
    }
  }

  /** Counts, per piece, the sources the index lists for it (rarest-first input). */
  #updateAvailability(sources: SourceInfo[]): void {
    const scheduler = this.#scheduler;
    if (!scheduler) return;
    const counts = new Uint16Array(scheduler.count);
    const partial = new Uint16Array(scheduler.count);
    for (const source of sources) {
      if (source.have === undefined) {
        for (let i = 0; i < counts.length; i++) counts[i]!++;
        continue;
      }
      let have: Bitfield;
      try {
        have = Bitfield.fromBase64(scheduler.count, source.have);
      } catch {
        continue;
      }
      for (let i = 0; i < counts.length; i++) {
        if (have.has(i)) {
          counts[i]!++;
          partial[i]!++;
        }
      }
    }
    const fetchers = new Set(
      sources.filter((s) => s.have !== undefined).map((s) => `${s.hostname}:${s.port}`),
    );
    fetchers.add(this.#ctx.self);
    const ranked = [...fetchers].sort();
    scheduler.setSwarm(counts, partial, ranked.length, ranked.indexOf(this.#ctx.self));
    // Idle connections wait for a change; what they may ask for may have changed.
    this.#signalChange();
  }

  #launch(
    sources: SourceInfo[],
    first: { conn: SourceConnection; lease: SlotLease } | undefined,
  ): void {
    if (first) this.#spawn(first.conn.source, first);
    for (const source of sources) {
      const active = [...this.#tried.values()].filter((s) => s === "active").length;
      if (active >= this.#ctx.maxSources) break;
      const state = this.#tried.get(sourceKey(source));
      if (state === "active" || state === "bad") continue;
      this.#spawn(source, undefined);
    }
  }

  #spawn(
    source: SourceInfo,
    opened: { conn: SourceConnection; lease: SlotLease } | undefined,
  ): void {
    const key = sourceKey(source);
    this.#tried.set(key, "active");
    const worker = this.#work(source, opened).finally(() => this.#workers.delete(worker));
    this.#workers.add(worker);
  }

  async #work(
    source: SourceInfo,
    opened: { conn: SourceConnection; lease: SlotLease } | undefined,
  ): Promise<void> {
    const key = sourceKey(source);
    const info = this.#info!;
    let lease = opened?.lease;
    let conn = opened?.conn;
    let queued = false;
    try {
      lease ??= await this.#ctx.slots.acquireDownload(key, this.#abort.signal);
      conn ??= await SourceConnection.open(source, this.#openParams(), {
        queued: (position) => {
          if (!queued) info.queuedSources++;
          queued = true;
          info.queuedAt[key] = position;
        },
      }, this.#abort.signal);
      if (queued) info.queuedSources--;
      queued = false;
      delete info.queuedAt[key];
      info.activeSources++;
      this.#connections.set(key, { conn, bytesAtCheck: info.bySource[key] ?? 0 });
      const onAbort = () => conn!.close();
      this.#abort.signal.addEventListener("abort", onAbort, { once: true });
      try {
        await conn.run(this.#params!, this.#hooks(key));
      } finally {
        this.#connections.delete(key);
        info.activeSources--;
        this.#abort.signal.removeEventListener("abort", onAbort);
      }
      this.#tried.set(key, "gone"); // done for this round; may be asked again in the next
    } catch (err) {
      if (queued) info.queuedSources--;
      delete info.queuedAt[key];
      if (!this.#abort.signal.aborted) this.#noteFailure(key, err);
    } finally {
      conn?.close();
      lease?.release();
      this.#signalChange();
    }
  }

  #hooks(key: string): SourceHooks {
    const scheduler = this.#scheduler!;
    const partial = this.#partial!;
    const info = this.#info!;
    return {
      next: (holds) =>
        scheduler.next(key, holds, this.#connections.get(key)?.conn.have === undefined),
      wanted: (i) => scheduler.wanted(i) && !this.#storing.has(i),
      deliver: async (i, bytes) => {
        // Two sources may bring the same piece in the endgame: the first one stores it.
        if (!scheduler.wanted(i) || this.#storing.has(i)) return true;
        this.#storing.add(i);
        try {
          if (!await partial.storePiece(i, bytes)) return false;
        } finally {
          this.#storing.delete(i);
        }
        this.#options.onFirstByte?.();
        scheduler.complete(i);
        info.doneBytes += bytes.length;
        this.#signalChange();
        if (scheduler.done) this.#signalChange();
        return true;
      },
      release: (i) => {
        scheduler.release(i, key);
        this.#signalChange();
      },
      changed: () => this.#changed.promise,
      finished: () => scheduler.done || this.#abort.signal.aborted,
      received: (bytes) => {
        info.bySource[key] = (info.bySource[key] ?? 0) + bytes;
        info.lastByteAtMs = Date.now();
        this.#fetchedBytes += bytes;
      },
      throttle: (bytes) => this.#ctx.download.take(bytes),
      queued: () => {},
    };
  }

  #signalChange(): void {
    const old = this.#changed;
    this.#changed = Promise.withResolvers<void>();
    old.resolve();
  }

  #noteFailure(key: string, err: unknown): void {
    if (err instanceof StorageError) this.#abort.abort(err); // not the source's fault
    const message = err instanceof Error ? err.message : String(err);
    this.#lastError = message;
    if (err instanceof SourceError && err.kind === "bad") {
      this.#markBad(key, message);
      return;
    }
    const busy = err instanceof SourceError && err.kind === "busy";
    this.#tried.set(key, busy ? "busy" : "gone");
    // A busy source is asked again every refresh: say so once per fetch, not 4 times a second.
    const repeated = busy && this.#busyLogged.has(key);
    if (busy) this.#busyLogged.add(key);
    const fields = { key, fname: this.#fname, error: message };
    if (repeated) log.debug("Source {key} for {fname} failed: {error}", fields);
    else log.warn("Source {key} for {fname} failed: {error}", fields);
  }

  #markBad(key: string, reason: string): void {
    this.#tried.set(key, "bad");
    if (!this.#badSources.includes(key)) this.#badSources.push(key);
    this.#lastError = reason;
    log.error("Dropping source {key} for the rest of the fetch of {fname}: {reason}", {
      key,
      fname: this.#fname,
      reason,
    });
  }

  async #askAgain(round: number): Promise<SourceInfo[]> {
    if (this.#abort.signal.aborted) return [];
    // Give busy sources a moment and the index time to learn of new ones.
    await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 250 * 2 ** round)));
    try {
      return (await whoHas(this.#ctx, this.#fname)).filter((s) =>
        s.rootHash === this.#rootHash && this.#tried.get(sourceKey(s)) !== "bad"
      );
    } catch (err) {
      this.#lastError = (err as Error).message;
      return [];
    }
  }

  #progress(): void {
    if (this.#info) this.#options.onProgress?.(this.#info);
  }

  async #complete(): Promise<
    Omit<
      FetchResult,
      "fname" | "path" | "durationMs" | "firstByteMs" | "bytesPerSecond" | "versions"
    >
  > {
    const ctx = this.#ctx;
    const partial = this.#partial!;
    const finalPath = ctx.repo.finalPath(this.#fname);
    this.#stopTimers();
    this.#progress();
    await partial.finish(finalPath, { force: this.#options.force ?? false });
    this.#partial = undefined;
    const mtimeMs = (await Deno.stat(finalPath)).mtime?.getTime() ?? 0;
    const hashes = { ...partial.hashes, mtimeMs };
    await ctx.shares.remember(finalPath, hashes);
    await ctx.shares.set({ fname: this.#fname, path: finalPath, hashes });
    await ctx.announce(this.#fname).catch((err) =>
      log.warn("Fetched {fname} but cannot publish it: {error}", {
        fname: this.#fname,
        error: String(err),
      })
    );
    return {
      size: hashes.size,
      rootHash: this.#rootHash,
      fetchedBytes: this.#fetchedBytes,
      resumedBytes: partial.resumedPieces === 0
        ? 0
        : Math.min(hashes.size, partial.resumedPieces * hashes.pieceSize),
      bySource: { ...this.#info!.bySource },
      badSources: [...this.#badSources],
    };
  }

  #stopTimers(): void {
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
  }

  /** Cleans up after success or failure: timers, workers, the partial share. */
  async dispose(): Promise<void> {
    this.#stopTimers();
    this.#abort.abort();
    await Promise.allSettled([...this.#workers]);
    this.#ctx.activity.fetches.delete(this.#fname);
    const partial = this.#partial;
    if (partial) {
      // Failed or cancelled: keep the bytes for a resume, stop offering them.
      const share = this.#ctx.shares.get(this.#fname);
      if (share?.have) {
        void this.#ctx.shares.delete(this.#fname);
        void this.#ctx.index.request(MsgType.Unpublish, { fname: this.#fname }).catch(() => {});
      }
      await partial.suspend().catch((err) =>
        log.error("Cannot save partial {fname}: {error}", {
          fname: this.#fname,
          error: String(err),
        })
      );
    }
  }
}
