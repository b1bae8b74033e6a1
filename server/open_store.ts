// Chooses the Store for a `--db` value. Opens nothing itself beyond what the store's
// constructor does (SQLite opens its file; PostgreSQL connects on first query).
import { MemoryStore } from "./memory_store.ts";
import { PostgresStore } from "./postgres_store.ts";
import { SqliteStore } from "./sqlite_store.ts";
import { WorkerBatchWriter } from "./sqlite_writer.ts";
import type { Store } from "./store.ts";

/**
 * Opens the index store named by `db`.
 *
 * @param db a `postgres://` or `postgresql://` URL (a PostgresStore several servers may
 *   share), else an SQLite file path or ":memory:": the catalogue of one server, held in
 *   memory and persisted to that SQLite database (a MemoryStore)
 * @returns the store, not yet migrated: call `migrate()` before use
 */
export function openStore(db: string): Store {
  if (/^postgres(ql)?:\/\//i.test(db)) return new PostgresStore(db);
  const sqlite = new SqliteStore(db);
  // A database file gets a writer thread of its own; an in-memory one exists only here.
  if (db === ":memory:") return new MemoryStore(sqlite);
  return new MemoryStore(sqlite, () => new WorkerBatchWriter(db));
}
