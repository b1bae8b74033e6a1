// Peer configuration: flags and LANSHARE_* environment variables → PeerConfig.
import {
  type CommandLine,
  type HostPort,
  type OptionSpec,
  parseHostPort,
  resolveOptions,
  usage,
} from "../shared/cli.ts";
import { ConfigError } from "../shared/errors.ts";
import { idProblem } from "../shared/identity.ts";
import type { LogLevel } from "../shared/log.ts";
import { parseUiFlag, type UiListen } from "../shared/http/ui_flag.ts";

/** Where the peer's web UI listens unless told otherwise. */
export const DEFAULT_PEER_UI = "127.0.0.1:7080";

/** Everything a peer needs to start; every field required. */
export interface PeerConfig {
  /** The repository folder: the only place the peer reads or writes. */
  repo: string;
  /**
   * Index servers to use, in order of preference; empty: discover by broadcast. `id`, when
   * given (HOST:PORT#ID), is the device ID the server must have.
   */
  servers: (HostPort & { id?: string })[];
  /** Plain TCP instead of TLS, for comparisons; the server and other peers need it too. */
  insecurePlaintext: boolean;
  /** UDP discovery port. */
  announcePort: number;
  /** Where discovery probes go. */
  broadcast: string[];
  /** Length of one discovery round, ms; the peer starts another after an empty one. */
  discoverTimeoutMs: number;
  /** Address the P2P listener binds. */
  host: string;
  /** P2P listen port (0: any free port). */
  port: number;
  /** Hostname announced to the index. */
  hostname: string;
  /** Most transfer sessions (uploads + downloads) at once. */
  maxSessions: number;
  /** Most sessions one remote peer may hold on this peer at once. */
  maxPerPeer: number;
  /** Most requests waiting for a slot; beyond it requests get BUSY. */
  maxQueue: number;
  /** A source that sends no first byte within this long is skipped, ms. */
  ttfbTimeoutMs: number;
  /** A source that stalls this long mid-transfer is dropped, ms. */
  stallTimeoutMs: number;
  /** Most sources used at once by one fetch. */
  maxSources: number;
  /** Upload and download rate caps in bytes/s (0: none). */
  maxUploadRate: number;
  maxDownloadRate: number;
  /** Largest file fetched, bytes (0: no limit). */
  maxFileSize: number;
  /** Answer shell commands with JSON lines. */
  json: boolean;
  /** Log threshold. */
  logLevel: LogLevel;
  /** File holding the network key of a `--join key` index; never logged. */
  networkKeyFile: string | undefined;
  /** TEST ONLY: serve corrupted piece bytes (to test integrity checks); see PEER_TEST_ENV. */
  debugCorrupt: boolean;
  /** Where the web UI listens; null: no UI (`--ui off`). */
  ui: UiListen | null;
}

/** The peer's options, for parsing and --help. */
export const PEER_OPTIONS: readonly OptionSpec[] = [
  {
    flag: "repo",
    env: "LANSHARE_REPO",
    kind: "string",
    default: "./lanshare-repo",
    help: "repository folder (created if missing)",
  },
  {
    flag: "server",
    env: "LANSHARE_SERVER",
    kind: "list",
    default: [],
    help: "index HOST:PORT[#ID][,...] (default: discover); #ID pins the server's device ID",
  },
  {
    flag: "insecure-plaintext",
    env: "LANSHARE_INSECURE_PLAINTEXT",
    kind: "boolean",
    default: false,
    help: "no TLS (for comparisons only; the server and other peers need it too)",
  },
  {
    flag: "announce-port",
    env: "LANSHARE_ANNOUNCE_PORT",
    kind: "port",
    default: 7071,
    help: "UDP discovery port",
  },
  {
    flag: "broadcast",
    env: "LANSHARE_BROADCAST",
    kind: "list",
    default: undefined,
    help: "probe ADDR[,ADDR] (default: 255.255.255.255 and each interface's broadcast)",
  },
  {
    flag: "discover-timeout-ms",
    env: "LANSHARE_DISCOVER_TIMEOUT_MS",
    kind: "uint",
    default: 5000,
    help: "length of one discovery round; the peer keeps looking",
  },
  {
    flag: "host",
    env: "LANSHARE_P2P_HOST",
    kind: "string",
    default: "0.0.0.0",
    help: "P2P listen address",
  },
  {
    flag: "port",
    env: "LANSHARE_P2P_PORT",
    kind: "port",
    default: 0,
    help: "P2P listen port (0: any)",
  },
  {
    flag: "hostname",
    env: "LANSHARE_HOSTNAME",
    kind: "string",
    default: undefined,
    help: "name announced to the index (default: OS hostname)",
  },
  {
    flag: "max-sessions",
    env: "LANSHARE_MAX_SESSIONS",
    kind: "uint",
    default: 4,
    help: "transfer sessions at once (k)",
  },
  {
    flag: "max-per-peer",
    env: "LANSHARE_MAX_PER_PEER",
    kind: "uint",
    default: undefined,
    help: "sessions one peer may hold (default: k/2, at least 1)",
  },
  {
    flag: "max-queue",
    env: "LANSHARE_MAX_QUEUE",
    kind: "uint",
    default: 16,
    help: "requests waiting for a slot before BUSY",
  },
  {
    flag: "ttfb-timeout-ms",
    env: "LANSHARE_TTFB_TIMEOUT_MS",
    kind: "uint",
    default: 2000,
    help: "skip a source with no first byte after",
  },
  {
    flag: "stall-timeout-ms",
    env: "LANSHARE_STALL_TIMEOUT_MS",
    kind: "uint",
    default: 10000,
    help: "drop a source silent mid-transfer after",
  },
  {
    flag: "max-sources",
    env: "LANSHARE_MAX_SOURCES",
    kind: "uint",
    default: 8,
    help: "sources used at once by one fetch",
  },
  {
    flag: "max-upload-rate",
    env: "LANSHARE_MAX_UPLOAD_RATE",
    kind: "uint",
    default: 0,
    help: "upload cap, bytes/s (0: none)",
  },
  {
    flag: "max-download-rate",
    env: "LANSHARE_MAX_DOWNLOAD_RATE",
    kind: "uint",
    default: 0,
    help: "download cap, bytes/s (0: none)",
  },
  {
    flag: "max-file-size",
    env: "LANSHARE_MAX_FILE_SIZE",
    kind: "uint",
    default: 0,
    help: "largest file to fetch, bytes (0: none)",
  },
  {
    flag: "network-key-file",
    env: "LANSHARE_NETWORK_KEY_FILE",
    kind: "string",
    default: undefined,
    help: "file holding the network key of an index run with --join key",
  },
  {
    flag: "json",
    env: "LANSHARE_JSON",
    kind: "boolean",
    default: false,
    help: "answer with one JSON object per line",
  },
  {
    flag: "log-level",
    env: "LANSHARE_LOG_LEVEL",
    kind: "string",
    default: "info",
    help: "debug, info, warning or error",
  },
  {
    flag: "ui",
    env: "LANSHARE_UI",
    kind: "string",
    default: DEFAULT_PEER_UI,
    help: `web UI HOST:PORT, or off (default ${DEFAULT_PEER_UI}, or the next free port)`,
  },
];

/**
 * Set to "1", makes the peer serve corrupted piece bytes, so that tests can check that fetchers
 * catch them. An environment variable, not a flag: it must not show in --help or be typed by
 * accident.
 */
export const TEST_CORRUPT_ENV = "LANSHARE_TEST_CORRUPT_PIECES";

/** Environment variables only tests set; main reads them besides PEER_OPTIONS'. */
export const PEER_TEST_ENV: readonly string[] = [TEST_CORRUPT_ENV];

/** Result of parsing: a config to run, or help/version text. */
export type PeerCommandLine = CommandLine<PeerConfig>;

/** Facts from the host used for defaults. */
export interface PeerDefaults {
  hostname: () => string;
  broadcast: () => string[];
}

/**
 * Resolves flags > env > defaults into a PeerConfig.
 *
 * @throws {ConfigError} listing every invalid field
 */
export function resolvePeerConfig(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  defaults: PeerDefaults,
): PeerCommandLine {
  const { values: v, problems } = resolveOptions(PEER_OPTIONS, args, env);
  if (v.help) {
    return {
      kind: "help",
      text: usage(
        "lanshare-peer",
        "A lanshare peer: publish files, fetch them from other peers.",
        PEER_OPTIONS,
      ),
    };
  }
  if (v.version) return { kind: "version" };
  const servers: PeerConfig["servers"] = [];
  for (const text of v.server as string[]) {
    const [address = "", id, ...extra] = text.split("#");
    try {
      const server: HostPort & { id?: string } = parseHostPort(address);
      if (id !== undefined) {
        const problem = extra.length > 0 ? "more than one #" : idProblem(id.toLowerCase());
        if (problem !== undefined) throw new RangeError(`"${text}": ${problem}`);
        server.id = id.toLowerCase();
      }
      servers.push(server);
    } catch (err) {
      problems.push(`--server: ${(err as Error).message}`);
    }
  }
  const level = v["log-level"] as string;
  if (!["debug", "info", "warning", "error"].includes(level)) {
    problems.push(`--log-level must be debug, info, warning or error, got "${level}"`);
  }
  const maxSessions = v["max-sessions"] as number;
  if (maxSessions < 1) problems.push("--max-sessions must be at least 1");
  const maxSources = v["max-sources"] as number;
  if (maxSources < 1) problems.push("--max-sources must be at least 1");
  const maxPerPeer = (v["max-per-peer"] as number | undefined) ??
    Math.max(1, Math.floor(maxSessions / 2));
  if (maxPerPeer < 1) problems.push("--max-per-peer must be at least 1");
  let ui: UiListen | null = null;
  try {
    ui = parseUiFlag(v.ui as string, DEFAULT_PEER_UI);
  } catch (err) {
    problems.push(`--ui: ${(err as Error).message} (or "off")`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    kind: "run",
    config: {
      repo: v.repo as string,
      servers,
      insecurePlaintext: v["insecure-plaintext"] as boolean,
      announcePort: v["announce-port"] as number,
      broadcast: (v.broadcast as string[] | undefined) ?? defaults.broadcast(),
      discoverTimeoutMs: v["discover-timeout-ms"] as number,
      host: v.host as string,
      port: v.port as number,
      hostname: (v.hostname as string | undefined) ?? defaults.hostname(),
      maxSessions,
      maxPerPeer,
      maxQueue: v["max-queue"] as number,
      ttfbTimeoutMs: v["ttfb-timeout-ms"] as number,
      stallTimeoutMs: v["stall-timeout-ms"] as number,
      maxSources,
      maxUploadRate: v["max-upload-rate"] as number,
      maxDownloadRate: v["max-download-rate"] as number,
      maxFileSize: v["max-file-size"] as number,
      json: v.json as boolean,
      logLevel: level as LogLevel,
      networkKeyFile: v["network-key-file"] as string | undefined,
      debugCorrupt: env[TEST_CORRUPT_ENV] === "1",
      ui,
    },
  };
}
