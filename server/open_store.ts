// Chooses the Store for a `--db` value. Opens nothing itself beyond what the store's
// constructor does (SQLite opens its file; PostgreSQL connects on first query).
import { MemoryStore } from "./memory_store.ts";
import { PostgresStore } from "./postgres_store.ts";
import { SqliteStore } from "./sqlite_store.ts";
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
  return new MemoryStore(new SqliteStore(db));
}
