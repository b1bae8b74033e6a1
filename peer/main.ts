// Entry point of a peer: flags/env → config → Peer.start(); shell on stdin; signals.
// The only place that reads Deno.args/Deno.env or exits.
import {
  configOrExitCode,
  defaultBroadcastAddresses,
  readLines,
  readOptionEnv,
} from "../shared/cli.ts";
import { setupLogging } from "../shared/log.ts";
import { VERSION } from "../shared/version.ts";
import type { FetchInfo } from "./activity.ts";
import { PEER_OPTIONS, resolvePeerConfig } from "./config.ts";
import { Peer } from "./peer.ts";
import { formatBytes } from "../shared/format.ts";
import { runPeerCommand, type ShellOutput } from "./shell.ts";

const encoder = new TextEncoder();
/** Files at least this large report hashing progress. */
const HASH_PROGRESS_MIN_BYTES = 64 * 1024 * 1024;

/** Runs a peer until `quit` or a signal. Returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const parsed = configOrExitCode(
    "lanshare-peer",
    VERSION,
    () =>
      resolvePeerConfig(args, readOptionEnv(PEER_OPTIONS), {
        hostname: () => Deno.hostname(),
        broadcast: () => defaultBroadcastAddresses(Deno.networkInterfaces()),
      }),
  );
  if ("exitCode" in parsed) return parsed.exitCode;
  const { config } = parsed;
  await setupLogging(config.logLevel);
  const tty = Deno.stdout.isTerminal() && !config.json;
  let peer: Peer;
  try {
    peer = await Peer.start(config, tty ? hashProgress : undefined);
  } catch (err) {
    // Straight to stderr: the process exits right after, before buffered log sinks flush.
    console.error(`Cannot start: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  console.log(JSON.stringify({
    event: "listening",
    p2p: peer.p2pPort,
    hostname: config.hostname,
    server: peer.index.server,
    repo: peer.repo.root,
  }));

  let progressShown = false;
  const clearProgress = () => {
    if (progressShown) Deno.stdout.writeSync(encoder.encode("\r\x1b[K"));
    progressShown = false;
  };
  const out: ShellOutput = {
    answer(data, lines) {
      clearProgress();
      if (config.json) console.log(JSON.stringify(data));
      else for (const line of lines) console.log(line);
    },
    hashing(path, hashed, size) {
      // Only large files: small ones hash in well under a second.
      if (size < HASH_PROGRESS_MIN_BYTES) return;
      if (config.json) {
        console.log(JSON.stringify({ event: "hashing", path, hashedBytes: hashed, size }));
      } else if (tty) {
        Deno.stdout.writeSync(
          encoder.encode(`\r\x1b[Khashing ${path} ${Math.floor(hashed * 100 / size)}%`),
        );
        progressShown = true;
      }
    },
    progress(info) {
      if (config.json) console.log(JSON.stringify({ event: "progress", ...progressFields(info) }));
      else if (tty) {
        Deno.stdout.writeSync(encoder.encode(`\r\x1b[K${progressLine(info)}`));
        progressShown = true;
      }
    },
  };

  const stop = Promise.withResolvers<void>();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => stop.resolve());
  }
  const interactive = Deno.stdin.isTerminal();
  const prompt = () => interactive && Deno.stdout.writeSync(encoder.encode("lanshare> "));
  void (async () => {
    prompt();
    // Commands run one after another, in order; a fetch runs in the background so that the
    // shell stays usable (status, cancel) while it transfers. Its answer comes when it ends.
    for await (const line of readLines(Deno.stdin.readable)) {
      const background = /^\s*fetch\s/.test(line);
      const done = runPeerCommand(peer, line, out).then((quit) => {
        if (quit) stop.resolve();
      });
      if (!background) await done;
      prompt();
    }
    // stdin closed (started with </dev/null or as a service): keep serving until a signal.
  })();
  await stop.promise;
  await peer.close();
  return 0;
}

function progressFields(info: FetchInfo) {
  const elapsedS = Math.max((Date.now() - info.startedAtMs) / 1000, 1e-3);
  const received = Object.values(info.bySource).reduce((a, b) => a + b, 0);
  const rate = received / elapsedS;
  return {
    fname: info.fname,
    doneBytes: info.doneBytes,
    size: info.size,
    percent: info.size === 0 ? 100 : Math.floor(info.doneBytes * 1000 / info.size) / 10,
    bytesPerSecond: Math.round(rate),
    etaSeconds: rate > 0 ? Math.round((info.size - info.doneBytes) / rate) : null,
    sources: info.activeSources,
    queuedSources: info.queuedSources,
  };
}

function progressLine(info: FetchInfo): string {
  const p = progressFields(info);
  const eta = p.etaSeconds === null ? "--" : `${p.etaSeconds}s`;
  return `${p.fname} ${p.percent.toFixed(1)}% ${formatBytes(p.doneBytes)}/${formatBytes(p.size)} ` +
    `${formatBytes(p.bytesPerSecond)}/s ETA ${eta} ${p.sources} source(s)`;
}

function hashProgress(hashed: number, size: number): void {
  if (size < HASH_PROGRESS_MIN_BYTES) return;
  const percent = Math.floor(hashed * 100 / size);
  Deno.stderr.writeSync(
    encoder.encode(`\rhashing ${percent}% of ${formatBytes(size)}${hashed === size ? "\n" : ""}`),
  );
}

if (import.meta.main) Deno.exit(await main(Deno.args));
