// Raw loopback clients for the attack suite: any bytes written as they are (see _frames.ts for
// valid ones), frames read through the project's FramedConn, every read with a time bound.
import { connectFrom } from "./_bound_conn.ts";
import { ProtocolError } from "../shared/errors.ts";
import { type ByteConn, FramedConn, writeAll } from "../shared/framing.ts";
import { encodeMessage, request } from "../shared/encode.ts";
import { helloBody } from "../shared/handshake.ts";
import { createIdentity, type Identity } from "../shared/identity.ts";
import { type Message, MsgType } from "../shared/protocol.ts";

let attacker: Promise<Identity> | undefined;

/** The suite's one device: attacks target limits and parsing, not identities. */
function attackerIdentity(): Promise<Identity> {
  return attacker ??= createIdentity();
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

  private constructor(conn: ByteConn) {
    this.conn = conn;
    this.framed = new FramedConn(conn);
  }

  /** Connects to `port` on loopback, from `options.from` if given. */
  static async connect(port: number, options: ConnectOptions = {}): Promise<WireClient> {
    const timeoutMs = options.timeoutMs ?? 2000;
    if (options.from !== undefined) {
      return new WireClient(await connectFrom(options.from, LOOPBACK, port, timeoutMs));
    }
    const conn = await Deno.connect({
      hostname: LOOPBACK,
      port,
      signal: AbortSignal.timeout(timeoutMs),
    });
    return new WireClient(conn);
  }

  /** Writes `bytes` as they are. @returns false when the other side has closed */
  /**
   * A Hello frame (request id 1) answering this connection's Challenge, read first (within
   * `timeoutMs`): protocol 2 needs it before any request can register.
   *
   * @throws {Error} when no Challenge came
   */
  async helloFrame(hostname: string, p2pPort: number, timeoutMs = 5000): Promise<Uint8Array> {
    const outcome = await this.until((m) => m.type === MsgType.Challenge, timeoutMs);
    if (outcome.kind !== "message" || outcome.message.type !== MsgType.Challenge) {
      throw new Error(`Cannot say Hello: no Challenge (${describeOutcome(outcome)})`);
    }
    const body = await helloBody(
      { identity: await attackerIdentity(), hostname, p2pPort },
      outcome.message.body,
    );
    return encodeMessage(request(MsgType.Hello, 1, body));
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
