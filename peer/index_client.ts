// The peer's session with the index server: connect (given or discovered), say Hello, answer
// the server's pings and live listings, and reconnect with jittered backoff when it drops,
// publishing everything again.
import type { HostPort } from "../shared/cli.ts";
import { FramedConn } from "../shared/framing.ts";
import { logger } from "../shared/log.ts";
import { settleWithin } from "../shared/timeout.ts";
import { type Bodies, type Message, MsgType, PROTOCOL_VERSION } from "../shared/protocol.ts";
import { expectType, type HandlerResult, RpcConn } from "../shared/rpc.ts";

const log = logger("peer", "index");

/** Options for `IndexClient`. */
export interface IndexClientOptions {
  /** Finds the servers to try, best first (a fixed list, or discovery). */
  locate: () => Promise<HostPort[]>;
  /** Identity announced in Hello. */
  hostname: string;
  p2pPort: number;
  /** Answers the server's `ListShares`. */
  listShares: () => Bodies[MsgType.Shares];
  /** Runs after every (re)connection, before requests flow: publish everything again. */
  onConnected: (client: IndexClient) => Promise<void>;
  /** Per-request timeout, ms. @default 10000 */
  requestTimeoutMs?: number;
}

/** Longest wait between reconnection attempts, ms. */
const MAX_BACKOFF_MS = 5000;

/** A self-healing session with the index. */
export class IndexClient {
  readonly #options: IndexClientOptions;
  #rpc: RpcConn | undefined;
  /** The read loop of the current connection; ends when it drops. */
  #runningSession: Promise<void> | undefined;
  #ready = Promise.withResolvers<void>();
  #closed = false;
  #stopReason: string | undefined;
  /** The server currently connected, "host:port". */
  server: string | undefined;
  /** Session id given by the server. */
  sessionId: string | undefined;

  /** @param options how to find and greet the server */
  constructor(options: IndexClientOptions) {
    this.#options = options;
  }

  /**
   * Connects for the first time. Resolves once registered and `onConnected` ran.
   *
   * @throws {Error} when no server can be found or reached
   */
  async start(): Promise<void> {
    await this.#connect();
    void this.#maintain();
  }

  async #connect(): Promise<void> {
    const servers = await this.#options.locate();
    const problems: string[] = [];
    for (const server of servers) {
      const label = `${server.hostname}:${server.port}`;
      let conn: Deno.TcpConn;
      try {
        conn = await Deno.connect({ ...server, signal: AbortSignal.timeout(5000) });
      } catch (err) {
        problems.push(`${label}: ${(err as Error).message}`);
        continue;
      }
      conn.setNoDelay(true);
      const rpc = new RpcConn(new FramedConn(conn), (m) => this.#handle(m), { label });
      const running = rpc.run();
      try {
        const welcome = expectType(
          await rpc.request(MsgType.Hello, {
            hostname: this.#options.hostname,
            p2pPort: this.#options.p2pPort,
            protocol: PROTOCOL_VERSION,
          }, this.#timeoutMs),
          MsgType.Welcome,
        );
        this.#rpc = rpc;
        this.server = label;
        this.sessionId = welcome.body.sessionId;
        this.#runningSession = running;
        await this.#options.onConnected(this);
        this.#ready.resolve();
        log.info("Registered with index {server} as {host}", {
          server: label,
          host: this.#options.hostname,
        });
        return;
      } catch (err) {
        rpc.close();
        await running.catch(() => {});
        this.#rpc = undefined;
        problems.push(`${label}: ${(err as Error).message}`);
      }
    }
    throw new Error(`Cannot reach an index server: ${problems.join("; ") || "none found"}`);
  }

  async #maintain(): Promise<void> {
    let attempt = 0;
    while (!this.#closed) {
      try {
        await this.#runningSession;
        if (!this.#closed) log.warn("Index connection to {server} closed", { server: this.server });
      } catch (err) {
        log.warn("Index connection to {server} failed: {error}", {
          server: this.server,
          error: String(err),
        });
      }
      this.#rpc = undefined;
      if (this.#closed) return;
      if (this.#stopReason) {
        log.error("Not reconnecting to the index: {reason}", { reason: this.#stopReason });
        return;
      }
      this.#ready = Promise.withResolvers<void>();
      for (;;) {
        if (this.#closed) return;
        // Jittered exponential backoff: a restarted server is not hit by every peer at once.
        const base = Math.min(MAX_BACKOFF_MS, 100 * 2 ** attempt);
        await new Promise((resolve) => setTimeout(resolve, base / 2 + Math.random() * base / 2));
        attempt++;
        if (this.#closed) return;
        try {
          await this.#connect();
          attempt = 0;
          break;
        } catch (err) {
          log.warn("Cannot reconnect to the index (attempt {n}): {error}", {
            n: attempt,
            error: String(err),
          });
        }
      }
    }
  }

  #handle(message: Message): HandlerResult {
    switch (message.type) {
      case MsgType.Ping:
        return { type: MsgType.Pong, body: message.body };
      case MsgType.ListShares:
        return { type: MsgType.Shares, body: this.#options.listShares() };
      case MsgType.Goodbye:
        log.info("Index said goodbye: {reason}", { reason: message.body.reason });
        return undefined;
      case MsgType.Error:
        if (message.body.code === "replaced") this.#stopReason = message.body.message;
        log.warn("Index reported {code}: {message}", message.body);
        return undefined;
      default:
        return undefined;
    }
  }

  get #timeoutMs(): number {
    return this.#options.requestTimeoutMs ?? 10_000;
  }

  /** true while registered with a server. */
  get connected(): boolean {
    return this.#rpc !== undefined;
  }

  /**
   * Sends a request, waiting up to the request timeout for a (re)connection first.
   *
   * @throws {RemoteError} when the server answers with Error
   */
  async request<T extends MsgType>(type: T, body: Bodies[T]): Promise<Message> {
    if (!this.#rpc) {
      if (!await settleWithin(this.#ready.promise, this.#timeoutMs)) {
        throw new Error("Cannot reach the index server: not connected (reconnecting)");
      }
    }
    return this.#rpc!.request(type, body, this.#timeoutMs);
  }

  /** Says goodbye and closes; no reconnection after this. */
  async close(): Promise<void> {
    this.#closed = true;
    const rpc = this.#rpc;
    if (!rpc) return;
    await rpc.notify(MsgType.Goodbye, { reason: "peer quitting" }).catch(() => {});
    rpc.close("peer quitting");
    await this.#runningSession?.catch(() => {});
  }
}
