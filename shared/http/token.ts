// The UI access token: 32 random bytes as hex, kept in a file only its owner may read (0600) so
// that bookmarks keep working across restarts.

const TOKEN_PATTERN = /^[0-9a-f]{64}$/;

/** A fresh random token. */
export function newToken(): string {
  return crypto.getRandomValues(new Uint8Array(32)).toHex();
}

/**
 * Reads the token kept at `path`, or makes one and writes it there with mode 0600. A file
 * that does not hold a token (torn, edited) is replaced.
 */
export async function loadOrCreateToken(path: string): Promise<string> {
  try {
    const text = (await Deno.readTextFile(path)).trim();
    if (TOKEN_PATTERN.test(text)) {
      // Tighten a file someone loosened: the token is a password.
      await Deno.chmod(path, 0o600);
      return text;
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const token = newToken();
  // Written in place (no temporary name): the programs may write only this very path.
  await Deno.writeTextFile(path, token + "\n", { mode: 0o600 });
  await Deno.chmod(path, 0o600);
  return token;
}
