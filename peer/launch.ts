// `deno task peer`: runs peer/main.ts with read and write access to exactly the repository it
// is given (--repo DIR, else LANSHARE_REPO, else ./lanshare-repo). A task's permissions cannot
// depend on its arguments, so this small launcher grants them and runs the peer as a child.
// It reads no file and passes stdin, stdout, stderr, signals and the exit code through.
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

/** The repository when neither --repo nor LANSHARE_REPO names one (as peer/config.ts). */
const DEFAULT_REPO = "./lanshare-repo";

/**
 * The `deno run` arguments that start the peer on the repository named by `args` or `envRepo`.
 *
 * @param args the peer's own arguments, passed on unchanged
 * @param envRepo LANSHARE_REPO
 * @param mainPath where peer/main.ts is
 * @param envKeyFile LANSHARE_NETWORK_KEY_FILE
 * @throws {RangeError} for a repository path Deno's permission flags cannot name
 */
export function peerRunArgs(
  args: readonly string[],
  envRepo: string | undefined,
  mainPath: string,
  envKeyFile?: string,
): string[] {
  const { values } = parseArgs({
    args: [...args],
    options: { repo: { type: "string" }, "network-key-file": { type: "string" } },
    strict: false,
    allowPositionals: true,
  });
  const repo = typeof values.repo === "string" ? values.repo : envRepo || DEFAULT_REPO;
  // The network key of a `--join key` index is read once at start: reading that file only.
  const keyFlag = values["network-key-file"];
  const keyFile = typeof keyFlag === "string" ? keyFlag : envKeyFile || undefined;
  // --allow-read takes a comma-separated list: a comma would grant two other paths.
  for (const [what, path] of [["repository", repo], ["network key file", keyFile]] as const) {
    if (path?.includes(",")) {
      throw new RangeError(
        `Cannot start the peer: the ${what} path "${path}" contains a comma, which Deno's ` +
          "--allow-read and --allow-write cannot name; choose a path without one",
      );
    }
  }
  return [
    "run",
    "--allow-net",
    "--allow-env=LANSHARE_*",
    "--allow-sys=hostname,networkInterfaces,statfs",
    `--allow-read=${keyFile === undefined ? repo : `${repo},${keyFile}`}`,
    `--allow-write=${repo}`,
    mainPath,
    ...args,
  ];
}

async function launch(args: string[]): Promise<number> {
  let runArgs: string[];
  try {
    runArgs = peerRunArgs(
      args,
      Deno.env.get("LANSHARE_REPO"),
      fileURLToPath(new URL("./main.ts", import.meta.url)),
      Deno.env.get("LANSHARE_NETWORK_KEY_FILE"),
    );
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    console.error(err.message);
    return 2;
  }
  const child = new Deno.Command(Deno.execPath(), {
    args: runArgs,
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  // Ctrl-C reaches both processes from the terminal; a signal sent to this one alone is
  // passed on. Either way the peer decides when to stop, and this process waits for it.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      try {
        child.kill(signal);
      } catch (err) {
        if (!(err instanceof TypeError)) throw err; // the peer has already exited
      }
    });
  }
  // For a peer ended by a signal, Deno reports 128 + its number, as a shell does.
  return (await child.status).code;
}

if (import.meta.main) Deno.exit(await launch(Deno.args));
