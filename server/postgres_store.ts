// Store backed by PostgreSQL (npm:postgres, pooled), so that several index servers share one
// catalogue. Same semantics as SqliteStore; every driver error becomes "Cannot <action>: ...".
import postgres from "postgres";
import { logger } from "../shared/log.ts";
import { sharesDigest } from "../shared/shares_digest.ts";
import type { CatalogEntry, FileEntry, SourceInfo } from "../shared/protocol.ts";
import {
  type EntrySqlRow,
  type SessionSqlColumns,
  toEntry,
  toSession,
  toSource,
  withId,
} from "./sql_rows.ts";
import {
  ConflictError,
  conflictError,
  type DeviceStatus,
  EntryLimitError,
  likePattern,
  mayResume,
  mayTakeOver,
  type PublishOptions,
  type PublishOutcome,
  publishOutcome,
  type Registration,
  type SearchOptions,
  type SearchPage,
  type SessionRow,
  type Store,
  UnknownSessionError,
} from "./store.ts";

/**
 * Schema migrations, applied in order; index i brings the database to version i + 1.
 * Never edit a released step: append a new one.
 *
 * Times and sizes are BIGINT (ms since the epoch and file sizes pass 2^31; piece sizes reach
 * 2^31). The driver returns BIGINT as text, converted back with `Number()` (all values are
 * below 2^53). `fname` and `hostname` use the "C" collation: byte order, as SQLite's BINARY, so
 * both stores sort (and page) alike whatever the database locale, and ILIKE folds ASCII case
 * only, as SQLite's LIKE does.
 */
export const POSTGRES_MIGRATIONS: readonly string[] = [
  `CREATE TABLE sessions (
     session_id     TEXT PRIMARY KEY,
     server_id      TEXT NOT NULL,
     hostname       TEXT COLLATE "C" NOT NULL,
     address        TEXT NOT NULL,
     port           INTEGER NOT NULL,
     opened_at_ms   BIGINT NOT NULL,
     online         BOOLEAN NOT NULL,
     lease_until_ms BIGINT NOT NULL,
     -- One session per {hostname, P2P port}. Its index also serves openSession's takeover,
     -- sessions(hostname) and the ORDER BY hostname, port of whoHas.
     UNIQUE (hostname, port)
   );
   -- Heartbeats (renewLeases) and markOffline({serverId}) touch the live sessions of one
   -- server; partial, because offline rows are never looked up by server.
   CREATE INDEX sessions_by_server ON sessions (server_id) WHERE online;
   -- Every server start runs markOffline({leaseEndedBeforeMs}) to find sessions of servers
   -- that died; without this it scans every session of every server.
   CREATE INDEX sessions_by_lease ON sessions (lease_until_ms) WHERE online;
   CREATE TABLE entries (
     session_id TEXT NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
     fname      TEXT COLLATE "C" NOT NULL,
     size       BIGINT NOT NULL,
     mtime_ms   BIGINT NOT NULL,
     root_hash  TEXT NOT NULL,
     piece_size BIGINT NOT NULL,
     have       TEXT,            -- base64 bitfield of a partial source, NULL when complete
     -- publish upserts on it; its leading session_id serves entriesOf and the cascade delete.
     PRIMARY KEY (session_id, fname)
   );
   -- whoHas looks up an exact fname; search walks it in ORDER BY fname order and stops after
   -- offset + limit matches (a leading-% ILIKE cannot seek; pg_trgm would, if ever needed).
   CREATE INDEX entries_by_fname ON entries (fname);`,
  // v2: heartbeats renew every session of their server, offline ones included (to bring back
  // sessions another server marked offline during a stall), so the index covers all rows.
  `DROP INDEX sessions_by_server;
   CREATE INDEX sessions_by_server ON sessions (server_id);`,
  // v3, protocol 2: sessions belong to the device that proved its ID; the operator's
  // decisions about devices (--join approve, revoke) are shared by every server.
  `ALTER TABLE sessions ADD COLUMN device_id TEXT;
   ALTER TABLE sessions ADD COLUMN cert TEXT;
   ALTER TABLE entries ADD COLUMN sig TEXT;  -- the publisher's signature, kept unverified
   CREATE TABLE devices (
     device_id TEXT PRIMARY KEY,
     -- 'index': a server of this catalogue, whose tickets the peers of every server accept
     status    TEXT NOT NULL CHECK (status IN ('approved', 'revoked', 'index'))
   );`,
  // v4: a peer back after a restart with the same published set resumes its offline session
  // (registerSession()): the session row takes the new session's id, and its entries follow.
  `ALTER TABLE entries DROP CONSTRAINT entries_session_id_fkey;
   ALTER TABLE entries ADD CONSTRAINT entries_session_id_fkey FOREIGN KEY (session_id)
     REFERENCES sessions (session_id) ON DELETE CASCADE ON UPDATE CASCADE;`,
];

const log = logger("server", "postgres");
/** SQLSTATE of a row naming a parent that is not there: an entry of a session that ended. */
const FOREIGN_KEY_VIOLATION = "23503";

/** Publishes between two ANALYZE runs of the catalogue tables. */
const ANALYZE_EVERY_PUBLISHES = 50_000;

/** Options for `PostgresStore`. */
export interface PostgresStoreOptions {
  /**
   * Schema holding the tables (sets `search_path`); must exist. Lets tests isolate runs.
   * @default the server's search_path (normally "public")
   */
  schema?: string;
  /** Most pooled connections. @default 10 */
  maxConnections?: number;
}

interface SessionSqlRow extends SessionSqlColumns {
  /** BIGINT, as text. */
  opened_at_ms: string;
  online: boolean;
  /** BIGINT, as text. */
  lease_until_ms: string;
}

function describe(err: unknown): string {
  if (err instanceof postgres.PostgresError) {
    const detail = err.detail ? ` (${err.detail})` : "";
    return `${err.message}${detail} [SQLSTATE ${err.code}]`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** `url` with its password hidden, for messages. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.href;
  } catch {
    return "(unparsable URL)";
  }
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A Store in a PostgreSQL database, shared by every index server pointed at it. */
export class PostgresStore implements Store {
  /** Several servers may use the same database at once. */
  readonly shared = true;
  readonly #sql: postgres.Sql;
  #publishesSinceAnalyze = 0;

  /**
   * Creates the pool; connections open on first use.
   *
   * @param url `postgres://user[:password]@host[:port]/database`; other connection parameters
   *   may follow as a query (`?search_path=lanshare_a` overrides `options.schema`)
   */
  constructor(url: string, options: PostgresStoreOptions = {}) {
    const connection: Record<string, string> = { application_name: "lanshare-index" };
    if (options.schema !== undefined) connection.search_path = quoteIdent(options.schema);
    try {
      this.#sql = postgres(url, {
        max: options.maxConnections ?? 10,
        connection,
        // Notices (e.g. "relation already exists, skipping") are not errors; the driver would
        // print them to the console.
        onnotice: () => {},
      });
    } catch (err) {
      // e.g. NotCapable: the driver reads PG* environment variables (--allow-env=PG*).
      throw new Error(`Cannot open database "${redact(url)}": ${describe(err)}`, { cause: err });
    }
  }

  #analyze(): Promise<void> {
    return this.#run("refresh statistics", async (sql) => {
      await sql`ANALYZE sessions, entries`;
    });
  }

  async #run<T>(action: string, fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
    try {
      return await fn(this.#sql);
    } catch (err) {
      // A rule of the catalogue, not a database failure: the caller answers it as such.
      if (
        err instanceof EntryLimitError || err instanceof ConflictError ||
        err instanceof UnknownSessionError
      ) throw err;
      throw new Error(`Cannot ${action}: ${describe(err)}`, { cause: err });
    }
  }

  clockMs(): Promise<number> {
    return this.#run("read the database clock", async (sql) => {
      const [row] = await sql<{ ms: number }[]>`
        SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS ms`;
      return row!.ms;
    });
  }

  /** The schema version the database is at (0 when empty). */
  schemaVersion(): Promise<number> {
    return this.#run("read schema version", async (sql) => {
      const [table] = await sql<{ present: boolean }[]>`
        SELECT to_regclass('schema_version') IS NOT NULL AS present`;
      if (!table?.present) return 0;
      const [max] = await sql<{ v: number | null }[]>`SELECT max(version) AS v FROM schema_version`;
      return max?.v ?? 0;
    });
  }

  async migrate(): Promise<void> {
    await this.#run("migrate database", (sql) =>
      sql.begin(async (tx) => {
        // Servers starting together would both see version 0 and both create the tables: the
        // lock (held until commit) makes the second wait and then find the current version.
        // Keyed by schema so isolated test schemas do not wait for each other.
        await tx`SELECT pg_advisory_xact_lock(
          hashtextextended('lanshare.migrate.' || coalesce(current_schema(), ''), 0))`;
        await tx`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`;
        const [row] = await tx<{ v: number | null }[]>`
          SELECT max(version) AS v FROM schema_version`;
        for (let version = row?.v ?? 0; version < POSTGRES_MIGRATIONS.length; version++) {
          await tx.unsafe(POSTGRES_MIGRATIONS[version]!);
          await tx`INSERT INTO schema_version (version) VALUES (${version + 1})`;
        }
      }));
    // Fresh statistics: without them the planner walks every session per who-has (34 ms
    // instead of 0.08 ms at a million entries, measured by the index benchmark).
    await this.#analyze();
  }

  registerSession(
    session: SessionRow,
    leaseUntilMs: number,
    digest?: string,
  ): Promise<Registration> {
    return this.#run(
      `register session for "${session.hostname}:${session.port}"`,
      (sql) => sql.begin((tx) => this.#register(tx, session, leaseUntilMs, digest)),
    );
  }

  /** registerSession() in the transaction `tx`: one lock of the pair, one read of its row. */
  async #register(
    tx: postgres.TransactionSql,
    session: SessionRow,
    leaseUntilMs: number,
    digest: string | undefined,
  ): Promise<Registration> {
    const pair = `lanshare.pair.${session.hostname}:${session.port}`;
    // Two servers taking over one pair at once would both delete nothing and the second insert
    // would violate UNIQUE (hostname, port). Serialised, the second sees and replaces (or
    // resumes) the first.
    await tx`SELECT pg_advisory_xact_lock(hashtextextended(${pair}, 0))`;
    // FOR UPDATE: what is decided on (online or not) stays so until commit, whatever a
    // heartbeat or markOffline() of another server does meanwhile.
    const [found] = await tx<SessionSqlRow[]>`
      SELECT * FROM sessions WHERE hostname = ${session.hostname} AND port = ${session.port}
      FOR UPDATE`;
    const old = found && toSession(found);
    const replaced = found?.online ? old : undefined;
    if (old && digest !== undefined && mayResume(old, session.deviceId)) {
      const entries = await tx<EntrySqlRow[]>`
        SELECT fname, size, mtime_ms, root_hash, piece_size, have, sig
        FROM entries WHERE session_id = ${old.sessionId}`;
      if (sharesDigest(entries.map(toEntry)) === digest) {
        await tx`
          DELETE FROM sessions WHERE hostname = ${session.hostname} AND NOT online
            AND session_id <> ${old.sessionId}`;
        // ON UPDATE CASCADE (migration v4) moves the entries to the new id.
        await tx`
          UPDATE sessions SET session_id = ${session.sessionId}, server_id = ${session.serverId},
            address = ${session.address}, opened_at_ms = ${session.openedAtMs}, online = true,
            lease_until_ms = ${leaseUntilMs}, device_id = ${session.deviceId ?? null},
            cert = ${session.cert ?? null}
          WHERE session_id = ${old.sessionId}`;
        return { replaced, kept: true };
      }
    }
    // Thrown before any write, and the transaction rolls back: the owner and its entries stay.
    if (old && !mayTakeOver(old, found.online, session.deviceId)) {
      throw conflictError(session, old);
    }
    // The pair's old session (its entries cascade), and the offline sessions of this hostname
    // on other ports: the peer came back elsewhere.
    await tx`
      DELETE FROM sessions WHERE hostname = ${session.hostname}
        AND (port = ${session.port} OR NOT online)`;
    await tx`
      INSERT INTO sessions (session_id, server_id, hostname, address, port, opened_at_ms, online,
        lease_until_ms, device_id, cert)
      VALUES (${session.sessionId}, ${session.serverId}, ${session.hostname},
        ${session.address}, ${session.port}, ${session.openedAtMs}, true, ${leaseUntilMs},
        ${session.deviceId ?? null}, ${session.cert ?? null})`;
    return { replaced, kept: false };
  }

  deviceStatuses(): Promise<Map<string, DeviceStatus>> {
    return this.#run("read device decisions", async (sql) => {
      const rows = await sql<{ device_id: string; status: DeviceStatus }[]>`
        SELECT device_id, status FROM devices`;
      return new Map(rows.map((row) => [row.device_id, row.status]));
    });
  }

  setDeviceStatus(deviceId: string, status: DeviceStatus): Promise<void> {
    return this.#run(`record device ${deviceId} as ${status}`, async (sql) => {
      await sql`
        INSERT INTO devices (device_id, status) VALUES (${deviceId}, ${status})
        ON CONFLICT (device_id) DO UPDATE SET status = excluded.status`;
    });
  }

  closeSession(sessionId: string): Promise<void> {
    return this.#run(`close session "${sessionId}"`, async (sql) => {
      await sql`DELETE FROM sessions WHERE session_id = ${sessionId}`;
    });
  }

  renewLeases(serverId: string, held: readonly string[], leaseUntilMs: number): Promise<string[]> {
    return this.#run(`renew leases of server "${serverId}"`, async (sql) => {
      const rows = await sql<{ session_id: string }[]>`
        UPDATE sessions SET lease_until_ms = ${leaseUntilMs}, online = true
        WHERE server_id = ${serverId} RETURNING session_id`;
      const present = new Set(rows.map((r) => r.session_id));
      return held.filter((id) => !present.has(id));
    });
  }

  dropOffline(beforeMs: number): Promise<number> {
    return this.#run("drop offline sessions", async (sql) => {
      const result = await sql`
        DELETE FROM sessions WHERE NOT online AND lease_until_ms < ${beforeMs}`;
      return result.count;
    });
  }

  markOffline(filter: { serverId?: string; leaseEndedBeforeMs?: number }): Promise<number> {
    return this.#run("mark sessions offline", async (sql) => {
      const byServer = filter.serverId === undefined
        ? sql``
        : sql`AND server_id = ${filter.serverId}`;
      const byLease = filter.leaseEndedBeforeMs === undefined
        ? sql``
        : sql`AND lease_until_ms < ${filter.leaseEndedBeforeMs}`;
      const result = await sql`
        UPDATE sessions SET online = false WHERE online ${byServer} ${byLease}`;
      return result.count;
    });
  }

  publish(sessionId: string, entry: FileEntry, options: PublishOptions): Promise<PublishOutcome> {
    // Re-plan as the catalogue grows: a bulk of publishes makes old statistics misleading.
    if (++this.#publishesSinceAnalyze >= ANALYZE_EVERY_PUBLISHES) {
      this.#publishesSinceAnalyze = 0;
      this.#analyze().catch((err) =>
        log.warn("Cannot refresh statistics: {error}", { error: String(err) })
      );
    }
    return this.#run(
      `publish "${entry.fname}"`,
      (sql) =>
        sql.begin((tx) => this.#publish(tx, sessionId, entry, options)).catch((err) => {
          // The session ended (or a newer Hello replaced it) while this publish was on its way:
          // the peer's request is too late, not a database failure (Store.publish()).
          if (err instanceof postgres.PostgresError && err.code === FOREIGN_KEY_VIOLATION) {
            throw new UnknownSessionError(
              `Cannot publish "${entry.fname}": no session ${sessionId}`,
            );
          }
          throw err;
        }),
    );
  }

  /** publish() in the transaction `tx`. */
  async #publish(
    tx: postgres.TransactionSql,
    sessionId: string,
    entry: FileEntry,
    options: PublishOptions,
  ): Promise<PublishOutcome> {
    // A server handles one session's requests one at a time over this store, so nothing
    // else writes this session's rows between the read and the write.
    const [old] = await tx<{ root_hash: string }[]>`
      SELECT root_hash FROM entries WHERE session_id = ${sessionId} AND fname = ${entry.fname}`;
    if (old === undefined) {
      const [held] = await tx<{ n: string }[]>`
        SELECT count(*) AS n FROM entries WHERE session_id = ${sessionId}`;
      const count = Number(held?.n ?? 0);
      if (count >= options.maxEntries) {
        throw new EntryLimitError(
          `Cannot publish "${entry.fname}": this session already publishes ${count} files, the limit`,
          options.maxEntries,
        );
      }
    }
    // One statement, so concurrent publishes of one entry cannot both insert. The WHERE
    // skips identical rows (no row returned: unchanged); xmax is 0 only on a fresh insert.
    const rows = await tx<{ created: boolean }[]>`
      INSERT INTO entries (session_id, fname, size, mtime_ms, root_hash, piece_size, have,
        sig)
      VALUES (${sessionId}, ${entry.fname}, ${entry.size}, ${entry.mtimeMs},
        ${entry.rootHash}, ${entry.pieceSize}, ${entry.have ?? null}, ${entry.sig ?? null})
      ON CONFLICT (session_id, fname) DO UPDATE SET
        size = excluded.size, mtime_ms = excluded.mtime_ms, root_hash = excluded.root_hash,
        piece_size = excluded.piece_size, have = excluded.have, sig = excluded.sig
      WHERE (entries.size, entries.mtime_ms, entries.root_hash, entries.piece_size,
          entries.have, entries.sig)
        IS DISTINCT FROM
        (excluded.size, excluded.mtime_ms, excluded.root_hash, excluded.piece_size,
          excluded.have, excluded.sig)
      RETURNING xmax = 0 AS created`;
    const [row] = rows;
    const change = row === undefined ? "unchanged" : row.created ? "created" : "updated";
    const [other] = await tx<{ root_hash: string }[]>`
      SELECT e.root_hash FROM entries e JOIN sessions s ON s.session_id = e.session_id
      WHERE e.fname = ${entry.fname} AND e.session_id <> ${sessionId}
        AND e.root_hash <> ${entry.rootHash} AND s.online
        AND s.lease_until_ms > ${options.nowMs}
      ORDER BY s.hostname, s.port LIMIT 1`;
    return publishOutcome(change, entry, {
      previousRootHash: old?.root_hash,
      conflictRootHash: other?.root_hash,
    });
  }

  unpublish(sessionId: string, fname: string): Promise<boolean> {
    return this.#run(`unpublish "${fname}"`, async (sql) => {
      const result = await sql`
        DELETE FROM entries WHERE session_id = ${sessionId} AND fname = ${fname}`;
      return result.count > 0;
    });
  }

  whoHas(fname: string, excludeSessionId: string, nowMs: number): Promise<SourceInfo[]> {
    return this.#run(`look up "${fname}"`, async (sql) => {
      const rows = await sql<(EntrySqlRow & SessionSqlRow)[]>`
        SELECT e.fname, e.size, e.mtime_ms, e.root_hash, e.piece_size, e.have, e.sig,
          s.hostname, s.address, s.port, s.device_id
        FROM entries e JOIN sessions s ON s.session_id = e.session_id
        WHERE e.fname = ${fname} AND s.online AND s.lease_until_ms > ${nowMs}
          AND s.session_id <> ${excludeSessionId}
        ORDER BY s.hostname, s.port`;
      return rows.flatMap((row) => toSource(row) ?? []);
    });
  }

  search(pattern: string, options: SearchOptions, nowMs: number): Promise<SearchPage> {
    return this.#run(`search "${pattern}"`, (sql) =>
      // One snapshot for the count and the page, so `total` matches the rows.
      sql.begin("isolation level repeatable read read only", async (tx) => {
        const live = options.includeOffline
          ? tx``
          : tx`AND s.online AND s.lease_until_ms > ${nowMs}`;
        const where = tx`e.fname ILIKE ${likePattern(pattern)} ESCAPE '\\' ${live}`;
        const [count] = await tx<{ n: string }[]>`
          SELECT count(*) AS n
          FROM entries e JOIN sessions s ON s.session_id = e.session_id WHERE ${where}`;
        const rows = await tx<(EntrySqlRow & SessionSqlRow)[]>`
          SELECT e.fname, e.size, e.mtime_ms, e.root_hash, e.piece_size, e.have, e.sig,
            s.hostname, s.port, s.online, s.lease_until_ms, s.device_id
          FROM entries e JOIN sessions s ON s.session_id = e.session_id WHERE ${where}
          ORDER BY e.fname, s.hostname, s.port LIMIT ${options.limit} OFFSET ${options.offset}`;
        const entries: CatalogEntry[] = rows.map((row) =>
          withId({
            ...toEntry(row),
            hostname: row.hostname,
            port: row.port,
            online: row.online && Number(row.lease_until_ms) > nowMs,
          }, row.device_id)
        );
        return { entries, total: Number(count?.n ?? 0) };
      }));
  }

  sessions(hostname: string | undefined, nowMs: number): Promise<SessionRow[]> {
    return this.#run("list sessions", async (sql) => {
      const rows = hostname === undefined
        ? await sql<SessionSqlRow[]>`
          SELECT * FROM sessions WHERE online AND lease_until_ms > ${nowMs}
          ORDER BY hostname, port`
        : await sql<SessionSqlRow[]>`
          SELECT * FROM sessions
          WHERE hostname = ${hostname} AND online AND lease_until_ms > ${nowMs}
          ORDER BY port`;
      return rows.map(toSession);
    });
  }

  entriesOf(sessionId: string): Promise<FileEntry[]> {
    return this.#run(`list entries of session "${sessionId}"`, async (sql) => {
      const rows = await sql<EntrySqlRow[]>`
        SELECT fname, size, mtime_ms, root_hash, piece_size, have, sig
        FROM entries WHERE session_id = ${sessionId} ORDER BY fname`;
      return rows.map(toEntry);
    });
  }

  counts(nowMs: number): Promise<{ sessions: number; entries: number }> {
    return this.#run("count sessions and entries", async (sql) => {
      const [row] = await sql<{ sessions: string; entries: string }[]>`
        SELECT
          (SELECT count(*) FROM sessions WHERE online AND lease_until_ms > ${nowMs}) AS sessions,
          (SELECT count(*) FROM entries) AS entries`;
      return { sessions: Number(row?.sessions ?? 0), entries: Number(row?.entries ?? 0) };
    });
  }

  /** Waits for running queries, then closes every pooled connection (and its timers). */
  close(): Promise<void> {
    return this.#run("close database", (sql) => sql.end());
  }
}
