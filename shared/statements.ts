// The exact bytes each signature or MAC of protocol 2 covers. Pure: no I/O.
//
// Every statement is UTF-8 text: a label line naming what is stated and the protocol version
// ("lanshare hello v2\n" ...), then one field per line as `name=value\n`. A label per purpose
// keeps a signature made for one purpose from being replayed as another; values never contain
// a newline (checked here), so the fields cannot run into each other. docs/PROTOCOL.md
// ("Statements") documents the same layouts.

const encoder = new TextEncoder();

function statement(label: string, fields: [string, string | number][]): Uint8Array<ArrayBuffer> {
  let text = `lanshare ${label} v2\n`;
  for (const [name, value] of fields) {
    const written = String(value);
    if (written.includes("\n")) {
      throw new TypeError(`Cannot build the ${label} statement: ${name} contains a newline`);
    }
    text += `${name}=${written}\n`;
  }
  return encoder.encode(text);
}

/**
 * What a peer signs in `Hello`: the accepting server's nonce and ID, and its own ID.
 *
 * @example
 * ```ts
 * import { helloStatement } from "./statements.ts";
 * const text = new TextDecoder().decode(helloStatement("bm9uY2U=", "srv", "peer"));
 * if (text !== "lanshare hello v2\nnonce=bm9uY2U=\nserver=srv\npeer=peer\n") throw new Error();
 * ```
 */
export function helloStatement(
  nonce: string,
  serverId: string,
  peerId: string,
): Uint8Array<ArrayBuffer> {
  return statement("hello", [["nonce", nonce], ["server", serverId], ["peer", peerId]]);
}

/** What a peer MACs with the network key in `--join key` mode: the nonce and its own ID. */
export function joinStatement(nonce: string, peerId: string): Uint8Array<ArrayBuffer> {
  return statement("join", [["nonce", nonce], ["peer", peerId]]);
}

/** What a fetcher signs in `GetInfo`: the source's nonce and ID, and its own ID. */
export function fetchStatement(
  nonce: string,
  sourceId: string,
  fetcherId: string,
): Uint8Array<ArrayBuffer> {
  return statement("fetch", [["nonce", nonce], ["source", sourceId], ["fetcher", fetcherId]]);
}

/** What an index signs in a ticket: the fetcher it vouches for, itself, and the expiry. */
export function ticketStatement(
  fetcherId: string,
  indexId: string,
  expiresAtMs: number,
): Uint8Array<ArrayBuffer> {
  return statement("ticket", [
    ["fetcher", fetcherId],
    ["index", indexId],
    ["expires", expiresAtMs],
  ]);
}

/**
 * What a publisher signs in `Publish`: the name, the size and the root hash. The fname is
 * written as JSON (a string literal) because a name may hold any character but NUL and `/`.
 */
export function publishStatement(
  fname: string,
  size: number,
  rootHash: string,
): Uint8Array<ArrayBuffer> {
  return statement("publish", [
    ["fname", JSON.stringify(fname)],
    ["size", size],
    ["root", rootHash],
  ]);
}
