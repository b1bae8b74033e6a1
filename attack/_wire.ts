// Raw loopback clients for the attack suite: any bytes written as they are (see _frames.ts for
// valid ones), frames read through the project's FramedConn, every read with a time bound.
import { connectFrom, connectTlsFrom, type Pin } from "./_bound_conn.ts";
import { ProtocolError } from "../shared/errors.ts";
import { type ByteConn, FramedConn, writeAll } from "../shared/framing.ts";
import { encodeMessage, request } from "../shared/encode.ts";
import { helloBody } from "../shared/handshake.ts";
import { createIdentity, type Identity, sign } from "../shared/identity.ts";
import { type Bodies, type Message, MsgType, type Ticket } from "../shared/protocol.ts";
import { fetchStatement } from "../shared/statements.ts";

let attacker: Promise<Identity> | undefined;

/** The suite's one device: attacks target limits and parsing, not identities. */
function attackerIdentity(): Promise<Identity> {
  return attacker ??= createIdentity();
}

/**
 * The programs under attack, by TCP port (the server's index port, each peer's P2P port): a
 * connection to one of them speaks TLS pinned to its certificate, as the programs do. A port
 * not listed (a program run with --insecure-plaintext) is spoken to in plaintext.
 */
const pins = new Map<number, Pin>();
/** For each peer's P2P port, the index port whose tickets it accepts (the one it registered with). */
const indexOfPeer = new Map<number, number>();
/** The attacker's ticket from each index port, asked for once and renewed near its expiry. */
const tickets = new Map<number, Promise<Ticket>>();
/** A ticket with less than this left is renewed, ms (tickets last 10 minutes). */
const TICKET_MARGIN_MS = 120_000;

/** Makes connections to `port` speak TLS pinned to `program`'s certificate. */
export function trustProgram(port: number, program: { id: string; certPem: string }): void {
  pins.set(port, { id: program.id, certPem: program.certPem });
}

/** Says which index the peer listening on `p2pPort` registered with (for the attacker's ticket). */
export function registeredWith(p2pPort: number, indexPort: number): void {
  indexOfPeer.set(p2pPort, indexPort);
}

/** Forgets a program's port (its Lab is gone; the port may be reused). */
export function forgetPort(port: number): void {
  pins.delete(port);
  indexOfPeer.delete(port);
  tickets.delete(port);
}

/** The attacker's ticket from the index at `indexPort`: one registration, then reused. */
function ticketFrom(indexPort: number): Promise<Ticket> {
  const cached = tickets.get(indexPort);
  const fresh = cached?.then((t) => t.expiresAtMs - Date.now() > TICKET_MARGIN_MS, () => false);
  const ticket = (async () => {
    if (cached && await fresh) return await cached;
    using client = await WireClient.connect(indexPort, { from: probeAddress(1999) });
    await client.write(await client.helloFrame("attack-ticket-holder", 9));
    const outcome = await client.until((m) => m.requestId === 1, 5000);
    if (outcome.kind !== "message" || outcome.message.type !== MsgType.Welcome) {
      throw new Error(`Cannot get the attacker's ticket: ${describeOutcome(outcome)}`);
    }
    return outcome.message.body.ticket;
  })();
  tickets.set(indexPort, ticket);
  return ticket;
}

/** A connection on which no Challenge came: refused (Error), closed, or silent. */
export class NoChallengeError extends Error {
  /** @param message "Cannot <action>: no Challenge (<what came instead>)" */
  constructor(message: string) {
    super(message);
    this.name = "NoChallengeError";
  }
}

/** The only address the suite connects to. */
export const LOOPBACK = "127.0.0.1";

/**
 * The loopback source address of simulated LAN host `n` (127.77.x.y, 62,500 of them), for
 * attacks spread over many hosts and for probes that must not share an attacker's address.
 */
export function hostAddress(n: number): string {
  return `127.77.${Math.floor(n / 250) % 250 + 1}.${n % 250 + 1}`;
}

/** The source address of clean client `n` (health probes, checkers): no attacker uses it. */
export function probeAddress(n: number): string {
  return hostAddress(60_000 + n % 2000);
}

/** Options for `WireClient.connect`. */
export interface ConnectOptions {
  /** @default 2000 */
  timeoutMs?: number;
  /** Loopback source address (see hostAddress()); default: the system's choice, 127.0.0.1. */
  from?: string;
}

/** How a bounded read ended. */
export type ReadOutcome =
  | { kind: "message"; message: Message }
  | { kind: "closed"; reason: string }
  | { kind: "timeout" };

/** "Sources", "Error busy", "closed (reason)" or "no answer": a read's outcome in figures. */
export function describeOutcome(outcome: ReadOutcome): string {
  if (outcome.kind === "timeout") return "no answer";
  if (outcome.kind === "closed") return `closed (${outcome.reason})`;
  const { message } = outcome;
  return message.type === MsgType.Error ? `Error ${message.body.code}` : MsgType[message.type];
}

/** Text of an error, for figures. */
export function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/**
 * A TCP client of a lanshare process on loopback. Reads frames through the project's
 * FramedConn; a read that times out stays pending and is taken up by the next read.
 */
export class WireClient implements Disposable {
  readonly conn: ByteConn;
  readonly framed: FramedConn;
  #pendingRead: Promise<ReadOutcome> | undefined;

  /** The port connected to: which program, and (for a peer) which index vouches for it. */
  readonly port: number;

  private constructor(conn: ByteConn, port: number) {
    this.conn = conn;
    this.port = port;
    this.framed = new FramedConn(conn);
  }

  /**
   * Connects to `port` on loopback, from `options.from` if given: over TLS pinned to the
   * program's certificate when it is a trusted program (see trustProgram()), else plain TCP.
   */
  static async connect(port: number, options: ConnectOptions = {}): Promise<WireClient> {
    const timeoutMs = options.timeoutMs ?? 2000;
    const pin = pins.get(port);
    if (pin !== undefined) {
      return new WireClient(
        await connectTlsFrom(options.from, LOOPBACK, port, pin, timeoutMs),
        port,
      );
    }
    if (options.from !== undefined) {
      return new WireClient(await connectFrom(options.from, LOOPBACK, port, timeoutMs), port);
    }
    const conn = await Deno.connect({
      hostname: LOOPBACK,
      port,
      signal: AbortSignal.timeout(timeoutMs),
    });
    return new WireClient(conn, port);
  }

  /** Writes `bytes` as they are. @returns false when the other side has closed */
  /**
   * A Hello frame (request id 1) answering this connection's Challenge, read first (within
   * `timeoutMs`): protocol 2 needs it before any request can register.
   *
   * @throws {Error} when no Challenge came
   */
  async helloFrame(hostname: string, p2pPort: number, timeoutMs = 5000): Promise<Uint8Array> {
    return encodeMessage(await this.helloMessage(hostname, p2pPort, timeoutMs));
  }

  /** The Hello of helloFrame(), as a message (for mutating it). */
  async helloMessage(hostname: string, p2pPort: number, timeoutMs = 5000): Promise<Message> {
    const challenge = await this.#challenge("say Hello", timeoutMs);
    const body = await helloBody(
      { identity: await attackerIdentity(), hostname, p2pPort },
      challenge,
    );
    return request(MsgType.Hello, 1, body);
  }

  /**
   * A GetInfo frame (request id 1) that a peer's P2P port serves: it answers this connection's
   * Challenge with the attacker's proof and a ticket of the index the peer registered with.
   *
   * @throws {Error} when no Challenge came or the index gave no ticket
   */
  async getInfoFrame(
    body: { fname: string; from?: string; rootHash?: string },
    timeoutMs = 5000,
  ): Promise<Uint8Array> {
    return encodeMessage(await this.getInfoMessage(body, timeoutMs));
  }

  /** The GetInfo of getInfoFrame(), as a message (for mutating it). */
  async getInfoMessage(
    body: { fname: string; from?: string; rootHash?: string },
    timeoutMs = 5000,
  ): Promise<Message> {
    const challenge = await this.#challenge("ask for Info", timeoutMs);
    const indexPort = indexOfPeer.get(this.port);
    if (indexPort === undefined) {
      throw new Error(`Cannot ask for Info: no index known for port ${this.port}`);
    }
    const identity = await attackerIdentity();
    const proof = await sign(identity, fetchStatement(challenge.nonce, challenge.id, identity.id));
    return request(MsgType.GetInfo, 1, {
      ...body,
      id: identity.id,
      ticket: await ticketFrom(indexPort),
      proof: proof.toBase64(),
    });
  }

  /**
   * Reads this connection's Challenge (the accepting side's first frame).
   *
   * @throws {NoChallengeError} when the other side refused (an Error), closed or stayed silent
   */
  async #challenge(action: string, timeoutMs: number): Promise<Bodies[MsgType.Challenge]> {
    let refusal: Message | undefined;
    const outcome = await this.until(
      (m) => m.type === MsgType.Challenge,
      timeoutMs,
      (m) => refusal ??= m.type === MsgType.Error ? m : undefined,
    );
    if (outcome.kind !== "message" || outcome.message.type !== MsgType.Challenge) {
      const why = refusal ? describeOutcome({ kind: "message", message: refusal }) : "";
      throw new NoChallengeError(
        `Cannot ${action}: no Challenge (${why ? `${why}, then ` : ""}${describeOutcome(outcome)})`,
      );
    }
    return outcome.message.body;
  }

  async write(bytes: Uint8Array): Promise<boolean> {
    try {
      await writeAll(this.conn, bytes);
      return true;
    } catch (err) {
      if (isGone(err)) return false;
      throw err;
    }
  }

  /** Reads the next message, or tells that the connection closed or nothing came in time. */
  async read(timeoutMs: number): Promise<ReadOutcome> {
    this.#pendingRead ??= this.framed.readMessage().then(
      (message): ReadOutcome =>
        message === null
          ? { kind: "closed", reason: "end of stream" }
          : { kind: "message", message },
      (err): ReadOutcome => {
        if (err instanceof ProtocolError || isGone(err)) {
          return { kind: "closed", reason: errorText(err) };
        }
        throw err;
      },
    );
    const reading = this.#pendingRead;
    const outcome = await withinMs(reading, timeoutMs);
    if (outcome !== undefined) this.#pendingRead = undefined;
    return outcome ?? { kind: "timeout" };
  }

  /**
   * Reads until a message satisfies `match`, the connection closes, or `timeoutMs` passes;
   * messages that do not match are handed to `skipped`.
   */
  async until(
    match: (message: Message) => boolean,
    timeoutMs: number,
    skipped?: (message: Message) => void,
  ): Promise<ReadOutcome> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) return { kind: "timeout" };
      const outcome = await this.read(left);
      if (outcome.kind !== "message" || match(outcome.message)) return outcome;
      skipped?.(outcome.message);
    }
  }

  /**
   * Reads exactly `length` raw bytes (a Data payload), or undefined when the connection ends
   * or they do not come within `timeoutMs`.
   */
  async readRaw(length: number, timeoutMs: number): Promise<Uint8Array | undefined> {
    const target = new Uint8Array(length);
    const reading = this.framed.readRawInto(target).then(() => true, (err) => {
      if (err instanceof ProtocolError || isGone(err)) return false;
      throw err;
    });
    const ok = await withinMs(reading, timeoutMs);
    if (ok === undefined) this.close(); // the raw read cannot be resumed: give up the stream
    return ok ? target : undefined;
  }

  /** Closes the connection; idempotent. */
  close(): void {
    this.framed.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Whether an I/O error means the other side (or our own close) ended the connection. */
export function isGone(err: unknown): boolean {
  return err instanceof Deno.errors.BrokenPipe || err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.ConnectionAborted || err instanceof Deno.errors.BadResource ||
    err instanceof Deno.errors.Interrupted || err instanceof Deno.errors.NotConnected;
}

/** The value of `promise` if it settles within `ms`, else undefined; never leaves a timer. */
export async function withinMs<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves after `ms`: pacing of load loops and sampling only, never synchronisation. */
export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
