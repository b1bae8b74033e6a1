// A device identity kept in a folder: key.pem (the private key, mode 0600) and cert.pem (the
// certificate, for users and other tools; rebuilt from the key, so never trusted on reading).
// Shared by the server and the peer, which only choose the folder.
import { join } from "node:path";
import { createIdentity, type Identity, identityFromKeyPem } from "./identity.ts";

/** Owner read/write only. */
const PRIVATE_MODE = 0o600;

/** What loading an identity did, for the caller's log. */
export interface LoadedIdentity {
  identity: Identity;
  /** true when the key was made now. */
  created: boolean;
  /** Set when the key file was readable by others and its mode was tightened to 0600. */
  tightenedFrom?: number;
}

/**
 * Loads the identity kept in `dir`, or creates one there (folder 0700, key 0600). A key file
 * readable by group or others is tightened to 0600 and reported.
 *
 * @throws {Error} "Cannot read the identity …" when the key file exists but is not a key
 */
export async function loadOrCreateIdentity(dir: string): Promise<LoadedIdentity> {
  const keyPath = join(dir, "key.pem");
  let keyPem: string | undefined;
  try {
    keyPem = await Deno.readTextFile(keyPath);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  if (keyPem === undefined) {
    const identity = await createIdentity();
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    // createNew: two processes starting at once must not overwrite each other's key.
    await Deno.writeTextFile(keyPath, identity.keyPem, { createNew: true, mode: PRIVATE_MODE });
    await Deno.chmod(keyPath, PRIVATE_MODE); // the umask may have taken bits away, never added
    await Deno.writeTextFile(join(dir, "cert.pem"), identity.certPem, { mode: 0o644 });
    return { identity, created: true };
  }
  let identity: Identity;
  try {
    identity = await identityFromKeyPem(keyPem);
  } catch (err) {
    throw new Error(
      `Cannot read the identity "${keyPath}": ${(err as Error).message}; ` +
        `move it away to make a new identity (the device ID changes)`,
      { cause: err },
    );
  }
  const mode = (await Deno.stat(keyPath)).mode;
  let tightenedFrom: number | undefined;
  if (mode !== null && (mode & 0o077) !== 0) {
    await Deno.chmod(keyPath, PRIVATE_MODE);
    tightenedFrom = mode & 0o777;
  }
  return tightenedFrom === undefined
    ? { identity, created: false }
    : { identity, created: false, tightenedFrom };
}
