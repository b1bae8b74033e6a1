// The index's TCP accept loop: admits each new connection under the caps (admission.ts) and
// hands it to the session code, or tells it why not and closes it; keeps accepting through
// passing failures such as running out of file descriptors. Knows nothing of the catalogue.
import { encodeMessage, reply } from "../shared/encode.ts";
import { writeAll } from "../shared/framing.ts";
import { logger } from "../shared/log.ts";
import { MsgType } from "../shared/protocol.ts";
import { settleWithin } from "../shared/timeout.ts";
import { type Admission, type Admitted, isRefusal, type Refusal } from "./admission.ts";
import type { RefusalLog } from "./refusal_log.ts";

const log = logger("server", "listener");

/** How long a refused connection is kept to receive why (it holds no slot meanwhile), ms. */
const REFUSAL_LINGER_MS = 500;
/** After a failed accept (e.g. no file descriptor left), the next try waits this long, ms. */
const ACCEPT_RETRY_MS = 50;
/** At most one log line per this long while accepts keep failing, ms. */
const ACCEPT_FAILURE_LOG_MS = 5000;

/** What the accept loop works with. */
export interface AcceptOptions {
  admission: Admission;
  refusals: RefusalLog;
  /** Runs an admitted connection to its end; never rejects. */
  serve(conn: Deno.Conn, admitted: Admitted): Promise<void>;
  /** Every connection being served or refused, for the server's close() to end them all. */
  connections: Map<Deno.Conn, Promise<void>>;
}

/**
 * Accepts connections until `listener` is closed. Resolves then; never rejects.
 */
export async function acceptConnections(
  listener: Deno.Listener<Deno.Conn>,
  options: AcceptOptions,
): Promise<void> {
  let failureLoggedMs = -Infinity;
  for (;;) {
    let conn: Deno.Conn;
    try {
      conn = await listener.accept();
    } catch (err) {
      if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) return;
      // Out of file descriptors, typically (more connections than `ulimit -n`): the listener
      // works again as soon as some close, so wait a moment rather than give up for good.
      if (Date.now() - failureLoggedMs >= ACCEPT_FAILURE_LOG_MS) {
        failureLoggedMs = Date.now();
        log.error("Cannot accept connections: {error}; retrying (raise the open-files limit)", {
          error: err instanceof Error ? err.message : String(err),
        });
      }
      await new Promise((resolve) => setTimeout(resolve, ACCEPT_RETRY_MS));
      continue;
    }
    const admitted = options.admission.admit((conn.remoteAddr as Deno.NetAddr).hostname);
    let task: Promise<void>;
    if (isRefusal(admitted)) {
      options.refusals.refused(admitted, (conn.remoteAddr as Deno.NetAddr).hostname);
      task = refuse(conn, admitted);
    } else {
      task = options.serve(conn, admitted);
    }
    options.connections.set(conn, task);
    void task.finally(() => options.connections.delete(conn));
  }
}

/** Tells a connection over a cap why it is refused (Error `busy`), and closes it. Never rejects. */
async function refuse(conn: Deno.Conn, refusal: Refusal): Promise<void> {
  const notice = encodeMessage(reply(MsgType.Error, 0, { code: "busy", message: refusal.message }));
  // The client may have sent its Hello already, and closing with unread bytes resets the
  // connection, which can destroy the notice before the client reads it. So: write it, close
  // our side, and drop what comes until the client closes too, for REFUSAL_LINGER_MS at most.
  const told = (async () => {
    await writeAll(conn, notice);
    await conn.closeWrite();
    const sink = new Uint8Array(1024);
    while (await conn.read(sink) !== null);
  })();
  if (!await settleWithin(told, REFUSAL_LINGER_MS)) {
    log.debug("Refused {address} did not close within {ms} ms", {
      address: (conn.remoteAddr as Deno.NetAddr).hostname,
      ms: REFUSAL_LINGER_MS,
    });
  }
  try {
    conn.close();
  } catch (err) {
    // Closed already by the server's close(); anything else is worth a line, not a crash.
    if (!(err instanceof Deno.errors.BadResource)) {
      log.warn("Cannot close a refused connection: {error}", { error: String(err) });
    }
  }
}
