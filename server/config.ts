// Server configuration: flags and LANSHARE_* environment variables → ServerConfig.
import { ConfigError } from "../shared/errors.ts";
import { type CommandLine, type OptionSpec, resolveOptions, usage } from "../shared/cli.ts";
import type { LogLevel } from "../shared/log.ts";
import { DEFAULT_MAX_ENTRIES_PER_SESSION } from "./catalog.ts";
import { parseUiFlag, type UiListen } from "../shared/http/ui_flag.ts";
import type { JoinMode } from "./join_policy.ts";

/** Where the dashboard listens unless told otherwise. */
export const DEFAULT_SERVER_UI = "127.0.0.1:7090";
const JOIN_MODES: readonly JoinMode[] = ["open", "key", "approve"];

/** Everything the server needs to start; every field required. */
export interface ServerConfig {
  /** Address the TCP listener binds. */
  host: string;
  /** TCP port of the index (0: any free port). */
  port: number;
  /** SQLite file, ":memory:", or a postgres:// URL (a catalogue several servers share). */
  db: string;
  /** UDP port of discovery (0: any free port). */
  announcePort: number;
  /** Where announces are broadcast. */
  broadcast: string[];
  /** Interval between announces, ms. */
  announceIntervalMs: number;
  /** A session that sent nothing for this long is pinged, ms. */
  pingIntervalMs: number;
  /** A session silent for this long is dropped, ms. */
  pingTimeoutMs: number;
  /** Connections open at once, registered or not; more are refused. */
  maxConnections: number;
  /** Connections from one address that have not sent Hello yet; more are refused. */
  maxUnregisteredPerAddress: number;
  /** Registered sessions from one address; a Hello beyond it is refused. */
  maxSessionsPerAddress: number;
  /** Log threshold. */
  logLevel: LogLevel;
  /** Most files one session may publish. */
  maxEntriesPerSession: number;
  /** Where the dashboard listens; null: no dashboard (`--ui off`). */
  ui: UiListen | null;
  /** Folder of the server's identity (key.pem, cert.pem): see `identityDirFor`. */
  identity: string;
  /** Plain TCP instead of TLS, for comparisons; peers must be started with it too. */
  insecurePlaintext: boolean;
  /** Who may join: anyone, holders of the network key, or devices the operator approved. */
  join: JoinMode;
  /** File holding the network key (`--join key`); never logged. */
  networkKeyFile: string | undefined;
}

/**
 * Where the server keeps its identity unless told: beside a database file
 * (`<db>.identity/`), else (`:memory:`, postgres://) `./lanshare-server.identity/`.
 */
export function identityDirFor(db: string): string {
  return db === ":memory:" || /^postgres(ql)?:\/\//i.test(db)
    ? "lanshare-server.identity"
    : `${db}.identity`;
}

/** The server's options, for parsing and --help. */
export const SERVER_OPTIONS: readonly OptionSpec[] = [
  {
    flag: "host",
    env: "LANSHARE_HOST",
    kind: "string",
    default: "0.0.0.0",
    help: "TCP address to bind",
  },
  {
    flag: "port",
    env: "LANSHARE_PORT",
    kind: "port",
    default: 7070,
    help: "TCP port of the index (0: any)",
  },
  {
    flag: "db",
    env: "LANSHARE_DB",
    kind: "string",
    default: "lanshare-index.db",
    help: "SQLite file, :memory:, or postgres://user@host:port/db",
  },
  {
    flag: "announce-port",
    env: "LANSHARE_ANNOUNCE_PORT",
    kind: "port",
    default: 7071,
    help: "UDP discovery port (0: any)",
  },
  {
    flag: "broadcast",
    env: "LANSHARE_BROADCAST",
    kind: "list",
    default: undefined,
    help: "announce to ADDR[,ADDR] (default: 255.255.255.255 and each interface's broadcast)",
  },
  {
    flag: "announce-interval-ms",
    env: "LANSHARE_ANNOUNCE_INTERVAL_MS",
    kind: "uint",
    default: 2000,
    help: "ms between announces",
  },
  {
    flag: "ping-interval-ms",
    env: "LANSHARE_PING_INTERVAL_MS",
    kind: "uint",
    // Pings only find peers that vanished without closing TCP (a crash closes it); at 10,000
    // sessions every 5 s they cost a quarter of the lookup p99 (5.2-5.6 ms against 3.9-4.1 ms
    // at 15 s, bench/RESULTS.md).
    default: 15000,
    help: "ms between pings of a session",
  },
  {
    flag: "ping-timeout-ms",
    env: "LANSHARE_PING_TIMEOUT_MS",
    kind: "uint",
    default: 30000,
    help: "drop a session silent this long",
  },
  {
    flag: "max-entries-per-session",
    env: "LANSHARE_MAX_ENTRIES_PER_SESSION",
    kind: "uint",
    // What one Shares answer lists (MAX_LIST_ITEMS); at ~300 B an entry, 3 MB per session.
    default: DEFAULT_MAX_ENTRIES_PER_SESSION,
    help: "most files one session may publish",
  },
  {
    flag: "max-connections",
    env: "LANSHARE_MAX_CONNECTIONS",
    kind: "uint",
    default: 10_000,
    help: "connections open at once; more are refused with busy",
  },
  {
    flag: "max-unregistered-per-address",
    env: "LANSHARE_MAX_UNREGISTERED_PER_ADDRESS",
    kind: "uint",
    // A peer opens one index connection at a time; a few more cover reconnects in flight.
    default: 8,
    help: "connections from one address that have not sent Hello yet",
  },
  {
    flag: "max-sessions-per-address",
    env: "LANSHARE_MAX_SESSIONS_PER_ADDRESS",
    kind: "uint",
    // Several peers may share one address (one host, or a NAT); each has one session.
    default: 64,
    help: "registered sessions from one address",
  },
  {
    flag: "ui",
    env: "LANSHARE_UI",
    kind: "string",
    default: DEFAULT_SERVER_UI,
    help: `dashboard HOST:PORT, or off (default ${DEFAULT_SERVER_UI}, or the next free port)`,
  },
  {
    flag: "identity",
    env: "LANSHARE_IDENTITY",
    kind: "string",
    default: undefined,
    help: "folder of the server's key and certificate (default: <db>.identity)",
  },
  {
    flag: "insecure-plaintext",
    env: "LANSHARE_INSECURE_PLAINTEXT",
    kind: "boolean",
    default: false,
    help: "no TLS (for comparisons only; peers need it too)",
  },
  {
    flag: "join",
    env: "LANSHARE_JOIN",
    kind: "string",
    default: "open",
    help: "who may join: open, key (--network-key-file) or approve (operator runs approve ID)",
  },
  {
    flag: "network-key-file",
    env: "LANSHARE_NETWORK_KEY_FILE",
    kind: "string",
    default: undefined,
    help: "file holding the network key, for --join key",
  },
  {
    flag: "log-level",
    env: "LANSHARE_LOG_LEVEL",
    kind: "string",
    default: "info",
    help: "debug, info, warning or error",
  },
];

/** Result of parsing: a config to run, or a request for help/version text. */
export type ServerCommandLine = CommandLine<ServerConfig>;

/**
 * Resolves flags > env > defaults into a ServerConfig.
 *
 * @param defaultBroadcast used when --broadcast and LANSHARE_BROADCAST are both absent
 * @throws {ConfigError} listing every invalid field
 */
export function resolveServerConfig(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  defaultBroadcast: () => string[],
): ServerCommandLine {
  const { values: v, problems } = resolveOptions(SERVER_OPTIONS, args, env);
  if (v.help) {
    return {
      kind: "help",
      text: usage(
        "lanshare-server",
        "The lanshare index server: peers register, publish and look up files here.",
        SERVER_OPTIONS,
      ),
    };
  }
  if (v.version) return { kind: "version" };
  const level = v["log-level"] as string;
  if (!["debug", "info", "warning", "error"].includes(level)) {
    problems.push(`--log-level must be debug, info, warning or error, got "${level}"`);
  }
  const pingIntervalMs = v["ping-interval-ms"] as number;
  const pingTimeoutMs = v["ping-timeout-ms"] as number;
  if (pingIntervalMs < 10) problems.push("--ping-interval-ms must be at least 10");
  if (pingTimeoutMs <= pingIntervalMs) {
    problems.push("--ping-timeout-ms must exceed --ping-interval-ms");
  }
  if ((v["announce-interval-ms"] as number) < 10) {
    problems.push("--announce-interval-ms must be at least 10");
  }
  for (
    const flag of [
      "max-entries-per-session",
      "max-connections",
      "max-unregistered-per-address",
      "max-sessions-per-address",
    ]
  ) {
    if ((v[flag] as number) < 1) problems.push(`--${flag} must be at least 1`);
  }
  let ui: UiListen | null = null;
  try {
    ui = parseUiFlag(v.ui as string, DEFAULT_SERVER_UI);
  } catch (err) {
    problems.push(`--ui: ${(err as Error).message} (or "off")`);
  }
  const join = v.join as string;
  const networkKeyFile = v["network-key-file"] as string | undefined;
  if (!JOIN_MODES.includes(join as JoinMode)) {
    problems.push(`--join must be open, key or approve, not "${join}"`);
  }
  if (join === "key" && networkKeyFile === undefined) {
    problems.push("--join key needs --network-key-file");
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    kind: "run",
    config: {
      host: v.host as string,
      port: v.port as number,
      db: v.db as string,
      announcePort: v["announce-port"] as number,
      broadcast: (v.broadcast as string[] | undefined) ?? defaultBroadcast(),
      announceIntervalMs: v["announce-interval-ms"] as number,
      pingIntervalMs,
      pingTimeoutMs,
      maxConnections: v["max-connections"] as number,
      maxUnregisteredPerAddress: v["max-unregistered-per-address"] as number,
      maxSessionsPerAddress: v["max-sessions-per-address"] as number,
      logLevel: level as LogLevel,
      maxEntriesPerSession: v["max-entries-per-session"] as number,
      ui,
      identity: (v.identity as string | undefined) ?? identityDirFor(v.db as string),
      insecurePlaintext: v["insecure-plaintext"] as boolean,
      join: join as JoinMode,
      networkKeyFile,
    },
  };
}
