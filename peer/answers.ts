// The shapes of the peer's answers: what `--json` prints, what the HTTP API sends and what the
// page reads. Types only, importing only modules without Deno APIs, so that the browser code
// (ui/, checked with the DOM library) type-checks against the same declarations the peer
// builds its answers with: an answer that changes shape breaks the page's type check.
import type { CatalogEntry, PublishStatus } from "../shared/protocol.ts";
import type { FetchInfo, UploadInfo } from "./activity.ts";
import type { IndexState } from "./index_state.ts";
import type { ProgressFields } from "./progress.ts";

/** One content version found under an fname. */
export interface ContentVersion {
  rootHash: string;
  size: number;
  /**
   * Distinct devices that publish it: the vote. Sessions are not counted, so one device with
   * many sessions (or many hostnames) counts once.
   */
  sources: number;
  /** Those devices' short IDs (sorted), to show who publishes which content. */
  publishers: string[];
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
  /** Sources dropped for sending corrupt data, or whose publish signature does not verify. */
  badSources: string[];
  /** Every content version published under the fname, most sources first. */
  versions: ContentVersion[];
}

/**
 * What the index did with a publish, or "pending": no session with the index now; the share
 * is kept and announced as soon as the peer connects.
 */
export type AnnounceStatus = PublishStatus | "pending";

/** Answer of `publish`. */
export interface PublishResult {
  fname: string;
  path: string;
  size: number;
  rootHash: string;
  status: AnnounceStatus;
  /** Why the index has not been told yet (status "pending"). */
  pendingReason?: string;
  /** This peer's root hash for the name before (with `overwrite`, or `conflict`). */
  previousRootHash?: string;
  /** Another peer's root hash for the name (with `conflict`). */
  conflictRootHash?: string;
}

/** Answer of `status`. */
export interface StatusReport {
  /** This peer's device ID. */
  id: string;
  server: string | undefined;
  /** The index's device ID, once registered with it. */
  serverId: string | undefined;
  connected: boolean;
  /** Where the peer stands with the index, and one line saying so. */
  index: { state: IndexState["kind"]; summary: string };
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

/** A shared file, as `list` shows it. */
export interface SharedFile {
  fname: string;
  path: string;
  size: number;
  rootHash: string;
  partial: boolean;
}

/** A running fetch with what a progress bar needs: the shell's progress fields and more. */
export interface FetchProgress extends ProgressFields {
  rootHash: string;
  /** Bytes received in this run, by source "host:port". */
  bySource: Record<string, number>;
}

/** One content under an fname in a search page: its copies grouped. */
export interface CatalogVersion {
  rootHash: string;
  size: number;
  /** Copies online now. */
  liveSources: number;
  /** Copies that are complete (others are fetches in progress). */
  completeSources: number;
  hosts: string[];
}

/** Search results under one fname. */
export interface CatalogGroup {
  fname: string;
  versions: CatalogVersion[];
}

/** A page of search results. */
export interface SearchAnswer {
  pattern: string;
  offset: number;
  limit: number;
  total: number;
  capped?: boolean;
  entries: CatalogEntry[];
  groups: CatalogGroup[];
}

/** A finished or failed fetch, most recent first in `history`. */
export interface FetchOutcome {
  fname: string;
  ok: boolean;
  endedAtMs: number;
  error?: string;
  result?: FetchResult;
}

/** A file of the repository, published or not. */
export interface RepoFile {
  path: string;
  size: number;
  mtimeMs: number;
  /** fnames it is published under. */
  published: string[];
}

/** Answer of `status` as the shell's `--json` and `GET /api/status` give it. */
export interface StatusAnswer extends StatusReport {
  hostname: string;
  p2pPort: number;
  repo: string;
  /** Round trip to the index now, ms; null when not connected or no answer. */
  serverRttMs: number | null;
  limits: Record<string, number>;
  progress: FetchProgress[];
  history: readonly FetchOutcome[];
}

/** A page of the repository's files (`GET /api/files`). */
export interface FilesPage {
  files: RepoFile[];
  total: number;
  /** Set when the listing stopped early: the repository holds more files. */
  capped: boolean;
}

/** The `transfers` event: what moves now, sent while a page listens. */
export interface TransfersSnapshot {
  progress: FetchProgress[];
  uploads: UploadInfo[];
  slots: StatusReport["slots"];
  connected: boolean;
}
