// The peer's device identity: kept in the repository metadata (.lanshare/identity/, key 0600),
// or made afresh for this run when the repository is read-only.
import { join } from "node:path";
import { createIdentity, type Identity } from "../shared/identity.ts";
import { loadOrCreateIdentity } from "../shared/identity_file.ts";
import { logger } from "../shared/log.ts";
import type { Repository } from "./repo.ts";

const log = logger("peer");

/** Loads (or creates) the identity of the peer of `repo`. */
export async function peerIdentity(repo: Repository): Promise<Identity> {
  if (repo.readOnlyReason !== undefined) {
    const identity = await createIdentity();
    log.warn(
      "The repository is read-only: using a new identity {id} for this run only (others " +
        "will not recognise this peer after a restart)",
      { id: identity.id },
    );
    return identity;
  }
  const dir = join(repo.metaDir, "identity");
  const loaded = await loadOrCreateIdentity(dir);
  if (loaded.created) {
    log.info("Created the peer identity {id} in {dir}", { id: loaded.identity.id, dir });
  }
  if (loaded.tightenedFrom !== undefined) {
    log.warn("The peer key in {dir} was readable by others (mode {mode}); now 0600", {
      dir,
      mode: loaded.tightenedFrom.toString(8),
    });
  }
  return loaded.identity;
}
