// Live transfer bookkeeping for `status`: uploads being served and fetches running.

/** One upload in progress. */
export interface UploadInfo {
  id: number;
  /** Who fetches (their hostname:port, or address). */
  peer: string;
  fname: string;
  bytes: number;
  startedAtMs: number;
}

/** One fetch in progress. */
export interface FetchInfo {
  fname: string;
  rootHash: string;
  size: number;
  /** Bytes verified and written, including those from before a resume. */
  doneBytes: number;
  /** Bytes received in this run, by source "host:port". */
  bySource: Record<string, number>;
  /** Sources transferring now. */
  activeSources: number;
  /** Sources waiting in a queue. */
  queuedSources: number;
  /** Where this fetch waits in a source's queue: "host:port" → its latest position. */
  queuedAt: Record<string, number>;
  startedAtMs: number;
  /** When a byte last arrived from any source (the start, before the first). */
  lastByteAtMs: number;
}

/** The registry behind `status`. */
export class Activity {
  readonly uploads = new Map<number, UploadInfo>();
  readonly fetches = new Map<string, FetchInfo>();
  #nextId = 1;

  /** Records an upload; the returned object's `bytes` is updated by the sender. */
  startUpload(peer: string, fname: string): UploadInfo {
    const info = { id: this.#nextId++, peer, fname, bytes: 0, startedAtMs: Date.now() };
    this.uploads.set(info.id, info);
    return info;
  }

  /** Forgets a finished upload. */
  endUpload(info: UploadInfo): void {
    this.uploads.delete(info.id);
  }
}
