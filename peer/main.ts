// Entry point of a peer: flags/env → config → Peer.start(); shell on stdin; signals.
// The only place that reads Deno.args/Deno.env or exits.
import {
  configOrExitCode,
  defaultBroadcastAddresses,
  readEnv,
  readLines,
  readOptionEnv,
} from "../shared/cli.ts";
import { formatBytes } from "../shared/format.ts";
import { setupLogging } from "../shared/log.ts";
import { VERSION } from "../shared/version.ts";
import type { FetchInfo } from "./activity.ts";
import { PEER_OPTIONS, PEER_TEST_ENV, type PeerConfig, resolvePeerConfig } from "./config.ts";
import { explainNotCapable } from "./permissions.ts";
import { Peer } from "./peer.ts";
import { progressFields, progressLine, RateWindows, receivedBytes } from "./progress.ts";
import { runPeerCommand, type ShellOutput } from "./shell.ts";
import { TtyLine } from "./tty_line.ts";
import { PeerOps } from "./ops.ts";
import { startPeerUi } from "./ui_server.ts";
import type { UiServer } from "../shared/http/ui_server.ts";

const encoder = new TextEncoder();
/** Files at least this large report hashing progress. */
const HASH_PROGRESS_MIN_BYTES = 64 * 1024 * 1024;

/** Runs a peer until `quit` or a signal. Returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let repo = "./lanshare-repo";
  try {
    return await run(args, (r) => repo = r);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotCapable)) throw err;
    // Straight to stderr: the process exits right after, before buffered log sinks flush.
    console.error(explainNotCapable(err.message, repo));
    return 1;
  }
}

async function run(args: string[], setRepo: (repo: string) => void): Promise<number> {
  const parsed = configOrExitCode(
    "lanshare-peer",
    VERSION,
    () =>
      resolvePeerConfig(args, { ...readOptionEnv(PEER_OPTIONS), ...readEnv(PEER_TEST_ENV) }, {
        hostname: () => Deno.hostname(),
        broadcast: () => defaultBroadcastAddresses(Deno.networkInterfaces()),
      }),
  );
  if ("exitCode" in parsed) return parsed.exitCode;
  const { config } = parsed;
  setRepo(config.repo);
  // Deno keeps UDP behind --unstable-net; deno.json turns it on for the sources, but a bundle
  // run elsewhere needs the flag, and without it discovery fails later as "not a function".
  if (typeof Deno.listenDatagram !== "function") {
    console.error(
      "Cannot start: finding and checking index servers needs UDP, which Deno enables with --unstable-net (deno run --unstable-net ...)",
    );
    return 2;
  }
  const tty = Deno.stdout.isTerminal() && !config.json;
  const line = new TtyLine((text) => Deno.stdout.writeSync(encoder.encode(text)));
  await setupLogging(config.logLevel, tty ? { aroundWrite: (write) => line.around(write) } : {});
  let peer: Peer;
  try {
    peer = await Peer.start(config, {
      ...(tty ? { onHashProgress: hashProgress } : {}),
      onIndexState: (state, summary) => {
        if (config.json) {
          console.log(JSON.stringify({ event: "index", state: state.kind, summary }));
        }
      },
    });
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable) throw err;
    // Straight to stderr: the process exits right after, before buffered log sinks flush.
    console.error(`Cannot start: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  const ops = new PeerOps(peer);
  let ui: UiServer | undefined;
  if (config.ui) {
    try {
      ui = await startPeerUi(ops, config.ui);
    } catch (err) {
      console.error(
        `Cannot start the web UI on ${config.ui.hostname}:${config.ui.port}: ${
          err instanceof Error ? err.message : String(err)
        } (choose another with --ui HOST:PORT, or --ui off)`,
      );
      await peer.close();
      return 1;
    }
  }
  console.log(JSON.stringify({
    event: "listening",
    p2p: peer.p2pPort,
    id: peer.identity.id,
    hostname: config.hostname,
    index: peer.index.state.kind,
    repo: peer.repo.root,
    ui: ui?.url ?? null,
  }));
  if (ui && !config.json) console.log(`Web UI: ${ui.url}`);

  const stop = Promise.withResolvers<void>();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => stop.resolve());
  }
  const out = shellOutput(config, tty, line);
  const interactive = Deno.stdin.isTerminal();
  const prompt = () => interactive && Deno.stdout.writeSync(encoder.encode("lanshare> "));
  void (async () => {
    prompt();
    // Commands run one after another, in order; a fetch runs in the background so that the
    // shell stays usable (status, cancel) while it transfers. Its answer comes when it ends.
    for await (const line of readLines(Deno.stdin.readable)) {
      const background = /^\s*fetch\s/.test(line);
      const done = runPeerCommand(ops, line, out).then((quit) => {
        if (quit) stop.resolve();
      });
      if (!background) await done;
      prompt();
    }
    // stdin closed (started with </dev/null or as a service): keep serving until a signal.
  })();
  await stop.promise;
  await ui?.close();
  await peer.close();
  return 0;
}

function shellOutput(config: PeerConfig, tty: boolean, line: TtyLine): ShellOutput {
  const rates = new RateWindows();
  const fields = (info: FetchInfo) => {
    const now = Date.now();
    const rate = rates.sample(info.fname, receivedBytes(info), now);
    if (info.doneBytes >= info.size) rates.forget(info.fname);
    return progressFields(info, rate, now);
  };
  return {
    answer(data, lines) {
      line.clear();
      if (config.json) console.log(JSON.stringify(data));
      else for (const text of lines) console.log(text);
    },
    hashing(path, hashed, size) {
      // Only large files: small ones hash in well under a second.
      if (size < HASH_PROGRESS_MIN_BYTES) return;
      if (config.json) {
        console.log(JSON.stringify({ event: "hashing", path, hashedBytes: hashed, size }));
      } else if (tty) {
        line.show(`hashing ${path} ${Math.floor(hashed * 100 / size)}%`);
      }
    },
    progress(info) {
      if (config.json) console.log(JSON.stringify({ event: "progress", ...fields(info) }));
      else if (tty) line.show(progressLine(fields(info)));
    },
  };
}

function hashProgress(hashed: number, size: number): void {
  if (size < HASH_PROGRESS_MIN_BYTES) return;
  const percent = Math.floor(hashed * 100 / size);
  Deno.stderr.writeSync(
    encoder.encode(`\rhashing ${percent}% of ${formatBytes(size)}${hashed === size ? "\n" : ""}`),
  );
}

if (import.meta.main) Deno.exit(await main(Deno.args));
