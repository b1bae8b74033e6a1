// One sample message of every type, plus byte helpers, shared by the codec tests. Pure: no I/O.
// tests/fixtures/golden_frames.json holds the same messages with their expected bytes.
import { reply, request } from "../../shared/encode.ts";
import { type FileEntry, type Message, MsgType } from "../../shared/protocol.ts";

/**
 * A 1 048 581-byte file whose byte i is `i % 251`: two pieces of 1 MiB and 5 bytes. Its hashes
 * were computed once with shared/pieces.ts and checked by pieces_test.ts.
 */
export const FILE = {
  size: 1048581,
  pieceSize: 1048576,
  /** SHA-256 of piece 0 and piece 1, concatenated, base64. */
  pieceHashes:
    "YxuEAn1rnlK1OcToNzYi0jAy363GTWCvhzOckDfk92nxTTpOZd9LZVDo8/G5Pv+H6YpItlIP2fXKnXC34IfIZg==",
  rootHash: "37abb5b5acd10be134610436546a15493f02117cce2524e9beb4f1260ae9e0fb",
  /** The last piece: bytes 1048576..1048580. */
  tail: new Uint8Array([0x95, 0x96, 0x97, 0x98, 0x99]),
} as const;

const ENTRY: FileEntry = {
  fname: "résumé 2026.pdf",
  size: FILE.size,
  mtimeMs: 1767225600123,
  rootHash: FILE.rootHash,
  pieceSize: FILE.pieceSize,
};

/** A device ID (the shape only: these samples are never verified). */
const ID = "a".repeat(26) + "2".repeat(26);
/** Another device ID: the index's. */
const INDEX_ID = "b".repeat(52);
/** A 64-byte signature's shape. */
const SIG = new Uint8Array(64).fill(7).toBase64();
const CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const TICKET = { fetcher: ID, index: INDEX_ID, expiresAtMs: 1767226200000, sig: SIG };

/** One message of each type, keyed by the type's name. */
export const SAMPLE_BY_NAME: Readonly<Record<keyof typeof MsgType, Message>> = {
  Error: reply(MsgType.Error, 7, {
    code: "not-found",
    message: 'Cannot fetch "x.bin": not shared',
  }),
  Ping: request(MsgType.Ping, 0xffffffff, { sentAtMs: 1767225600000 }),
  Pong: reply(MsgType.Pong, 0xffffffff, { sentAtMs: 1767225600000 }),
  Goodbye: request(MsgType.Goodbye, 0, { reason: "shutting down" }),
  Ok: reply(MsgType.Ok, 3, { removed: true }),
  Challenge: request(MsgType.Challenge, 0, { nonce: new Uint8Array(32).toBase64(), id: INDEX_ID }),
  Hello: request(MsgType.Hello, 1, {
    hostname: "alice-laptop",
    p2pPort: 7072,
    protocol: 2,
    id: ID,
    cert: CERT,
    proof: SIG,
  }),
  Welcome: reply(MsgType.Welcome, 1, {
    serverId: "00112233445566778899aabbccddeeff",
    sessionId: "s-42",
    pingIntervalMs: 15000,
    ticket: TICKET,
  }),
  Publish: request(MsgType.Publish, 2, { ...ENTRY, have: "gA==", sig: SIG }),
  Published: reply(MsgType.Published, 2, { fname: ENTRY.fname, status: "created" }),
  Unpublish: request(MsgType.Unpublish, 3, { fname: "日本語.txt" }),
  WhoHas: request(MsgType.WhoHas, 4, { fname: ENTRY.fname }),
  Sources: reply(MsgType.Sources, 4, {
    fname: ENTRY.fname,
    sources: [{
      ...ENTRY,
      hostname: "bob-desktop",
      address: "192.168.1.23",
      port: 7072,
      id: ID,
      sig: SIG,
    }],
  }),
  Search: request(MsgType.Search, 5, { pattern: "*.pdf", offset: 0, limit: 50 }),
  SearchResult: reply(MsgType.SearchResult, 5, {
    entries: [{ ...ENTRY, hostname: "bob-desktop", port: 7072, online: true, id: ID, sig: SIG }],
    total: 1,
  }),
  ListShares: request(MsgType.ListShares, 9, {}),
  Shares: reply(MsgType.Shares, 9, { files: [ENTRY] }),
  GetTicket: request(MsgType.GetTicket, 10, {}),
  Ticket: reply(MsgType.Ticket, 10, { ticket: TICKET }),
  GetInfo: request(MsgType.GetInfo, 1, {
    fname: ENTRY.fname,
    rootHash: FILE.rootHash,
    from: "alice-laptop:7072",
    id: ID,
    ticket: TICKET,
    proof: SIG,
  }),
  Info: reply(MsgType.Info, 1, { ...ENTRY, pieceHashes: FILE.pieceHashes }),
  GetRange: request(MsgType.GetRange, 2, {
    fname: ENTRY.fname,
    rootHash: FILE.rootHash,
    offset: FILE.pieceSize,
    bytes: FILE.tail.length,
  }),
  Data: reply(MsgType.Data, 2, { offset: FILE.pieceSize, bytes: FILE.tail.length }),
  Busy: reply(MsgType.Busy, 1, { retryAfterMs: 2000, message: "all 4 upload slots in use" }),
  Queued: reply(MsgType.Queued, 1, { position: 2 }),
};

/** The wire numbers as documented in docs/PROTOCOL.md, written out independently. */
export const WIRE_NUMBERS: Readonly<Record<string, number>> = {
  Error: 0x01,
  Ping: 0x02,
  Pong: 0x03,
  Goodbye: 0x04,
  Ok: 0x05,
  Challenge: 0x06,
  Hello: 0x10,
  Welcome: 0x11,
  Publish: 0x12,
  Published: 0x13,
  Unpublish: 0x14,
  WhoHas: 0x15,
  Sources: 0x16,
  Search: 0x17,
  SearchResult: 0x18,
  ListShares: 0x19,
  Shares: 0x1a,
  GetTicket: 0x1b,
  Ticket: 0x1c,
  GetInfo: 0x20,
  Info: 0x21,
  GetRange: 0x22,
  Data: 0x23,
  Busy: 0x24,
  Queued: 0x25,
};

/** Every sample, in wire-number order. */
export const SAMPLES: readonly Message[] = Object.values(SAMPLE_BY_NAME).sort((a, b) =>
  a.type - b.type
);

/** Lowercase hex of `bytes`. */
export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Bytes of a hex string; spaces are ignored. */
export function unhex(text: string): Uint8Array {
  const digits = text.replaceAll(" ", "");
  if (!/^(?:[0-9a-f]{2})*$/.test(digits)) throw new RangeError(`Cannot parse hex "${text}"`);
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** The concatenation of `parts`. */
export function concat(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** One entry of tests/fixtures/golden_frames.json. */
export interface GoldenFrame {
  /** The message, with its type given by name. */
  message: { type: string; requestId: number; reply: boolean; body: unknown };
  /** The 16 header bytes in hex, one space between fields. */
  header: string;
  /** The JSON body in hex. */
  body: string;
}

/** Reads the golden frames, keyed by message type name (needs --allow-read=tests/fixtures). */
export async function loadGoldenFrames(): Promise<Record<string, GoldenFrame>> {
  const url = new URL("../fixtures/golden_frames.json", import.meta.url);
  return JSON.parse(await Deno.readTextFile(url)).frames;
}
