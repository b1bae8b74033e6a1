// Request/reply over one framed connection, used on both ends of a peer↔server session.
// Replies are matched to requests by id; incoming requests go to a handler in arrival order,
// one at a time unless the handler is safe to run concurrently, while replies keep flowing (so
// a handler never blocks a pending request). Liveness (when to ping, when to give up) is not
// decided here: `onReceive` tells whoever keeps that account that a frame arrived.
import { ProtocolError, RemoteError } from "./errors.ts";
import { logger } from "./log.ts";
import { reply, request } from "./encode.ts";
import type { FramedConn } from "./framing.ts";
import {
  type Bodies,
  type ErrorCode,
  type Message,
  type MessageOf,
  MSG_TYPE_NAMES,
  MsgType,
} from "./protocol.ts";

const log = logger("rpc");

/** Requests read but not yet answered on one connection before reading pauses. */
const MAX_QUEUED_REQUESTS = 64;

/** Reply bytes waiting for the socket on one connection before handling waits for them. */
const MAX_UNWRITTEN_REPLY_BYTES = 256 * 1024;

/** A request that fails on its own: answered with an `Error` reply; the connection stays. */
export class RequestError extends Error {
  /** Code sent in the `Error` reply. */
  readonly code: ErrorCode;

  /**
   * @param code code sent to the requester
   * @param message text sent to the requester
   */
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = "RequestError";
    this.code = code;
  }
}

/** What a handler answers: a reply body of some type, or nothing (for one-way messages). */
export type HandlerResult = { [T in MsgType]: { type: T; body: Bodies[T] } }[MsgType] | undefined;

/** Handles one incoming request. Throw RequestError to fail it, ProtocolError to end the session. */
export type RequestHandler = (message: Message) => Promise<HandlerResult> | HandlerResult;

/** Options for `RpcConn`. */
export interface RpcOptions {
  /** Name used in error messages, e.g. the other side's address. */
  label: string;
  /**
   * Start each request's handler as soon as the request is read, without waiting for the
   * earlier ones to finish; replies then go out as they are ready. Only for handlers whose
   * effects happen in call order, before their first `await`. @default false
   */
  concurrent?: boolean;
  /** Called for every frame received (a sign of life), before it is handled. */
  onReceive?: () => void;
}

interface Pending {
  resolve(message: Message): void;
  reject(err: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** One connection carrying requests both ways. Create, then `await run()` until it ends. */
export class RpcConn {
  readonly framed: FramedConn;
  readonly #handler: RequestHandler;
  readonly #label: string;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #handling: Promise<void> = Promise.resolve();
  #queuedRequests = 0;
  readonly #concurrent: boolean;
  /** Handlers running (concurrent mode). */
  readonly #inFlight = new Set<Promise<void>>();
  #ended: Error | undefined;
  readonly #onReceive: (() => void) | undefined;

  /**
   * @param framed the connection
   * @param handler called for each incoming request, in order
   */
  constructor(framed: FramedConn, handler: RequestHandler, options: RpcOptions) {
    this.framed = framed;
    this.#handler = handler;
    this.#label = options.label;
    this.#concurrent = options.concurrent ?? false;
    this.#onReceive = options.onReceive;
  }

  /**
   * Sends a request and waits for its reply.
   *
   * @throws {RemoteError} when the other side answers with `Error`
   * @throws {Error} on timeout or when the connection ends first
   */
  async request<T extends MsgType>(
    type: T,
    body: Bodies[T],
    timeoutMs: number,
  ): Promise<Message> {
    if (this.#ended) throw this.#ended;
    const requestId = this.#takeRequestId();
    const answer = new Promise<Message>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(requestId);
        reject(
          new Error(
            `Cannot get reply to ${
              MSG_TYPE_NAMES.get(type)
            } from ${this.#label}: no answer in ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.#pending.set(requestId, { resolve, reject, timer });
    });
    // Not awaited: the answer's timeout must run (and be handled) even while the send is stuck
    // behind a peer that stopped reading.
    this.framed.send(request(type, requestId, body)).catch((err) =>
      this.#settle(requestId)?.reject(err instanceof Error ? err : new Error(String(err)))
    );
    const message = await answer;
    if (message.type === MsgType.Error) {
      throw new RemoteError(message.body.code, message.body.message);
    }
    return message;
  }

  /**
   * Sends a request and forgets it: its reply, if any, is ignored when it arrives (a liveness
   * `Ping`, whose `Pong` only matters as a sign of life). Cheaper than `request()` (no promise,
   * no timer), which matters at thousands of sessions.
   *
   * @param written called once the request has reached the socket
   * @returns false when the connection has ended and nothing was sent
   */
  post<T extends MsgType>(type: T, body: Bodies[T], written?: () => void): boolean {
    if (this.#ended) return false;
    this.framed.post(request(type, this.#takeRequestId(), body), written);
    return true;
  }

  #takeRequestId(): number {
    const requestId = this.#nextId;
    this.#nextId = this.#nextId >= 0xffffffff ? 1 : this.#nextId + 1;
    return requestId;
  }

  /** Sends a message that expects no reply (e.g. `Goodbye`). */
  notify<T extends MsgType>(type: T, body: Bodies[T]): Promise<void> {
    return this.framed.send(request(type, 0, body));
  }

  #settle(requestId: number): Pending | undefined {
    const pending = this.#pending.get(requestId);
    if (pending) {
      clearTimeout(pending.timer);
      this.#pending.delete(requestId);
    }
    return pending;
  }

  /**
   * Reads until the other side closes. Resolves on a clean end; rejects with ProtocolError on
   * bad input, after telling the other side why with an `Error` frame. Either way it settles
   * only once every handler it started has settled, so that whatever a handler does (e.g.
   * registering a session) has happened before the caller cleans up after the connection.
   */
  async run(): Promise<void> {
    try {
      for (;;) {
        // Messages already buffered first; else one read (fill(), not readMessage(): fewer
        // objects held while an idle session waits).
        const message = this.framed.bufferedMessage();
        if (message === undefined) {
          if (await this.framed.fill()) continue;
          break;
        }
        this.#onReceive?.();
        // An Error with request id 0 is about the connection, not a request: hand it on.
        if (message.reply && !(message.type === MsgType.Error && message.requestId === 0)) {
          this.#settle(message.requestId)?.resolve(message);
          continue;
        }
        // Back-pressure: a peer that sends requests faster than it reads replies stops being
        // read until the backlog drains, instead of growing our memory without bound.
        if (this.#concurrent) {
          // A handler that answers at once needs no bookkeeping; only pending ones are tracked.
          const pending = this.#handle(message);
          if (pending === undefined) continue;
          const handled: Promise<void> = pending.finally(() => this.#inFlight.delete(handled));
          this.#inFlight.add(handled);
          if (this.#inFlight.size >= MAX_QUEUED_REQUESTS) await Promise.race(this.#inFlight);
          continue;
        }
        this.#queuedRequests++;
        this.#handling = this.#handling.then(() => this.#handle(message)).finally(() =>
          this.#queuedRequests--
        );
        if (this.#queuedRequests >= MAX_QUEUED_REQUESTS) await this.#handling;
      }
      await this.#handling;
      await Promise.all(this.#inFlight);
    } catch (err) {
      if (err instanceof ProtocolError) await this.#sendError(0, err.code, err.message);
      this.#end(err instanceof Error ? err : new Error(String(err)));
      // Handlers never reject (#handle turns failures into Error replies), but settle anyway.
      await Promise.allSettled([this.#handling, ...this.#inFlight]);
      throw err;
    }
    this.#end(new Error(`Cannot send to ${this.#label}: connection closed`));
  }

  /**
   * Runs the handler for one request and sends its reply. Returns undefined when all of that
   * happened now (a handler that answers synchronously, as the in-memory index does for
   * lookups: no promise per request), else a promise that settles when it has.
   */
  #handle(message: Message): Promise<void> | undefined {
    if (this.#ended) return undefined;
    let result: Promise<HandlerResult> | HandlerResult;
    try {
      result = this.#handler(message);
    } catch (err) {
      return this.#fail(message, err);
    }
    if (result instanceof Promise) {
      return result.then(
        (answer) => this.#reply(message, answer),
        (err) => this.#fail(message, err),
      );
    }
    return this.#reply(message, result);
  }

  /** Sends a handler's answer; returns a promise only when the other side is not reading. */
  #reply(message: Message, result: HandlerResult): Promise<void> | undefined {
    if (result === undefined || this.#ended) return undefined;
    const answer = reply(result.type, message.requestId, result.body);
    try {
      // The next request need not wait for this reply's write (replies queued meanwhile go
      // out in one write), unless the other side has stopped reading and replies pile up.
      if (this.framed.queuedBytes <= MAX_UNWRITTEN_REPLY_BYTES) {
        this.framed.post(answer);
        return undefined;
      }
      return this.framed.send(answer).catch(() => {}); // a failed write ends the connection
    } catch (err) {
      // Encoding throws RangeError for a reply over the frame limit: a bug of the handler
      // that built it, which must fail this request, never escape the read loop.
      if (!(err instanceof RangeError)) throw err;
      return this.#fail(message, err);
    }
  }

  /** Answers a failed request with an Error reply, and ends the connection on a ProtocolError. */
  async #fail(message: Message, err: unknown): Promise<void> {
    if (err instanceof RequestError) {
      await this.#sendError(message.requestId, err.code, err.message);
      return;
    }
    if (err instanceof ProtocolError) {
      await this.#sendError(message.requestId, err.code, err.message);
      this.#end(err);
      this.framed.close();
      return;
    }
    // Anything else (a store failure, a bug) fails this request only, and is logged.
    const text = err instanceof Error ? err.message : String(err);
    log.error("Request {type} from {label} failed: {error}", {
      type: MSG_TYPE_NAMES.get(message.type),
      label: this.#label,
      error: err instanceof Error ? (err.stack ?? text) : text,
    });
    await this.#sendError(message.requestId, "internal", `Cannot handle request: ${text}`);
  }

  async #sendError(requestId: number, code: ErrorCode, message: string): Promise<void> {
    try {
      await this.framed.send(reply(MsgType.Error, requestId, { code, message }));
    } catch {
      // The connection is already gone; the caller reports the original error.
    }
  }

  #end(reason: Error): void {
    if (this.#ended) return;
    this.#ended = reason;
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer);
      this.#pending.delete(id);
      pending.reject(reason);
    }
  }

  /** Closes the connection; pending requests fail. */
  close(reason = "closed locally"): void {
    this.#end(new Error(`Cannot send to ${this.#label}: ${reason}`));
    this.framed.close();
  }
}

/** Narrows a reply to the expected type. @throws {ProtocolError} unexpected, otherwise */
export function expectType<T extends MsgType>(message: Message, type: T): MessageOf<T> {
  if (message.type !== type) {
    throw new ProtocolError(
      "unexpected",
      `Cannot use reply: expected ${MSG_TYPE_NAMES.get(type)}, got ${
        MSG_TYPE_NAMES.get(message.type)
      }`,
    );
  }
  return message as MessageOf<T>;
}
