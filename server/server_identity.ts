// Where the server's device identity comes from. For now a fresh one at every start: the
// file-backed identity (kept beside the database, or `--identity PATH`) replaces this function.
import { createIdentity, type Identity } from "../shared/identity.ts";
import type { ServerConfig } from "./config.ts";

/** The server's identity for this run. `config` will name where it is kept. */
export function loadServerIdentity(_config: ServerConfig): Promise<Identity> {
  return createIdentity();
}
