// Where the peer's network key (for a `--join key` index) comes from. The device identity is
// kept in the repository's metadata: see identity_file.ts.
import { importNetworkKey, type NetworkKey } from "../shared/handshake.ts";
import type { PeerConfig } from "./config.ts";

/**
 * The network key for a `--join key` index, from `--network-key-file`. Only the file's name is
 * ever reported: the bytes go straight into a secret key object that never prints them.
 */
export async function loadNetworkKey(config: PeerConfig): Promise<NetworkKey | undefined> {
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
  return importNetworkKey(bytes);
}
