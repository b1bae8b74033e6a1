// The peer's shell: one command line in, one answer out (a JSON object, or short human lines).
// Commands run concurrently, so `status` works while a `fetch` runs.
import { shortId } from "../shared/identity.ts";
import { splitWords } from "../shared/cli.ts";
import { formatBytes, formatDuration, formatRate } from "../shared/format.ts";
import type { FetchInfo } from "./activity.ts";
import type { PublishResult } from "./answers.ts";
import type { PeerOps } from "./ops.ts";
import { describeQueues, progressFields } from "./progress.ts";

/** Where answers go. */
export interface ShellOutput {
  /** One answer: `data` for JSON mode, `lines` for humans. */
  answer(data: Record<string, unknown>, lines: string[]): void;
  /** Progress of a running fetch (JSON event, or a live line on a TTY). */
  progress(info: FetchInfo): void;
  /** Progress of hashing a file being published. */
  hashing(path: string, hashedBytes: number, size: number): void;
}

const HELP = [
  "publish <lname> [fname]           share repository file <lname> as <fname> (default: its name)",
  "unpublish <fname>                 stop sharing <fname>",
  "fetch <fname> [--hash P] [--force] download <fname> from the peers that have it",
  "cancel <fname>                    stop a fetch and delete its partial download",
  "list                              what this peer shares",
  "search [pattern] [--offset N] [--limit N]  the catalogue (substring, or glob with * and ?)",
  "status                            the index connection; running, queued and partial transfers",
  "reconnect                         connect to the index now (after being replaced: take it back)",
  "forget-server <host:port>         forget the pinned ID of that index (to accept its new one)",
  "help                              this text",
  "quit                              leave the index and stop",
];

/**
 * Runs one command line. Never throws: failures become `{ok: false, error}` answers.
 *
 * @returns true when the command was `quit`
 */
export async function runPeerCommand(
  ops: PeerOps,
  line: string,
  out: ShellOutput,
): Promise<boolean> {
  let words: string[];
  try {
    words = splitWords(line);
  } catch (err) {
    out.answer({ ok: false, error: (err as Error).message }, [`error: ${(err as Error).message}`]);
    return false;
  }
  const [cmd, ...args] = words;
  if (cmd === undefined) return false;
  const fail = (error: string) => out.answer({ cmd, ok: false, error }, [`error: ${error}`]);
  try {
    switch (cmd) {
      case "help":
        out.answer({ cmd, ok: true, commands: HELP }, HELP);
        return false;
      case "quit":
      case "exit":
        out.answer({ cmd: "quit", ok: true }, ["bye"]);
        return true;
      case "publish": {
        if (args.length < 1 || args.length > 2) {
          fail("usage: publish <lname> [fname]");
          return false;
        }
        const r = await ops.publish(
          { lname: args[0]!, fname: args[1] },
          (done, size) => out.hashing(args[0]!, done, size),
        );
        out.answer({ cmd, ok: true, ...r }, publishLines(r));
        return false;
      }
      case "unpublish": {
        if (args.length !== 1) {
          fail("usage: unpublish <fname>");
          return false;
        }
        const { removed } = await ops.unpublish(args[0]!);
        out.answer({ cmd, ok: true, fname: args[0], removed }, [
          removed ? `unpublished ${args[0]}` : `${args[0]} was not published`,
        ]);
        return false;
      }
      case "fetch": {
        const fname = args.find((a, i) => !a.startsWith("--") && args[i - 1] !== "--hash");
        const hashAt = args.indexOf("--hash");
        const hashPrefix = hashAt >= 0 ? args[hashAt + 1] : undefined;
        const unknown = args.filter((a) => a.startsWith("--") && a !== "--hash" && a !== "--force");
        if (!fname || unknown.length > 0 || (hashAt >= 0 && !hashPrefix)) {
          {
            fail("usage: fetch <fname> [--hash PREFIX] [--force]");
            return false;
          }
        }
        const r = await ops.fetch(fname, {
          force: args.includes("--force"),
          hashPrefix,
          onProgress: (info: FetchInfo) => out.progress(info),
        });
        const note = r.versions.length > 1
          ? ` (note: ${r.versions.length} different contents share this name; took ${
            r.rootHash.slice(0, 12)
          }, the one published by ${r.versions[0]!.sources} device(s) (${
            r.versions[0]!.publishers.join(", ")
          }); others: ${
            r.versions.slice(1).map((v) =>
              `${v.rootHash.slice(0, 12)} by ${v.publishers.join(", ")}`
            )
              .join("; ")
          }; choose with --hash)`
          : "";
        const bad = r.badSources.length > 0
          ? `; dropped lying or corrupt source(s) ${r.badSources.join(", ")}`
          : "";
        out.answer({ cmd, ok: true, ...r }, [
          `fetched ${r.fname}: ${formatBytes(r.size)} in ${formatDuration(r.durationMs)} ` +
          `(${formatRate(r.bytesPerSecond)} from ${Object.keys(r.bySource).length} source(s)` +
          `${r.resumedBytes > 0 ? `, ${formatBytes(r.resumedBytes)} resumed` : ""})${bad}${note}`,
        ]);
        return false;
      }
      case "cancel": {
        if (args.length !== 1) {
          fail("usage: cancel <fname>");
          return false;
        }
        const r = await ops.cancel(args[0]!);
        out.answer({ cmd, ok: true, ...r }, [
          r.running || r.partials > 0 ? `cancelled ${args[0]}` : `nothing to cancel for ${args[0]}`,
        ]);
        return false;
      }
      case "list": {
        const files = ops.list();
        out.answer({ cmd, ok: true, files }, [
          `${files.length} file(s) shared`,
          ...files.map((f) =>
            `  ${f.fname}  ${formatBytes(f.size)}  ${f.rootHash.slice(0, 12)}  ${f.path}${
              f.partial ? " (partial)" : ""
            }`
          ),
        ]);
        return false;
      }
      case "search": {
        const options = parseSearchArgs(args);
        if (typeof options === "string") {
          fail(options);
          return false;
        }
        const { groups: _, ...page } = await ops.search(options);
        const shown = page.entries.length === 0
          ? ""
          : `, showing ${options.offset + 1}–${options.offset + page.entries.length}`;
        out.answer({ cmd, ok: true, ...page }, [
          `${page.total}${page.capped ? "+" : ""} match(es)${shown}`,
          ...page.entries.map((e) =>
            `  ${e.fname}  ${formatBytes(e.size)}  ${
              e.rootHash.slice(0, 12)
            }  @${e.hostname}:${e.port}${e.id === undefined ? "" : ` by ${shortId(e.id)}`}` +
            `${e.have !== undefined ? " (partial)" : ""}${e.online ? "" : " (offline)"}`
          ),
        ]);
        return false;
      }
      case "status": {
        const s = await ops.status();
        out.answer({ cmd, ok: true, ...s }, [
          `this peer: device ${shortId(s.id)}`,
          `index: ${s.index.summary}`,
          `slots ${s.slots.active}/${s.slots.max} busy, ${s.slots.queued} queued`,
          ...s.fetches.map((f) => {
            const p = progressFields(f, 0, Date.now());
            const queues = describeQueues(p.queuedAt);
            return `  fetching ${f.fname}: ${formatBytes(f.doneBytes)} of ${
              formatBytes(f.size)
            } from ${f.activeSources} source(s)${queues ? `, ${queues}` : ""}` +
              `${p.stalledMs > 0 ? `, stalled for ${formatDuration(p.stalledMs)}` : ""}`;
          }),
          ...s.uploads.map((u) => `  sending ${u.fname} to ${u.peer}: ${formatBytes(u.bytes)}`),
          ...s.partials.map((p) =>
            `  partial ${p.fname}: ${p.verifiedPieces}/${p.pieces} pieces (fetch to resume, cancel to drop)`
          ),
        ]);
        return false;
      }
      case "reconnect": {
        if (args.length !== 0) {
          fail("usage: reconnect");
          return false;
        }
        const server = await ops.reconnect();
        out.answer({ cmd, ok: true, server }, [`connected to the index server ${server}`]);
        return false;
      }
      case "forget-server": {
        if (args.length !== 1) {
          fail("usage: forget-server <host:port>");
          return false;
        }
        const forgotten = await ops.forgetServer(args[0]!);
        if (!forgotten) {
          fail(`Cannot forget "${args[0]}": no index pinned at that address`);
          return false;
        }
        out.answer({ cmd, ok: true, server: args[0] }, [
          `forgot the index at ${args[0]}: its next ID is trusted on first use`,
        ]);
        return false;
      }
      default:
        fail(`unknown command "${cmd}" (try help)`);
        return false;
    }
  } catch (err) {
    // PeerError, FetchError and RemoteError carry messages written for the user; anything
    // else is reported the same way rather than lost.
    fail(err instanceof Error ? err.message : String(err));
    return false;
  }
}

/** Parses `search [pattern] [--offset N] [--limit N]`, or returns a usage error. */
function parseSearchArgs(
  args: string[],
): { pattern: string; offset: number; limit: number } | string {
  const usage = "usage: search [pattern] [--offset N] [--limit N] (limit 1 to 1000)";
  const result = { pattern: "", offset: 0, limit: 100 };
  let patternSeen = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--offset" || arg === "--limit") {
      const value = Number(args[++i]);
      if (!Number.isSafeInteger(value) || value < 0) return usage;
      if (arg === "--offset") result.offset = value;
      else result.limit = value;
    } else if (!patternSeen) {
      result.pattern = arg;
      patternSeen = true;
    } else {
      return usage;
    }
  }
  return result.limit >= 1 && result.limit <= 1000 ? result : usage;
}

/** The publish answer in words: what the index did, and any other content under the name. */
export function publishLines(r: PublishResult): string[] {
  const what = `${r.fname} (${formatBytes(r.size)}, ${r.rootHash.slice(0, 12)}) from ${r.path}`;
  const done = {
    created: "published",
    unchanged: "unchanged",
    updated: "updated",
    overwrite: "overwrote",
    conflict: "published",
    pending: "shared",
  }[r.status];
  const lines = [`${done} ${what}`];
  if (r.pendingReason !== undefined) {
    lines.push(`  not on the index yet, it is announced once connected: ${r.pendingReason}`);
  }
  if (r.previousRootHash !== undefined) {
    lines.push(
      `  replaced this peer's earlier content ${r.previousRootHash.slice(0, 12)} under this name`,
    );
  }
  if (r.conflictRootHash !== undefined) {
    lines.push(
      `  conflict: another peer shares different content ${
        r.conflictRootHash.slice(0, 12)
      } under this name; fetchers choose with --hash`,
    );
  }
  return lines;
}
