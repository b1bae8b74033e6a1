// The operator's shell: one command line in, answer lines out. Talks to a running server.
import { shortId } from "../shared/identity.ts";
import type { SessionRow } from "./store.ts";
import { splitWords } from "../shared/cli.ts";
import { formatBytes } from "../shared/format.ts";
import { type FileEntry, MsgType } from "../shared/protocol.ts";
import { expectType } from "../shared/rpc.ts";
import type { RunningServer } from "./server.ts";
import { DEVICE_HELP, runDeviceCommand } from "./device_commands.ts";

/** Answer to one shell command. */
export interface ShellAnswer {
  lines: string[];
  /** true after `quit`. */
  quit?: boolean;
}

/** ms to wait for a peer's answer to `discover` or `ping`. */
const PEER_TIMEOUT_MS = 5000;

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

/** Runs one command line against `server`. Never throws: errors become answer lines. */
export async function runServerCommand(server: RunningServer, line: string): Promise<ShellAnswer> {
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
        return { lines: await peers(server) };
      case "files":
        return { lines: await files(server, args[0] ?? "") };
      case "stats":
        return { lines: await stats(server) };
      case "discover":
        if (args.length !== 1) return { lines: ["usage: discover <hostname>"] };
        return { lines: await discover(server, args[0]!) };
      case "ping":
        if (args.length !== 1) return { lines: ["usage: ping <hostname>"] };
        return { lines: await ping(server, args[0]!) };
      default:
        return {
          lines: await runDeviceCommand(server, command, args) ??
            [`error: unknown command "${command}" (try help)`],
        };
    }
  } catch (err) {
    return { lines: [`error: ${err instanceof Error ? err.message : String(err)}`] };
  }
}

function formatEntry(entry: FileEntry): string {
  const partial = entry.have === undefined ? "" : " (partial)";
  return `  ${entry.fname}  ${formatBytes(entry.size)}  ${entry.rootHash.slice(0, 12)}${partial}`;
}

async function stats(server: RunningServer): Promise<string[]> {
  const counts = await server.catalog.counts();
  const memory = Deno.memoryUsage();
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
  return [
    `${counts.sessions} live session(s) (${server.live.size} here), ${counts.entries} entries`,
    `memory: rss ${mib(memory.rss)}, heap ${mib(memory.heapUsed)} used of ${
      mib(memory.heapTotal)
    }, external ${mib(memory.external)}`,
    `this server: device ${shortId(server.identity.id)} (${server.identity.id})`,
  ];
}

/** A session's device in short form, for the operator's listings. */
function deviceOf(row: SessionRow): string {
  return row.deviceId ? `device ${shortId(row.deviceId)}` : "no device ID";
}

async function peers(server: RunningServer): Promise<string[]> {
  const sessions = await server.catalog.sessions();
  const counts = await server.catalog.counts();
  return [
    `${sessions.length} peer(s), ${counts.entries} entr${counts.entries === 1 ? "y" : "ies"}`,
    ...sessions.map((s) => {
      const here = server.live.has(s.sessionId) ? "" : ` (via server ${s.serverId.slice(0, 8)})`;
      return `  ${s.hostname}  ${s.address}:${s.port}  ${deviceOf(s)}  since ${
        new Date(s.openedAtMs).toISOString()
      }${here}`;
    }),
  ];
}

async function files(server: RunningServer, pattern: string): Promise<string[]> {
  const page = await server.catalog.search(pattern, {
    offset: 0,
    limit: 200,
    includeOffline: true,
  });
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

async function discover(server: RunningServer, hostname: string): Promise<string[]> {
  const sessions = await server.catalog.sessions(hostname);
  if (sessions.length === 0) return [`no live peer named "${hostname}"`];
  const lines: string[] = [];
  for (const row of sessions) {
    const session = server.live.get(row.sessionId);
    if (!session) {
      // Held by another server over the same database: answer from the index, with its age.
      const entries = await server.catalog.store.entriesOf(row.sessionId);
      lines.push(
        `${row.hostname} ${row.address}:${row.port}: ${entries.length} file(s) (from the index), ${
          deviceOf(row)
        }`,
      );
      lines.push(...entries.map(formatEntry));
      continue;
    }
    const reply = expectType(
      await session.rpc.request(MsgType.ListShares, {}, PEER_TIMEOUT_MS),
      MsgType.Shares,
    );
    lines.push(
      `${row.hostname} ${row.address}:${row.port}: ${reply.body.files.length} file(s) (live), ${
        deviceOf(row)
      }`,
    );
    lines.push(...reply.body.files.map(formatEntry));
  }
  return lines;
}

async function ping(server: RunningServer, hostname: string): Promise<string[]> {
  const sessions = await server.catalog.sessions(hostname);
  if (sessions.length === 0) return [`no live peer named "${hostname}"`];
  const lines: string[] = [];
  for (const row of sessions) {
    const session = server.live.get(row.sessionId);
    let rtt = "not on this server";
    if (session) {
      const t0 = performance.now();
      try {
        await session.rpc.request(MsgType.Ping, { sentAtMs: Date.now() }, PEER_TIMEOUT_MS);
        rtt = `rtt ${(performance.now() - t0).toFixed(2)} ms`;
      } catch (err) {
        rtt = `no answer (${(err as Error).message})`;
      }
    }
    const t1 = performance.now();
    let p2p: string;
    try {
      const conn = await Deno.connect({
        hostname: row.address,
        port: row.port,
        signal: AbortSignal.timeout(2000),
      });
      conn.close();
      p2p = `P2P port ${row.port} open (connect ${(performance.now() - t1).toFixed(2)} ms)`;
    } catch (err) {
      p2p = `P2P port ${row.port} closed (${(err as Error).message})`;
    }
    lines.push(`${row.hostname} ${row.address}: ${rtt}; ${p2p}`);
  }
  return lines;
}
