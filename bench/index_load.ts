// Load generator for the index server, run as its own process by bench/index_bench.ts: holds N
// registered sessions (M published files each) that answer pings like real peers, then sends
// pipelined who-has and search requests while a churn loop reconnects sessions at a fixed rate.
// The sessions that send lookups live in a child process of their own (`--lookups-only`), so
// that the latencies it measures do not include this process's garbage collections.
// Speaks the real protocol (shared/encode.ts, shared/decode.ts); reports JSON lines on stdout,
// progress on stderr. Connects to 127.0.0.1 only.
import { parseArgs } from "node:util";
import { readLines } from "../shared/cli.ts";
import { ConfigError } from "../shared/errors.ts";
import { decodeMessage, type Frame, FrameDecoder } from "../shared/decode.ts";
import { encodeMessage, reply, request } from "../shared/encode.ts";
import { writeAll } from "../shared/framing.ts";
import { helloBody } from "../shared/handshake.ts";
import { sharesDigest } from "../shared/shares_digest.ts";
import { createIdentity, type Identity, idOfCert } from "../shared/identity.ts";
import { connectTo, type TransportConn } from "../shared/transport.ts";
import { INDEX_CONNECT_TIMEOUT_MS } from "../peer/index_client.ts";
import {
  type Bodies,
  FLAG_REPLY,
  type Message,
  MSG_TYPE_NAMES,
  MsgType,
  type SignedFileEntry,
} from "../shared/protocol.ts";

/** Everything one run needs; every field required (see `parseLoadArgs`). */
export interface LoadConfig {
  /** TCP port of the index server on 127.0.0.1. */
  port: number;
  /** Sessions to hold (the first `conns + searchConns` of them also send lookups). */
  sessions: number;
  /** Files published by each session. */
  files: number;
  /** Sessions holding each file name (sources per who-has answer). */
  replicas: number;
  /** Length of each lookup phase, s. */
  seconds: number;
  /** Connections sending who-has. */
  conns: number;
  /** Who-has requests outstanding per connection. */
  depth: number;
  /** Connections sending search (one outstanding each) in the mixed phase; 0 skips it. */
  searchConns: number;
  /** Sessions disconnected and reconnected per second during the lookup phases. */
  churnPerS: number;
  /** Sessions registering at once during setup. */
  setupConcurrency: number;
  /** Bound on the whole setup, s. */
  setupTimeoutS: number;
  /** Seed of the request mix (fnames, patterns, churn victims). */
  seed: number;
}

/** A well-formed publish signature (64 zero bytes), see Catalogue.entry(). */
const PLACEHOLDER_SIG = new Uint8Array(64).toBase64();
const DEFAULTS: LoadConfig = {
  port: 0,
  sessions: 10_000,
  files: 100,
  replicas: 5,
  seconds: 10,
  conns: 4,
  depth: 16,
  searchConns: 1,
  churnPerS: 20,
  setupConcurrency: 64,
  setupTimeoutS: 1800,
  seed: 1,
};

/** Words in the generated file names, so that searches match a realistic share of them. */
const WORDS = [
  "holiday",
  "report",
  "invoice",
  "backup",
  "music",
  "lecture",
  "photo",
  "dataset",
  "slides",
  "thesis",
  "render",
  "scan",
  "mixtape",
  "budget",
  "notes",
  "video",
];
const EXTENSIONS = ["jpg", "pdf", "mkv", "zip", "flac", "csv", "iso", "txt"];
/** A registration (connect, Hello, M publishes) that takes longer than this failed. */
const REGISTER_TIMEOUT_MS = 60_000;
/** Bound on the wait for every session to come back after a server restart. */
const RESTART_TIMEOUT_MS = 300_000;
/** Churn cycles in flight at once; a tick finding this many counts the cycle as behind. */
const MAX_CHURN_IN_FLIGHT = 64;
const READ_BYTES = 16 * 1024;

/**
 * Parses `--port N --sessions N ...` (kebab-case names of LoadConfig fields).
 *
 * @throws {ConfigError} listing every invalid flag
 */
export function parseLoadArgs(args: string[]): LoadConfig {
  const names: Record<string, keyof LoadConfig> = {
    port: "port",
    sessions: "sessions",
    files: "files",
    replicas: "replicas",
    seconds: "seconds",
    conns: "conns",
    depth: "depth",
    "search-conns": "searchConns",
    "churn-per-s": "churnPerS",
    "setup-concurrency": "setupConcurrency",
    "setup-timeout-s": "setupTimeoutS",
    seed: "seed",
  };
  const { values } = parseArgs({
    args,
    options: Object.fromEntries(Object.keys(names).map((k) => [k, { type: "string" as const }])),
  });
  const config = { ...DEFAULTS };
  const problems: string[] = [];
  for (const [flag, field] of Object.entries(names)) {
    const text = values[flag];
    if (typeof text !== "string") continue;
    const value = Number(text);
    if (!Number.isFinite(value) || value < 0) problems.push(`--${flag} must be a number ≥ 0`);
    else config[field] = value;
  }
  if (config.port < 1 || config.port > 65535) problems.push("--port must be 1–65535");
  if (config.sessions <= config.conns + config.searchConns) {
    problems.push("--sessions must exceed --conns + --search-conns");
  }
  if (config.files < 1 || config.conns < 1 || config.depth < 1 || config.replicas < 1) {
    problems.push("--files, --conns, --depth and --replicas must be at least 1");
  }
  if (problems.length > 0) throw new ConfigError(problems);
  config.replicas = Math.min(config.replicas, config.sessions);
  return config;
}

/** Seeded PRNG (mulberry32): the request mix repeats from run to run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The catalogue the sessions build: `names` distinct files, each held by `replicas` sessions. */
class Catalogue {
  readonly names: number;
  readonly #files: number;

  constructor(config: LoadConfig) {
    this.#files = config.files;
    this.names = Math.max(
      config.files,
      Math.ceil(config.sessions * config.files / config.replicas),
    );
  }

  fname(k: number): string {
    const word = WORDS[k % WORDS.length]!;
    const ext = EXTENSIONS[(k >>> 4) % EXTENSIONS.length]!;
    return `${word}-${String(k).padStart(7, "0")}.${ext}`;
  }

  /** File `j` of session `i`: consecutive names, so sessions `names / files` apart share them. */
  entry(i: number, j: number): SignedFileEntry {
    const k = (i * this.#files + j) % this.names;
    const h = (Math.imul(k + 1, 0x9e3779b1) >>> 0).toString(16).padStart(8, "0");
    return {
      fname: this.fname(k),
      size: 1_048_576 + (k * 7919) % 1_000_000_000,
      mtimeMs: 1_700_000_000_000 + k,
      rootHash: h.repeat(8),
      pieceSize: 1_048_576,
      // The index stores publish signatures unverified (fetchers check them), so a fixed
      // well-formed one costs the load generator nothing and the index what a real one costs.
      sig: PLACEHOLDER_SIG,
    };
  }
}

/** Latency samples in ms; exact percentiles by sorting once at the end. */
class Samples {
  #data = new Float64Array(1 << 14);
  #n = 0;

  add(ms: number): void {
    if (this.#n === this.#data.length) {
      const grown = new Float64Array(this.#data.length * 2);
      grown.set(this.#data);
      this.#data = grown;
    }
    this.#data[this.#n++] = ms;
  }

  get count(): number {
    return this.#n;
  }

  /** count, p50, p99, p999 and max, in ms. */
  summary(): { count: number; p50: number; p99: number; p999: number; max: number } {
    const sorted = this.#data.slice(0, this.#n).sort();
    const at = (q: number) =>
      sorted.length === 0
        ? NaN
        : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
    return { count: this.#n, p50: at(0.5), p99: at(0.99), p999: at(0.999), max: at(1) };
  }
}

/** Called with the reply, or with undefined when the connection ended first. */
type ReplyHandler = (message: Message | HoldersReply | undefined) => void;

/**
 * The reply handlers of one connection's outstanding requests, by request id. The id is the
 * handler's slot (plus one: id 0 means "no reply expected"), and freed slots are reused, so
 * ids stay small and a lookup is an array index (a server answers each request once, so a
 * freed id gets no late reply).
 *
 * Not a Map, measured: with a Map per connection the generator copied 1.1 MB in every
 * young-generation collection, paused 5–10 ms each time and added those pauses to the
 * latencies it reported; with this table it copies about 150 KB and pauses 1–2 ms. The likely
 * cause: at 60,000 replies/s V8 rebuilds a Map's table every few dozen deletions, and a dead
 * table links to its successor (for live iterators), so once one table had reached the old
 * generation the chain kept every later table, and the handlers in them, alive.
 */
class ReplySlots {
  readonly #handlers: (ReplyHandler | undefined)[] = [];
  readonly #free: number[] = [];

  /** Stores `handler`; returns the request id to send with it. */
  add(handler: ReplyHandler): number {
    const slot = this.#free.pop() ?? this.#handlers.length;
    this.#handlers[slot] = handler;
    return slot + 1;
  }

  /** Takes the handler of `requestId` out (undefined when none is waiting under that id). */
  take(requestId: number): ReplyHandler | undefined {
    const slot = requestId - 1;
    const handler = this.#handlers[slot];
    if (handler === undefined) return undefined;
    this.#handlers[slot] = undefined;
    this.#free.push(slot);
    return handler;
  }

  /** Takes every handler still waiting out. */
  takeAll(): ReplyHandler[] {
    const waiting: ReplyHandler[] = [];
    for (let slot = 0; slot < this.#handlers.length; slot++) {
      const handler = this.take(slot + 1);
      if (handler) waiting.push(handler);
    }
    return waiting;
  }
}

/** Counters shared by every connection. */
const wire = {
  pingsAnswered: 0,
  /** Largest delay between a Ping's `sentAtMs` and its arrival here (server send lag), ms. */
  maxPingDelayMs: 0,
  unmatchedReplies: 0,
  serverErrors: {} as Record<string, number>,
};

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** Where a registration was when it failed. */
type RegisterStep = "connect" | "challenge" | "hello" | "publish";

/** A failed registration, with the step it failed at (for the restart's failure counts). */
class RegisterError extends Error {
  /** The step and a short kind of failure, e.g. "connect: timed out". */
  readonly kind: string;

  constructor(step: RegisterStep, cause: unknown) {
    super(`${step}: ${describe(cause)}`, { cause });
    this.name = "RegisterError";
    this.kind = `${step}: ${failureKind(cause)}`;
  }
}

/** A short name for why a connection attempt failed, to count alike failures together. */
function failureKind(err: unknown): string {
  const text = describe(err);
  if (/no answer in \d+ ms/.test(text)) return "timed out";
  if (/TimeoutError|signal timed out/i.test(text)) return "timed out";
  if (/refused/i.test(text)) return "refused";
  if (/reset|broken pipe|connection ended|closed/i.test(text)) return "reset or closed";
  if (/does not speak TLS/.test(text)) return "TLS handshake failed";
  return err instanceof Error ? err.name : "other";
}

/**
 * One index session: requests are pipelined (callback per reply), writes issued in the same
 * turn of the event loop go out in one syscall, and the server's pings are answered at once.
 */
class Client {
  readonly #conn: TransportConn;
  readonly #decoder = new FrameDecoder();
  readonly #waiting = new ReplySlots();
  #outbox: Uint8Array[] = [];
  #writing = false;
  #flushQueued = false;
  #closedByUs = false;
  #ended = false;
  readonly #endedSignal = Promise.withResolvers<void>();
  /** When the last Ping from the server arrived, ms since the epoch (0: none yet). */
  lastPingMs = 0;
  /** Called once when the server ends the session (not after `close()`). */
  onLost: (reason: string) => void = () => {};
  /** The server's Challenge, the first frame of the session. */
  readonly challenge = Promise.withResolvers<Bodies[MsgType.Challenge]>();

  private constructor(conn: TransportConn) {
    this.#conn = conn;
    // A session that ends before its Hello reports that through register(), not here.
    this.challenge.promise.catch(() => {});
    void this.#readLoop();
  }

  /** Connects to the index on 127.0.0.1 as peers do (TLS pinned, unless plaintext). */
  static async open(
    port: number,
    transport: IndexTransport,
    timeoutMs?: number,
  ): Promise<Client> {
    const conn = await connectTo({
      hostname: "127.0.0.1",
      port,
      pin: transport.plaintext ? undefined : transport.pin,
      plaintext: transport.plaintext,
      what: "the index",
      ...(timeoutMs === undefined ? {} : { signal: AbortSignal.timeout(timeoutMs) }),
    });
    return new Client(conn);
  }

  /** Resolves when the connection is gone, whoever ended it. */
  get ended(): Promise<void> {
    return this.#endedSignal.promise;
  }

  /** Sends a request; `handler` gets its reply. */
  call<T extends MsgType>(type: T, body: Bodies[T], handler: ReplyHandler): void {
    if (this.#ended) {
      handler(undefined);
      return;
    }
    this.#enqueue(encodeMessage(request(type, this.#waiting.add(handler), body)));
  }

  /** Sends a request and waits for its reply. */
  ask<T extends MsgType>(type: T, body: Bodies[T]): Promise<Message> {
    return new Promise((resolve, reject) =>
      this.call(type, body, (message) => {
        if (message && !("holders" in message)) resolve(message);
        else if (message) {
          reject(new Error(`Cannot use reply to ${MSG_TYPE_NAMES.get(type)}: Sources`));
        } else {reject(
            new Error(`Cannot get reply to ${MSG_TYPE_NAMES.get(type)}: connection ended`),
          );}
      })
    );
  }

  /**
   * Leaves: with `goodbye`, says Goodbye and waits (bounded) for the server to close first, as a
   * peer shutting down cleanly does; without, drops the connection (a crash or a pulled cable).
   */
  async close(options: { goodbye: boolean }): Promise<void> {
    if (this.#ended) return;
    this.#closedByUs = true;
    if (options.goodbye) {
      this.#enqueue(
        encodeMessage(request(MsgType.Goodbye, 0, { reason: "bench churn" })),
      );
      const timer = Promise.withResolvers<void>();
      const id = setTimeout(timer.resolve, 5000);
      await Promise.race([this.ended, timer.promise]);
      clearTimeout(id);
    }
    this.#end();
  }

  #enqueue(bytes: Uint8Array): void {
    if (this.#ended) return;
    this.#outbox.push(bytes);
    if (this.#writing || this.#flushQueued) return;
    // Everything enqueued while this turn's replies are dispatched goes out in one write.
    this.#flushQueued = true;
    queueMicrotask(() => void this.#flush());
  }

  async #flush(): Promise<void> {
    this.#flushQueued = false;
    this.#writing = true;
    try {
      while (this.#outbox.length > 0 && !this.#ended) {
        const parts = this.#outbox;
        this.#outbox = [];
        await writeAll(this.#conn, parts.length === 1 ? parts[0]! : concat(parts));
      }
    } catch (err) {
      this.#end(`write failed: ${describe(err)}`);
    } finally {
      this.#writing = false;
    }
  }

  async #readLoop(): Promise<void> {
    const buf = new Uint8Array(READ_BYTES);
    let reason = "closed by the server";
    try {
      for (;;) {
        const n = await this.#conn.read(buf);
        if (n === null) {
          this.#decoder.finish();
          break;
        }
        this.#decoder.push(buf.subarray(0, n));
        for (let frame = this.#decoder.next(); frame; frame = this.#decoder.next()) {
          this.#dispatch(decodeReply(frame));
        }
      }
    } catch (err) {
      reason = `read failed: ${describe(err)}`;
    }
    this.#end(reason);
  }

  #dispatch(message: Message | HoldersReply): void {
    if ("holders" in message || message.reply) {
      const handler = this.#waiting.take(message.requestId);
      if (handler === undefined) {
        wire.unmatchedReplies++;
        return;
      }
      handler(message);
      return;
    }
    switch (message.type) {
      case MsgType.Challenge:
        this.challenge.resolve(message.body);
        return;
      case MsgType.Ping:
        wire.pingsAnswered++;
        this.lastPingMs = Date.now();
        wire.maxPingDelayMs = Math.max(
          wire.maxPingDelayMs,
          this.lastPingMs - message.body.sentAtMs,
        );
        this.#enqueue(encodeMessage(reply(MsgType.Pong, message.requestId, message.body)));
        return;
      case MsgType.ListShares:
        this.#enqueue(encodeMessage(reply(MsgType.Shares, message.requestId, { files: [] })));
        return;
      case MsgType.Error:
        wire.serverErrors[message.body.code] = (wire.serverErrors[message.body.code] ?? 0) + 1;
        return;
      default:
        wire.serverErrors[`unexpected ${MSG_TYPE_NAMES.get(message.type)}`] =
          (wire.serverErrors[`unexpected ${MSG_TYPE_NAMES.get(message.type)}`] ?? 0) + 1;
    }
  }

  #end(reason?: string): void {
    if (this.#ended) return;
    this.#ended = true;
    try {
      this.#conn.close();
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource)) throw err;
    }
    for (const handler of this.#waiting.takeAll()) handler(undefined);
    this.challenge.reject(new Error(`Cannot read the challenge: ${reason ?? "ended"}`));
    if (!this.#closedByUs) this.onLost(reason ?? "ended");
    this.#endedSignal.resolve();
  }
}

/**
 * A `Sources` reply as the generator reads it: only how many holders it lists. Parsing a 1.3 KB
 * JSON body per answer cost the generator more CPU than the server spent answering, CPU that
 * the server, on the same two cores, then lacked; wrk does not parse opentracker's answers
 * either. The integration tests check the answers' shape and content.
 */
interface HoldersReply {
  type: MsgType.Sources;
  requestId: number;
  reply: true;
  holders: number;
}

/** A `Sources` reply is counted (see HoldersReply); everything else goes through decodeMessage(). */
function decodeReply(frame: Frame): Message | HoldersReply {
  if (frame.header.type !== MsgType.Sources || (frame.header.flags & FLAG_REPLY) === 0) {
    return decodeMessage(frame);
  }
  return {
    type: MsgType.Sources,
    requestId: frame.header.requestId,
    reply: true,
    holders: countHolders(frame.body),
  };
}

/** A reply's type and body, for error reports. */
function describeReply(message: Message | HoldersReply): string {
  const body = "holders" in message ? { holders: message.holders } : message.body;
  return `${MSG_TYPE_NAMES.get(message.type)} ${JSON.stringify(body)}`;
}

const utf8 = new TextDecoder();
/** A key each source has once, and that no JSON string value contains (its quotes are bare). */
const HOSTNAME_KEY = '"hostname":';

/** How many sources a `Sources` body lists, by counting their hostname keys (1.5 µs, not 6). */
function countHolders(body: Uint8Array): number {
  const text = utf8.decode(body);
  let count = 0;
  for (let at = text.indexOf(HOSTNAME_KEY); at >= 0; at = text.indexOf(HOSTNAME_KEY, at + 1)) {
    count++;
  }
  return count;
}

function concat(parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let id: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    id = setTimeout(() => reject(new Error(`Cannot ${what}: no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(id));
}

/** One simulated peer: a stable identity, and its current session when registered. */
/** What armRestart() reports once every lost peer is back. */
export interface RestartTally {
  /** Peers this process holds. */
  expected: number;
  /** Peers that lost their session and registered again. */
  back: number;
  /** Connection attempts (each a TLS handshake, Challenge, Hello and publishes when it works). */
  attempts: number;
  failedAttempts: number;
  /** Of `back`, those whose entries the index kept (Welcome `kept`): nothing published again. */
  kept: number;
  /** From the first lost session to the last peer registered again (with its publishes), s. */
  secondsSinceFirstLoss: number;
  /** Failed attempts by step and kind (see RegisterError). */
  failures: Record<string, number>;
  firstErrors: string[];
}

interface RestartState {
  expected: number;
  firstLossMs: number | undefined;
  /** Peers still trying to come back. */
  pending: number;
  back: number;
  kept: number;
  attempts: number;
  failedAttempts: number;
  failures: Record<string, number>;
  firstErrors: string[];
  restored: PromiseWithResolvers<RestartTally>;
}

/** The peer's own cap on its reconnect backoff (peer/index_client.ts MAX_BACKOFF_MS). */
const RECONNECT_MAX_BACKOFF_MS = 5000;
/**
 * A reconnecting peer gives up on an attempt as a real one does: its Hello, then its pipelined
 * publishes, each within the index client's 10 s request timeout.
 */
const RECONNECT_REGISTER_TIMEOUT_MS = 20_000;
/** Connect and TLS handshake within the peer's own bound. */
const RECONNECT_CONNECT_TIMEOUT_MS = INDEX_CONNECT_TIMEOUT_MS;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface Peer {
  index: number;
  client: Client | undefined;
  /** In a churn cycle. */
  busy: boolean;
  /**
   * The digest of the entries the index acknowledged, as a real peer keeps it (every file
   * once all were answered `Published`; none before): sent in its Hello.
   */
  digest: string;
}

/** sharesDigest() of nothing published: a peer's digest before its first registration. */
const EMPTY_DIGEST = sharesDigest([]);

/** Counts of publish outcomes and of sessions the server ended on its own. */
const tally = {
  created: 0,
  unchanged: 0,
  updated: 0,
  overwrite: 0,
  conflict: 0,
  lost: 0,
  lostReasons: {} as Record<string, number>,
};

/** The generator: peers, their registration, lookups and churn. */
class Load {
  readonly config: LoadConfig;
  readonly transport: IndexTransport;
  readonly catalogue: Catalogue;
  readonly peers: Peer[];
  readonly #random: () => number;
  /** The device the simulated peers prove. */
  readonly identity: Promise<Identity> = createIdentity();
  #restart: RestartState | undefined;

  constructor(config: LoadConfig, transport: IndexTransport) {
    this.config = config;
    this.transport = transport;
    this.catalogue = new Catalogue(config);
    this.peers = Array.from({ length: config.sessions }, (_, index) => ({
      index,
      client: undefined,
      busy: false,
      digest: EMPTY_DIGEST,
    }));
    this.#random = rng(config.seed);
  }

  randomInt(n: number): number {
    return Math.floor(this.#random() * n);
  }

  /**
   * Connects, says Hello with the digest of what the index acknowledged, and publishes the
   * peer's files (pipelined), as a real peer does: all of them, unless the index kept them.
   *
   * @returns whether the index kept the peer's entries (nothing was published)
   */
  async register(
    peer: Peer,
    timeoutMs = REGISTER_TIMEOUT_MS,
    connectTimeoutMs?: number,
  ): Promise<boolean> {
    let client: Client;
    try {
      client = await Client.open(this.config.port, this.transport, connectTimeoutMs);
    } catch (err) {
      throw new RegisterError("connect", err);
    }
    const sent = peer.digest;
    let step: RegisterStep = "challenge";
    const work = (async () => {
      // One device for every simulated peer (their hostnames differ, so no two conflict); one
      // signature per session, as each real peer makes.
      const challenge = await client.challenge.promise;
      step = "hello";
      const welcome = await client.ask(
        MsgType.Hello,
        await helloBody({
          identity: await this.identity,
          hostname: `bench-${peer.index}`,
          p2pPort: 20_000 + (peer.index % 40_000),
          sharesDigest: sent,
        }, challenge),
      );
      if (welcome.type !== MsgType.Welcome) {
        throw new Error(`Cannot register: got ${MSG_TYPE_NAMES.get(welcome.type)}`);
      }
      // Kept with every file: nothing changed since, nothing to send. (Kept empty: all to send.)
      const kept = welcome.body.kept === true;
      if (kept && sent !== EMPTY_DIGEST) return true;
      // A session not kept starts empty, and the peer's record of it too.
      peer.digest = EMPTY_DIGEST;
      step = "publish";
      await this.#publishAll(client, peer.index);
      peer.digest = this.#fullDigest(peer.index);
      return kept;
    })();
    let kept: boolean;
    try {
      kept = await withTimeout(work, timeoutMs, `register bench-${peer.index}`);
    } catch (err) {
      await client.close({ goodbye: false });
      throw new RegisterError(step, err);
    }
    client.onLost = (reason) => {
      if (peer.client !== client) return;
      peer.client = undefined;
      if (this.#restart) {
        void this.#comeBack(peer, this.#restart);
        return;
      }
      tally.lost++;
      tally.lostReasons[reason] = (tally.lostReasons[reason] ?? 0) + 1;
    };
    peer.client = client;
    return kept;
  }

  /** The digest of every file of peer `i`, all published. */
  #fullDigest(i: number): string {
    const entries = Array.from({ length: this.config.files }, (_, j) => this.catalogue.entry(i, j));
    return sharesDigest(entries);
  }

  /**
   * From now on, a peer whose session the server ends reconnects as a real peer does (the
   * index client's jittered exponential backoff, the pinned certificate, Challenge, Hello
   * proof, then its publishes), instead of counting as lost: for a server restart.
   *
   * @param expected how many of `peers` this process holds (all back: `restored` resolves)
   */
  armRestart(expected: number): void {
    this.#restart = {
      expected,
      firstLossMs: undefined,
      pending: 0,
      back: 0,
      kept: 0,
      attempts: 0,
      failedAttempts: 0,
      failures: {},
      firstErrors: [],
      restored: Promise.withResolvers<RestartTally>(),
    };
  }

  /** Resolves once every peer lost since armRestart() has registered again. */
  get restored(): Promise<RestartTally> {
    if (!this.#restart) throw new Error("Cannot wait for a restart: armRestart() was not called");
    return this.#restart.restored.promise;
  }

  async #comeBack(peer: Peer, restart: RestartState): Promise<void> {
    restart.firstLossMs ??= performance.now();
    restart.pending++;
    for (let attempt = 0;; attempt++) {
      const base = Math.min(RECONNECT_MAX_BACKOFF_MS, 100 * 2 ** attempt);
      await sleep(base / 2 + this.#random() * base / 2);
      restart.attempts++;
      try {
        const kept = await this.register(
          peer,
          RECONNECT_REGISTER_TIMEOUT_MS,
          RECONNECT_CONNECT_TIMEOUT_MS,
        );
        if (kept) restart.kept++;
        break;
      } catch (err) {
        restart.failedAttempts++;
        const kind = err instanceof RegisterError ? err.kind : "other";
        restart.failures[kind] = (restart.failures[kind] ?? 0) + 1;
        if (restart.firstErrors.length < 5) restart.firstErrors.push(describe(err));
      }
    }
    restart.pending--;
    restart.back++;
    // Counting live peers walks them all: only when nobody is still on the way back.
    if (restart.pending === 0 && this.live === restart.expected) {
      const { restored, firstErrors, firstLossMs, ...counts } = restart;
      restored.resolve({
        ...counts,
        secondsSinceFirstLoss: round((performance.now() - firstLossMs!) / 1000),
        firstErrors,
      });
    }
  }

  #publishAll(client: Client, i: number): Promise<void> {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    let left = this.config.files;
    let failure: string | undefined;
    for (let j = 0; j < this.config.files; j++) {
      client.call(MsgType.Publish, this.catalogue.entry(i, j), (message) => {
        if (message === undefined) failure ??= "connection ended";
        else if (message.type === MsgType.Published) tally[message.body.status]++;
        else failure ??= describeReply(message);
        if (--left > 0) return;
        if (failure) reject(new Error(`Cannot publish: ${failure}`));
        else resolve();
      });
    }
    return promise;
  }

  /** Registers the peers from index `from` on, `setupConcurrency` at a time. */
  async setup(from: number): Promise<{ failures: number; firstErrors: string[] }> {
    let next = from;
    let failures = 0;
    const firstErrors: string[] = [];
    const deadline = performance.now() + this.config.setupTimeoutS * 1000;
    const started = performance.now();
    const progress = setInterval(() => {
      const done = this.live;
      const s = (performance.now() - started) / 1000;
      console.error(
        `setup: ${done}/${this.config.sessions} sessions, ${tally.created} entries, ${
          (tally.created / s).toFixed(0)
        } publishes/s`,
      );
    }, 5000);
    const worker = async () => {
      while (next < this.peers.length && performance.now() < deadline) {
        const peer = this.peers[next++]!;
        try {
          await this.register(peer);
        } catch (err) {
          failures++;
          if (firstErrors.length < 5) firstErrors.push(describe(err));
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: this.config.setupConcurrency }, worker));
    } finally {
      clearInterval(progress);
    }
    failures += this.peers.length - next;
    return { failures, firstErrors };
  }

  /** Peers with a session now. */
  get live(): number {
    return this.peers.filter((p) => p.client).length;
  }

  /** The peers that only hold a session (never send lookups): the churn victims. */
  get idlePeers(): Peer[] {
    return this.peers.slice(lookupSessions(this.config));
  }

  /** Ends every session (without Goodbye); returns how many there were. */
  async closeAll(): Promise<number> {
    const clients = this.peers.flatMap((p) => p.client ? [p.client] : []);
    for (const peer of this.peers) peer.client = undefined;
    await Promise.all(clients.map((c) => c.close({ goodbye: false })));
    return clients.length;
  }

  /**
   * Runs who-has (`conns` × `depth` outstanding) and, when `withSearch`, search (`searchConns`
   * × 1) until `seconds` have passed, then waits for the replies still outstanding.
   */
  async lookups(withSearch: boolean): Promise<PhaseResult> {
    // A lookup session the server dropped (already counted as lost) registers again, so that
    // a phase still measures lookups; its loss stays in the report.
    const lookupPeers = this.peers.slice(0, lookupSessions(this.config));
    await Promise.allSettled(lookupPeers.filter((p) => !p.client).map((p) => this.register(p)));
    const whoHas = new Samples();
    const search = new Samples();
    const errors: Record<string, number> = {};
    let sources = 0;
    let emptyAnswers = 0;
    let searchTotal = 0;
    const started = performance.now();
    const deadline = started + this.config.seconds * 1000;
    let outstanding = 0;
    const drained = Promise.withResolvers<void>();
    const fail = (what: string) => {
      errors[what] = (errors[what] ?? 0) + 1;
    };
    const finish = () => {
      if (--outstanding === 0) drained.resolve();
    };

    const askWhoHas = (client: Client) => {
      if (performance.now() >= deadline) return finish();
      const fname = this.catalogue.fname(this.randomInt(this.catalogue.names));
      const t0 = performance.now();
      client.call(MsgType.WhoHas, { fname }, (message) => {
        if (message === undefined) {
          fail("connection ended");
          return finish();
        }
        if (message.type !== MsgType.Sources) {
          fail(`who-has: ${MSG_TYPE_NAMES.get(message.type)} ${JSON.stringify(message.body)}`);
        } else {
          whoHas.add(performance.now() - t0);
          const holders = "holders" in message ? message.holders : message.body.sources.length;
          sources += holders;
          if (holders === 0) emptyAnswers++;
        }
        askWhoHas(client);
      });
    };
    const askSearch = (client: Client) => {
      if (performance.now() >= deadline) return finish();
      // Half look for one file by number (a few hits), half for a word (1/16 of the catalogue).
      const pattern = this.randomInt(2) === 0
        ? String(this.randomInt(this.catalogue.names)).padStart(7, "0")
        : WORDS[this.randomInt(WORDS.length)]!;
      const t0 = performance.now();
      client.call(MsgType.Search, { pattern, offset: 0, limit: 50 }, (message) => {
        if (message === undefined) {
          fail("connection ended");
          return finish();
        }
        if (message.type !== MsgType.SearchResult) {
          fail(`search: ${describeReply(message)}`);
        } else {
          search.add(performance.now() - t0);
          searchTotal += message.body.total;
        }
        askSearch(client);
      });
    };

    for (let c = 0; c < this.config.conns; c++) {
      const client = this.peers[c]?.client;
      if (!client) continue;
      for (let d = 0; d < this.config.depth; d++) {
        outstanding++;
        askWhoHas(client);
      }
    }
    if (withSearch) {
      for (let c = 0; c < this.config.searchConns; c++) {
        const client = this.peers[this.config.conns + c]?.client;
        if (!client) continue;
        outstanding++;
        askSearch(client);
      }
    }
    if (outstanding === 0) {
      fail("no lookup session connected");
      outstanding = 1;
      finish();
    }
    await withTimeout(drained.promise, this.config.seconds * 1000 + 30_000, "drain lookups");
    const seconds = (performance.now() - started) / 1000;
    const w = whoHas.summary();
    const s = search.summary();
    return {
      seconds,
      whoHas: { ...w, perS: w.count / seconds, meanSources: sources / Math.max(1, w.count) },
      emptyAnswers,
      search: { ...s, perS: s.count / seconds, meanTotal: searchTotal / Math.max(1, s.count) },
      errors,
    };
  }
}

/** What one lookup phase measured. */
interface PhaseResult {
  seconds: number;
  whoHas: ReturnType<Samples["summary"]> & { perS: number; meanSources: number };
  /** who-has answers with no source (should stay 0: every name has `replicas` holders). */
  emptyAnswers: number;
  search: ReturnType<Samples["summary"]> & { perS: number; meanTotal: number };
  errors: Record<string, number>;
}

/**
 * This process's own event-loop lag (how late a 100 ms timer fires), so that late pings can be
 * told apart from a busy load generator.
 */
class LoopLag {
  #maxMs = 0;
  readonly #timer: ReturnType<typeof setInterval>;

  constructor() {
    let expected = performance.now() + 100;
    this.#timer = setInterval(() => {
      const now = performance.now();
      this.#maxMs = Math.max(this.#maxMs, now - expected);
      expected = now + 100;
    }, 100);
  }

  /** Largest lag since the previous call, ms. */
  take(): number {
    const max = this.#maxMs;
    this.#maxMs = 0;
    return round(max, 1);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/** Disconnects and reconnects idle sessions at a fixed rate until stopped. */
class Churn {
  readonly #load: Load;
  readonly #inFlight = new Set<Promise<void>>();
  readonly reconnect = new Samples();
  done = 0;
  failed = 0;
  behind = 0;
  goodbyes = 0;
  readonly firstErrors: string[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(load: Load) {
    this.#load = load;
  }

  start(perS: number): void {
    if (perS <= 0) return;
    let budget = 0;
    let last = performance.now();
    this.#timer = setInterval(() => {
      const now = performance.now();
      budget += (now - last) / 1000 * perS;
      last = now;
      for (; budget >= 1; budget--) this.#launch();
    }, 50);
  }

  #launch(): void {
    const idle = this.#load.idlePeers;
    if (this.#inFlight.size >= MAX_CHURN_IN_FLIGHT) {
      this.behind++;
      return;
    }
    // A few tries find a connected, non-busy peer; churn is a small fraction of all sessions.
    for (let tries = 0; tries < 20; tries++) {
      const peer = idle[this.#load.randomInt(idle.length)]!;
      if (peer.busy || !peer.client) continue;
      const cycle = this.#cycle(peer);
      this.#inFlight.add(cycle);
      void cycle.finally(() => this.#inFlight.delete(cycle));
      return;
    }
    this.behind++;
  }

  async #cycle(peer: Peer): Promise<void> {
    peer.busy = true;
    const old = peer.client!;
    peer.client = undefined;
    const t0 = performance.now();
    try {
      const goodbye = this.#load.randomInt(2) === 0;
      if (goodbye) this.goodbyes++;
      await old.close({ goodbye });
      await this.#load.register(peer);
      this.reconnect.add(performance.now() - t0);
      this.done++;
    } catch (err) {
      this.failed++;
      if (this.firstErrors.length < 5) this.firstErrors.push(describe(err));
    } finally {
      peer.busy = false;
    }
  }

  /** Stops launching and waits for the cycles in flight. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.allSettled([...this.#inFlight]);
  }
}

function emit(event: string, fields: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ event, ...fields }));
}

function round(value: number, digits = 3): number {
  return Number.isFinite(value) ? Number(value.toFixed(digits)) : value;
}

function roundAll<T extends object>(value: T): T {
  return JSON.parse(
    JSON.stringify(value, (_, v) => typeof v === "number" ? round(v) : v),
  ) as T;
}

/** How many sessions send lookups: the first peers, `conns` for who-has and `searchConns`. */
function lookupSessions(config: LoadConfig): number {
  return config.conns + config.searchConns;
}

/** The flag that makes a generator process run only the lookup sessions (see LookupProcess). */
const LOOKUPS_ONLY_FLAG = "--lookups-only";

/** What the lookup process reports when its phases are over (merged into the `held` event). */
interface LookupsHeld {
  sessions: number;
  lost: number;
  lostReasons: Record<string, number>;
  publish: { created: number; unchanged: number; updated: number };
  wire: typeof wire;
}

/**
 * The lookup sessions, in a process of their own. With them in this process, the who-has
 * latencies included this process's young-generation collections: with 10,000 idle sessions
 * answering pings and churning, each copied 0.4–1.5 MB and paused 2–7 ms (measured with
 * --trace-gc-nvp), holding up every reply that had arrived. wrk, the reference's client, has
 * no such pauses either. The child ends with this process: the end of its stdin means close.
 */
class LookupProcess {
  readonly #child: Deno.ChildProcess;
  readonly #lines: AsyncIterator<string>;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;

  constructor(args: string[]) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--config",
        new URL("../deno.json", import.meta.url).pathname,
        new URL(import.meta.url).pathname,
        LOOKUPS_ONLY_FLAG,
        ...args,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#lines = readLines(this.#child.stdout)[Symbol.asyncIterator]();
    this.#stdin = this.#child.stdin.getWriter();
  }

  /** Waits (at most `timeoutMs`) for the child's next `event`; throws if it exits first. */
  async event(event: string, timeoutMs: number): Promise<Record<string, unknown>> {
    const next = async () => {
      for (;;) {
        const line = await this.#lines.next();
        if (line.done) throw new Error(`Lookup process exited before "${event}"`);
        const fields = JSON.parse(line.value) as Record<string, unknown>;
        if (fields.event === event) return fields;
      }
    };
    return await withTimeout(next(), timeoutMs, `get "${event}" from the lookup process`);
  }

  /** Sends one command line (see awaitCommands()). */
  async command(line: string): Promise<void> {
    await this.#stdin.write(new TextEncoder().encode(`${line}\n`));
  }

  /** Tells the child to close its sessions, waits for it to exit; returns how many it closed. */
  async close(): Promise<number> {
    await this.#stdin.write(new TextEncoder().encode("close\n"));
    await this.#stdin.close();
    const closed = await this.event("closed", 60_000);
    const status = await withTimeout(this.#child.status, 30_000, "wait for the lookup process");
    if (!status.success) throw new Error(`Lookup process exited with code ${status.code}`);
    return Number(closed.sessions);
  }
}

/**
 * Runs the commands that arrive on stdin until `close` (or the end of input): `restart` arms
 * the reconnects for a server restart (see Load.armRestart()) and calls `onRestart`.
 */
async function awaitCommands(onRestart: () => Promise<void> | void): Promise<void> {
  for await (const line of readLines(Deno.stdin.readable)) {
    const command = line.trim();
    if (command === "close") break;
    if (command === "restart") await onRestart();
  }
}

/**
 * Runs the load: setup, who-has phase, mixed phase (with churn throughout both), then holds the
 * sessions until `close` (or end of input) arrives on stdin, closes them all and exits.
 */
export async function main(args: string[]): Promise<number> {
  const lookupsOnly = args.includes(LOOKUPS_ONLY_FLAG);
  const rest = args.filter((arg) => arg !== LOOKUPS_ONLY_FLAG);
  let config: LoadConfig;
  let transport: IndexTransport;
  try {
    const split = splitTransportArgs(rest);
    config = parseLoadArgs(split.rest);
    transport = await indexTransport(split);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    return 2;
  }
  return lookupsOnly
    ? await runLookups(config, transport)
    : await runHolders(config, transport, rest);
}

/** How the generator reaches the index: TLS pinned to its certificate, or plaintext. */
export type IndexTransport =
  | { plaintext: true }
  | { plaintext: false; pin: { id: string; certPem: string } };

/**
 * Takes `--server-cert PATH` (the index's cert.pem: TLS pinned to it, as peers connect) and
 * `--insecure-plaintext` out of `args`; exactly one is required.
 */
function splitTransportArgs(
  args: string[],
): { rest: string[]; certPath: string | undefined; plaintext: boolean } {
  const rest: string[] = [];
  let certPath: string | undefined;
  let plaintext = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--insecure-plaintext") plaintext = true;
    else if (arg === "--server-cert") certPath = args[++i];
    else if (arg.startsWith("--server-cert=")) certPath = arg.slice("--server-cert=".length);
    else rest.push(arg);
  }
  return { rest, certPath, plaintext };
}

async function indexTransport(
  split: { certPath: string | undefined; plaintext: boolean },
): Promise<IndexTransport> {
  if (split.plaintext === (split.certPath !== undefined)) {
    throw new ConfigError(["give either --server-cert PATH (TLS) or --insecure-plaintext"]);
  }
  if (split.certPath === undefined) return { plaintext: true };
  let certPem: string;
  try {
    certPem = await Deno.readTextFile(split.certPath);
  } catch (err) {
    throw new ConfigError([`--server-cert: cannot read "${split.certPath}": ${err}`]);
  }
  return { plaintext: false, pin: { id: idOfCert(certPem), certPem } };
}

/**
 * The lookup process: registers the lookup sessions, runs the phases as soon as it is ready,
 * reports them, then holds its sessions until told to close.
 */
async function runLookups(config: LoadConfig, transport: IndexTransport): Promise<number> {
  const load = new Load(config, transport);
  const lookupPeers = load.peers.slice(0, lookupSessions(config));
  const registered = await Promise.allSettled(lookupPeers.map((p) => load.register(p)));
  const failed = registered.filter((r) => r.status === "rejected");
  emit("lookups-ready", {
    sessions: load.live,
    entries: tally.created,
    failures: failed.length,
    firstErrors: failed.slice(0, 5).map((r) => describe((r as PromiseRejectedResult).reason)),
  });
  const lag = new LoopLag();
  const names = config.searchConns > 0 ? ["who-has", "mixed"] : ["who-has"];
  for (const name of names) {
    emit("phase-start", { name });
    lag.take();
    const result = await load.lookups(name === "mixed");
    emit("phase-done", { name, ...roundAll(result), loadLagMaxMs: lag.take() });
  }
  lag.stop();
  const held: LookupsHeld = {
    sessions: load.live,
    lost: tally.lost,
    lostReasons: tally.lostReasons,
    publish: { created: tally.created, unchanged: tally.unchanged, updated: tally.updated },
    wire,
  };
  emit("lookups-held", { ...held });
  await awaitCommands(() => {
    load.armRestart(lookupPeers.length);
    emit("restart-armed");
    void load.restored.then((restored) => emit("restored", { ...restored }));
  });
  emit("closed", { sessions: await load.closeAll(), lostSinceHeld: tally.lost });
  return 0;
}

/**
 * The main process: registers every session but the lookup ones, starts the lookup process,
 * relays its phases while churning, then reports the counts of both.
 */
async function runHolders(
  config: LoadConfig,
  transport: IndexTransport,
  args: string[],
): Promise<number> {
  const load = new Load(config, transport);
  emit("setup-start", { config, names: load.catalogue.names });
  const lag = new LoopLag();
  const t0 = performance.now();
  const setup = await load.setup(lookupSessions(config));
  const lookups = new LookupProcess(args);
  const ready = await lookups.event("lookups-ready", REGISTER_TIMEOUT_MS * 2);
  const setupS = (performance.now() - t0) / 1000;
  const sessions = load.live + Number(ready.sessions);
  const entries = tally.created + Number(ready.entries);
  emit("setup-done", {
    seconds: round(setupS),
    sessions,
    entries,
    publishesPerS: round(entries / setupS, 0),
    sessionsPerS: round(sessions / setupS, 0),
    loadLagMaxMs: lag.take(),
    failures: setup.failures + Number(ready.failures),
    firstErrors: [...setup.firstErrors, ...(ready.firstErrors as string[])].slice(0, 5),
  });

  const churn = new Churn(load);
  churn.start(config.churnPerS);
  const names = config.searchConns > 0 ? ["who-has", "mixed"] : ["who-has"];
  const phaseTimeoutMs = (config.seconds + 60) * 1000;
  for (const name of names) {
    const started = await lookups.event("phase-start", phaseTimeoutMs);
    if (started.name !== name) {
      throw new Error(`Lookup process started ${started.name}, not ${name}`);
    }
    emit("phase-start", { name });
    const { event: _, ...done } = await lookups.event("phase-done", phaseTimeoutMs);
    emit("phase-done", { ...done, holderLagMaxMs: lag.take() });
  }
  const other = await lookups.event("lookups-held", phaseTimeoutMs) as unknown as LookupsHeld;
  await churn.stop();
  lag.stop();
  const mine = load.live;
  const held = mine + other.sessions;
  const now = Date.now();
  const pingAges = load.peers.flatMap((p) =>
    p.client && p.client.lastPingMs > 0 ? [now - p.client.lastPingMs] : []
  );
  emit("held", {
    sessions: held,
    entries: held * config.files,
    lost: tally.lost + other.lost,
    lostReasons: sumCounts(tally.lostReasons, other.lostReasons),
    publish: {
      created: tally.created + other.publish.created,
      unchanged: tally.unchanged + other.publish.unchanged,
      updated: tally.updated + other.publish.updated,
    },
    churn: {
      perS: config.churnPerS,
      done: churn.done,
      failed: churn.failed,
      behind: churn.behind,
      goodbyes: churn.goodbyes,
      reconnectMs: roundAll(churn.reconnect.summary()),
      firstErrors: churn.firstErrors,
    },
    wire: {
      pingsAnswered: wire.pingsAnswered + other.wire.pingsAnswered,
      maxPingDelayMs: Math.max(wire.maxPingDelayMs, other.wire.maxPingDelayMs),
      unmatchedReplies: wire.unmatchedReplies + other.wire.unmatchedReplies,
      serverErrors: sumCounts(wire.serverErrors, other.wire.serverErrors),
    },
    // Of the idle sessions (this process's): the lookup sessions are never quiet enough.
    pings: {
      sessionsNeverPinged: mine - pingAges.length,
      oldestLastPingS: round(Math.max(0, ...pingAges) / 1000, 1),
      sessionsNotPingedFor10s: pingAges.filter((age) => age > 10_000).length,
    },
  });

  // Hold every session until the driver has compared counts with the server (and, when it
  // asks, restarted the server: every session then comes back as a real peer's would).
  await awaitCommands(async () => {
    load.armRestart(mine);
    await lookups.command("restart");
    await lookups.event("restart-armed", 30_000);
    emit("restart-armed");
    const restoredThere = lookups.event("restored", RESTART_TIMEOUT_MS);
    void Promise.all([load.restored, restoredThere]).then(([here, there]) => {
      const other = there as unknown as RestartTally;
      emit("restored", {
        expected: here.expected + other.expected,
        back: here.back + other.back,
        kept: here.kept + other.kept,
        attempts: here.attempts + other.attempts,
        failedAttempts: here.failedAttempts + other.failedAttempts,
        failures: sumCounts(here.failures, other.failures),
        secondsSinceFirstLoss: Math.max(here.secondsSinceFirstLoss, other.secondsSinceFirstLoss),
        firstErrors: [...here.firstErrors, ...other.firstErrors].slice(0, 5),
      });
    }, (err) => emit("restore-failed", { error: describe(err) }));
  });
  const [closedHere, closedThere] = await Promise.all([load.closeAll(), lookups.close()]);
  emit("closed", { sessions: closedHere + closedThere, lostSinceHeld: tally.lost });
  return 0;
}

/** Counts by key, of both. */
function sumCounts(
  a: Record<string, number>,
  b: Record<string, number>,
): Record<string, number> {
  const sum = { ...a };
  for (const [key, n] of Object.entries(b)) sum[key] = (sum[key] ?? 0) + n;
  return sum;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
