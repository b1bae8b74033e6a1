// Server-sent events to the UIs: one stream per client, each with a bounded queue. A client
// whose queue passes the bound (it stopped reading) is dropped, never buffered further.

const encoder = new TextEncoder();

/** Options of an EventHub. */
export interface EventHubOptions {
  /** Bytes queued for one client beyond which it is dropped. @default 1 MiB */
  maxQueuedBytes?: number;
  /** ms between keep-alive comments, which also find dead connections. @default 15000 */
  keepAliveMs?: number;
}

interface Client {
  controller: ReadableStreamDefaultController<Uint8Array>;
  queuedBytes: () => number;
}

/** Fans events out to every connected SSE client. */
export class EventHub {
  readonly #clients = new Set<Client>();
  readonly #maxQueuedBytes: number;
  readonly #keepAliveMs: number;
  #keepAlive: ReturnType<typeof setInterval> | undefined;
  /** Clients dropped for not reading, since start. */
  dropped = 0;

  constructor(options: EventHubOptions = {}) {
    this.#maxQueuedBytes = options.maxQueuedBytes ?? 1024 * 1024;
    this.#keepAliveMs = options.keepAliveMs ?? 15_000;
  }

  /** Clients connected now. */
  get size(): number {
    return this.#clients.size;
  }

  /** Opens a stream for one client: the body of a `text/event-stream` response. */
  connect(): ReadableStream<Uint8Array> {
    let client: Client | undefined;
    const strategy = new ByteLengthQueuingStrategy({ highWaterMark: 0 });
    return new ReadableStream<Uint8Array>({
      start: (controller) => {
        client = { controller, queuedBytes: () => -(controller.desiredSize ?? 0) };
        this.#clients.add(client);
        controller.enqueue(encoder.encode(": connected\nretry: 2000\n\n"));
        this.#keepAlive ??= setInterval(() => this.#send(": keep-alive\n\n"), this.#keepAliveMs);
      },
      cancel: () => {
        if (client) this.#remove(client);
      },
    }, strategy);
  }

  /** Sends one event to every client. */
  publish(event: string, data: unknown): void {
    if (this.#clients.size === 0) return;
    this.#send(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** Ends every stream (server closing). */
  close(): void {
    for (const client of [...this.#clients]) {
      this.#remove(client);
      try {
        client.controller.close();
      } catch (err) {
        if (!(err instanceof TypeError)) throw err; // already closed or errored
      }
    }
  }

  #send(text: string): void {
    const bytes = encoder.encode(text);
    for (const client of [...this.#clients]) {
      if (client.queuedBytes() + bytes.length > this.#maxQueuedBytes) {
        this.dropped++;
        this.#remove(client);
        client.controller.error(
          new Error("Cannot keep this event stream: the client stopped reading"),
        );
        continue;
      }
      client.controller.enqueue(bytes);
    }
  }

  #remove(client: Client): void {
    this.#clients.delete(client);
    if (this.#clients.size === 0 && this.#keepAlive !== undefined) {
      clearInterval(this.#keepAlive);
      this.#keepAlive = undefined;
    }
  }
}
