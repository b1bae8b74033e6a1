// Every TCP connection of lanshare (peer↔index, fetcher↔source) goes through here: TLS 1.3 with
// the accepting side's certificate pinned exactly by the connecting side, or plaintext when the
// program was started with --insecure-plaintext. Knows nothing of frames or messages.
//
// Deno's TLS API shows neither side the other's certificate, and the accepting side cannot ask
// for a client certificate: the connector must hold the acceptor's certificate before it
// connects (from a signed announce, or from the index for a source), and the acceptor learns
// who connected inside the protocol. A mismatch of modes is told apart from other failures by
// the first byte: a TLS record starts with 0x16 (handshake) or 0x15 (alert), a frame with "L".
import * as nodeTls from "node:tls";
import { pemOfDer } from "./beacon.ts";
import type { ByteConn } from "./framing.ts";
import { idOfCert, shortId, tlsName } from "./identity.ts";

/** First byte of a TLS handshake record. */
const TLS_HANDSHAKE = 0x16;
/** First byte of a TLS alert record. */
const TLS_ALERT = 0x15;
/** A TLS handshake that has not finished in this long is abandoned, ms. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

/** A connection as the protocol code sees it, over TLS or not. */
export interface TransportConn extends ByteConn {
  readonly remoteAddr: Deno.NetAddr;
  closeWrite(): Promise<void>;
}

/** How a program's TCP connections are carried. */
export type TransportMode =
  | { plaintext: true }
  | { plaintext: false; certPem: string; keyPem: string };

/** A connection that failed for a reason of transport (TLS, pinning, mode mismatch). */
export class TransportError extends Error {
  /** @param message what could not be done, and what to do about it */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TransportError";
  }
}

/** Binds a listener for `mode`: TLS with this program's certificate, or plain TCP. */
export function listenTransport(
  address: { hostname: string; port: number },
  mode: TransportMode,
): Deno.Listener<Deno.TcpConn> | Deno.TlsListener {
  if (mode.plaintext) return Deno.listen(address);
  return Deno.listenTls({ ...address, cert: mode.certPem, key: mode.keyPem });
}

/**
 * Readies an accepted connection: completes the TLS handshake, or in plaintext mode watches
 * the first byte for a TLS client. Never rejects.
 *
 * @param onMismatch told (once) why the connection is dropped, for the program's log
 * @returns the connection, or undefined when it was closed (failed handshake, TLS client)
 */
export async function acceptedConn(
  conn: Deno.Conn,
  plaintext: boolean,
  onMismatch: (problem: string) => void,
): Promise<TransportConn | undefined> {
  const remote = conn.remoteAddr as Deno.NetAddr;
  const label = `${remote.hostname}:${remote.port}`;
  if (plaintext) {
    return new SniffedConn(conn as Deno.TcpConn, (first) => {
      if (first !== TLS_HANDSHAKE) return undefined;
      const problem = `a TLS client connected from ${label}, but this program runs with ` +
        `--insecure-plaintext; closed (start both sides with --insecure-plaintext, or neither)`;
      onMismatch(problem);
      return new TransportError(problem);
    });
  }
  const tls = conn as Deno.TlsConn;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    closeQuietly(tls);
  }, HANDSHAKE_TIMEOUT_MS);
  try {
    await tls.handshake();
    return tls;
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    // A plaintext lanshare connector sends nothing: it waits for the acceptor's Challenge
    // (protocol 2), so it shows as a handshake that never starts, not as bad bytes.
    const silent = timedOut || /eof|end of file/i.test(detail);
    onMismatch(
      /corrupt message|InvalidContentType|InvalidMessage/i.test(detail)
        ? `${label} spoke plaintext (started with --insecure-plaintext?); closed`
        : silent
        ? `${label} spoke plaintext (started with --insecure-plaintext?) or nothing: no TLS ` +
          `handshake${timedOut ? ` within ${HANDSHAKE_TIMEOUT_MS} ms` : ""}; closed`
        : `TLS handshake with ${label} failed: ${detail}; closed`,
    );
    closeQuietly(tls);
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/** Where to connect and whom to expect there. */
export interface ConnectOptions {
  hostname: string;
  port: number;
  /** The acceptor's device ID and certificate, pinned exactly (ignored in plaintext mode). */
  pin: { id: string; certPem: string } | undefined;
  plaintext: boolean;
  /** What the other side is, for messages: "the index", "source". */
  what: string;
  signal?: AbortSignal;
}

/**
 * Connects over TLS pinned to `pin`, or in plaintext.
 *
 * @throws {TransportError} when the handshake fails: not the pinned certificate, or the other
 *   side does not speak TLS. Connection errors (refused, timeout) are thrown as they come.
 */
export async function connectTo(options: ConnectOptions): Promise<TransportConn> {
  const label = `${options.what} at ${options.hostname}:${options.port}`;
  const tcp = await Deno.connect({
    hostname: options.hostname,
    port: options.port,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  tcp.setNoDelay(true);
  if (options.plaintext) {
    return new SniffedConn(
      tcp,
      (first) =>
        first === TLS_ALERT || first === TLS_HANDSHAKE
          ? new TransportError(
            `Cannot talk to ${label}: it speaks TLS; start this peer without --insecure-plaintext`,
          )
          : undefined,
    );
  }
  if (options.pin === undefined) {
    closeQuietly(tcp);
    throw new TransportError(`Cannot connect to ${label}: its certificate is not known`);
  }
  const tls = await Deno.startTls(tcp, {
    hostname: tlsName(options.pin.id),
    caCerts: [options.pin.certPem],
  });
  // The caller's deadline (e.g. a source's first-byte timeout) covers the handshake too.
  const abandon = () => closeQuietly(tls);
  const timer = setTimeout(abandon, HANDSHAKE_TIMEOUT_MS);
  options.signal?.addEventListener("abort", abandon, { once: true });
  try {
    await tls.handshake();
    return tls;
  } catch (err) {
    closeQuietly(tls);
    if (options.signal?.aborted) throw options.signal.reason;
    const detail = err instanceof Error ? err.message : String(err);
    if (/invalid peer certificate|not valid for name/i.test(detail)) {
      const presented = await presentedId(options.hostname, options.port);
      throw new TransportError(
        `Cannot connect to ${label}: it presents device ${presented} instead of the pinned ` +
          `${shortId(options.pin.id)} (${options.pin.id}); someone may be intercepting the ` +
          `connection, so nothing was sent`,
        { cause: err },
      );
    }
    throw new TransportError(
      `Cannot connect to ${label}: it does not speak TLS (started with ` +
        `--insecure-plaintext?); start this peer with --insecure-plaintext too, or the other ` +
        `side without (${detail})`,
      { cause: err },
    );
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", abandon);
  }
}

/**
 * Why a plaintext connection heard nothing, when the other side speaks TLS: a TLS acceptor waits
 * for the connector's handshake, and a plaintext lanshare connector waits for the acceptor's
 * Challenge, so neither speaks. Looks with a TLS handshake of its own (failure path only).
 *
 * @returns the error to report instead, or undefined when the other side does not speak TLS
 */
export async function plaintextMismatch(
  hostname: string,
  port: number,
  what: string,
): Promise<TransportError | undefined> {
  try {
    await readCertificate(hostname, port, DIAGNOSIS_TIMEOUT_MS);
  } catch (err) {
    if (err instanceof TransportError) return undefined;
    throw err;
  }
  return new TransportError(
    `Cannot talk to ${what} at ${hostname}:${port}: it speaks TLS; start this peer without ` +
      "--insecure-plaintext",
  );
}

/** How long the look at a mismatched certificate may take, ms. */
const DIAGNOSIS_TIMEOUT_MS = 3000;

/**
 * The certificate presented at an address, read from a TLS handshake, and its device ID. Deno's
 * own TLS shows no certificate, so this connection uses node:tls without verifying the chain
 * (there is none: certificates are self-signed); the handshake still proves that the other side
 * holds the certificate's key. It sends nothing beyond the handshake.
 *
 * @throws {TransportError} when no handshake completes within `timeoutMs`, or the certificate
 *   is not a lanshare device's
 */
export function readCertificate(
  hostname: string,
  port: number,
  timeoutMs: number,
): Promise<{ id: string; certPem: string }> {
  return new Promise((resolve, reject) => {
    const socket = nodeTls.connect({ host: hostname, port, rejectUnauthorized: false });
    const done = (result: { id: string; certPem: string } | Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const fail = (detail: string) =>
      done(new TransportError(`Cannot read the certificate of ${hostname}:${port}: ${detail}`));
    const timer = setTimeout(() => fail(`no TLS handshake within ${timeoutMs} ms`), timeoutMs);
    socket.once("secureConnect", () => {
      try {
        const certPem = pemOfDer(new Uint8Array(socket.getPeerCertificate(true).raw));
        done({ id: idOfCert(certPem), certPem });
      } catch (err) {
        fail(`not a lanshare certificate (${err instanceof Error ? err.message : err})`);
      }
    });
    socket.once("error", (err: Error) => fail(err.message));
  });
}

/** The ID (short form and full) presented at an address, to name it when it is not the pin. */
async function presentedId(hostname: string, port: number): Promise<string> {
  try {
    const { id } = await readCertificate(hostname, port, DIAGNOSIS_TIMEOUT_MS);
    return `${shortId(id)} (${id})`;
  } catch (err) {
    if (!(err instanceof TransportError)) throw err;
    return `(unknown: ${err.message})`;
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch (err) {
    if (!(err instanceof Deno.errors.BadResource)) throw err;
  }
}

/**
 * A plaintext connection whose first byte is checked once: `check` returns the error to end
 * the connection with when it shows the other side speaks TLS.
 */
class SniffedConn implements TransportConn {
  readonly #conn: Deno.TcpConn;
  #check: ((first: number) => Error | undefined) | undefined;

  constructor(conn: Deno.TcpConn, check: (first: number) => Error | undefined) {
    this.#conn = conn;
    this.#check = check;
  }

  get remoteAddr(): Deno.NetAddr {
    return this.#conn.remoteAddr;
  }

  async read(p: Uint8Array): Promise<number | null> {
    const n = await this.#conn.read(p);
    if (this.#check !== undefined && n !== null && n > 0) {
      const problem = this.#check(p[0]!);
      this.#check = undefined;
      if (problem !== undefined) {
        closeQuietly(this.#conn);
        throw problem;
      }
    }
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    return this.#conn.write(p);
  }

  closeWrite(): Promise<void> {
    return this.#conn.closeWrite();
  }

  close(): void {
    this.#conn.close();
  }
}
