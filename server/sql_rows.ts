// Row shapes shared by the SQL stores and their conversion to the Store's types. Pure.
import type { CatalogEntry, FileEntry, SourceInfo } from "../shared/protocol.ts";
import type { SessionRow } from "./store.ts";

/** An integer column as a driver returns it: a number (SQLite), or text (PostgreSQL BIGINT). */
export type SqlInt = number | string;

/** An `entries` row. */
export interface EntrySqlRow {
  fname: string;
  size: SqlInt;
  mtime_ms: SqlInt;
  root_hash: string;
  piece_size: SqlInt;
  have: string | null;
  /** NULL for rows from before protocol 2. */
  sig: string | null;
}

/** The columns of a `sessions` row that both stores type alike. */
export interface SessionSqlColumns {
  session_id: string;
  server_id: string;
  hostname: string;
  address: string;
  port: number;
  opened_at_ms: SqlInt;
  /** NULL for rows from before protocol 2. */
  device_id: string | null;
  cert: string | null;
}

/** An `entries` row as the wire's FileEntry (all values below 2^53). */
export function toEntry(row: EntrySqlRow): FileEntry {
  const entry: FileEntry = {
    fname: row.fname,
    size: Number(row.size),
    mtimeMs: Number(row.mtime_ms),
    rootHash: row.root_hash,
    pieceSize: Number(row.piece_size),
  };
  if (row.have !== null) entry.have = row.have;
  if (row.sig !== null && row.sig !== undefined) entry.sig = row.sig;
  return entry;
}

/** A catalogue row with its publisher's device ID, when the row has one. */
export function withId(entry: CatalogEntry, deviceId: string | null): CatalogEntry {
  if (deviceId !== null) entry.id = deviceId;
  return entry;
}

/**
 * A who-has row as a source with its publisher's device ID and signature, or undefined for a
 * row lacking one of them (a protocol-2 fetcher could neither pin nor check it).
 */
export function toSource(
  row: EntrySqlRow & {
    hostname: string;
    address: string;
    port: number;
    device_id: string | null;
  },
): SourceInfo | undefined {
  const entry = toEntry(row);
  if (row.device_id === null || entry.sig === undefined) return undefined;
  return {
    ...entry,
    sig: entry.sig,
    hostname: row.hostname,
    address: row.address,
    port: row.port,
    id: row.device_id,
  };
}

/** A `sessions` row as the Store's SessionRow. */
export function toSession(row: SessionSqlColumns): SessionRow {
  const session: SessionRow = {
    sessionId: row.session_id,
    serverId: row.server_id,
    hostname: row.hostname,
    address: row.address,
    port: row.port,
    openedAtMs: Number(row.opened_at_ms),
  };
  if (row.device_id !== null && row.device_id !== undefined) session.deviceId = row.device_id;
  if (row.cert !== null && row.cert !== undefined) session.cert = row.cert;
  return session;
}
