// Wire constants and message types of the lanshare protocol, shared by server and peer.
// Pure: no I/O. The normative description is docs/PROTOCOL.md; keep both in step.
//
// Every TCP message is one frame: a 16-byte header, then `bodyBytes` bytes of UTF-8 JSON.
//
//   offset  size  field       notes
//   0       2     magic       0x4C 0x53 ("LS")
//   2       1     version     PROTOCOL_VERSION
//   3       1     type        MsgType
//   4       2     flags       bit 0: FLAG_REPLY (answers the request with the same requestId)
//   6       2     reserved    must be 0
//   8       4     requestId   u32, chosen by the requester, echoed by the reply
//   12      4     bodyBytes   u32, length of the JSON body that follows, at most maxBodyBytes
//
// All integers are big-endian. A `Data` frame is followed by exactly `bytes` raw file bytes,
// outside the frame: they are streamed, never framed or buffered whole.

/** First two header bytes: ASCII "LS". */
export const MAGIC = 0x4c53;
/** Version of the frame layout and message set; a mismatch is a protocol error. */
export const PROTOCOL_VERSION = 2;
/** Size of the fixed frame header in bytes. */
export const HEADER_SIZE = 16;
/** Flag bit: this frame is the reply to the request with the same request id. */
export const FLAG_REPLY = 0x0001;
/** Every flag bit this version knows; any other bit set is a protocol error. */
export const KNOWN_FLAGS = FLAG_REPLY;

/** Size limits checked before anything is allocated or awaited. */
export interface Limits {
  /** Largest JSON body accepted, in bytes. @default 16 MiB (a piece-hash list of a 512 GiB file fits) */
  maxBodyBytes: number;
  /** Largest raw payload announced by one `Data` frame, in bytes. @default 64 MiB */
  maxDataBytes: number;
}

/** The limits used when none are given. */
export const DEFAULT_LIMITS: Readonly<Limits> = {
  maxBodyBytes: 16 * 1024 * 1024,
  maxDataBytes: 64 * 1024 * 1024,
};

/** Longest file name on the wire, in UTF-8 bytes (the usual file-system limit). */
export const MAX_FNAME_BYTES = 255;
/** Longest hostname accepted in `Hello`, in UTF-8 bytes (DNS limit). */
export const MAX_HOSTNAME_BYTES = 253;
/** Longest `Search.pattern` the index accepts, in UTF-8 bytes: no fname is longer. */
export const MAX_SEARCH_PATTERN_BYTES = MAX_FNAME_BYTES;
/** Most wildcards (`*` and `?`) in one `Search.pattern`. */
export const MAX_SEARCH_WILDCARDS = 32;

/** Message types. Values are stable wire numbers. */
export enum MsgType {
  /** Either side: a request failed, or the connection is about to close because of bad input. */
  Error = 0x01,
  /** Either side: liveness probe; answered by `Pong`. */
  Ping = 0x02,
  /** Reply to `Ping`. */
  Pong = 0x03,
  /** Either side: orderly close, with a reason. */
  Goodbye = 0x04,
  /** Generic success reply with optional details. */
  Ok = 0x05,
  /** Accepting side → connector: first frame of every connection, a nonce to sign. */
  Challenge = 0x06,
  /** Peer → server: first message of a session. */
  Hello = 0x10,
  /** Server → peer: reply to `Hello`. */
  Welcome = 0x11,
  /** Peer → server: announce (or update) a shared file. */
  Publish = 0x12,
  /** Server → peer: reply to `Publish`. */
  Published = 0x13,
  /** Peer → server: stop sharing a file. Answered by `Ok`. */
  Unpublish = 0x14,
  /** Peer → server: who holds this file? */
  WhoHas = 0x15,
  /** Server → peer: reply to `WhoHas`. */
  Sources = 0x16,
  /** Peer → server: search the catalogue. */
  Search = 0x17,
  /** Server → peer: reply to `Search`. */
  SearchResult = 0x18,
  /** Server → peer: list what you share right now (live `discover`). */
  ListShares = 0x19,
  /** Peer → server: reply to `ListShares`. */
  Shares = 0x1a,
  /** Peer → server: a fresh ticket, before the current one expires. */
  GetTicket = 0x1b,
  /** Server → peer: reply to `GetTicket`. */
  Ticket = 0x1c,
  /** Fetcher → source: describe a file (size, piece hashes, pieces held). */
  GetInfo = 0x20,
  /** Source → fetcher: reply to `GetInfo`. */
  Info = 0x21,
  /** Fetcher → source: send a byte range of a file. Pipelined; answered in order. */
  GetRange = 0x22,
  /** Source → fetcher: reply to `GetRange`; exactly `bytes` raw bytes follow the frame. */
  Data = 0x23,
  /** Source → fetcher: no session slot free; try again later or elsewhere. The source closes. */
  Busy = 0x24,
  /** Source → fetcher: no slot free yet, you are waiting at `position`; more may follow. */
  Queued = 0x25,
}

/** The type names, for logs and error messages. */
export const MSG_TYPE_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(MsgType).filter(([, v]) => typeof v === "number").map((
    [k, v],
  ) => [v as number, k]),
);

/** Error codes carried in `Error` bodies and in ProtocolError. */
export type ErrorCode =
  | "bad-magic"
  | "bad-version"
  | "bad-flags"
  | "unknown-type"
  | "too-large"
  | "truncated"
  | "bad-body"
  | "unexpected"
  | "not-registered"
  | "already-registered"
  | "replaced"
  | "invalid-fname"
  | "not-found"
  | "hash-mismatch"
  | "bad-range"
  | "busy"
  | "internal"
  | "quota"
  | "shutdown"
  | "conflict"
  | "bad-proof"
  | "not-approved"
  | "revoked"
  | "bad-ticket";

/**
 * Publish outcome reported by the index: the entry is new (`created`), identical (`unchanged`),
 * the same content with another size, mtime or bitfield (`updated`), other content than this
 * peer published under the name before (`overwrite`), or content that differs from what another
 * live peer publishes under the name (`conflict`; the publish still took effect).
 */
export type PublishStatus = "created" | "unchanged" | "updated" | "overwrite" | "conflict";

/** Body of `Published`. */
export interface PublishedBody {
  fname: string;
  status: PublishStatus;
  /** The root hash published; present with `overwrite` and `conflict`. */
  rootHash?: string;
  /** This peer's root hash for the name before, when it was another one. */
  previousRootHash?: string;
  /** A root hash another live peer publishes under the name (with `conflict`). */
  conflictRootHash?: string;
}

/** One file as published to the index. */
export interface FileEntry {
  /** Logical file name (validated by `checkFname`). */
  fname: string;
  /** File size in bytes. */
  size: number;
  /** Modification time in ms since the epoch. */
  mtimeMs: number;
  /** Hex SHA-256 root over the piece hashes (see shared/pieces.ts). */
  rootHash: string;
  /** Piece size in bytes. */
  pieceSize: number;
  /** Pieces held, as a base64 bitfield; absent when the publisher holds the whole file. */
  have?: string;
  /**
   * The publisher's signature (base64) over `publishStatement(fname, size, rootHash)`: sent in
   * `Publish`, stored by the index unverified, returned in `Sources` and `SearchResult` for
   * fetchers to verify against the publisher's `id`.
   */
  sig?: string;
}

/** A FileEntry as `Publish` carries it (protocol 2): with its publisher's signature. */
export type SignedFileEntry = FileEntry & { sig: string };

/**
 * A ticket: the index's signature (base64) over `ticketStatement(fetcher, index, expiresAtMs)`,
 * vouching that `fetcher` may fetch from the index's peers until `expiresAtMs`.
 */
export interface Ticket {
  fetcher: string;
  index: string;
  expiresAtMs: number;
  sig: string;
}

/** One holder of a file, as returned by `WhoHas`. */
export interface SourceInfo extends FileEntry {
  /**
   * The publisher's device ID: the fetcher checks `sig` against it and pins TLS to its P2P port
   * to it (the key the ID is; see shared/pin_cert.ts), so no certificate travels here.
   */
  id: string;
  /** The publisher's signature over `publishStatement(fname, size, rootHash)`. */
  sig: string;
  /** Peer's hostname as given in `Hello`. */
  hostname: string;
  /** Address the index saw the peer connect from (where its P2P port is reachable). */
  address: string;
  /** The peer's P2P listening port. */
  port: number;
}

/** A catalogue row returned by `Search` and `Shares`. */
export interface CatalogEntry extends FileEntry {
  /** The publisher's device ID (absent for rows kept from before protocol 2). */
  id?: string;
  hostname: string;
  port: number;
  /** false when the owner is not connected (only after an index restart). */
  online: boolean;
}

/** Bodies by message type. */
export interface Bodies {
  [MsgType.Error]: { code: ErrorCode; message: string };
  [MsgType.Ping]: { sentAtMs: number };
  [MsgType.Pong]: { sentAtMs: number };
  [MsgType.Goodbye]: { reason: string };
  [MsgType.Ok]: { removed?: boolean };
  [MsgType.Challenge]: { nonce: string; id: string };
  /**
   * `proof`: base64 signature by `id` over `helloStatement(nonce, serverId, id)`;
   * `networkProof`: base64 HMAC-SHA256 with the network key over `joinStatement(nonce, id)`.
   */
  [MsgType.Hello]: {
    hostname: string;
    p2pPort: number;
    protocol: number;
    id: string;
    cert: string;
    proof: string;
    networkProof?: string;
    /**
     * `sharesDigest()` (shared/shares_digest.ts) of what this device last published
     * successfully to the index: asks the index to keep the entries it still holds for it
     * (after a restart) instead of the peer publishing them again. Absent: a fresh session.
     */
    sharesDigest?: string;
  };
  [MsgType.Welcome]: {
    serverId: string;
    sessionId: string;
    pingIntervalMs: number;
    ticket: Ticket;
    /**
     * Every index whose tickets this peer's P2P port should accept: this server and the others
     * sharing its catalogue. Absent: this server only.
     */
    indexIds?: string[];
    /**
     * true: the index kept this device's entries from before (the Hello's `sharesDigest`
     * matched them), so the session starts with them and the peer sends only what changed
     * since. Absent or false: the session starts empty, the peer publishes everything.
     */
    kept?: boolean;
  };
  [MsgType.Publish]: SignedFileEntry;
  [MsgType.Published]: PublishedBody;
  [MsgType.Unpublish]: { fname: string };
  [MsgType.WhoHas]: { fname: string };
  [MsgType.Sources]: { fname: string; sources: SourceInfo[] };
  [MsgType.Search]: { pattern: string; offset: number; limit: number };
  /** `capped`: counting stopped early, so at least `total` entries match. */
  [MsgType.SearchResult]: { entries: CatalogEntry[]; total: number; capped?: boolean };
  [MsgType.ListShares]: Record<string, never>;
  [MsgType.Shares]: { files: FileEntry[] };
  [MsgType.GetTicket]: Record<string, never>;
  [MsgType.Ticket]: { ticket: Ticket };
  /**
   * `from` names the fetcher (hostname:port) so a source can cap slots per peer; `id`, `ticket`
   * and `proof` (signature by `id` over `fetchStatement(nonce, sourceId, id)`) say who it is.
   */
  [MsgType.GetInfo]: {
    fname: string;
    rootHash?: string;
    from?: string;
    id?: string;
    ticket?: Ticket;
    proof?: string;
  };
  [MsgType.Info]: FileEntry & { pieceHashes: string };
  [MsgType.GetRange]: { fname: string; rootHash: string; offset: number; bytes: number };
  [MsgType.Data]: { offset: number; bytes: number };
  [MsgType.Busy]: { retryAfterMs: number; message: string };
  [MsgType.Queued]: { position: number };
}

/** A decoded message of one type. */
export type MessageOf<T extends MsgType> = {
  type: T;
  requestId: number;
  /** true when this frame answers the request with the same id. */
  reply: boolean;
  body: Bodies[T];
};

/** Any decoded message. */
export type Message = { [T in MsgType]: MessageOf<T> }[MsgType];

/** The fixed header of a frame. */
export interface FrameHeader {
  type: MsgType;
  flags: number;
  requestId: number;
  bodyBytes: number;
}
