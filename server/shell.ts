// The operator's shell: one command line in, answer lines out. Talks to a running server
// through ServerOps, the operations the dashboard's API calls too.
import { splitWords } from "../shared/cli.ts";
import { formatBytes } from "../shared/format.ts";
import { shortId } from "../shared/identity.ts";
import type { FileEntry } from "../shared/protocol.ts";
import { DEVICE_HELP, runDeviceCommand } from "./device_commands.ts";
import { ServerOpError, type ServerOps } from "./ops.ts";

/** Answer to one shell command. */
export interface ShellAnswer {
  lines: string[];
  /** true after `quit`. */
  quit?: boolean;
}

/** Most catalogue entries `files` shows. */
const FILES_SHOWN = 200;

const HELP = [
  "discover <hostname>   files shared by that host, asked live from each of its sessions",
  "ping <hostname>       round trip over each session, and whether its P2P port accepts",
  "peers                 live sessions",
  "files [pattern]       the catalogue (substring, or glob with * and ?)",
  "stats                 sessions, entries and this process's memory",
  ...DEVICE_HELP,
  "help                  this text",
  "quit                  stop the server",
];

/** Runs one command line against the server. Never throws: errors become answer lines. */
export async function runServerCommand(ops: ServerOps, line: string): Promise<ShellAnswer> {
  let words: string[];
  try {
    words = splitWords(line);
  } catch (err) {
    return { lines: [`error: ${(err as Error).message}`] };
  }
  const [command, ...args] = words;
  try {
    switch (command) {
      case undefined:
        return { lines: [] };
      case "help":
        return { lines: HELP };
      case "quit":
      case "exit":
        return { lines: ["bye"], quit: true };
      case "peers":
        return { lines: await peers(ops) };
      case "files":
        return { lines: await files(ops, args[0] ?? "") };
      case "stats":
        return { lines: await stats(ops) };
      case "discover":
        if (args.length !== 1) return { lines: ["usage: discover <hostname>"] };
        return { lines: await discover(ops, args[0]!) };
      case "ping":
        if (args.length !== 1) return { lines: ["usage: ping <hostname>"] };
        return { lines: await ping(ops, args[0]!) };
      default:
        return {
          lines: await runDeviceCommand(ops.server, command, args) ??
            [`error: unknown command "${command}" (try help)`],
        };
    }
  } catch (err) {
    if (err instanceof ServerOpError && err.kind === "not-found") {
      return { lines: [`no live peer named "${args[0]}"`] };
    }
    return { lines: [`error: ${err instanceof Error ? err.message : String(err)}`] };
  }
}

function formatEntry(entry: FileEntry): string {
  const partial = entry.have === undefined ? "" : " (partial)";
  return `  ${entry.fname}  ${formatBytes(entry.size)}  ${entry.rootHash.slice(0, 12)}${partial}`;
}

async function stats(ops: ServerOps): Promise<string[]> {
  const s = await ops.stats();
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
  return [
    `${s.sessions} live session(s) (${s.here} here), ${s.entries} entries`,
    `memory: rss ${mib(s.memory.rss)}, heap ${mib(s.memory.heapUsed)} used of ${
      mib(s.memory.heapTotal)
    }, external ${mib(s.memory.external)}`,
    `this server: device ${shortId(s.serverDeviceId)} (${s.serverDeviceId})`,
  ];
}

async function peers(ops: ServerOps): Promise<string[]> {
  const { peers: rows, entries } = await ops.allPeers();
  return [
    `${rows.length} peer(s), ${entries} entr${entries === 1 ? "y" : "ies"}`,
    ...rows.map((s) => {
      const here = s.here ? "" : ` (via server ${s.serverId.slice(0, 8)})`;
      return `  ${s.hostname}  ${s.address}:${s.port}  ${deviceOf(s.deviceId)}  since ${
        new Date(s.openedAtMs).toISOString()
      }${here}`;
    }),
  ];
}

async function files(ops: ServerOps, pattern: string): Promise<string[]> {
  const page = await ops.files({ pattern, offset: 0, limit: FILES_SHOWN });
  const lines = [
    `${page.total}${page.capped ? "+" : ""} file(s)${
      page.total > page.entries.length ? `, first ${page.entries.length}` : ""
    }`,
  ];
  for (const e of page.entries) {
    lines.push(`${formatEntry(e)}  @${e.hostname}:${e.port}${e.online ? "" : " (offline)"}`);
  }
  return lines;
}

async function discover(ops: ServerOps, hostname: string): Promise<string[]> {
  const lines: string[] = [];
  for (const s of await ops.discover(hostname)) {
    lines.push(
      `${s.hostname} ${s.address}:${s.port}: ${s.files.length} file(s) (${
        s.source === "live" ? "live" : "from the index"
      }), ${deviceOf(s.deviceId)}`,
    );
    lines.push(...s.files.map(formatEntry));
  }
  return lines;
}

async function ping(ops: ServerOps, hostname: string): Promise<string[]> {
  return (await ops.ping(hostname)).map((s) => {
    const rtt = s.rttMs !== null
      ? `rtt ${s.rttMs.toFixed(2)} ms`
      : s.rttError === "not on this server"
      ? s.rttError
      : `no answer (${s.rttError})`;
    const p2p = s.p2pOpen
      ? `P2P port ${s.port} open (connect ${s.connectMs!.toFixed(2)} ms)`
      : `P2P port ${s.port} closed (${s.p2pError})`;
    return `${s.hostname} ${s.address}: ${rtt}; ${p2p}`;
  });
}

/** A session's device in short form, for the operator's listings. */
function deviceOf(deviceId: string | null): string {
  return deviceId === null ? "no device ID" : `device ${shortId(deviceId)}`;
}
