// Spawns the real server/main.ts and peer/main.ts as processes, with the permissions a user
// would give them, and drives their shells over stdin/stdout.
import { dirname, join, resolve } from "node:path";
import { connectTo, type TransportConn } from "../../shared/transport.ts";
import { splitWords } from "../../shared/cli.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
/** The `--v8-flags=…` of deno.json's `server` task: the server runs as that task runs it. */
const SERVER_V8_FLAGS = /--v8-flags=\S+/.exec(
  JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)).tasks.server,
)![0];
const encoder = new TextEncoder();

/** Reads a child's stdout as lines and waits for matching ones. */
class LineReader {
  readonly #lines: string[] = [];
  #waiters: (() => void)[] = [];
  #ended = false;
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = (async () => {
      let pending = "";
      for await (const text of stream.pipeThrough(new TextDecoderStream())) {
        pending += text;
        let i: number;
        while ((i = pending.indexOf("\n")) >= 0) {
          this.#lines.push(pending.slice(0, i));
          pending = pending.slice(i + 1);
        }
        this.#wake();
      }
      this.#ended = true;
      this.#wake();
    })();
  }

  #wake() {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** Every line read so far. */
  get lines(): readonly string[] {
    return this.#lines;
  }

  /**
   * Waits for the first line from index `from` on that satisfies `match`.
   *
   * @returns the line and its index
   */
  async waitFor(
    match: (line: string) => boolean,
    options: { from?: number; timeoutMs: number; what: string; context: () => string },
  ): Promise<{ line: string; index: number }> {
    const deadline = Date.now() + options.timeoutMs;
    let scanned = options.from ?? 0;
    for (;;) {
      for (; scanned < this.#lines.length; scanned++) {
        if (match(this.#lines[scanned]!)) return { line: this.#lines[scanned]!, index: scanned };
      }
      if (this.#ended) {
        throw new Error(`Process ended before ${options.what}\n${options.context()}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`Timed out waiting for ${options.what}\n${options.context()}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }
}

/** A spawned program with a shell on stdin. */
export class Program implements AsyncDisposable {
  readonly name: string;
  readonly child: Deno.ChildProcess;
  readonly stdout: LineReader;
  #stderr = "";
  readonly #stderrDone: Promise<void>;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #exited = false;
  readonly status: Promise<Deno.CommandStatus>;

  constructor(name: string, command: Deno.Command) {
    this.name = name;
    const child = command.spawn();
    this.child = child;
    this.stdout = new LineReader(child.stdout);
    this.#stdin = child.stdin.getWriter();
    this.#stderrDone = (async () => {
      for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
        this.#stderr += text;
      }
    })();
    this.status = child.status.then((s) => {
      this.#exited = true;
      return s;
    });
  }

  /** What the program wrote to stderr so far (its logs). */
  get stderr(): string {
    return this.#stderr;
  }

  /** A description for failure messages: recent stdout and stderr. */
  context(): string {
    return `--- ${this.name} stdout (last 20) ---\n${this.stdout.lines.slice(-20).join("\n")}\n` +
      `--- ${this.name} stderr (last 3000 chars) ---\n${this.#stderr.slice(-3000)}`;
  }

  /** Sends one shell line. */
  async send(line: string): Promise<void> {
    await this.#stdin.write(encoder.encode(line + "\n"));
  }

  /** Waits for a stdout line matching `match`. */
  waitLine(
    match: (line: string) => boolean,
    what: string,
    options: { from?: number; timeoutMs?: number } = {},
  ): Promise<{ line: string; index: number }> {
    return this.stdout.waitFor(match, {
      from: options.from ?? 0,
      timeoutMs: options.timeoutMs ?? 30_000,
      what: `${this.name}: ${what}`,
      context: () => this.context(),
    });
  }

  /** Waits for the `{"event":"listening",…}` line the programs print once started; parsed. */
  async listening(): Promise<Answer> {
    const { line } = await this.waitLine(
      (l) => l.includes('"event":"listening"'),
      "listening line",
    );
    return JSON.parse(line) as Answer;
  }

  /** Kills the process (SIGKILL by default) and waits for it. */
  async kill(signal: Deno.Signal = "SIGKILL"): Promise<void> {
    if (!this.#exited) {
      try {
        this.child.kill(signal);
      } catch (err) {
        if (!(err instanceof TypeError)) throw err; // already exited
      }
    }
    await this.status;
    await this.#stdin.close().catch(() => {});
    await Promise.allSettled([this.stdout.done, this.#stderrDone]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill();
  }
}

/** A JSON answer of a peer shell. */
// deno-lint-ignore no-explicit-any
export type Answer = Record<string, any>;

/** A spawned index server. */
export class ServerProgram extends Program {
  tcpPort = 0;
  udpPort = 0;
  /** The dashboard's address with its token (spawned with `ui: true`), else "". */
  uiUrl = "";
  /** The server's device ID. */
  id = "";
  /** The server's certificate (PEM), to pin a hand-made connection to it. */
  certPem = "";
  /** An identity folder made for this server, removed when it is killed. */
  ownIdentity: string | undefined;

  override async kill(signal: Deno.Signal = "SIGKILL"): Promise<void> {
    await super.kill(signal);
    if (this.ownIdentity !== undefined) {
      await Deno.remove(this.ownIdentity, { recursive: true }).catch((err) => {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      });
    }
  }

  /** Runs a shell command and waits until a line matching `until` appears after it. */
  async command(line: string, until: RegExp, timeoutMs = 15_000): Promise<string[]> {
    const from = this.stdout.lines.length;
    await this.send(line);
    const { index } = await this.waitLine((l) => until.test(l), `"${line}" answer ${until}`, {
      from,
      timeoutMs,
    });
    return this.stdout.lines.slice(from, index + 1);
  }
}

/** A spawned peer in --json mode. */
export class PeerProgram extends Program {
  p2pPort = 0;
  /** The peer's device ID. */
  id = "";
  /** The peer's certificate (PEM), to pin a hand-made connection to its P2P port. */
  certPem = "";
  repo = "";
  /** The web UI's address with its token (spawned with `ui: true`), else "". */
  uiUrl = "";

  /**
   * Sends a command and waits for its answer: the next `{"cmd": cmd}` line (for fetch: with
   * that fname) written after the command was sent.
   */
  async command(line: string, options: { timeoutMs?: number } = {}): Promise<Answer> {
    const [cmd, arg] = splitWords(line);
    const from = this.stdout.lines.length;
    await this.send(line);
    const { line: answer } = await this.waitLine(
      (l) => {
        if (!l.startsWith("{")) return false;
        const data = JSON.parse(l) as Answer;
        if (data.cmd !== cmd) return false;
        return cmd !== "fetch" || data.fname === arg || data.ok === false;
      },
      `answer to "${line}"`,
      { from, timeoutMs: options.timeoutMs ?? 60_000 },
    );
    return JSON.parse(answer) as Answer;
  }
}

/**
 * Flags both programs take to listen on ephemeral TCP and UDP ports and broadcast only on
 * loopback, as the tests' network rule asks.
 */
export const LOOPBACK_ARGS: readonly string[] = [
  "--port",
  "0",
  "--announce-port",
  "0",
  "--broadcast",
  "127.255.255.255",
];

/** Options for spawnServer. */
export interface ServerSpawnOptions {
  args?: string[];
  /** Index database: a file (read/write allowed to its folder only), ":memory:" or postgres://. */
  db?: string;
  /** Program to run instead of server/main.ts (e.g. a bundle). */
  script?: string;
  /** Fixed ports (to restart a server where it was). */
  port?: number;
  announcePort?: number;
  /** Serve the dashboard on 127.0.0.1, any free port (default: `--ui off`). */
  ui?: boolean;
  /**
   * The server's identity folder (read/write allowed to it). Default: beside a database file,
   * else a temporary folder removed when the server is killed.
   */
  identity?: string;
  /** Files the server may read besides its code, database and identity (e.g. a network key). */
  readable?: string[];
}

/** Where a command runs and what it adds to its environment. */
export interface CommandOptions {
  /** Working folder. @default the repository root */
  cwd?: string;
  /** Variables added to the environment, which always has NO_COLOR=1. */
  env?: Record<string, string>;
}

/** `program args` in the options' folder with colours off, stdout and stderr piped. */
function command(
  program: string,
  args: string[],
  options: CommandOptions & { stdin: "piped" | "null"; signal?: AbortSignal },
): Deno.Command {
  return new Deno.Command(program, {
    args,
    cwd: options.cwd ?? ROOT,
    stdin: options.stdin,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...options.env },
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

/** `program args` with stdin, stdout and stderr piped and colours off, for a {@link Program}. */
export function pipedCommand(
  program: string,
  args: string[],
  options: CommandOptions = {},
): Deno.Command {
  return command(program, args, { ...options, stdin: "piped" });
}

/** Options for {@link runToExit}. */
export interface RunToExitOptions extends CommandOptions {
  /** Kills the program after this long. @default 20_000 */
  timeoutMs?: number;
}

/** A finished program: its exit code and its output as text. */
export interface ProgramOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `program args` with stdin closed and colours off until it exits (bounded). */
export async function runToExit(
  program: string,
  args: string[],
  options: RunToExitOptions = {},
): Promise<ProgramOutput> {
  const { code, stdout, stderr } = await command(program, args, {
    ...options,
    stdin: "null",
    signal: AbortSignal.timeout(options.timeoutMs ?? 20_000),
  }).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

function denoRun(
  permissions: string[],
  script: string,
  args: string[],
  env: Record<string, string> = {},
): Deno.Command {
  return pipedCommand(
    Deno.execPath(),
    // --unstable-net (Deno.listenDatagram) comes from deno.json for the sources; a bundle
    // elsewhere needs the flag itself, as users running one do.
    ["run", "--quiet", "--unstable-net", ...permissions, resolve(ROOT, script), ...args],
    { env },
  );
}

/** Starts the real index server on ephemeral ports, broadcasting only on loopback. */
export async function spawnServer(options: ServerSpawnOptions = {}): Promise<ServerProgram> {
  const db = options.db ?? ":memory:";
  // The permissions `deno task server` grants: PG* variables only for PostgreSQL's driver.
  const postgres = db.startsWith("postgres");
  const permissions = [
    "--allow-net",
    "--allow-sys=hostname,networkInterfaces",
    postgres ? "--allow-env=LANSHARE_*,PG*" : "--allow-env=LANSHARE_*",
    SERVER_V8_FLAGS,
  ];
  const fileDb = !postgres && db !== ":memory:";
  // Beside a file database the server's default identity folder is covered by its folder.
  const ownIdentity = options.identity === undefined && !fileDb
    ? Deno.makeTempDirSync({ prefix: "lanshare-server-identity-" })
    : undefined;
  const identity = options.identity ?? ownIdentity;
  const readable = [], writable = [];
  if (fileDb) {
    // The SQLite writer worker loads the server's own modules (or the bundle): read them too.
    readable.push(dirname(db), options.script ? resolve(ROOT, options.script) : "server,shared");
    writable.push(dirname(db));
  }
  if (options.readable) {
    readable.push(...options.readable);
  }
  if (identity !== undefined) {
    readable.push(identity);
    writable.push(identity);
  }
  if (readable.length > 0) permissions.push(`--allow-read=${readable.join(",")}`);
  if (writable.length > 0) permissions.push(`--allow-write=${writable.join(",")}`);
  const command = denoRun(
    permissions,
    options.script ?? "server/main.ts",
    [
      "--port",
      String(options.port ?? 0),
      "--announce-port",
      String(options.announcePort ?? 0),
      "--db",
      db,
      "--broadcast",
      "127.255.255.255",
      "--announce-interval-ms",
      "200",
      "--ui",
      options.ui ? "127.0.0.1:0" : "off",
      ...(identity !== undefined ? ["--identity", identity] : []),
      ...(options.args ?? []),
    ],
  );
  const server = new ServerProgram("server", command);
  server.ownIdentity = ownIdentity;
  try {
    const data = await server.listening();
    server.tcpPort = data.tcp;
    server.udpPort = data.udp;
    server.uiUrl = data.ui ?? "";
    server.id = data.id;
    const identityDir = identity ?? (fileDb ? `${db}.identity` : undefined);
    if (identityDir !== undefined) {
      server.certPem = await Deno.readTextFile(join(identityDir, "cert.pem"));
    }
    return server;
  } catch (err) {
    await server.kill();
    throw err;
  }
}

/** Options for spawnPeer. */
export interface PeerSpawnOptions {
  /** Repository folder; read/write permission is limited to it. */
  repo: string;
  hostname: string;
  /**
   * The server to discover (by broadcast on 127.255.255.255 to its UDP port), or the UDP port
   * to look for one on (none may answer yet).
   */
  server: ServerProgram | { udpPort: number };
  /** Program to run instead of peer/main.ts (e.g. a bundle). */
  script?: string;
  /** Use --server instead of discovery. */
  direct?: boolean;
  args?: string[];
  /** `--allow-sys` list; default: what `make peer` grants. */
  sys?: string;
  /** Grant no write permission for the repository. */
  noWrite?: boolean;
  /** Extra environment variables (e.g. the test-only LANSHARE_TEST_CORRUPT_PIECES). */
  env?: Record<string, string>;
  /** Serve the web UI on 127.0.0.1, any free port (default: `--ui off`). */
  ui?: boolean;
}

/** Starts a real peer with read/write limited to its repository. */
export async function spawnPeer(options: PeerSpawnOptions): Promise<PeerProgram> {
  await Deno.mkdir(options.repo, { recursive: true });
  const server = options.server;
  const where = options.direct && server instanceof ServerProgram
    ? ["--server", `127.0.0.1:${server.tcpPort}`, "--announce-port", String(server.udpPort)]
    : ["--announce-port", String(server.udpPort), "--broadcast", "127.255.255.255"];
  const command = denoRun(
    [
      "--allow-net",
      `--allow-sys=${options.sys ?? "hostname,networkInterfaces,statfs"}`,
      "--allow-env=LANSHARE_*",
      `--allow-read=${options.repo}`,
      ...(options.noWrite ? [] : [`--allow-write=${options.repo}`]),
    ],
    options.script ?? "peer/main.ts",
    [
      "--repo",
      options.repo,
      "--hostname",
      options.hostname,
      "--json",
      "--discover-timeout-ms",
      "10000",
      "--ui",
      options.ui ? "127.0.0.1:0" : "off",
      ...where,
      ...(options.args ?? []),
    ],
    options.env,
  );
  const peer = new PeerProgram(options.hostname, command);
  peer.repo = options.repo;
  try {
    const data = await peer.listening();
    peer.p2pPort = data.p2p;
    peer.uiUrl = data.ui ?? "";
    peer.id = data.id;
    const certFile = join(options.repo, ".lanshare", "identity", "cert.pem");
    // A read-only repository keeps no identity on disk (a new one each run).
    if (await exists(certFile)) peer.certPem = await Deno.readTextFile(certFile);
    return peer;
  } catch (err) {
    await peer.kill();
    throw err;
  }
}

/** SHA-256 of a file, hex, read in chunks. */
export async function sha256File(path: string): Promise<string> {
  const { createHash } = await import("node:crypto");
  const hash = createHash("sha256");
  using file = await Deno.open(path);
  const buffer = new Uint8Array(1 << 20);
  for (;;) {
    const n = await file.read(buffer);
    if (n === null) break;
    hash.update(buffer.subarray(0, n));
  }
  return hash.digest("hex");
}

/** Writes `size` pseudo-random bytes (seeded xorshift, fast) to `path`. */
export async function writeRandomFile(path: string, size: number, seed = 1): Promise<void> {
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  const chunk = new Uint8Array(1 << 20);
  const words = new Uint32Array(chunk.buffer);
  let x = seed >>> 0 || 1;
  for (let written = 0; written < size;) {
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      words[i] = x >>> 0;
    }
    const n = Math.min(chunk.length, size - written);
    let off = 0;
    while (off < n) off += await file.write(chunk.subarray(off, n));
    written += n;
  }
}

/** A temporary folder removed on dispose. */
export async function tempDir(prefix: string): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}

/** true when `path` exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/**
 * Asks `check` every 50 ms until it answers true, for state that has no event to wait on (e.g.
 * a server shell's listing). Fails after `timeoutMs`.
 */
export async function pollUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!await check()) {
    if (performance.now() > deadline) throw new Error(`Condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * A hand-made connection to a spawned program's TCP port (the server's index port or a peer's
 * P2P port), over TLS pinned to its certificate as the programs connect to each other.
 */
export async function dialProgram(
  program: { id: string; certPem: string },
  port: number,
): Promise<TransportConn> {
  return await connectTo({
    hostname: "127.0.0.1",
    port,
    pin: { id: program.id, certPem: program.certPem },
    plaintext: false,
    what: "the test's target",
  });
}
