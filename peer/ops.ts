// The peer's operations, called by the shell (human and --json) and by the HTTP API alike:
// arguments checked here, answers as data. Formatting for humans or HTTP lives with each caller.
import { join } from "node:path";
import { fnameProblem } from "../shared/fname.ts";
import { type CatalogEntry, MsgType } from "../shared/protocol.ts";
import { logger } from "../shared/log.ts";
import type { FetchInfo } from "./activity.ts";
import { progressFields, RateWindows, receivedBytes } from "./progress.ts";
import type { HashProgress } from "./hashing.ts";
import type { Peer } from "./peer.ts";
import type {
  CatalogGroup,
  CatalogVersion,
  FetchOutcome,
  FetchProgress,
  FetchResult,
  FilesPage,
  PublishResult,
  RepoFile,
  SearchAnswer,
  SharedFile,
  StatusAnswer,
} from "./answers.ts";
import { pathExists } from "./repo.ts";

const log = logger("peer", "ops");

/** Why an operation refused its arguments; the HTTP API maps the kind to a status. */
export type OpErrorKind = "invalid" | "not-found" | "conflict" | "too-large" | "unavailable";

/** An operation refused: bad arguments, a missing thing, a conflict, too large. */
export class OpError extends Error {
  /** What kind of refusal (400, 404, 409, 413, 503 over HTTP). */
  readonly kind: OpErrorKind;

  /**
   * @param kind what kind of refusal
   * @param message "Cannot x: detail"
   */
  constructor(kind: OpErrorKind, message: string) {
    super(message);
    this.name = "OpError";
    this.kind = kind;
  }
}

/** Largest search page. */
export const MAX_SEARCH_LIMIT = 1000;
/** Finished fetches remembered for the transfers view. */
const HISTORY_LENGTH = 50;
/** Repository entries looked at by one files() listing. */
const MAX_LISTED_FILES = 10_000;

/** Events an operation reports (the UI's live stream listens). */
export type OpEvent =
  | { type: "published"; data: PublishResult }
  | { type: "unpublished"; data: { fname: string } }
  | { type: "fetch-ended"; data: FetchOutcome }
  | { type: "files-changed"; data: { path: string } };

/** The operations over one running peer. */
export class PeerOps {
  readonly peer: Peer;
  readonly #history: FetchOutcome[] = [];
  readonly #listeners = new Set<(event: OpEvent) => void>();
  readonly #rates = new RateWindows();

  constructor(peer: Peer) {
    this.peer = peer;
  }

  /** Calls `listener` with every event. @returns a function that stops it */
  onEvent(listener: (event: OpEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(event: OpEvent): void {
    for (const listener of this.#listeners) listener(event);
  }

  /** Shares repository file `lname` under `fname` (default: its base name). */
  async publish(
    args: { lname: string; fname?: string | undefined },
    onHashing?: HashProgress,
  ): Promise<PublishResult> {
    const result = await this.peer.publish(args.lname, args.fname, onHashing);
    this.#emit({ type: "published", data: result });
    return result;
  }

  /** Stops sharing `fname`. */
  async unpublish(fname: string): Promise<{ fname: string; removed: boolean }> {
    const removed = await this.peer.unpublish(fname);
    if (removed) this.#emit({ type: "unpublished", data: { fname } });
    return { fname, removed };
  }

  /** Publishes the file shared as `fname` under `to` instead. */
  async rename(fname: string, to: string): Promise<PublishResult> {
    const share = this.peer.shares.get(fname);
    if (!share) throw new OpError("not-found", `Cannot rename "${fname}": not shared`);
    if (share.have) throw new OpError("conflict", `Cannot rename "${fname}": it is being fetched`);
    if (fname === to) throw new OpError("invalid", `Cannot rename "${fname}": same name`);
    if (this.peer.shares.get(to)) throw new OpError("conflict", `Cannot rename to "${to}": taken`);
    const result = await this.publish({ lname: this.peer.repo.relative(share.path), fname: to });
    await this.unpublish(fname);
    return result;
  }

  /**
   * Fetches `fname`. Progress goes to `onProgress`; the outcome is also kept in `history`.
   */
  async fetch(
    fname: string,
    options: {
      hashPrefix?: string | undefined;
      force?: boolean;
      onProgress?: (i: FetchInfo) => void;
    } = {},
  ): Promise<FetchResult> {
    const problem = fnameProblem(fname);
    if (problem) throw new OpError("invalid", `Cannot fetch "${fname}": ${problem}`);
    if (options.hashPrefix !== undefined && !/^[0-9a-fA-F]{1,64}$/.test(options.hashPrefix)) {
      throw new OpError("invalid", `Cannot fetch "${fname}": --hash must be hex digits`);
    }
    const fetchOptions: Parameters<Peer["fetch"]>[1] = { force: options.force ?? false };
    if (options.hashPrefix !== undefined) fetchOptions.hashPrefix = options.hashPrefix;
    if (options.onProgress) fetchOptions.onProgress = options.onProgress;
    try {
      const result = await this.peer.fetch(fname, fetchOptions);
      this.#remember({ fname, ok: true, endedAtMs: Date.now(), result });
      return result;
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      this.#remember({ fname, ok: false, endedAtMs: Date.now(), error });
      throw err;
    }
  }

  #remember(outcome: FetchOutcome): void {
    this.#history.unshift(outcome);
    if (this.#history.length > HISTORY_LENGTH) this.#history.pop();
    this.#emit({ type: "fetch-ended", data: outcome });
  }

  /** Finished and failed fetches, most recent first. */
  get history(): readonly FetchOutcome[] {
    return this.#history;
  }

  /** A running fetch's progress now: recent rate, ETA, queue places, bytes per source. */
  progress(info: FetchInfo): FetchProgress {
    const now = Date.now();
    const rate = this.#rates.sample(info.fname, receivedBytes(info), now);
    if (info.doneBytes >= info.size) this.#rates.forget(info.fname);
    return {
      ...progressFields(info, rate, now),
      rootHash: info.rootHash,
      bySource: { ...info.bySource },
    };
  }

  /** Connects to the index now (takes the session back after being replaced). */
  reconnect(): Promise<string> {
    return this.peer.reconnect();
  }

  /** Stops a fetch of `fname` and deletes its partial download. */
  /**
   * Forgets the index pinned at `address` ("host:port"), so that its next ID is trusted on
   * first use. @returns false when no index was pinned there
   */
  forgetServer(address: string): Promise<boolean> {
    return this.peer.pins.forget(address);
  }

  async cancel(fname: string): Promise<{ fname: string; running: boolean; partials: number }> {
    return { fname, ...await this.peer.cancel(fname) };
  }

  /** What this peer shares, by fname. */
  list(): SharedFile[] {
    return this.peer.shares.list().map((s) => ({
      fname: s.fname,
      path: this.peer.repo.relative(s.path),
      size: s.hashes.size,
      rootHash: s.hashes.rootHash,
      partial: s.have !== undefined,
    }));
  }

  /** A page of the catalogue, with its entries grouped by fname and content. */
  async search(args: { pattern: string; offset: number; limit: number }): Promise<SearchAnswer> {
    if (!Number.isSafeInteger(args.offset) || args.offset < 0) {
      throw new OpError(
        "invalid",
        `Cannot search: offset must be a whole number, got ${args.offset}`,
      );
    }
    if (!Number.isSafeInteger(args.limit) || args.limit < 1 || args.limit > MAX_SEARCH_LIMIT) {
      throw new OpError(
        "invalid",
        `Cannot search: limit must be 1 to ${MAX_SEARCH_LIMIT}, got ${args.limit}`,
      );
    }
    const page = await this.peer.search(args.pattern, args.offset, args.limit);
    const answer: SearchAnswer = {
      pattern: args.pattern,
      offset: args.offset,
      limit: args.limit,
      total: page.total,
      entries: page.entries,
      groups: groupEntries(page.entries),
    };
    if (page.capped) answer.capped = true;
    return answer;
  }

  /** Live and interrupted transfers, the index connection and the limits. */
  async status(): Promise<StatusAnswer> {
    const report = await this.peer.status();
    const config = this.peer.config;
    return {
      ...report,
      hostname: config.hostname,
      p2pPort: this.peer.p2pPort,
      repo: this.peer.repo.root,
      serverRttMs: await this.#serverRtt(),
      limits: {
        maxSessions: config.maxSessions,
        maxPerPeer: config.maxPerPeer,
        maxQueue: config.maxQueue,
        maxSources: config.maxSources,
        maxUploadRate: config.maxUploadRate,
        maxDownloadRate: config.maxDownloadRate,
        maxFileSize: config.maxFileSize,
      },
      progress: report.fetches.map((info) => this.progress(info)),
      history: this.#history,
    };
  }

  async #serverRtt(): Promise<number | null> {
    if (!this.peer.index.connected) return null;
    const started = performance.now();
    try {
      await this.peer.index.request(MsgType.Ping, { sentAtMs: Date.now() });
      return Math.round((performance.now() - started) * 100) / 100;
    } catch (err) {
      log.debug("Cannot measure the index round trip: {error}", { error: String(err) });
      return null;
    }
  }

  /** A page of the repository's files (published or not), by path. */
  async files(args: { offset: number; limit: number }): Promise<FilesPage> {
    const published = new Map<string, string[]>();
    for (const share of this.peer.shares.list()) {
      if (share.have) continue;
      const rel = this.peer.repo.relative(share.path);
      published.set(rel, [...published.get(rel) ?? [], share.fname]);
    }
    const found: RepoFile[] = [];
    let capped = false;
    const walk = async (dir: string): Promise<void> => {
      for await (const entry of Deno.readDir(dir)) {
        if (found.length >= MAX_LISTED_FILES) {
          capped = true;
          return;
        }
        const path = join(dir, entry.name);
        if (this.peer.repo.isMeta(path)) continue;
        if (entry.isDirectory) await walk(path);
        else if (entry.isFile) {
          const info = await Deno.stat(path);
          const rel = this.peer.repo.relative(path);
          found.push({
            path: rel,
            size: info.size,
            mtimeMs: info.mtime?.getTime() ?? 0,
            published: published.get(rel) ?? [],
          });
        }
      }
    };
    await walk(this.peer.repo.root);
    found.sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
    return {
      files: found.slice(args.offset, args.offset + args.limit),
      total: found.length,
      capped,
    };
  }

  /**
   * Streams `body` into the repository as file `fname` and publishes it under that name. The
   * bytes go to a temporary file in the metadata folder first and take their name only when
   * complete, so a failed or oversize upload leaves nothing behind.
   *
   * @throws {OpError} invalid name, conflict (exists, or being fetched), too large
   */
  async addFile(
    fname: string,
    body: ReadableStream<Uint8Array>,
    options: { declaredBytes?: number | undefined; replace: boolean },
  ): Promise<PublishResult> {
    const problem = fnameProblem(fname);
    if (problem) throw new OpError("invalid", `Cannot add "${fname}": ${problem}`);
    const maxBytes = this.peer.config.maxFileSize;
    const tooLarge = (bytes: number) =>
      new OpError(
        "too-large",
        `Cannot add "${fname}": ${bytes} bytes exceeds --max-file-size ${maxBytes}`,
      );
    if (maxBytes > 0 && options.declaredBytes !== undefined && options.declaredBytes > maxBytes) {
      await body.cancel();
      throw tooLarge(options.declaredBytes);
    }
    if (this.peer.shares.get(fname)?.have) {
      await body.cancel();
      throw new OpError("conflict", `Cannot add "${fname}": it is being fetched`);
    }
    const finalPath = this.peer.repo.finalPath(fname);
    if (!options.replace && await pathExists(finalPath)) {
      await body.cancel();
      throw new OpError("conflict", `Cannot add "${fname}": a file of that name exists`);
    }
    const tmp = join(this.peer.repo.metaDir, `upload-${crypto.randomUUID()}.tmp`);
    try {
      {
        using file = await Deno.open(tmp, { write: true, createNew: true });
        let size = 0;
        for await (const chunk of body) {
          size += chunk.length;
          if (maxBytes > 0 && size > maxBytes) throw tooLarge(size);
          let written = 0;
          while (written < chunk.length) written += await file.write(chunk.subarray(written));
        }
      }
      if (!options.replace && await pathExists(finalPath)) {
        throw new OpError("conflict", `Cannot add "${fname}": a file of that name appeared`);
      }
      await Deno.rename(tmp, finalPath);
    } catch (err) {
      await Deno.remove(tmp).catch((removeErr) => {
        if (!(removeErr instanceof Deno.errors.NotFound)) throw removeErr;
      });
      throw err;
    }
    this.#emit({ type: "files-changed", data: { path: fname } });
    return await this.publish({ lname: fname, fname });
  }

  /** Opens a repository file for download (confined to the repository). */
  async openFile(path: string): Promise<{ file: Deno.FsFile; size: number; name: string }> {
    const real = await this.peer.repo.resolveFile(path);
    const file = await Deno.open(real, { read: true });
    const info = await file.stat();
    return { file, size: info.size, name: real.slice(real.lastIndexOf("/") + 1) };
  }
}

/** Groups a search page by fname, then by content (most live sources first). */
export function groupEntries(entries: readonly CatalogEntry[]): CatalogGroup[] {
  const groups = new Map<string, Map<string, CatalogVersion>>();
  for (const e of entries) {
    const versions = groups.get(e.fname) ?? new Map<string, CatalogVersion>();
    groups.set(e.fname, versions);
    const version = versions.get(e.rootHash) ??
      { rootHash: e.rootHash, size: e.size, liveSources: 0, completeSources: 0, hosts: [] };
    versions.set(e.rootHash, version);
    if (e.online) version.liveSources++;
    if (e.have === undefined) version.completeSources++;
    version.hosts.push(`${e.hostname}:${e.port}`);
  }
  return [...groups].map(([fname, versions]) => ({
    fname,
    versions: [...versions.values()].sort((a, b) => b.liveSources - a.liveSources),
  }));
}
