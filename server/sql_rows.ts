// Row shapes shared by the SQL stores and their conversion to the Store's types. Pure.
import type { FileEntry } from "../shared/protocol.ts";
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
  return entry;
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
  return session;
}
