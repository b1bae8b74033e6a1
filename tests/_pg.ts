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
