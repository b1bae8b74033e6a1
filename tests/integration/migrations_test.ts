// Schema migrations of both stores: from empty to current, idempotent, and from every earlier
// version with data in it. Written over the MIGRATIONS arrays, so new steps are covered as added.
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { POSTGRES_MIGRATIONS, PostgresStore } from "../../server/postgres_store.ts";
import { SQLITE_MIGRATIONS, SqliteStore } from "../../server/sqlite_store.ts";
import type { Store } from "../../server/store.ts";
import type { CatalogEntry, FileEntry } from "../../shared/protocol.ts";
import { PG_URL, pgStep, tempSchema } from "../_pg.ts";

/** A Store that can say its schema version, as both stores can. */
type VersionedStore = Store & { schemaVersion(): number | Promise<number> };

/** An empty database, reachable both raw (SQL) and through its Store; removed on dispose. */
interface RawDatabase extends AsyncDisposable {
  /** Runs statements outside the store, as an older server version would have. */
  exec(sql: string): Promise<void>;
  /** Rows of schema_version, ascending. */
  versions(): Promise<number[]>;
  /** A new store on this database (the caller closes it). */
  openStore(): VersionedStore;
}

interface Dialect {
  migrations: readonly string[];
  create(): Promise<RawDatabase>;
}

const SQLITE: Dialect = {
  migrations: SQLITE_MIGRATIONS,
  async create() {
    const dir = await Deno.makeTempDir({ prefix: "lanshare_migrate_" });
    const path = `${dir}/index.db`;
    const db = new DatabaseSync(path);
    return {
      exec: (sql) => Promise.resolve(db.exec(sql)),
      versions: () =>
        Promise.resolve(
          (db.prepare("SELECT version FROM schema_version ORDER BY version").all() as {
            version: number;
          }[]).map((row) => row.version),
        ),
      openStore: () => new SqliteStore(path),
      async [Symbol.asyncDispose]() {
        db.close();
        await Deno.remove(dir, { recursive: true });
      },
    };
  },
};

const POSTGRES: Dialect = {
  migrations: POSTGRES_MIGRATIONS,
  async create() {
    const schema = await tempSchema();
    return {
      exec: async (sql) => {
        await schema.sql.unsafe(sql);
      },
      versions: async () =>
        (await schema.sql<{ version: number }[]>`
          SELECT version FROM schema_version ORDER BY version`).map((row) => row.version),
      openStore: () => new PostgresStore(PG_URL, { schema: schema.name }),
      [Symbol.asyncDispose]: () => schema[Symbol.asyncDispose](),
    };
  },
};

const NOW = 1_700_000_000_000;
const LEASE = NOW + 60_000;

/**
 * Rows written with the version-1 schema. Released steps never change, so this SQL stays valid
 * for a version-1 database forever; TRUE/FALSE work in both SQLite and PostgreSQL.
 */
const V1_ROWS = `
  INSERT INTO sessions (session_id, server_id, hostname, address, port, opened_at_ms, online,
    lease_until_ms) VALUES
    ('s-live', 'srv', 'alpha', '10.0.0.1', 4000, ${NOW}, TRUE, ${LEASE}),
    ('s-off', 'srv', 'beta', '10.0.0.2', 4001, ${NOW}, FALSE, ${LEASE});
  INSERT INTO entries (session_id, fname, size, mtime_ms, root_hash, piece_size, have) VALUES
    ('s-live', 'a.txt', ${2 ** 40}, ${NOW}, 'r1', ${2 ** 31}, NULL),
    ('s-live', 'b.txt', 10, ${NOW}, 'r2', 1024, '/w=='),
    ('s-off', 'c.txt', 20, ${NOW}, 'r3', 1024, NULL);`;

const A: FileEntry = {
  fname: "a.txt",
  size: 2 ** 40,
  mtimeMs: NOW,
  rootHash: "r1",
  pieceSize: 2 ** 31,
};
const B: FileEntry = {
  fname: "b.txt",
  size: 10,
  mtimeMs: NOW,
  rootHash: "r2",
  pieceSize: 1024,
  have: "/w==",
};
const C: FileEntry = { fname: "c.txt", size: 20, mtimeMs: NOW, rootHash: "r3", pieceSize: 1024 };

/** Asserts the V1_ROWS are all there, read through the current store. */
async function assertV1Rows(store: Store): Promise<void> {
  assert.deepEqual(await store.sessions(undefined, NOW), [
    {
      sessionId: "s-live",
      serverId: "srv",
      hostname: "alpha",
      address: "10.0.0.1",
      port: 4000,
      openedAtMs: NOW,
    },
  ]);
  assert.deepEqual(await store.entriesOf("s-live"), [A, B]);
  assert.deepEqual(await store.entriesOf("s-off"), [C]);
  const all = await store.search("", { offset: 0, limit: 10, includeOffline: true }, NOW);
  const expected: CatalogEntry[] = [
    { ...A, hostname: "alpha", port: 4000, online: true },
    { ...B, hostname: "alpha", port: 4000, online: true },
    { ...C, hostname: "beta", port: 4001, online: false },
  ];
  assert.deepEqual(all, { entries: expected, total: 3 });
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

async function migrationContract(t: Deno.TestContext, dialect: Dialect): Promise<void> {
  const current = dialect.migrations.length;

  await t.step("migrate() brings an empty database to the current version, once", async () => {
    await using db = await dialect.create();
    const store = db.openStore();
    try {
      assert.equal(await store.schemaVersion(), 0);
      await store.migrate();
      assert.equal(await store.schemaVersion(), current);
      assert.deepEqual(await db.versions(), range(1, current + 1));
      await store.migrate();
      assert.deepEqual(await db.versions(), range(1, current + 1));
      assert.deepEqual(await store.counts(NOW), { sessions: 0, entries: 0 });
    } finally {
      await store.close();
    }
  });

  // From version k for every k in 1..current: k = current - 1 is the usual upgrade, k = current
  // checks that a database already current is left alone (the only case while current is 1).
  for (const from of range(1, current + 1)) {
    await t.step(`migrate() from version ${from} to ${current} keeps the rows`, async () => {
      await using db = await dialect.create();
      await db.exec(dialect.migrations[0]!);
      await db.exec(V1_ROWS);
      for (const version of range(1, from)) await db.exec(dialect.migrations[version]!);
      await db.exec("CREATE TABLE schema_version (version INTEGER NOT NULL)");
      await db.exec(
        `INSERT INTO schema_version (version) VALUES ${
          range(1, from + 1).map((v) => `(${v})`).join(", ")
        }`,
      );
      const store = db.openStore();
      try {
        assert.equal(await store.schemaVersion(), from);
        await store.migrate();
        assert.equal(await store.schemaVersion(), current);
        assert.deepEqual(await db.versions(), range(1, current + 1));
        await assertV1Rows(store);
      } finally {
        await store.close();
      }
    });
  }
}

Deno.test({
  name: "Store migrations",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t) {
    await t.step("sqlite", (t) => migrationContract(t, SQLITE));
    await pgStep(t, (t) => migrationContract(t, POSTGRES));
  },
});

Deno.test({
  name: "PostgresStore.migrate() on servers starting together applies each step once",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t) {
    await pgStep(t, async () => {
      await using db = await POSTGRES.create();
      const stores = [db.openStore(), db.openStore(), db.openStore()];
      try {
        await Promise.all(stores.map((store) => store.migrate()));
        assert.deepEqual(await db.versions(), range(1, POSTGRES_MIGRATIONS.length + 1));
      } finally {
        await Promise.all(stores.map((store) => store.close()));
      }
    });
  },
});
