// Entry point of the index server: flags/env → config → startServer(); shell on stdin; signals.
// The only place that reads Deno.args/Deno.env or exits.
import {
  configOrExitCode,
  defaultBroadcastAddresses,
  readLines,
  readOptionEnv,
} from "../shared/cli.ts";
import { setupLogging } from "../shared/log.ts";
import { VERSION } from "../shared/version.ts";
import { resolveServerConfig, SERVER_OPTIONS } from "./config.ts";
import { UnstableNetError } from "./beacon.ts";
import { startServer } from "./server.ts";
import { runServerCommand } from "./shell.ts";
import { ServerOps } from "./ops.ts";
import { serverTokenPath, startServerUi } from "./ui_server.ts";
import type { UiServer } from "../shared/http/ui_server.ts";
import { serveSqliteWrites, SQLITE_WRITER_NAME } from "./sqlite_writer.ts";

/** Runs the server until `quit` or SIGINT/SIGTERM (not end of stdin). Returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const parsed = configOrExitCode("lanshare-server", VERSION, () =>
    resolveServerConfig(
      args,
      readOptionEnv(SERVER_OPTIONS),
      () => defaultBroadcastAddresses(Deno.networkInterfaces()),
    ));
  if ("exitCode" in parsed) return parsed.exitCode;
  const { config } = parsed;
  await setupLogging(config.logLevel);
  let server;
  try {
    server = await startServer(config);
  } catch (err) {
    // Straight to stderr: the process exits right after, before buffered log sinks flush.
    console.error(`Cannot start: ${err instanceof Error ? err.message : String(err)}`);
    // How the server was run, not what happened while running: a usage error.
    if (err instanceof Deno.errors.NotCapable) {
      console.error(permissionHint(config.db, config.identity));
      return 2;
    }
    return err instanceof UnstableNetError ? 2 : 1;
  }
  const ops = new ServerOps(server);
  let ui: UiServer | undefined;
  if (config.ui) {
    try {
      ui = await startServerUi(ops, { ...config.ui, tokenPath: serverTokenPath(config.db) });
    } catch (err) {
      console.error(
        `Cannot start the dashboard on ${config.ui.hostname}:${config.ui.port}: ${
          err instanceof Error ? err.message : String(err)
        } (choose another with --ui HOST:PORT, or --ui off)`,
      );
      await server.close();
      return 1;
    }
  }
  console.log(JSON.stringify({
    event: "listening",
    tcp: server.tcpPort,
    udp: server.udpPort,
    serverId: server.serverId,
    id: server.identity.id,
    tls: !config.insecurePlaintext,
    db: config.db,
    ui: ui?.url ?? null,
    startMs: server.startMs,
  }));
  if (ui) console.log(`Dashboard: ${ui.url}`);

  const stop = Promise.withResolvers<void>();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => stop.resolve());
  }
  const shell = (async () => {
    const interactive = Deno.stdin.isTerminal();
    if (interactive) await write("lanshare-server> ");
    for await (const line of readLines(Deno.stdin.readable)) {
      const answer = await runServerCommand(ops, line);
      for (const text of answer.lines) console.log(text);
      if (answer.quit) return stop.resolve();
      if (interactive) await write("lanshare-server> ");
    }
    // stdin closed (e.g. started with </dev/null or as a service): keep serving until a signal.
  })();
  await stop.promise;
  await ui?.close();
  await server.close();
  void shell;
  return 0;
}

/** What grants the server the access it needs, for the database it was given. */
function permissionHint(db: string, identity: string): string {
  const lines = [
    "The server needs --allow-net, --allow-env=LANSHARE_*,PG*, " +
    "--allow-sys=hostname,networkInterfaces and read access to its own code (server,shared).",
  ];
  if (db !== ":memory:" && !/^postgres(ql)?:\/\//i.test(db)) {
    const files = ["", "-wal", "-shm", "-journal"].map((suffix) => db + suffix).join(",");
    lines.push(
      `The database "${db}" needs --allow-read=${files} --allow-write=${files}; ` +
        `\`make server ARGS="--db ${db}"\` grants exactly these.`,
    );
  }
  lines.push(
    `Its identity folder "${identity}" needs --allow-read=${identity} --allow-write=${identity} ` +
      "(--identity PATH puts it elsewhere).",
  );
  return lines.join("\n");
}

async function write(text: string): Promise<void> {
  await Deno.stdout.write(new TextEncoder().encode(text));
}

if (import.meta.main) {
  // A bundled server (one .js file) is also the module of its own SQLite writer worker.
  if ((globalThis as { name?: string }).name === SQLITE_WRITER_NAME) serveSqliteWrites();
  else Deno.exit(await main(Deno.args));
}
