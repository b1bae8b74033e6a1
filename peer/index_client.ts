// The peer's session with the index server: connect (given or discovered), say Hello, answer
// the server's pings and live listings, and keep trying with jittered backoff until connected,
// from the start (the index may come up after the peer) and whenever the session drops. Keeps
// what the index acknowledged (`published`): its digest in the Hello lets a restarted index keep
// those entries, and then only the changes are sent again; else everything is published again.
// Stops only when replaced by a peer with the same identity, until told to `reconnect`.
import type { HostPort } from "../shared/cli.ts";
import { FramedConn } from "../shared/framing.ts";
import { logger } from "../shared/log.ts";
import { settleWithin } from "../shared/timeout.ts";
import {
  connectTo,
  HANDSHAKE_TIMEOUT_MS,
  plaintextMismatch,
  type TransportConn,
} from "../shared/transport.ts";
import {
  type Bodies,
  type ErrorCode,
  type FileEntry,
  type Message,
  MsgType,
  type Ticket,
} from "../shared/protocol.ts";
import { sharesDigest } from "../shared/shares_digest.ts";
import { RemoteError } from "../shared/errors.ts";
import { helloBody, type NetworkKey, readChallenge } from "../shared/handshake.ts";
import { type Identity, shortId } from "../shared/identity.ts";
import { expectType, type HandlerResult, RpcConn } from "../shared/rpc.ts";
import type { IndexState } from "./index_state.ts";

const log = logger("peer", "index");

/** An index server to connect to, with the certificate TLS pins (none in plaintext mode). */
export type IndexAddress = HostPort & { pin?: { id: string; certPem: string } };

/** Options for `IndexClient`. */
export interface IndexClientOptions {
  /** Finds the servers to try, best first (a fixed list, or discovery); stops on `signal`. */
  locate: (signal: AbortSignal) => Promise<IndexAddress[]>;
  /** Plain TCP instead of TLS (--insecure-plaintext). */
  plaintext: boolean;
  /** Identity announced in Hello. */
  hostname: string;
  p2pPort: number;
  /** The device identity proved in Hello (its ID and certificate are what fetchers pin). */
  identity: Identity;
  /** The network key of a `--join key` index, if given. */
  networkKey?: NetworkKey | undefined;
  /** Answers the server's `ListShares`. */
  listShares: () => Bodies[MsgType.Shares];
  /**
   * Called on every (re)registration with the indexes whose tickets to accept (the one
   * registered with first) and this peer's ticket.
   */
  onRegistered?: (indexIds: string[], ticket: Ticket) => void;
  /**
   * Runs after every (re)connection, before it counts as connected: publish everything again,
   * or, when the index `kept` this device's entries (`client.published` lists them), only what
   * changed since.
   */
  onConnected: (client: IndexClient, kept: boolean) => Promise<void>;
  /** Says, for "Cannot <action>: <reason>", why a request cannot be sent in `state`. */
  unavailableReason: (state: IndexState) => string;
  /** Called on every change of `state`. */
  onStateChange?: (state: IndexState) => void;
  /** Per-request timeout, ms. @default 10000 */
  requestTimeoutMs?: number;
}

/** A request that cannot be sent because the peer has no session with the index. */
export class IndexUnavailableError extends Error {
  /** Why, without the "Cannot <action>: " prefix. */
  readonly reason: string;

  /**
   * @param action what could not be done, e.g. "search"
   * @param reason why, from the index state
   */
  constructor(action: string, reason: string) {
    super(`Cannot ${action}: ${reason}`);
    this.name = "IndexUnavailableError";
    this.reason = reason;
  }
}

/** Refusals of a Hello that a server answered: this device may not join (yet). */
const REFUSALS: ReadonlySet<ErrorCode> = new Set([
  "not-approved",
  "bad-proof",
  "revoked",
  "conflict",
]);

/** The index answered the Hello with a refusal of this device. */
class RefusedError extends Error {
  readonly server: string;
  /** The server's reason, without its "Cannot register: ". */
  readonly reason: string;

  constructor(server: string, message: string) {
    super(`${server}: ${message}`);
    this.name = "RefusedError";
    this.server = server;
    this.reason = message.replace(/^Cannot register: /, "").replace(
      /^Cannot register as /,
      "registering as ",
    );
  }
}

/** Longest wait between connection attempts, ms. */
const MAX_BACKOFF_MS = 5000;
/**
 * How long one attempt may take to connect and finish the TLS handshake, ms: as long as the
 * index gives a handshake (HANDSHAKE_TIMEOUT_MS). On a LAN a live index takes milliseconds;
 * more means a dead host or an index taking back thousands of peers after a restart. Giving
 * up sooner than the index would gains nothing there: the attempt's place in its accept queue
 * and its handshake are lost, and the next attempt starts again at the back of the queue.
 */
export const INDEX_CONNECT_TIMEOUT_MS = HANDSHAKE_TIMEOUT_MS;

/** What each request does, for error messages. */
const ACTIONS: Partial<Record<MsgType, string>> = {
  [MsgType.Publish]: "publish",
  [MsgType.Unpublish]: "unpublish",
  [MsgType.Search]: "search",
  [MsgType.WhoHas]: "look up sources",
  [MsgType.GetTicket]: "renew the fetch ticket",
};

/** Attempts that failed since the last session, in a state that counts them. */
function failedAttempts(state: IndexState): number {
  return state.kind === "looking" || state.kind === "reconnecting" || state.kind === "refused"
    ? state.attempts
    : 0;
}

/** A self-healing session with the index. */
export class IndexClient {
  readonly #options: IndexClientOptions;
  #rpc: RpcConn | undefined;
  /** The read loop of the current connection; ends when it drops. */
  #runningSession: Promise<void> | undefined;
  #state: IndexState = { kind: "looking", attempts: 0 };
  /** Resolved (and replaced) on every state change: what waiting requests wait for. */
  #changed = Promise.withResolvers<void>();
  /** Why the index closed this session, when another peer took over our identity. */
  #replacedNotice: string | undefined;
  /** Ends the current pause between attempts early (`reconnect`, `close`). */
  #wake: (() => void) | undefined;
  /** The connection loop, while it runs. */
  #loop: Promise<void> | undefined;
  /** Aborted by `close`: ends discovery and connection attempts under way. */
  readonly #closing = new AbortController();
  /** The server currently (or last) connected, "host:port". */
  server: string | undefined;
  /** Session id given by the server. */
  sessionId: string | undefined;
  /** The device ID of the index this session is registered with (it proved it by TLS). */
  serverDeviceId: string | undefined;
  /**
   * What the index holds for this peer, as far as its answers tell: every entry a `Publish`
   * was answered `Published` for, less those `Unpublish`ed since, on the current (or last)
   * session. Cleared when a session starts empty.
   */
  readonly #published = new Map<string, FileEntry>();

  /** @param options how to find and greet the server */
  constructor(options: IndexClientOptions) {
    this.#options = options;
  }

  /** Where the peer stands with the index. */
  get state(): IndexState {
    return this.#state;
  }

  /** The entries the index acknowledged (see #published), by fname. */
  get published(): ReadonlyMap<string, FileEntry> {
    return this.#published;
  }

  /** true while registered with a server. */
  get connected(): boolean {
    return this.#state.kind === "connected";
  }

  /** Starts looking for the index and connecting, in the background; returns at once. */
  start(): void {
    this.#loop ??= this.#run();
  }

  /**
   * Tries to connect now: after being replaced (taking the identity back), or to skip the
   * wait between attempts. Resolves once connected.
   *
   * @throws {IndexUnavailableError} when still not connected after the request timeout
   */
  async reconnect(): Promise<string> {
    if (this.#state.kind === "closed") {
      throw new IndexUnavailableError("reconnect", this.#options.unavailableReason(this.#state));
    }
    if (this.#state.kind === "replaced") {
      this.#replacedNotice = undefined;
      this.#setState({ kind: "reconnecting", server: this.#state.server, attempts: 0 });
    }
    this.#loop ??= this.#run();
    this.#wake?.();
    const failedBefore = failedAttempts(this.#state);
    const deadline = Date.now() + this.#timeoutMs;
    for (;;) {
      // Read afresh each time (a call, so the checks above do not narrow it): the state
      // changes while we wait.
      const state = this.#current();
      if (state.kind === "connected") return state.server;
      const left = deadline - Date.now();
      // One more failed attempt answers the question: not now.
      const failed = failedAttempts(state) > failedBefore;
      if (left <= 0 || failed || state.kind === "replaced" || state.kind === "closed") {
        throw new IndexUnavailableError("reconnect", this.#options.unavailableReason(state));
      }
      await settleWithin(this.#changed.promise, left);
    }
  }

  #current(): IndexState {
    return this.#state;
  }

  #setState(state: IndexState): void {
    this.#state = state;
    const changed = this.#changed;
    this.#changed = Promise.withResolvers<void>();
    changed.resolve();
    this.#options.onStateChange?.(state);
  }

  /** Connects, stays connected while the session lasts, and tries again when it drops. */
  async #run(): Promise<void> {
    let failures = 0;
    let lastLogged = "";
    while (!this.#stopped) {
      try {
        await this.#connect();
      } catch (err) {
        if (this.#stopped) break;
        failures++;
        const error = err instanceof Error ? err.message : String(err);
        const state = this.#state;
        if (err instanceof RefusedError) {
          this.#setState({
            kind: "refused",
            server: err.server,
            attempts: failures,
            reason: err.reason,
          });
        } else {
          this.#setState(
            state.kind === "reconnecting"
              ? { ...state, attempts: failures, lastError: error }
              : { kind: "looking", attempts: failures, lastError: error },
          );
        }
        // The same failure every few seconds is news once; the state says the rest.
        if (error !== lastLogged && err instanceof RefusedError) {
          log.warn("The index {server} refuses this peer (still asking): {reason}", {
            server: err.server,
            reason: err.reason,
          });
          lastLogged = error;
        } else if (error !== lastLogged) {
          log.warn("No index server reached yet (attempt {n}; still trying): {error}", {
            n: failures,
            error,
          });
          lastLogged = error;
        }
        await this.#pause(failures);
        continue;
      }
      failures = 0;
      lastLogged = "";
      try {
        await this.#runningSession;
        if (!this.#stopped) {
          log.warn("Index connection to {server} closed", { server: this.server });
        }
      } catch (err) {
        log.warn("Index connection to {server} failed: {error}", {
          server: this.server,
          error: String(err),
        });
      }
      this.#rpc = undefined;
      this.#runningSession = undefined;
      if (this.#state.kind === "closed") break;
      if (this.#replacedNotice !== undefined) {
        this.#setReplaced();
        break;
      }
      this.#setState({ kind: "reconnecting", server: this.server ?? "?", attempts: 0 });
      await this.#pause(0);
    }
    this.#loop = undefined;
  }

  get #stopped(): boolean {
    return this.#state.kind === "closed" || this.#state.kind === "replaced";
  }

  #setReplaced(): void {
    if (this.#state.kind === "replaced" || this.#state.kind === "closed") return;
    const notice = this.#replacedNotice ?? "replaced";
    log.error("Not reconnecting to the index: {reason}", { reason: notice });
    this.#setState({ kind: "replaced", server: this.server ?? "?", notice });
  }

  /** Jittered exponential backoff: a restarted server is not hit by every peer at once. */
  async #pause(attempt: number): Promise<void> {
    const base = Math.min(MAX_BACKOFF_MS, 100 * 2 ** attempt);
    const woken = Promise.withResolvers<void>();
    this.#wake = woken.resolve;
    await settleWithin(woken.promise, base / 2 + Math.random() * base / 2);
    this.#wake = undefined;
  }

  async #connect(): Promise<void> {
    const servers = await this.#options.locate(this.#closing.signal);
    const problems: string[] = [];
    let refusal: RefusedError | undefined;
    for (const server of servers) {
      if (this.#stopped) break;
      const label = `${server.hostname}:${server.port}`;
      let conn: TransportConn;
      try {
        conn = await connectTo({
          hostname: server.hostname,
          port: server.port,
          pin: server.pin,
          plaintext: this.#options.plaintext,
          what: "the index",
          signal: AbortSignal.any([
            AbortSignal.timeout(INDEX_CONNECT_TIMEOUT_MS),
            this.#closing.signal,
          ]),
        });
      } catch (err) {
        problems.push(`${label}: ${(err as Error).message}`);
        continue;
      }
      const framed = new FramedConn(conn);
      let challenge: Bodies[MsgType.Challenge];
      try {
        challenge = await readChallenge(framed, this.#timeoutMs, label);
        // TLS already proved the pinned key; a Challenge naming another ID is a confused or
        // relaying server, and signing its nonce would vouch for the wrong index.
        if (server.pin !== undefined && challenge.id !== server.pin.id) {
          throw new Error(
            `Cannot register with the index at ${label}: it is pinned as ${
              shortId(server.pin.id)
            } but its challenge names ${shortId(challenge.id)}`,
          );
        }
      } catch (err) {
        framed.close();
        // A TLS index and this plaintext peer both wait for the other to speak.
        const mismatch = this.#options.plaintext && !(err instanceof RemoteError)
          ? await plaintextMismatch(server.hostname, server.port, "the index")
          : undefined;
        problems.push(`${label}: ${(mismatch ?? err as Error).message}`);
        continue;
      }
      const rpc: RpcConn = new RpcConn(framed, (m) => this.#handle(m, rpc), { label });
      const running = rpc.run();
      // close() must not wait for a server that accepted the connection but never answers.
      const abandon = () => rpc.close("peer quitting");
      this.#closing.signal.addEventListener("abort", abandon, { once: true });
      try {
        const welcome = expectType(
          await rpc.request(
            MsgType.Hello,
            await helloBody({
              identity: this.#options.identity,
              hostname: this.#options.hostname,
              p2pPort: this.#options.p2pPort,
              ...(this.#options.networkKey ? { networkKey: this.#options.networkKey } : {}),
              // A restarted index keeps the entries it holds for this device if they are these.
              sharesDigest: sharesDigest(this.#published.values()),
            }, challenge),
            this.#timeoutMs,
          ),
          MsgType.Welcome,
        );
        const kept = welcome.body.kept === true;
        // Before any request can use the session: a session not kept starts empty.
        if (!kept) this.#published.clear();
        this.#rpc = rpc;
        this.server = label;
        this.sessionId = welcome.body.sessionId;
        this.serverDeviceId = challenge.id;
        const others = (welcome.body.indexIds ?? []).filter((id) => id !== challenge.id);
        this.#options.onRegistered?.([challenge.id, ...others], welcome.body.ticket);
        this.#runningSession = running;
        await this.#options.onConnected(this, kept);
        if (this.#stopped) return; // replaced or closed while publishing: the loop sees it
        this.#setState({ kind: "connected", server: label });
        log.info("Registered with index {server} ({id}) as {host}{kept}", {
          server: label,
          id: server.pin ? shortId(server.pin.id) : "plaintext",
          host: this.#options.hostname,
          kept: kept ? ", which kept this peer's entries" : "",
        });
        return;
      } catch (err) {
        rpc.close();
        await running.catch(() => {});
        this.#rpc = undefined;
        this.#runningSession = undefined;
        // A server that refuses this device is the answer, unless another one admits it.
        if (err instanceof RemoteError && REFUSALS.has(err.code)) {
          refusal ??= new RefusedError(label, err.message);
        }
        problems.push(`${label}: ${(err as Error).message}`);
      } finally {
        this.#closing.signal.removeEventListener("abort", abandon);
      }
    }
    if (refusal) throw refusal;
    // The caller says that no server was reached; this says why.
    throw new Error(problems.join("; ") || "no server to try");
  }

  #handle(message: Message, rpc: RpcConn): HandlerResult {
    switch (message.type) {
      case MsgType.Ping:
        return { type: MsgType.Pong, body: message.body };
      case MsgType.ListShares:
        return { type: MsgType.Shares, body: this.#options.listShares() };
      case MsgType.Goodbye:
        log.info("Index said goodbye: {reason}", { reason: message.body.reason });
        return undefined;
      case MsgType.Error:
        log.warn("Index reported {code}: {message}", message.body);
        if (message.body.code === "replaced") {
          // The session is no longer ours: stop using it now rather than when the server
          // gets round to closing it.
          this.#replacedNotice = message.body.message;
          if (rpc === this.#rpc) {
            this.#rpc = undefined;
            this.#setReplaced();
          }
          rpc.close("replaced by another peer");
        }
        return undefined;
      default:
        return undefined;
    }
  }

  get #timeoutMs(): number {
    return this.#options.requestTimeoutMs ?? 10_000;
  }

  /**
   * Waits until a session is open, or known to be out of reach for now (no server found yet,
   * replaced, closed), or the request timeout passes. While the first attempt to find the
   * index or a reconnection is under way, that is waiting for it.
   *
   * @returns the open session, if any
   */
  async #session(): Promise<RpcConn | undefined> {
    const deadline = Date.now() + this.#timeoutMs;
    for (;;) {
      if (this.#rpc) return this.#rpc;
      const state = this.#state;
      const left = deadline - Date.now();
      // Known to be unreachable for now: say so at once rather than after a timeout.
      const hopeless = state.kind === "replaced" || state.kind === "closed" ||
        (state.kind === "looking" && state.attempts > 0);
      if (hopeless || left <= 0) return undefined;
      await settleWithin(this.#changed.promise, left);
    }
  }

  /**
   * Waits as `request` does before sending: for the first attempt or a reconnection under way.
   *
   * @returns whether a session is open now
   */
  async settle(): Promise<boolean> {
    return await this.#session() !== undefined;
  }

  /**
   * Sends a request, after waiting as `settle` does.
   *
   * @throws {IndexUnavailableError} when there is no session (saying why and what to do)
   * @throws {RemoteError} when the server answers with Error
   */
  async request<T extends MsgType>(type: T, body: Bodies[T]): Promise<Message> {
    const rpc = await this.#session();
    if (!rpc) {
      throw new IndexUnavailableError(
        ACTIONS[type] ?? "reach the index",
        this.#options.unavailableReason(this.#state),
      );
    }
    const reply = await rpc.request(type, body, this.#timeoutMs);
    // Answers on a session since replaced say nothing about the current one.
    if (rpc === this.#rpc) this.#acknowledged(type, body, reply);
    return reply;
  }

  /** Records in #published what an answered Publish or Unpublish changed at the index. */
  #acknowledged<T extends MsgType>(type: T, body: Bodies[T], reply: Message): void {
    if (type === MsgType.Publish && reply.type === MsgType.Published) {
      // A Publish body is the entry the index stores (SignedFileEntry), as sharesDigest() reads it.
      const sent = body as Bodies[MsgType.Publish];
      this.#published.set(sent.fname, sent);
    } else if (type === MsgType.Unpublish && reply.type === MsgType.Ok) {
      this.#published.delete((body as Bodies[MsgType.Unpublish]).fname);
    }
  }

  /** Says goodbye and closes; no reconnection after this. */
  async close(): Promise<void> {
    if (this.#state.kind === "closed") return;
    this.#setState({ kind: "closed" });
    this.#closing.abort();
    this.#wake?.();
    const rpc = this.#rpc;
    if (rpc) {
      await rpc.notify(MsgType.Goodbye, { reason: "peer quitting" }).catch(() => {});
      rpc.close("peer quitting");
    }
    await this.#loop;
  }
}
