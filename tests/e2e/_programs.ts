// Spawns the real server/main.ts and peer/main.ts as processes, with the permissions a user
// would give them, and drives their shells over stdin/stdout.
import { dirname, resolve } from "node:path";
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
  repo = "";

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
  /** Files the server may read besides its code and database (e.g. a network key file). */
  readable?: string[];
}

function denoRun(
  permissions: string[],
  script: string,
  args: string[],
  env: Record<string, string> = {},
): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    // --unstable-net (Deno.listenDatagram) comes from deno.json for the sources; a bundle
    // elsewhere needs the flag itself, as users running one do.
    args: ["run", "--quiet", "--unstable-net", ...permissions, resolve(ROOT, script), ...args],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  });
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
  if (!postgres && db !== ":memory:") {
    // The SQLite writer worker loads the server's own modules (or the bundle): read them too.
    const code = options.script ? resolve(ROOT, options.script) : "server,shared";
    permissions.push(`--allow-read=${dirname(db)},${code}`, `--allow-write=${dirname(db)}`);
  } else if (options.readable) {
    permissions.push(`--allow-read=${options.readable.join(",")}`);
  }
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
      ...(options.args ?? []),
    ],
  );
  const server = new ServerProgram("server", command);
  try {
    const { line } = await server.waitLine(
      (l) => l.includes('"event":"listening"'),
      "listening line",
    );
    const data = JSON.parse(line);
    server.tcpPort = data.tcp;
    server.udpPort = data.udp;
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
}

/** Starts a real peer with read/write limited to its repository. */
export async function spawnPeer(options: PeerSpawnOptions): Promise<PeerProgram> {
  await Deno.mkdir(options.repo, { recursive: true });
  const server = options.server;
  const where = options.direct && server instanceof ServerProgram
    ? ["--server", `127.0.0.1:${server.tcpPort}`]
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
      ...where,
      ...(options.args ?? []),
    ],
    options.env,
  );
  const peer = new PeerProgram(options.hostname, command);
  peer.repo = options.repo;
  try {
    const { line } = await peer.waitLine(
      (l) => l.includes('"event":"listening"'),
      "listening line",
    );
    peer.p2pPort = JSON.parse(line).p2p;
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
