// Turns Deno's permission errors at start into a message that says which flag or command grants
// what is missing. Pure: no I/O.

/** The flag that grants each kind of access the peer needs, as `deno task peer` gives it. */
function grantingFlag(kind: string, repo: string): string {
  switch (kind) {
    case "read":
      return `--allow-read=${repo}`;
    case "write":
      return `--allow-write=${repo}`;
    case "net":
      return "--allow-net";
    case "sys":
      return "--allow-sys=hostname,networkInterfaces";
    case "env":
      return "--allow-env=LANSHARE_*";
    default:
      return `--allow-${kind}`;
  }
}

/**
 * Explains a `Deno.errors.NotCapable` met while starting a peer on `repo`.
 *
 * @param message the error's message ("Requires write access to "/x", run again with …")
 * @param repo the repository the peer was asked to use
 */
export function explainNotCapable(message: string, repo: string): string {
  const match = /Requires (\w+) access(?: to "([^"]*)")?/.exec(message);
  const kind = match?.[1] ?? "some";
  const what = match?.[2] === undefined ? "" : ` to "${match[2]}"`;
  const flag = match ? grantingFlag(kind, repo) : "the permission named in Deno's message";
  return `Cannot start: no ${kind} access${what} (Deno says: ${message}). ` +
    `Run the peer with \`deno task peer --repo ${repo}\` or \`make peer REPO=${repo}\`, which ` +
    `grant exactly this repository and what the peer needs, or add ${flag} to deno run`;
}
