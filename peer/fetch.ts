// Fetching a file: ask the index who has it, choose the content, then pull verified pieces from
// every live source at once into a partial file, and move it to its final name only when all
// pieces are verified. Survives sources dying or lying, and resumes after being killed.
import { Bitfield } from "../shared/bitfield.ts";
import { fnameProblem } from "../shared/fname.ts";
import { logger } from "../shared/log.ts";
import { MsgType, type SourceInfo } from "../shared/protocol.ts";
import { HASH_BYTES, pieceCount, pieceSizeFor, rootHash } from "../shared/pieces.ts";
import { expectType } from "../shared/rpc.ts";
import type { Activity, FetchInfo } from "./activity.ts";
import type { FileHashes } from "./hashing.ts";
import { type IndexClient, IndexUnavailableError } from "./index_client.ts";
import { PartialDownload } from "./partial.ts";
import { StorageError } from "./disk_space.ts";
import type { TokenBucket } from "./rate.ts";
import { pathExists, type Repository } from "./repo.ts";
import { PieceSink } from "./piece_sink.ts";
import type { Shares } from "./shares.ts";
import type { Slots } from "./slots.ts";
import {
  type FetcherCredentials,
  type SourceConnection,
  sourceKey,
  type SourceParams,
} from "./source.ts";
import { checkPublishers } from "./publisher_check.ts";
import { type OpenSource, SourcePool } from "./source_pool.ts";
import { swarmView } from "./swarm.ts";
import { chooseVersion } from "./versions.ts";
import type { FetchResult } from "./answers.ts";

const log = logger("peer", "fetch");

/**
 * Why a fetch failed, for programs (the HTTP API answers a status by it, never by the text):
 * - `invalid-name`: the name breaks the fname rules
 * - `exists`: the file is in the repository already (and no force)
 * - `busy`: it is being fetched already
 * - `not-shared`: no live peer shares it
 * - `no-version`: the hash prefix matches no version, or more than one
 * - `unproven`: no source proves it published the content
 * - `too-large`: over --max-file-size
 * - `storage`: the repository cannot hold it (read-only, no space, a write failed)
 * - `index-unavailable`: the index server cannot be reached
 * - `index-failed`: the index server answered the lookup with an error
 * - `cancelled`: cancelled by the user
 * - `sources-failed`: every source failed before the file was complete
 */
export type FetchErrorCode =
  | "invalid-name"
  | "exists"
  | "busy"
  | "not-shared"
  | "no-version"
  | "unproven"
  | "too-large"
  | "storage"
  | "index-unavailable"
  | "index-failed"
  | "cancelled"
  | "sources-failed";

/** A fetch failure: a message the user should read and a code programs act on. */
export class FetchError extends Error {
  /** Why, for programs. */
  readonly code: FetchErrorCode;

  /**
   * @param code why, for programs
   * @param message "Cannot fetch …: detail"
   */
  constructor(code: FetchErrorCode, message: string) {
    super(message);
    this.name = "FetchError";
    this.code = code;
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
  /** Plain TCP to sources instead of pinned TLS (--insecure-plaintext). */
  plaintext: boolean;
  /** 0: no limit. */
  maxFileSize: number;
  /** Publishes (or re-publishes) a share's entry to the index. */
  announce(fname: string): Promise<void>;
  /** What this peer shows sources that authenticate fetchers. */
  credentials?: FetcherCredentials;
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

/** Rounds in a row without a verified piece, asking the index again, before giving up. */
const MAX_IDLE_ROUNDS = 4;
/** ms between progress callbacks. */
const PROGRESS_INTERVAL_MS = 250;
/** ms between re-announcing our partial pieces and looking for new sources. */
const REFRESH_INTERVAL_MS = 250;
/** Longest wait in one source's queue, ms. */
const QUEUE_TIMEOUT_MS = 120_000;

/** The content's description, from a source or from a resume record. */
interface ContentHashes {
  size: number;
  mtimeMs: number;
  pieceSize: number;
  pieceHashes: Uint8Array;
  rootHash: string;
}

/** What FetchRun.execute() returns; fetchFile() adds the rest. */
type RunOutcome = Omit<
  FetchResult,
  "fname" | "path" | "durationMs" | "firstByteMs" | "bytesPerSecond" | "versions"
>;

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
  if (problem) throw new FetchError("invalid-name", `Cannot fetch "${fname}": ${problem}`);
  const finalPath = ctx.repo.finalPath(fname);
  if (!options.force && await pathExists(finalPath)) {
    throw new FetchError(
      "exists",
      `Cannot fetch "${fname}": ${finalPath} already exists (use fetch "${fname}" --force to replace it)`,
    );
  }
  if (ctx.activity.fetches.has(fname)) {
    throw new FetchError("busy", `Cannot fetch "${fname}": already fetching it`);
  }
  const started = performance.now();
  let firstByteAt: number | undefined;

  const { trusted, lying } = await checkPublishers(fname, await whoHas(ctx, fname));
  if (trusted.length === 0 && lying.length > 0) {
    throw new FetchError(
      "unproven",
      `Cannot fetch "${fname}": no source proves it published this content (dropped ${
        lying.map(sourceKey).join(", ")
      }: publish signature missing or invalid)`,
    );
  }
  const choice = chooseVersion(trusted, options.hashPrefix);
  if ("problem" in choice) {
    throw new FetchError(choice.code, `Cannot fetch "${fname}": ${choice.problem}`);
  }
  const { chosen, versions } = choice;
  if (options.hashPrefix === undefined && versions.length > 1) {
    log.warn(
      "{fname} has {n} different contents; taking {root} ({k} sources); choose with --hash",
      { fname, n: versions.length, root: chosen.rootHash.slice(0, 12), k: chosen.sources },
    );
  }
  if (ctx.maxFileSize > 0 && chosen.size > ctx.maxFileSize) {
    throw new FetchError(
      "too-large",
      `Cannot fetch "${fname}": ${chosen.size} bytes exceeds --max-file-size ${ctx.maxFileSize}`,
    );
  }
  const storage = await PartialDownload.storageProblem(ctx.repo, chosen);
  if (storage) throw new FetchError("storage", `Cannot fetch "${fname}": ${storage}`);
  const run = new FetchRun(ctx, fname, chosen.rootHash, {
    ...options,
    onFirstByte: () => {
      firstByteAt ??= performance.now();
      options.onFirstByte?.();
    },
  });
  run.dropLying(lying);
  try {
    const outcome = await run.execute(choice.sources);
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
    if (err instanceof IndexUnavailableError) {
      throw new FetchError("index-unavailable", `Cannot fetch "${fname}": ${err.reason}`);
    }
    throw new FetchError("index-failed", `Cannot fetch "${fname}": ${(err as Error).message}`);
  }
}

/**
 * A problem with a source's description of the content we chose, or undefined. Its piece size
 * sizes our buffers, so it must be the protocol's for that file size, checked before use.
 */
function describeProblem(conn: SourceConnection, root: string): string | undefined {
  const body = conn.info!;
  if (body.pieceSize > pieceSizeFor(body.size)) {
    return `${conn.key} describes ${body.size} bytes in pieces of ${body.pieceSize} bytes; ` +
      `the protocol's piece size for that size is ${pieceSizeFor(body.size)}`;
  }
  const hashes = Uint8Array.fromBase64(body.pieceHashes);
  if (
    body.rootHash !== root ||
    hashes.length !== pieceCount(body.size, body.pieceSize) * HASH_BYTES ||
    rootHash(body.size, body.pieceSize, hashes) !== root
  ) {
    return `piece hashes from ${conn.key} do not match root ${root.slice(0, 12)}`;
  }
  return undefined;
}

/** Whether a listed source holds a piece we still lack (a complete source always does). */
function holdsMissing(source: SourceInfo, have: Bitfield): boolean {
  if (source.have === undefined) return true;
  let theirs: Bitfield;
  try {
    theirs = Bitfield.fromBase64(have.size, source.have);
  } catch (err) {
    if (err instanceof RangeError) return false;
    throw err;
  }
  for (let i = 0; i < have.size; i++) if (theirs.has(i) && !have.has(i)) return true;
  return false;
}

/**
 * Serves what we verify while we fetch (partial seeding), unless a complete copy is shared. A
 * one-piece file has nothing to share before it is complete.
 *
 * @returns whether the partial file is now shared (and should be announced)
 */
async function offerPartial(
  ctx: FetchContext,
  fname: string,
  partial: PartialDownload,
): Promise<boolean> {
  const count = partial.have.size;
  if (partial.resumedPieces > 0) {
    log.info("Resuming {fname}: {n} of {count} pieces already on disk", {
      fname,
      n: partial.resumedPieces,
      count,
    });
  }
  if (ctx.shares.get(fname) || count <= 1) return false;
  await ctx.shares.set({ fname, path: partial.path, hashes: partial.hashes, have: partial.have });
  return true;
}

/** Moves a complete download to its final name, shares and announces it; returns its hashes. */
async function publishFetched(
  ctx: FetchContext,
  fname: string,
  partial: PartialDownload,
  options: FetchOptions,
): Promise<FileHashes> {
  const finalPath = ctx.repo.finalPath(fname);
  await partial.finish(finalPath, { force: options.force ?? false });
  const mtimeMs = (await Deno.stat(finalPath)).mtime?.getTime() ?? 0;
  const hashes = { ...partial.hashes, mtimeMs };
  await ctx.shares.remember(finalPath, hashes);
  await ctx.shares.set({ fname, path: finalPath, hashes });
  await ctx.announce(fname).catch((err) =>
    log.warn("Fetched {fname} but cannot publish it: {error}", { fname, error: String(err) })
  );
  return hashes;
}

/** After a failed or cancelled fetch: keeps the bytes for a resume, stops offering them. */
async function suspendPartial(
  ctx: FetchContext,
  fname: string,
  partial: PartialDownload,
): Promise<void> {
  if (ctx.shares.get(fname)?.have) {
    ctx.shares.delete(fname).catch((err) =>
      log.error("Cannot stop sharing partial {fname}: {error}", { fname, error: String(err) })
    );
    ctx.index.request(MsgType.Unpublish, { fname }).catch((err) =>
      log.debug("Cannot unpublish partial {fname}: {error}", { fname, error: String(err) })
    );
  }
  await partial.suspend().catch((err) =>
    log.error("Cannot save partial {fname}: {error}", { fname, error: String(err) })
  );
}

/**
 * One fetch while it runs: the partial file and piece scheduler, the source pool, and the
 * periodic refresh (announce our pieces, look for new sources).
 */
class FetchRun {
  readonly #ctx: FetchContext;
  readonly #fname: string;
  readonly #rootHash: string;
  readonly #options: FetchOptions;
  readonly #abort = new AbortController();
  readonly #pool: SourcePool;
  readonly #info: FetchInfo;
  #sink: PieceSink | undefined;
  #params: SourceParams | undefined;
  #timers: ReturnType<typeof setInterval>[] = [];
  #announcedHave = "";
  /** Sources dropped because their publish signature does not verify. */
  readonly #lying: string[] = [];

  constructor(ctx: FetchContext, fname: string, root: string, options: FetchOptions) {
    this.#ctx = ctx;
    this.#fname = fname;
    this.#rootHash = root;
    this.#options = options;
    options.signal?.addEventListener("abort", () => this.#abort.abort(options.signal!.reason), {
      once: true,
    });
    this.#info = {
      fname,
      rootHash: root,
      size: 0,
      doneBytes: 0,
      bySource: {},
      activeSources: 0,
      queuedSources: 0,
      queuedAt: {},
      startedAtMs: Date.now(),
      lastByteAtMs: Date.now(),
    };
    this.#pool = new SourcePool({
      slots: ctx.slots,
      signal: this.#abort.signal,
      maxSources: ctx.maxSources,
      open: {
        fname,
        rootHash: root,
        from: ctx.self,
        ttfbTimeoutMs: ctx.ttfbTimeoutMs,
        queueTimeoutMs: QUEUE_TIMEOUT_MS,
        plaintext: ctx.plaintext,
        ...(ctx.credentials ? { credentials: ctx.credentials } : {}),
      },
      info: this.#info,
      run: (conn) =>
        conn.run(this.#params!, this.#sink!.hooks(conn.key, () => conn.have === undefined)),
      ended: () => this.#sink?.notify(),
    });
  }

  async execute(initial: SourceInfo[]): Promise<RunOutcome> {
    const ctx = this.#ctx;
    this.#info.size = initial[0]!.size;
    ctx.activity.fetches.set(this.#fname, this.#info);
    // From the start: a fetch waiting in its first source's queue shows where it waits.
    this.#timers.push(
      setInterval(() => this.#options.onProgress?.(this.#info), PROGRESS_INTERVAL_MS),
    );
    const record = await PartialDownload.find(ctx.repo, this.#rootHash);
    if (record) {
      await this.#start({
        size: record.size,
        mtimeMs: 0,
        pieceSize: record.pieceSize,
        pieceHashes: Uint8Array.fromBase64(record.pieceHashes),
        rootHash: record.rootHash,
      });
    }
    let sources = initial;
    let first: OpenSource | undefined;
    // Rounds: use every source until none is left working, then ask the index again. Only
    // rounds that verify nothing count towards giving up.
    for (let idle = 0; idle < MAX_IDLE_ROUNDS && !this.#abort.signal.aborted; idle++) {
      if (!this.#sink) {
        first = await this.#pool.describe(sources, (conn) => this.#accept(conn));
        if (!first) {
          sources = await this.#askAgain(idle);
          continue;
        }
      }
      const sink = this.#sink!;
      if (sink.scheduler.done) break;
      const before = sink.partial.have.count;
      this.#pool.launch(sources, first);
      first = undefined;
      // Done as soon as every piece is verified: connections still draining their pipelines
      // are aborted by dispose() instead of being waited for.
      while (this.#pool.working > 0 && !sink.scheduler.done) {
        await this.#pool.settle(sink.changed);
      }
      if (sink.scheduler.done) break;
      if (sink.partial.have.count > before) idle = -1;
      sources = await this.#askAgain(Math.max(0, idle));
    }
    if (this.#abort.signal.aborted) {
      const reason = this.#abort.signal.reason;
      if (reason instanceof StorageError) {
        throw new FetchError("storage", `Cannot fetch "${this.#fname}": ${reason.message}`);
      }
      throw new FetchError("cancelled", `Cannot fetch "${this.#fname}": cancelled`);
    }
    const sink = this.#sink;
    if (!sink?.scheduler.done) {
      const left = sink && sink.scheduler.count - sink.partial.have.count;
      const missing = left === undefined ? "" : ` (${left} piece(s) missing, kept for resume)`;
      const last = this.#pool.lastError ? `; last error: ${this.#pool.lastError}` : "";
      throw new FetchError(
        "sources-failed",
        `Cannot fetch "${this.#fname}": no source left${missing}${last}`,
      );
    }
    return await this.#complete();
  }

  /** Checks the first source's description and starts the partial file from it. */
  async #accept(conn: SourceConnection): Promise<string | undefined> {
    const problem = describeProblem(conn, this.#rootHash);
    if (problem !== undefined) return problem;
    const body = conn.info!;
    await this.#start({
      size: body.size,
      mtimeMs: 0,
      pieceSize: body.pieceSize,
      pieceHashes: Uint8Array.fromBase64(body.pieceHashes),
      rootHash: this.#rootHash,
    });
    return undefined;
  }

  async #start(hashes: ContentHashes): Promise<void> {
    if (this.#sink) return;
    const ctx = this.#ctx;
    const count = pieceCount(hashes.size, hashes.pieceSize);
    const partial = await PartialDownload.open(ctx.repo, this.#fname, hashes, {
      // Resuming a one-piece file saves nothing: skip its record (and the fsyncs).
      resumable: count > 1,
    });
    partial.onFailure = (err) => this.#abort.abort(err); // a full disk fails every source
    this.#sink = new PieceSink(partial, {
      info: this.#info,
      download: ctx.download,
      signal: this.#abort.signal,
      stored: () => this.#options.onFirstByte?.(),
    });
    this.#params = {
      ...this.#pool.openParams,
      size: hashes.size,
      pieceSize: hashes.pieceSize,
      stallTimeoutMs: ctx.stallTimeoutMs,
      // Under a download limit, the bucket is asked after every 64 KiB (or less), so that the
      // flow stays smooth; without one, a whole piece is read in one go (bytes are still
      // accounted per socket read, so a slow source's rate shows within a piece).
      chunkBytes: ctx.download.rate === 0
        ? hashes.pieceSize
        : Math.min(64 * 1024, ctx.download.chunkBytes),
    };
    this.#info.doneBytes = partial.doneBytes;
    if (await offerPartial(ctx, this.#fname, partial)) void this.#announcePartial();
    this.#timers.push(setInterval(() => void this.#refresh(), REFRESH_INTERVAL_MS));
  }

  async #announcePartial(): Promise<void> {
    const have = this.#ctx.shares.get(this.#fname)?.have?.toBase64();
    if (have === undefined || have === this.#announcedHave) return;
    this.#announcedHave = have;
    await this.#ctx.announce(this.#fname).catch((err) =>
      log.debug("Cannot announce partial {fname}: {error}", {
        fname: this.#fname,
        error: String(err),
      })
    );
  }

  /**
   * Periodically: tell the index what we have, and pick up new sources (e.g. other fetchers)
   * that hold a piece we lack.
   */
  async #refresh(): Promise<void> {
    const sink = this.#sink;
    if (this.#abort.signal.aborted || !sink || sink.scheduler.done) return;
    const scheduler = sink.scheduler;
    this.#pool.dropSlowSources();
    await this.#announcePartial();
    let fresh: SourceInfo[];
    try {
      fresh = (await whoHas(this.#ctx, this.#fname)).filter((s) => s.rootHash === this.#rootHash);
    } catch (err) {
      log.debug("Cannot refresh sources of {fname}: {error}", {
        fname: this.#fname,
        error: String(err),
      });
      return;
    }
    if (this.#abort.signal.aborted || scheduler.done) return;
    scheduler.setSwarm(swarmView(fresh, scheduler.count, this.#ctx.self), performance.now());
    // Idle connections wait for a change; what they may ask for may have changed.
    sink.notify();
    if (scheduler.unassigned === 0) return;
    this.#pool.launch(fresh.filter((s) => holdsMissing(s, sink.partial.have)));
  }

  /** Records sources whose publish signature does not verify: never used, listed as bad. */
  dropLying(sources: readonly SourceInfo[]): void {
    for (const source of sources) {
      const key = sourceKey(source);
      if (this.#lying.includes(key)) continue;
      this.#lying.push(key);
      log.error("Dropping source {key} for {fname}: its publish signature does not verify", {
        key,
        fname: this.#fname,
      });
    }
  }

  async #askAgain(round: number): Promise<SourceInfo[]> {
    if (this.#abort.signal.aborted) return [];
    // Give busy sources a moment and the index time to learn of new ones; a source that said
    // when to come back is not asked before (the pool caps that wait).
    const backoffMs = Math.min(2000, 250 * 2 ** round);
    const waitMs = Math.max(backoffMs, this.#pool.retryInMs());
    await waitOrAbort(waitMs, this.#abort.signal);
    try {
      const { trusted, lying } = await checkPublishers(
        this.#fname,
        await whoHas(this.#ctx, this.#fname),
      );
      this.dropLying(lying);
      return trusted.filter((s) => s.rootHash === this.#rootHash && !this.#pool.isBad(s));
    } catch (err) {
      this.#pool.lastError = (err as Error).message;
      return [];
    }
  }

  async #complete(): Promise<RunOutcome> {
    const sink = this.#sink!;
    this.#stopTimers();
    this.#options.onProgress?.(this.#info);
    const hashes = await publishFetched(this.#ctx, this.#fname, sink.partial, this.#options);
    this.#sink = undefined;
    const resumed = sink.partial.resumedPieces;
    return {
      size: hashes.size,
      rootHash: this.#rootHash,
      fetchedBytes: sink.fetchedBytes,
      resumedBytes: resumed === 0 ? 0 : Math.min(hashes.size, resumed * hashes.pieceSize),
      bySource: { ...this.#info.bySource },
      badSources: [...this.#lying, ...this.#pool.badSources],
    };
  }

  #stopTimers(): void {
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
  }

  /** Cleans up after success or failure: timers, connections, the partial share. */
  async dispose(): Promise<void> {
    this.#stopTimers();
    this.#abort.abort();
    await this.#pool.drain();
    this.#ctx.activity.fetches.delete(this.#fname);
    const partial = this.#sink?.partial;
    if (partial) await suspendPartial(this.#ctx, this.#fname, partial);
  }
}

/** Resolves after `ms`, or at once when `signal` aborts: a cancel never waits out a backoff. */
function waitOrAbort(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
