// Shape checks for every message body: JSON in, typed body or ProtocolError out.
// Pure: no I/O. Checks types and ranges only; semantic rules (valid fname, known file) belong to
// the handlers, which answer them with an `Error` reply instead of closing the connection.
import { ProtocolError } from "./errors.ts";
import { type Bodies, type ErrorCode, MsgType } from "./protocol.ts";

type Check = (value: unknown) => void;

/**
 * A failed check on its way out to checkBody(): each enclosing object or array puts its part
 * of the path in front as it passes. Built only on failure, so that a valid body (nearly all
 * of them) costs no path strings: a lookup's decoding allocated them for every field.
 */
class Mismatch {
  readonly expected: string;
  path = "";

  constructor(expected: string) {
    this.expected = expected;
  }
}

function fail(expected: string): never {
  throw new Mismatch(expected);
}

/** Runs `check`; a Mismatch leaving it gets `part` in front of its path. */
function within(part: string | number, check: Check, value: unknown): void {
  try {
    check(value);
  } catch (err) {
    if (err instanceof Mismatch) {
      err.path = (typeof part === "number" ? `[${part}]` : `.${part}`) + err.path;
    }
    throw err;
  }
}

const string = (maxBytes = 4096): Check => (v) => {
  if (typeof v !== "string") fail("a string");
  // UTF-16 length bounds UTF-8 length from below; the exact count only when it could matter.
  if (v.length > maxBytes || (v.length * 3 > maxBytes && utf8Length(v) > maxBytes)) {
    fail(`at most ${maxBytes} UTF-8 bytes`);
  }
};
const uint = (max = Number.MAX_SAFE_INTEGER, min = 0): Check => (v) => {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    fail(`an integer from ${min} to ${max}`);
  }
};
const bool: Check = (v) => {
  if (typeof v !== "boolean") fail("a boolean");
};
const hash: Check = (v) => {
  if (typeof v !== "string" || !/^[0-9a-f]{64}$/.test(v)) fail("64 lowercase hex digits");
};
const base64: Check = (v) => {
  if (typeof v !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) {
    fail("base64");
  }
};
const oneOf = (...values: string[]): Check => (v) => {
  if (typeof v !== "string" || !values.includes(v)) fail(`one of ${values.join(", ")}`);
};
const optional = (check: Check): Check => (v) => {
  if (v !== undefined) check(v);
};
const object = (fields: Record<string, Check>): Check => {
  const list = Object.entries(fields);
  return (v) => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) fail("an object");
    const record = v as Record<string, unknown>;
    for (const [name, check] of list) within(name, check, record[name]);
  };
};
const array = (item: Check, maxItems: number): Check => (v) => {
  if (!Array.isArray(v)) fail("an array");
  if (v.length > maxItems) fail(`at most ${maxItems} items`);
  for (let i = 0; i < v.length; i++) within(i, item, v[i]);
};

function utf8Length(s: string): number {
  return new TextEncoder().encode(s).length;
}

const ERROR_CODES: ErrorCode[] = [
  "bad-magic",
  "bad-version",
  "bad-flags",
  "unknown-type",
  "too-large",
  "truncated",
  "bad-body",
  "unexpected",
  "not-registered",
  "already-registered",
  "replaced",
  "invalid-fname",
  "not-found",
  "hash-mismatch",
  "bad-range",
  "busy",
  "internal",
  "quota",
  "shutdown",
  "conflict",
  "bad-proof",
  "not-approved",
  "revoked",
  "bad-ticket",
];

/** A 64-byte signature or 32-byte MAC in base64. */
const SIG: Check = (v) => {
  if (typeof v !== "string" || v.length > 128) fail("base64 of at most 96 bytes");
  base64(v);
};
const FNAME = string(1024);
const FILE_ENTRY = {
  fname: FNAME,
  size: uint(),
  mtimeMs: uint(),
  rootHash: hash,
  pieceSize: uint(2 ** 31, 1),
  have: optional(base64),
  sig: optional(SIG),
};
const PEER = { hostname: string(1024), port: uint(65535) };
/** A device ID: 52 base32 digits (the schema checks the shape; signatures check the rest). */
const ID: Check = (v) => {
  if (typeof v !== "string" || !/^[a-z2-7]{52}$/.test(v)) fail("a device ID (52 base32 digits)");
};
/** A certificate in PEM: a few hundred bytes for an Ed25519 one. */
const CERT = string(4096);
const TICKET = object({ fetcher: ID, index: ID, expiresAtMs: uint(), sig: SIG });
/** Upper bound on list lengths in one reply; keeps replies far below maxBodyBytes. */
export const MAX_LIST_ITEMS = 10_000;

const SCHEMAS: { [T in MsgType]: Check } = {
  [MsgType.Error]: object({ code: oneOf(...ERROR_CODES), message: string() }),
  [MsgType.Ping]: object({ sentAtMs: uint() }),
  [MsgType.Pong]: object({ sentAtMs: uint() }),
  [MsgType.Goodbye]: object({ reason: string() }),
  [MsgType.Ok]: object({ removed: optional(bool) }),
  [MsgType.Challenge]: object({ nonce: SIG, id: ID }),
  [MsgType.Hello]: object({
    hostname: string(1024),
    p2pPort: uint(65535),
    protocol: uint(),
    id: ID,
    cert: CERT,
    proof: SIG,
    networkProof: optional(SIG),
    sharesDigest: optional(hash),
  }),
  [MsgType.Welcome]: object({
    serverId: string(),
    sessionId: string(),
    pingIntervalMs: uint(),
    ticket: TICKET,
    indexIds: optional(array(ID, 64)),
    kept: optional(bool),
  }),
  [MsgType.Publish]: object({ ...FILE_ENTRY, sig: SIG }),
  [MsgType.Published]: object({
    fname: FNAME,
    status: oneOf("created", "unchanged", "updated", "overwrite", "conflict"),
    rootHash: optional(hash),
    previousRootHash: optional(hash),
    conflictRootHash: optional(hash),
  }),
  [MsgType.Unpublish]: object({ fname: FNAME }),
  [MsgType.WhoHas]: object({ fname: FNAME }),
  [MsgType.Sources]: object({
    fname: FNAME,
    sources: array(
      object({
        ...FILE_ENTRY,
        ...PEER,
        address: string(),
        id: ID,
        sig: SIG,
      }),
      MAX_LIST_ITEMS,
    ),
  }),
  [MsgType.Search]: object({ pattern: string(), offset: uint(), limit: uint(MAX_LIST_ITEMS) }),
  [MsgType.SearchResult]: object({
    entries: array(
      object({ ...FILE_ENTRY, ...PEER, online: bool, id: optional(ID) }),
      MAX_LIST_ITEMS,
    ),
    total: uint(),
    capped: optional(bool),
  }),
  [MsgType.ListShares]: object({}),
  [MsgType.Shares]: object({ files: array(object(FILE_ENTRY), MAX_LIST_ITEMS) }),
  [MsgType.GetTicket]: object({}),
  [MsgType.Ticket]: object({ ticket: TICKET }),
  [MsgType.GetInfo]: object({
    fname: FNAME,
    rootHash: optional(hash),
    from: optional(string(300)),
    id: optional(ID),
    ticket: optional(TICKET),
    proof: optional(SIG),
  }),
  [MsgType.Info]: object({ ...FILE_ENTRY, pieceHashes: base64 }),
  [MsgType.GetRange]: object({ fname: FNAME, rootHash: hash, offset: uint(), bytes: uint() }),
  [MsgType.Data]: object({ offset: uint(), bytes: uint() }),
  [MsgType.Busy]: object({ retryAfterMs: uint(), message: string() }),
  [MsgType.Queued]: object({ position: uint() }),
};

/**
 * Checks that `value` is a valid body for `type`.
 *
 * @throws {ProtocolError} code "bad-body", naming the first field that is wrong
 */
export function checkBody<T extends MsgType>(type: T, value: unknown): Bodies[T] {
  try {
    SCHEMAS[type](value);
  } catch (err) {
    if (!(err instanceof Mismatch)) throw err;
    throw new ProtocolError(
      "bad-body",
      `Cannot decode body: body${err.path} must be ${err.expected}`,
    );
  }
  return value as Bodies[T];
}
