// Opens a file below a folder without following any symlink on the way, so that a folder
// swapped for a symlink while the file is opened cannot lead the open outside. Deno has no
// openat() or O_NOFOLLOW; this walks the path with the working directory instead.
//
// Why not "resolve the real path, then open it" (or open, then compare with a stat of the real
// path): every path-based check resolves the path again, and a folder that keeps being swapped
// between a real folder and a symlink can show the inside at the check and the outside at the
// open (or the reverse). Measured with a swapping loop: realPath-then-open served 231 outside
// files in 1,500 requests (tests/integration/p2p_files_test.ts), and 117 of 3,271 opens that
// passed "realPath inside, lstat(realPath) is the opened inode, realPath unchanged" had opened
// the outside file.
//
// The walk is exact only when the kernel looks names up in the working directory itself. Deno
// passes relative names through as they are only with --allow-all; under any narrower read
// permission (how a peer runs) it first makes them absolute with getcwd() to check them, so
// each step of the walk is again a lookup by full path (seen with strace: chdir("sub") then
// statx("/repo/sub/f")). One walk can then be fooled like any path check: measured, 1 outside
// file in about 18,000 swapping requests passed a single walk after the open. So the opened
// file must match VERIFY_WALKS walks in a row: a swapping attacker must win that race every
// time, in the microseconds each walk takes. Sound confinement needs openat2(RESOLVE_BENEATH) or
// O_NOFOLLOW per component, which Deno does not offer (docs/SECURITY.md: local attackers).
//
// The cost: the process's working directory moves during a walk (synchronous, restored before
// returning). Work already running on other threads that used a relative path would resolve it
// against the wrong folder, so the peer uses absolute paths only.

import { PathError } from "./repo.ts";

/** Where the working directory rests between walks: the caller's, when it may be read. */
let restingDir: string | undefined;

function restingDirFor(root: string): string {
  if (restingDir === undefined) {
    const cwd = Deno.cwd();
    // Going back needs read permission on it (a peer run with --allow-read=<repo> has none):
    // then the walk leaves the process in the repository root, where it does no harm because
    // every path the peer uses is absolute.
    const readable = Deno.permissions.querySync({ name: "read", path: cwd }).state === "granted";
    restingDir = readable ? cwd : root;
  }
  return restingDir;
}

/** Walks after the open that must all find the opened file (see the top of this file). */
const VERIFY_WALKS = 3;

function sameFile(a: Deno.FileInfo, b: Deno.FileInfo): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/**
 * Opens `names` (path components, no "." or "..") below the real folder `root` for reading,
 * refusing any symlink among them, and any final entry that is not a regular file.
 *
 * Order, and why it holds against concurrent renames: the file is opened first, by its full
 * path (which may follow a symlink swapped in at that moment). Then the path is walked
 * synchronously, as in lstatConfined(), and the opened file (fstat) must be the inode that the
 * last name holds now, in a folder reached without following any link, in each of
 * VERIFY_WALKS walks. If it is, the bytes being served have a name inside the repository:
 * whatever the open followed, it ended there (exactly so only where the kernel looks the
 * walk's names up itself; see the top of this file).
 * The same walk before the open keeps it from blocking on a FIFO or a device in the common case.
 *
 * @throws {PathError} "Cannot open …" on a symlink, a non-file or a folder swapped meanwhile
 * @throws {Deno.errors.NotFound} when a component does not exist
 */
export async function openConfined(root: string, names: readonly string[]): Promise<Deno.FsFile> {
  const shown = names.join("/");
  lstatConfined(root, names);
  const file = await Deno.open([root, ...names].join("/"), { read: true });
  try {
    const opened = file.statSync();
    for (let walk = 0; walk < VERIFY_WALKS; walk++) {
      if (!opened.isFile || !sameFile(opened, lstatConfined(root, names))) {
        throw new PathError("changed", `Cannot open "${shown}": it changed while it was opened`);
      }
    }
    return file;
  } catch (err) {
    file.close();
    throw err;
  }
}

/**
 * Stats the regular file `names` below the real folder `root` without following a symlink
 * anywhere: each folder name is lstat'ed (a folder, not a symlink), entered with chdir, and the
 * folder entered must be the one lstat'ed (dev+ino of "."), so a swap between the two is
 * caught; the last name is lstat'ed in the folder reached. Synchronous, so no other code of
 * this process runs while the working directory is elsewhere.
 *
 * @throws {PathError} on a symlink, a non-file or a folder swapped meanwhile
 * @throws {Deno.errors.NotFound} when a component does not exist
 */
export function lstatConfined(root: string, names: readonly string[]): Deno.FileInfo {
  const shown = names.join("/");
  if (
    names.length === 0 || names.some((n) => n === "" || n === "." || n === ".." || n.includes("/"))
  ) {
    throw new PathError("not-plain", `Cannot open "${shown}": not a plain relative path`);
  }
  const rest = restingDirFor(root);
  Deno.chdir(root);
  try {
    for (const name of names.slice(0, -1)) {
      const entry = Deno.lstatSync(name);
      if (!entry.isDirectory) {
        throw new PathError(
          "not-a-file",
          `Cannot open "${shown}": "${name}" is not a folder (a symlink?)`,
        );
      }
      Deno.chdir(name);
      if (!sameFile(Deno.statSync("."), entry)) {
        throw new PathError(
          "changed",
          `Cannot open "${shown}": "${name}" changed while it was opened`,
        );
      }
    }
    const entry = Deno.lstatSync(names.at(-1)!);
    if (!entry.isFile) {
      throw new PathError("not-a-file", `Cannot open "${shown}": not a regular file (a symlink?)`);
    }
    return entry;
  } finally {
    Deno.chdir(rest);
  }
}
