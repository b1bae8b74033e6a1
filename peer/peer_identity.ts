// Where the peer's device identity and network key come from. The identity is a fresh one at
// every start for now: the file-backed identity (kept in the repository's metadata) replaces
// loadPeerIdentity().
import { importNetworkKey } from "../shared/handshake.ts";
import { createIdentity, type Identity } from "../shared/identity.ts";
import type { PeerConfig } from "./config.ts";

/** The peer's identity for this run. `config` will name where it is kept. */
export function loadPeerIdentity(_config: PeerConfig): Promise<Identity> {
  return createIdentity();
}

/**
 * The network key for a `--join key` index, from `--network-key-file`. Only the file's name is
 * ever reported: the bytes go straight into a non-extractable CryptoKey.
 */
export async function loadNetworkKey(config: PeerConfig): Promise<CryptoKey | undefined> {
  const path = config.networkKeyFile;
  if (path === undefined) return undefined;
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await Deno.readFile(path);
  } catch (err) {
    throw new Error(`Cannot read the network key file "${path}": ${(err as Error).name}`, {
      cause: err,
    });
  }
  return await importNetworkKey(bytes);
}
