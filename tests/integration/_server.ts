// Fixtures for the integration tests: an in-process index server on 127.0.0.1 port 0, and a raw
// framed client that speaks the wire protocol by hand (no peer code), so tests control every byte.
import { encodeMessage, reply, request } from "../../shared/encode.ts";
import { FramedConn } from "../../shared/framing.ts";
import {
  type Bodies,
  type Message,
  type MessageOf,
  MSG_TYPE_NAMES,
  MsgType,
  type PublishStatus,
  type SignedFileEntry,
} from "../../shared/protocol.ts";
import type { ServerConfig } from "../../server/config.ts";
import { helloBody, type NetworkKey } from "../../shared/handshake.ts";
import { createIdentity, type Identity } from "../../shared/identity.ts";
import { type RunningServer, startServer, type StartServerOptions } from "../../server/server.ts";

/** Long enough that no ping, announce or lease expiry happens unless a test asks for it. */
const QUIET_MS = 60_000;

/**
 * Starts an index server for one test: TCP 127.0.0.1 port 0, UDP port 0 announcing only to
 * 127.255.255.255, in-memory SQLite, and pings and announces too rare to interfere. Plain TCP
 * (the protocol tests write raw frames; tests/e2e run the programs over TLS) and a fresh
 * identity kept in memory. Dispose it with `await using`.
 */
export async function startTestServer(
  overrides: Partial<ServerConfig> = {},
  options: Omit<StartServerOptions, "identity"> & { identity?: Identity } = {},
): Promise<RunningServer> {
  const config: ServerConfig = {
    host: "127.0.0.1",
    port: 0,
    db: ":memory:",
    announcePort: 0,
    broadcast: ["127.255.255.255"],
    announceIntervalMs: QUIET_MS,
    pingIntervalMs: QUIET_MS,
    pingTimeoutMs: 2 * QUIET_MS,
    maxConnections: 10_000,
    maxUnregisteredPerAddress: 10_000,
    maxSessionsPerAddress: 10_000,
    logLevel: "error",
    maxEntriesPerSession: 10_000,
    ui: null,
    identity: "(in memory)",
    insecurePlaintext: true,
    join: "open",
    networkKeyFile: undefined,
    ...overrides,
  };
  return await startServer(config, { identity: await createIdentity(), ...options });
}

/** Resolves or rejects as `promise` does, or rejects once `timeoutMs` have passed. */
export function within<T>(
  promise: Promise<T>,
  options: { timeoutMs: number; what: string },
): Promise<T> {
  const { timeoutMs, what } = options;
  const signal = AbortSignal.timeout(timeoutMs);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

/**
 * Calls `probe` until it returns a value other than undefined, or fails after `timeoutMs`.
 * For conditions that have no event to wait on (a row vanishing from the index).
 */
export async function pollUntil<T>(
  probe: () => Promise<T | undefined>,
  options: { timeoutMs: number; what: string; everyMs?: number },
): Promise<T> {
  const deadline = AbortSignal.timeout(options.timeoutMs);
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (deadline.aborted) {
      throw new Error(`Timed out after ${options.timeoutMs} ms waiting for ${options.what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.everyMs ?? 10));
  }
}

/** Waits (bounded) until the synchronous `check()` holds, asking every `everyMs`. */
export function waitUntil(
  check: () => boolean,
  options: { timeoutMs: number; what: string; everyMs?: number },
): Promise<true> {
  return pollUntil(() => Promise.resolve(check() || undefined), options);
}

/** A hash that passes the schema: 64 lowercase hex digits made of `digit`. */
export function fakeHash(digit: string): string {
  return digit.repeat(64).slice(0, 64);
}

/** A valid Publish body for `fname`; fields can be overridden. */
export function fileEntry(
  fname: string,
  overrides: Partial<SignedFileEntry> = {},
): SignedFileEntry {
  return {
    fname,
    size: 1000,
    mtimeMs: 1_767_225_600_000,
    rootHash: fakeHash("a"),
    pieceSize: 1 << 20,
    // The index stores publish signatures unverified (fetchers check them): any well-formed one.
    sig: UNCHECKED_SIG,
    ...overrides,
  };
}

/** A well-formed signature that verifies under no key: for index tests, which never check it. */
export const UNCHECKED_SIG = new Uint8Array(64).toBase64();

/** Answers one server request in `RawClient.answer()`, or returns undefined to stay silent. */
export type Responder = (message: Message) => Message | undefined;

/** Answers `Ping` with `Pong`, as every peer must. */
export const answerPings: Responder = (message) =>
  message.type === MsgType.Ping ? reply(MsgType.Pong, message.requestId, message.body) : undefined;

/**
 * A hand-driven client of the index. Two modes:
 * - manual (the default): `readMessage()` reads frames as the test wishes; `request()` reads
 *   inline until its reply, answering any `Ping` met on the way;
 * - answering, after `answer(responder)`: a background loop reads everything, resolves
 *   `request()` calls and answers server requests with `responder`.
 */
export class RawClient implements AsyncDisposable {
  readonly conn: Deno.TcpConn;
  readonly framed: FramedConn;
  /** The device this client proves in `hello()`. */
  readonly identity: Identity;
  /** The server's Challenge, once read (every read takes it aside; tests never see it). */
  challenge: Bodies[MsgType.Challenge] | undefined;
  /** Messages that were neither replies to our requests nor answered (e.g. `Error` "replaced"). */
  readonly unsolicited: Message[] = [];
  #nextId = 1;
  #pump: Promise<void> | undefined;
  #pumpEnded = false;
  #waiters = new Map<number, PromiseWithResolvers<Message>>();

  constructor(conn: Deno.TcpConn, identity: Identity) {
    this.conn = conn;
    this.framed = new FramedConn(conn);
    this.identity = identity;
  }

  /** Reads the next frame, taking the server's Challenge aside. */
  async #next(): Promise<Message | null> {
    for (;;) {
      const message = await this.framed.readMessage();
      if (message?.type !== MsgType.Challenge) return message;
      this.challenge = message.body;
    }
  }

  /** The server's Challenge: read now if it has not come yet. */
  async takeChallenge(timeoutMs = 5000): Promise<Bodies[MsgType.Challenge]> {
    if (this.challenge) return this.challenge;
    if (this.#pump) throw new Error("Cannot read the challenge: the client is in answering mode");
    const message = await within(this.framed.readMessage(), {
      timeoutMs,
      what: "the server's Challenge",
    });
    if (message?.type !== MsgType.Challenge) {
      throw new Error(`Expected a Challenge first, got ${JSON.stringify(message)}`);
    }
    return this.challenge = message.body;
  }

  /**
   * A Hello body answering this connection's challenge with `identity`'s proof (this client's
   * own by default), with fields overridden as a test wishes.
   */
  async helloBody(
    hostname: string,
    p2pPort: number,
    options: { identity?: Identity; networkKey?: NetworkKey } = {},
  ): Promise<Bodies[MsgType.Hello]> {
    const challenge = await this.takeChallenge();
    return await helloBody({
      identity: options.identity ?? this.identity,
      hostname,
      p2pPort,
      ...(options.networkKey ? { networkKey: options.networkKey } : {}),
    }, challenge);
  }

  /** Sends one message. */
  send(message: Message): Promise<void> {
    return this.framed.send(message);
  }

  /** Writes raw bytes (garbage, partial frames). */
  async sendBytes(bytes: Uint8Array): Promise<void> {
    await this.framed.sendBytes(bytes);
  }

  /** Reads the next message (null on a clean close), failing after `timeoutMs`. */
  readMessage(timeoutMs = 5000): Promise<Message | null> {
    if (this.#pump) throw new Error("Cannot read: the client is in answering mode");
    return within(this.#next(), { timeoutMs, what: "a message from the server" });
  }

  /** Reads until the server closes; returns what came before. Fails after `timeoutMs`. */
  async readUntilClosed(timeoutMs = 5000): Promise<Message[]> {
    const seen: Message[] = [];
    const drain = async () => {
      for (;;) {
        const message = await this.#next();
        if (message === null) return seen;
        seen.push(message);
      }
    };
    return await within(drain(), { timeoutMs, what: "the server to close the connection" });
  }

  /** Sends a request and returns its reply (an `Error` reply is returned, not thrown). */
  async request<T extends MsgType>(type: T, body: Bodies[T], timeoutMs = 5000): Promise<Message> {
    const requestId = this.#nextId++;
    if (this.#pump) {
      if (this.#pumpEnded) {
        throw new Error(`Cannot send ${MSG_TYPE_NAMES.get(type)}: the connection is closed`);
      }
      const waiter = Promise.withResolvers<Message>();
      this.#waiters.set(requestId, waiter);
      await this.send(request(type, requestId, body));
      try {
        return await within(waiter.promise, {
          timeoutMs,
          what: `the reply to ${MSG_TYPE_NAMES.get(type)}`,
        });
      } finally {
        this.#waiters.delete(requestId);
      }
    }
    await this.send(request(type, requestId, body));
    const inline = async (): Promise<Message> => {
      for (;;) {
        const message = await this.#next();
        if (message === null) {
          throw new Error(`Cannot get reply to ${MSG_TYPE_NAMES.get(type)}: connection closed`);
        }
        if (message.reply && message.requestId === requestId) return message;
        const answer = answerPings(message);
        if (answer) await this.send(answer);
        else this.unsolicited.push(message);
      }
    };
    return await within(inline(), { timeoutMs, what: `the reply to ${MSG_TYPE_NAMES.get(type)}` });
  }

  /** Sends a request and checks the reply type. */
  async expect<T extends MsgType, R extends MsgType>(
    type: T,
    body: Bodies[T],
    replyType: R,
  ): Promise<MessageOf<R>> {
    const message = await this.request(type, body);
    if (message.type !== replyType) {
      throw new Error(
        `Expected ${MSG_TYPE_NAMES.get(replyType)} in reply to ${MSG_TYPE_NAMES.get(type)}, got ${
          MSG_TYPE_NAMES.get(message.type)
        } ${JSON.stringify(message.body)}`,
      );
    }
    return message as MessageOf<R>;
  }

  /** Registers with `Hello` (answering the challenge) and returns the `Welcome`. */
  async hello(
    hostname: string,
    p2pPort: number,
    options: { identity?: Identity; networkKey?: NetworkKey } = {},
  ): Promise<MessageOf<MsgType.Welcome>> {
    return this.expect(
      MsgType.Hello,
      await this.helloBody(hostname, p2pPort, options),
      MsgType.Welcome,
    );
  }

  /** Publishes one entry and returns the `Published` status. */
  async publish(entry: SignedFileEntry): Promise<PublishStatus> {
    return (await this.expect(MsgType.Publish, entry, MsgType.Published)).body.status;
  }

  /** Asks who has `fname`; returns the sources. */
  async whoHas(fname: string): Promise<Bodies[MsgType.Sources]["sources"]> {
    return (await this.expect(MsgType.WhoHas, { fname }, MsgType.Sources)).body.sources;
  }

  /** Switches to answering mode: a background loop reads every frame from now on. */
  answer(responder: Responder = answerPings): void {
    if (this.#pump) throw new Error("Cannot answer: already answering");
    this.#pump = (async () => {
      try {
        for (;;) {
          const message = await this.#next();
          if (message === null) break;
          const waiter = message.reply ? this.#waiters.get(message.requestId) : undefined;
          if (waiter) {
            waiter.resolve(message);
            continue;
          }
          const answer = message.reply ? undefined : responder(message);
          if (answer) await this.send(answer);
          else this.unsolicited.push(message);
        }
      } finally {
        this.#pumpEnded = true;
        const closed = new Error("Cannot get reply: connection closed");
        for (const waiter of this.#waiters.values()) waiter.reject(closed);
      }
    })();
  }

  /** Closes the connection and waits for the answering loop, if any. */
  async close(): Promise<void> {
    this.framed.close();
    await this.#pump;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

let testDevice: Promise<Identity> | undefined;

/**
 * The device every RawClient is unless told otherwise: one for the whole test run, so that
 * clients of the same {hostname, port} replace each other as one peer reconnecting would.
 */
export function testIdentity(): Promise<Identity> {
  return testDevice ??= createIdentity();
}

/** Connects a RawClient to 127.0.0.1:`port`, as `identity` (testIdentity() by default). */
export async function connectRaw(port: number, identity?: Identity): Promise<RawClient> {
  const device = identity ?? await testIdentity();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  return new RawClient(conn, device);
}

/** Encodes a message and lets the test corrupt its bytes before sending. */
export function frameBytes(message: Message, mutate?: (bytes: Uint8Array) => void): Uint8Array {
  const bytes = encodeMessage(message);
  mutate?.(bytes);
  return bytes;
}

/** An index server running in a Worker (see _server_worker.ts). */
export interface WorkerServer extends AsyncDisposable {
  /** TCP port of the index. */
  tcpPort: number;
  /** Errors the worker raised (an uncaught one ends it). */
  errors: string[];
}

/**
 * Starts startTestServer() in a Worker, so the test's own event loop keeps running while the
 * server computes, and a server that dies does not take the test runner with it unseen.
 */
export async function startWorkerServer(
  overrides: Partial<ServerConfig> = {},
): Promise<WorkerServer> {
  const worker = new Worker(import.meta.resolve("./_server_worker.ts"), { type: "module" });
  const errors: string[] = [];
  let ended = false;
  worker.onerror = (event) => {
    event.preventDefault();
    ended = true;
    errors.push(event.message);
  };
  const next = () =>
    new Promise<unknown>((resolve) => {
      worker.onmessage = (event: MessageEvent) => resolve(event.data);
    });
  const listening = next();
  worker.postMessage({ overrides });
  const { port } = await within(listening as Promise<{ port: number }>, {
    timeoutMs: 10_000,
    what: "the server worker to listen",
  });
  return {
    tcpPort: port,
    errors,
    async [Symbol.asyncDispose]() {
      // A worker that died cannot answer, and a hung one is terminated all the same: its
      // failure is the test's to report, not the disposal's.
      if (!ended) {
        const closed = next();
        worker.postMessage("close");
        await within(closed, { timeoutMs: 10_000, what: "the server worker to close" }).catch(
          (err: unknown) => errors.push(err instanceof Error ? err.message : String(err)),
        );
      }
      worker.terminate();
    },
  };
}
