// PostgreSQL fixtures for integration tests: a throwaway schema per run, and the one rule for
// an unreachable server: the "postgres" step fails under CI=true and is skipped (visibly) else.
import postgres from "postgres";

/** Database the tests use; each run works in its own schema. */
export const PG_URL = Deno.env.get("PG_URL") ?? "postgres://postgres@127.0.0.1:5432/test";

/** `PG_URL` with any password hidden, for messages. */
export function redactedPgUrl(): string {
  try {
    const url = new URL(PG_URL);
    if (url.password !== "") url.password = "***";
    return url.href;
  } catch {
    return "(unparsable PG_URL)";
  }
}

let probe: Promise<string | undefined> | undefined;

/** Why PostgreSQL cannot be used, or undefined when it answers. Asked once per test file. */
export function pgUnavailable(): Promise<string | undefined> {
  return probe ??= (async () => {
    const sql = postgres(PG_URL, { max: 1, connect_timeout: 3, onnotice: () => {} });
    try {
      await sql`SELECT 1`;
      return undefined;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    } finally {
      await sql.end();
    }
  })();
}

/** A schema created for one test run and dropped, with everything in it, on dispose. */
export interface TempSchema extends AsyncDisposable {
  name: string;
  /** A connection whose search_path is the schema. */
  sql: postgres.Sql;
}

/** Creates a schema with a random name (`lanshare_test_<hex>`). */
export async function tempSchema(): Promise<TempSchema> {
  const name = `lanshare_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const sql = postgres(PG_URL, {
    max: 1,
    onnotice: () => {},
    connection: { search_path: name },
  });
  try {
    await sql.unsafe(`CREATE SCHEMA ${name}`);
  } catch (err) {
    await sql.end();
    throw err;
  }
  return {
    name,
    sql,
    async [Symbol.asyncDispose]() {
      try {
        await sql.unsafe(`DROP SCHEMA ${name} CASCADE`);
      } finally {
        await sql.end();
      }
    },
  };
}

/**
 * Adds the step "postgres" running `fn`. When PostgreSQL does not answer, the step fails if
 * env CI is "true", else it is reported as ignored after a console line giving the reason.
 */
export async function pgStep(
  t: Deno.TestContext,
  fn: (t: Deno.TestContext) => Promise<void>,
): Promise<void> {
  const reason = await pgUnavailable();
  if (reason !== undefined && Deno.env.get("CI") !== "true") {
    console.warn(
      `postgres step skipped: cannot reach ${redactedPgUrl()}: ${reason} ` +
        "(set PG_URL to a reachable database; under CI=true this fails)",
    );
    await t.step({ name: "postgres", ignore: true, fn() {} });
    return;
  }
  await t.step({
    name: "postgres",
    sanitizeOps: true,
    sanitizeResources: true,
    async fn(t) {
      if (reason !== undefined) {
        throw new Error(`Cannot reach PostgreSQL at ${redactedPgUrl()} (CI=true): ${reason}`);
      }
      await fn(t);
    },
  });
}

/**
 * A loopback relay to PostgreSQL that records what its clients have the server execute: the
 * wire is where a store's transactions can be counted whatever else uses the database.
 */
export interface StatementTap extends AsyncDisposable {
  /** `PG_URL` through the relay. */
  url: string;
  /**
   * The statements sent so far, oldest first: each simple query, and each bind of an
   * extended-protocol statement (a prepared statement runs without being parsed again).
   */
  statements: string[];
}

/** Starts a StatementTap on 127.0.0.1; dispose it after closing its clients. */
export function statementTap(): StatementTap {
  const target = new URL(PG_URL);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const statements: string[] = [];
  const open = new Set<Deno.Conn>();
  const relays: Promise<void>[] = [];
  const close = (conn: Deno.Conn) => {
    if (open.delete(conn)) conn.close();
  };
  const relay = async (client: Deno.Conn) => {
    open.add(client);
    try {
      const server = await Deno.connect({
        hostname: target.hostname,
        port: Number(target.port || 5432),
      });
      open.add(server);
      const messages = new FrontendMessages((text) => statements.push(text));
      await Promise.all([
        pump(client, server, (chunk) => messages.push(chunk)),
        pump(server, client),
      ]);
      close(server);
    } finally {
      close(client);
    }
  };
  const accepting = (async () => {
    try {
      for await (const client of listener) relays.push(relay(client));
    } catch (err) {
      // Closing the listener ends the loop; any other failure is the test's.
      if (!(err instanceof Deno.errors.BadResource)) throw err;
    }
  })();
  const url = new URL(PG_URL);
  url.hostname = "127.0.0.1";
  url.port = String((listener.addr as Deno.NetAddr).port);
  return {
    url: url.href,
    statements,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      // A client left open (a failed test) would hold its relay forever.
      for (const conn of [...open]) close(conn);
      await Promise.allSettled(relays);
    },
  };
}

/** Copies `from` to `to` until `from` ends or either side closes, then ends `to`'s writes. */
async function pump(
  from: Deno.Conn,
  to: Deno.Conn,
  tap: (chunk: Uint8Array) => void = () => {},
): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  try {
    for (let n = await from.read(buffer); n !== null; n = await from.read(buffer)) {
      const chunk = buffer.subarray(0, n);
      tap(chunk);
      for (let sent = 0; sent < n;) sent += await to.write(chunk.subarray(sent));
    }
    await to.closeWrite();
  } catch {
    // The other side (or the tap's dispose) closed a connection: nothing left to copy.
  }
}

/** Reads the messages a PostgreSQL client sends (protocol 3) and reports its statements. */
class FrontendMessages {
  #pending = new Uint8Array(0);
  /** The startup phase: messages without a type byte (SSLRequest, StartupMessage). */
  #startup = true;
  /** Parsed statements by name ("" is the unnamed one). */
  readonly #parsed = new Map<string, string>();
  readonly #onStatement: (text: string) => void;

  /** @param onStatement called with each statement the client has the server execute */
  constructor(onStatement: (text: string) => void) {
    this.#onStatement = onStatement;
  }

  /** Takes the next bytes of the stream. */
  push(chunk: Uint8Array): void {
    const joined = new Uint8Array(this.#pending.length + chunk.length);
    joined.set(this.#pending);
    joined.set(chunk, this.#pending.length);
    let at = 0;
    for (;;) {
      const header = this.#startup ? 4 : 5;
      if (joined.length - at < header) break;
      const view = new DataView(joined.buffer, joined.byteOffset + at);
      // The length counts itself but not the type byte.
      const size = this.#startup ? view.getInt32(0) : 1 + view.getInt32(1);
      if (joined.length - at < size) break;
      const message = joined.subarray(at, at + size);
      if (this.#startup) {
        // A StartupMessage names protocol 3.x; an SSLRequest is followed by another message.
        if (view.getInt32(4) >> 16 === 3) this.#startup = false;
      } else this.#read(String.fromCharCode(message[0]!), message.subarray(5));
      at += size;
    }
    this.#pending = joined.slice(at);
  }

  #read(type: string, body: Uint8Array): void {
    if (type === "Q") this.#onStatement(cString(body, 0)[0]);
    else if (type === "P") {
      const [name, next] = cString(body, 0);
      this.#parsed.set(name, cString(body, next)[0]);
    } else if (type === "B") {
      const [, next] = cString(body, 0); // the portal
      const name = cString(body, next)[0];
      this.#onStatement(this.#parsed.get(name) ?? `(statement "${name}" never parsed)`);
    }
  }
}

const decoder = new TextDecoder();

/** The NUL-terminated string at `at`, and the offset after its NUL. */
function cString(bytes: Uint8Array, at: number): [string, number] {
  const end = bytes.indexOf(0, at);
  return [decoder.decode(bytes.subarray(at, end)), end + 1];
}

/**
 * How many transactions `statements` (as a StatementTap records them) ran: each BEGIN ...
 * COMMIT/ROLLBACK block is one, and so is each statement outside a block.
 */
export function transactions(statements: readonly string[]): number {
  let count = 0;
  let inBlock = false;
  for (const statement of statements) {
    const verb = /^\s*(\w+)/.exec(statement)?.[1]?.toLowerCase();
    if (verb === "begin" || verb === "start") {
      count++;
      inBlock = true;
    } else if (verb === "commit" || verb === "rollback" || verb === "end") inBlock = false;
    else if (!inBlock) count++;
  }
  return count;
}
