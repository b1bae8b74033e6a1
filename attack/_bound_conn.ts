// A TCP connection from a chosen loopback source address (127.x.y.z): Deno.connect cannot bind
// a local address, node:net can. Lets one machine play many LAN hosts, so that per-address
// limits of the processes under attack neither hide a defect nor refuse the health probes.
// Speaks the ByteConn interface of shared/framing.ts, with Deno's errors for a gone peer.
import net from "node:net";
import nodeTls from "node:tls";
import type { ByteConn } from "../shared/framing.ts";
import { idOfCert, shortId } from "../shared/identity.ts";
import { pemOfDer } from "../shared/beacon.ts";

/** Incoming bytes held before the socket is paused (the reader is slower than the sender). */
const HIGH_WATER_BYTES = 1024 * 1024;

/** Connects from `localAddress` to `hostname:port` within `timeoutMs`. */
export function connectFrom(
  localAddress: string,
  hostname: string,
  port: number,
  timeoutMs: number,
): Promise<BoundConn> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port, localAddress });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Deno.errors.TimedOut(
          `Cannot connect to ${hostname}:${port}: no answer in ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      resolve(new BoundConn(socket));
    });
    socket.once("error", (err) => {
      clearTimeout(timer);
      reject(translate(err));
    });
  });
}

/** The certificate a TLS connection must meet: the device that program runs as. */
export interface Pin {
  id: string;
  certPem: string;
}

/**
 * Connects from `localAddress` (or the system's choice) to `hostname:port` and runs a TLS 1.3
 * handshake pinned to `pin`, within `timeoutMs`, as the programs connect to each other.
 * node:tls is used because only node:net binds a source address; the chain is not checked
 * (certificates are self-signed), the presented certificate's key is: the handshake proves the
 * other side holds it, and it must be the pinned device's.
 */
export function connectTlsFrom(
  localAddress: string | undefined,
  hostname: string,
  port: number,
  pin: Pin,
  timeoutMs: number,
): Promise<BoundConn> {
  return new Promise((resolve, reject) => {
    const socket = nodeTls.connect({
      host: hostname,
      port,
      ...(localAddress === undefined ? {} : { localAddress }),
      minVersion: "TLSv1.3",
      rejectUnauthorized: false,
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Deno.errors.TimedOut(
          `Cannot connect to ${hostname}:${port}: no TLS handshake in ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    socket.once("secureConnect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      const presented = idOfCert(pemOfDer(new Uint8Array(socket.getPeerCertificate(true).raw)));
      if (presented !== pin.id) {
        socket.destroy();
        reject(
          new Error(
            `Cannot connect to ${hostname}:${port}: it presents device ${
              shortId(presented)
            }, not the pinned ${shortId(pin.id)}`,
          ),
        );
        return;
      }
      resolve(new BoundConn(socket));
    });
    socket.once("error", (err) => {
      clearTimeout(timer);
      reject(translate(err));
    });
  });
}

/** A node:net socket seen as a ByteConn. */
export class BoundConn implements ByteConn {
  readonly #socket: net.Socket;
  readonly #chunks: Uint8Array[] = [];
  #bufferedBytes = 0;
  #ended = false;
  #error: Error | undefined;
  #waiting: (() => void) | undefined;

  constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on("data", (data: Uint8Array) => {
      this.#chunks.push(data);
      this.#bufferedBytes += data.length;
      if (this.#bufferedBytes > HIGH_WATER_BYTES) socket.pause();
      this.#wake();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#wake();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#wake();
    });
    socket.on("error", (err) => {
      this.#error = translate(err);
      this.#wake();
    });
  }

  #wake(): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.();
  }

  /** Reads into `p`: the byte count, or null at the end of the stream. */
  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#error) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#waiting = resolve);
    }
    let filled = 0;
    while (filled < p.length && this.#chunks.length > 0) {
      const chunk = this.#chunks[0]!;
      const n = Math.min(chunk.length, p.length - filled);
      p.set(chunk.subarray(0, n), filled);
      filled += n;
      if (n === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(n);
    }
    this.#bufferedBytes -= filled;
    if (this.#bufferedBytes <= HIGH_WATER_BYTES && this.#socket.isPaused()) this.#socket.resume();
    return filled;
  }

  /** Writes all of `p` (node buffers it), resolving once it is handed to the kernel. */
  write(p: Uint8Array): Promise<number> {
    if (this.#error) return Promise.reject(this.#error);
    if (this.#socket.destroyed) return Promise.reject(new Deno.errors.BadResource("closed"));
    return new Promise((resolve, reject) => {
      this.#socket.write(p, (err) => err ? reject(translate(err)) : resolve(p.length));
    });
  }

  /** Closes at once (no graceful shutdown), as a vanished host would. */
  close(): void {
    this.#socket.destroy();
    this.#ended = true;
    this.#wake();
  }
}

/** node's socket errors as the Deno errors the framing code understands. */
function translate(err: Error): Error {
  const code = (err as Error & { code?: string }).code;
  if (code === "ECONNRESET") return new Deno.errors.ConnectionReset(err.message);
  if (code === "EPIPE") return new Deno.errors.BrokenPipe(err.message);
  if (code === "ECONNREFUSED") return new Deno.errors.ConnectionRefused(err.message);
  if (code === "ERR_STREAM_DESTROYED") return new Deno.errors.BadResource(err.message);
  return err;
}
