// Chooses the Store for a `--db` value. Opens nothing itself beyond what the store's
// constructor does (SQLite opens its file; PostgreSQL connects on first query).
import { PostgresStore } from "./postgres_store.ts";
import { SqliteStore } from "./sqlite_store.ts";
import type { Store } from "./store.ts";

/**
 * Opens the index store named by `db`.
 *
 * @param db a `postgres://` or `postgresql://` URL (a PostgresStore several servers may
 *   share), else an SQLite file path or ":memory:" (a SqliteStore owned by one server)
 * @returns the store, not yet migrated: call `migrate()` before use
 */
export function openStore(db: string): Store {
  if (/^postgres(ql)?:\/\//i.test(db)) return new PostgresStore(db);
  return new SqliteStore(db);
}
