// Index benchmark driver (`deno task bench:index`): runs the real server (SQLite, then
// PostgreSQL) under bench/index_load.ts and opentracker under wrk as the reference, samples the
// server's CPU and RSS from /proc, checks for lost or leaked sessions, prints a markdown table.
// Loopback only; every wait is bounded; only processes started here are ever signalled.
//
// Diagnosis knobs (the report's figures stay comparable; see the functions named):
// BENCH_CPU_PROF_DIR=DIR writes the server's V8 CPU profile there (cpuProfileFlags());
// BENCH_SERVER_V8_EXTRA=--flag,--flag adds V8 flags to the server's, e.g. --trace-gc,--trace-gc-nvp
// or a young-generation size to try (serverV8Flags()); BENCH_SERVER_STDOUT=FILE copies what the
// server prints on stdout, where --trace-gc writes, with a line marking each lookup phase's start
// and end (serverStdoutCopy()); BENCH_SERVER_CPUS=0 BENCH_LOAD_CPUS=1 pin the server and the load
// generator to those CPUs (pinnedTo()).
import { readLines } from "../shared/cli.ts";
import { decodeBeacon, encodeProbe } from "../shared/beacon.ts";
import { ConfigError } from "../shared/errors.ts";
import { probeFreePort, readCpuSeconds, waitForPort } from "./_procs.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const DENO = Deno.execPath();
const encoder = new TextEncoder();
/** What `deno task server` passes to V8 (see the README: the server's heap), read from there. */
const SERVER_V8_FLAGS = serverTaskV8Flags();
/** The database the PostgreSQL case creates (and drops) on the server named by BENCH_PG_URL. */
const PG_BENCH_DB = "lanshare_index_bench";

/** Knobs, from BENCH_* environment variables; defaults are the issue's full size. */
interface BenchConfig {
  /** Plain TCP between the load and the index (BENCH_INSECURE_PLAINTEXT=1); TLS by default. */
  plaintext: boolean;
  sessions: number;
  files: number;
  replicas: number;
  seconds: number;
  conns: number;
  depth: number;
  searchConns: number;
  churnPerS: number;
  setupConcurrency: number;
  setupTimeoutS: number;
  /** Stores to run, in order: "sqlite", "postgres". */
  stores: string[];
  /** PostgreSQL server to create the benchmark database in (its path names an existing db). */
  pgUrl: string;
  /** Seconds of wrk against opentracker; 0 skips the reference. */
  wrkSeconds: number;
  /** Open-file limit asked for the server and the load generator. */
  nofile: number;
  /** Kill and restart the server after the phases, and time the sessions' return (BENCH_RESTART=0 skips). */
  restart: boolean;
}

function resolveBenchConfig(env: Record<string, string>): BenchConfig {
  const problems: string[] = [];
  const int = (name: string, fallback: number): number => {
    const text = env[name];
    if (text === undefined || text === "") return fallback;
    const value = Number(text);
    if (!Number.isFinite(value) || value < 0) problems.push(`${name} must be a number ≥ 0`);
    return value;
  };
  const config: BenchConfig = {
    plaintext: env.BENCH_INSECURE_PLAINTEXT === "1",
    sessions: int("BENCH_SESSIONS", 10_000),
    files: int("BENCH_FILES", 100),
    replicas: int("BENCH_REPLICAS", 5),
    seconds: int("BENCH_SECONDS", 10),
    conns: int("BENCH_CONNS", 4),
    depth: int("BENCH_DEPTH", 16),
    searchConns: int("BENCH_SEARCH_CONNS", 1),
    churnPerS: int("BENCH_CHURN", 20),
    setupConcurrency: int("BENCH_SETUP_CONCURRENCY", 64),
    setupTimeoutS: int("BENCH_SETUP_TIMEOUT_S", 1800),
    stores: (env.BENCH_STORES ?? "sqlite,postgres").split(",").map((s) => s.trim()).filter(
      Boolean,
    ),
    pgUrl: env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test",
    wrkSeconds: int("BENCH_WRK_SECONDS", 10),
    nofile: int("BENCH_NOFILE", 65536),
    restart: env.BENCH_RESTART !== "0",
  };
  for (const store of config.stores) {
    if (store !== "sqlite" && store !== "postgres") {
      problems.push(`BENCH_STORES: unknown store "${store}" (sqlite, postgres)`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

// ---------------------------------------------------------------------------------------------
// Child processes

/** A line printed by a child on stdout, with its JSON when it is an object. */
interface Line {
  text: string;
  json: Record<string, unknown> | undefined;
}

/**
 * A child started under `bash -c 'ulimit -n N; exec ...'` (Deno cannot call setrlimit), so its
 * pid is the program's own. Stdout is read as lines into a queue; stderr goes to `stderrPath`
 * or is inherited.
 */
class Child {
  readonly name: string;
  readonly pid: number;
  readonly #process: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: Line[] = [];
  #wake: (() => void) | undefined;
  #stdoutDone = false;
  readonly status: Promise<Deno.CommandStatus>;
  readonly #pumps: Promise<void>[] = [];

  constructor(
    name: string,
    argv: string[],
    options: { nofile: number; stderrPath?: string; cwd?: string; stdoutCopy?: string },
  ) {
    this.name = name;
    const script =
      `ulimit -n ${options.nofile} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`;
    const process = new Deno.Command("bash", {
      args: ["-c", script, "bash", ...argv],
      cwd: options.cwd ?? ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: options.stderrPath ? "piped" : "inherit",
      env: { NO_COLOR: "1" },
    }).spawn();
    this.#process = process;
    this.pid = process.pid;
    this.#stdin = process.stdin.getWriter();
    this.status = process.status;
    this.#pumps.push((async () => {
      for await (const text of readLines(process.stdout)) {
        let json: Record<string, unknown> | undefined;
        // An event line may come glued to the end of a line that V8 printed from another
        // thread (BENCH_SERVER_V8_EXTRA=--trace-gc): its JSON still runs to the line's end.
        const at = text.startsWith("{") ? 0 : text.indexOf('{"event":');
        if (at >= 0) {
          try {
            json = JSON.parse(text.slice(at));
          } catch {
            json = undefined;
          }
        }
        this.#lines.push({ text, json });
        if (options.stdoutCopy) {
          Deno.writeTextFileSync(options.stdoutCopy, text + "\n", { append: true });
        }
        this.#notify();
      }
      this.#stdoutDone = true;
      this.#notify();
    })());
    if (options.stderrPath) {
      const path = options.stderrPath;
      this.#pumps.push((async () => {
        // pipeTo closes the file; with preventClose the writes never reached it (Deno 2.9.6).
        const file = await Deno.open(path, { write: true, create: true, truncate: true });
        await process.stderr.pipeTo(file.writable);
      })());
    }
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Drops the lines read so far. */
  clear(): void {
    this.#lines.length = 0;
  }

  /** Next stdout line; rejects after `timeoutMs` or when stdout ends. */
  async line(timeoutMs: number, what: string): Promise<Line> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const line = this.#lines.shift();
      if (line) return line;
      if (this.#stdoutDone) throw new Error(`Cannot read ${what} from ${this.name}: it exited`);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`Cannot read ${what} from ${this.name}: ${timeoutMs} ms`);
      const { promise, resolve } = Promise.withResolvers<void>();
      this.#wake = resolve;
      const timer = setTimeout(resolve, left);
      await promise;
      clearTimeout(timer);
    }
  }

  /** Skips lines until a JSON line with `event === name`. */
  async event(name: string, timeoutMs: number): Promise<Record<string, unknown>> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const line = await this.line(Math.max(1, deadline - performance.now()), `event ${name}`);
      if (line.json?.event === name) return line.json;
    }
  }

  async write(text: string): Promise<void> {
    await this.#stdin.write(encoder.encode(text));
  }

  /** Sends `signal` to the process (no-op once it has exited). */
  kill(signal: Deno.Signal): void {
    try {
      this.#process.kill(signal);
    } catch (err) {
      if (!(err instanceof TypeError)) throw err;
    }
  }

  /** Closes stdin, waits `graceMs` for an exit, then SIGTERM, then SIGKILL. Never throws. */
  async stop(graceMs: number): Promise<Deno.CommandStatus | undefined> {
    await this.#stdin.close().catch(() => {});
    for (const signal of [undefined, "SIGTERM", "SIGKILL"] as const) {
      if (signal) {
        try {
          this.#process.kill(signal);
        } catch {
          // Already exited.
        }
      }
      const status = await Promise.race([this.status, sleep(graceMs).then(() => undefined)]);
      if (status) {
        await Promise.race([Promise.allSettled(this.#pumps), sleep(2000)]);
        return status;
      }
    }
    return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs a command to completion with a bound; returns exit code and output. */
async function run(
  cmd: string,
  args: string[],
  options: { timeoutMs?: number; env?: Record<string, string>; cwd?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(options.timeoutMs ?? 60_000),
      ...(options.env ? { env: options.env } : {}),
      ...(options.cwd ? { cwd: options.cwd } : {}),
    }).output();
    const text = new TextDecoder();
    return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
  } catch (err) {
    return { code: -1, stdout: "", stderr: err instanceof Error ? err.message : String(err) };
  }
}

async function hasCommand(name: string): Promise<boolean> {
  return (await run("bash", ["-c", `command -v ${name}`])).code === 0;
}

/** A field of /proc/PID/status in MiB (VmRSS, VmHWM), or NaN when the process is gone. */
function statusMib(pid: number, field: "VmRSS" | "VmHWM"): number {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/status`);
    const match = text.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
    return match ? Number(match[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** The direct children of process `pid`, as /proc lists them. */
function childPids(pid: number): number[] {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`).trim();
    return text === "" ? [] : text.split(/\s+/).map(Number);
  } catch {
    return []; // exited meanwhile
  }
}

/** This process's hard open-file limit, as /proc reports it. */
function hardNofile(): string {
  try {
    const line = Deno.readTextFileSync("/proc/self/limits").split("\n").find((l) =>
      l.startsWith("Max open files")
    );
    return line?.split(/\s+/)[4] ?? "?";
  } catch {
    return "?";
  }
}

function openFilesLimit(pid: number): string {
  try {
    const line = Deno.readTextFileSync(`/proc/${pid}/limits`).split("\n").find((l) =>
      l.startsWith("Max open files")
    );
    return line?.split(/\s+/)[3] ?? "?";
  } catch {
    return "?";
  }
}

/**
 * CPU use between two calls, as % of one core, of one process or of a changing set of them
 * (PostgreSQL backends); a process that appears counts from zero, one that left is dropped.
 */
class CpuMeter {
  readonly #pids: () => number[];
  #cpu = new Map<number, number>();
  #at = performance.now();

  constructor(pids: number | (() => number[])) {
    this.#pids = typeof pids === "number" ? () => [pids] : pids;
    this.#cpu = this.#read();
  }

  #read(): Map<number, number> {
    const cpu = new Map<number, number>();
    for (const pid of this.#pids()) {
      try {
        cpu.set(pid, readCpuSeconds(pid));
      } catch {
        // Exited meanwhile.
      }
    }
    return cpu;
  }

  /** % of one core since the previous lap (or construction). */
  lap(): number {
    const cpu = this.#read();
    const at = performance.now();
    let used = 0;
    for (const [pid, seconds] of cpu) used += seconds - (this.#cpu.get(pid) ?? 0);
    const percent = used / ((at - this.#at) / 1000) * 100;
    this.#cpu = cpu;
    this.#at = at;
    return percent;
  }
}

/** PostgreSQL backends serving database `name` (their title names it), found in /proc. */
function postgresBackends(name: string): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`);
      if (cmdline.startsWith("postgres: ") && cmdline.includes(` ${name} `)) {
        pids.push(Number(entry.name));
      }
    } catch {
      // Exited meanwhile.
    }
  }
  return pids;
}

// ---------------------------------------------------------------------------------------------
// Reference: opentracker under wrk

interface ReferenceResult {
  available: boolean;
  reason?: string;
  perS: number;
  p50Ms: number;
  p99Ms: number;
  cpuPercent: number;
  rssMib: number;
  socketErrors: string;
  command: string;
  /** Each wrk run's rate when several were averaged (before and after the SQLite run). */
  runsPerS?: number[];
}

/**
 * The reference as the mean of its runs. The VM's speed drifts by tens of percent within an
 * hour (opentracker measured 17,900 to 27,600/s on one afternoon), so one wrk run before a
 * minutes-long store run makes a poor yardstick; runs on both sides of it make a better one.
 */
function meanReference(runs: ReferenceResult[]): ReferenceResult {
  const ok = runs.filter((r) => r.available);
  if (ok.length === 0) return runs[0]!;
  const mean = (pick: (r: ReferenceResult) => number) =>
    ok.reduce((sum, r) => sum + pick(r), 0) / ok.length;
  return {
    ...ok[0]!,
    perS: mean((r) => r.perS),
    p50Ms: mean((r) => r.p50Ms),
    p99Ms: mean((r) => r.p99Ms),
    cpuPercent: mean((r) => r.cpuPercent),
    rssMib: Math.max(...ok.map((r) => r.rssMib)),
    socketErrors: ok.map((r) => r.socketErrors).join("; "),
    runsPerS: ok.map((r) => r.perS),
  };
}

/** Installs opentracker and wrk with apt-get when missing. Returns what is still missing. */
async function ensureTools(): Promise<string[]> {
  const missing = async () => {
    const names: string[] = [];
    for (const name of ["opentracker", "wrk"]) if (!(await hasCommand(name))) names.push(name);
    return names;
  };
  let names = await missing();
  if (names.length === 0) return [];
  console.error(`installing ${names.join(" ")} with apt-get`);
  const env = { DEBIAN_FRONTEND: "noninteractive", PATH: Deno.env.get("PATH") ?? "" };
  const install = () =>
    run("apt-get", ["install", "-y", "--no-install-recommends", "opentracker", "wrk"], {
      timeoutMs: 300_000,
      env,
    });
  if ((await install()).code !== 0) {
    await run("apt-get", ["update"], { timeoutMs: 300_000, env });
    await install();
  }
  names = await missing();
  return names;
}

/** A wrk script of announces like the BitTorrent clients send, over a pool of whitelisted hashes. */
const ANNOUNCE_LUA =
  `-- Announces with an info_hash drawn from IH_FILE (hex, one per line); random peer.
local hashes = {}
local function escape(hex)
  return (hex:gsub("(%x%x)", function(b) return "%" .. b end))
end
function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
  for line in io.lines(os.getenv("IH_FILE")) do
    if #line >= 40 then hashes[#hashes + 1] = escape(line:sub(1, 40)) end
  end
end
function request()
  local peer = string.format("-LB0001-%012d", math.random(0, 999999999999))
  local path = string.format(
    "/announce?info_hash=%s&peer_id=%s&port=%d&uploaded=0&downloaded=0&left=%d&compact=1&numwant=50",
    hashes[math.random(#hashes)], peer, math.random(1024, 65535), math.random(0, 1073741824))
  return wrk.format("GET", path)
end
`;

function wrkMs(text: string): number {
  const match = text.match(/^([\d.]+)(us|ms|s)$/);
  if (!match) return NaN;
  const value = Number(match[1]);
  return match[2] === "us" ? value / 1000 : match[2] === "s" ? value * 1000 : value;
}

async function runReference(
  config: BenchConfig,
  dir: string,
  name = "opentracker",
): Promise<ReferenceResult> {
  const none = (reason: string): ReferenceResult => ({
    available: false,
    reason,
    perS: NaN,
    p50Ms: NaN,
    p99Ms: NaN,
    cpuPercent: NaN,
    rssMib: NaN,
    socketErrors: "",
    command: "",
  });
  if (config.wrkSeconds <= 0) return none("skipped (BENCH_WRK_SECONDS=0)");
  const missing = await ensureTools();
  if (missing.length > 0) return none(`${missing.join(", ")} not installable with apt-get`);
  const home = `${dir}/${name}`;
  await Deno.mkdir(home);
  await Deno.chmod(dir, 0o755);
  await Deno.chmod(home, 0o755);
  const hashes = Array.from(
    { length: 1000 },
    () =>
      [...crypto.getRandomValues(new Uint8Array(20))].map((b) => b.toString(16).padStart(2, "0"))
        .join(""),
  );
  await Deno.writeTextFile(`${home}/whitelist.txt`, hashes.join("\n") + "\n");
  await Deno.chmod(`${home}/whitelist.txt`, 0o644);
  await Deno.writeTextFile(`${home}/announce.lua`, ANNOUNCE_LUA);
  const port = probeFreePort();
  // Debian's build only tracks whitelisted hashes (WANT_ACCESSLIST_WHITE); it chroots to -d and
  // drops to nobody.
  const tracker = new Child("opentracker", [
    "opentracker",
    "-i",
    "127.0.0.1",
    "-p",
    String(port),
    "-d",
    home,
    "-w",
    "whitelist.txt",
    "-A",
    "127.0.0.1",
    "-u",
    "nobody",
  ], { nofile: config.nofile, stderrPath: `${dir}/opentracker.log`, cwd: home });
  try {
    await waitForPort(port, 10_000);
    const ih = hashes[0]!.replace(/../g, (b) => `%${b}`);
    const sanity = await fetch(
      `http://127.0.0.1:${port}/announce?info_hash=${ih}&peer_id=-LB0001-000000000000&port=7000&left=0&compact=1`,
      { signal: AbortSignal.timeout(5000) },
    ).then((r) => r.text());
    if (!sanity.includes("8:interval")) return none(`opentracker answered ${sanity.slice(0, 80)}`);
    const args = [
      `-t2`,
      `-c64`,
      `-d${config.wrkSeconds}s`,
      "--timeout",
      "2s",
      "--latency",
      "-s",
      `${home}/announce.lua`,
      `http://127.0.0.1:${port}/announce`,
    ];
    const cpu = new CpuMeter(tracker.pid);
    const out = await run("wrk", args, {
      timeoutMs: (config.wrkSeconds + 30) * 1000,
      env: { IH_FILE: `${home}/whitelist.txt`, PATH: Deno.env.get("PATH") ?? "" },
    });
    const cpuPercent = cpu.lap();
    if (out.code !== 0) return none(`wrk failed: ${out.stderr.trim() || out.stdout.trim()}`);
    const perS = Number(out.stdout.match(/^Requests\/sec:\s+([\d.]+)/m)?.[1]);
    const pct = (p: string) =>
      wrkMs(out.stdout.match(new RegExp(`^\\s+${p}%\\s+(\\S+)`, "m"))?.[1] ?? "");
    return {
      available: true,
      perS,
      p50Ms: pct("50"),
      p99Ms: pct("99"),
      cpuPercent,
      rssMib: statusMib(tracker.pid, "VmHWM"),
      socketErrors: (out.stdout.match(/Socket errors:.*|Non-2xx.*/g) ?? []).join("; "),
      command: `wrk ${args.join(" ")}`,
    };
  } finally {
    await tracker.stop(3000);
  }
}

// ---------------------------------------------------------------------------------------------
// The index under load

interface Phase {
  name: string;
  seconds: number;
  whoHas: { count: number; perS: number; p50: number; p99: number; p999: number; max: number };
  search: { count: number; perS: number; p50: number; p99: number; p999: number; max: number };
  emptyAnswers: number;
  errors: Record<string, number>;
  serverCpu: number;
  loadCpu: number;
  serverLag: LagSummary;
  loadLagMaxMs: number;
  /** PostgreSQL backends of the benchmark database (NaN for SQLite, which runs in-process). */
  dbCpu: number;
}

interface ServerCount {
  sessions: number;
  entries: number;
  live: number;
}

interface StoreResult {
  store: string;
  available: boolean;
  reason?: string;
  setup?: Record<string, unknown>;
  setupServerCpu?: number;
  setupLoadCpu?: number;
  setupDbCpu?: number;
  setupServerLag?: LagSummary;
  rssAfterSetupMib?: number;
  phases: Phase[];
  held?: Record<string, unknown>;
  /** Server's view after churn, compared with the generator's. */
  afterChurn?: ServerCount;
  /** Server's view after the generator closed every session. */
  afterClose?: ServerCount;
  /** Time from the generator dropping every connection to the server showing none, s. */
  drainSeconds?: number;
  leak?: { ok: boolean; detail: string };
  serverPeakRssMib?: number;
  loadPeakRssMib?: number;
  restart?: RestartResult;
  fdLimit?: string;
  serverWarnings?: number;
  serverLogHead?: string[];
  serverLogTail?: string[];
  command?: string;
}

/** A server killed (SIGKILL) and started again on the same port, database and identity. */
interface RestartResult {
  /** From the kill to the new server's listening line, s. */
  listeningS: number;
  /** The new server's own account of its start, ms by phase (its listening line's startMs). */
  startPhases: unknown;
  /** The server's live-session count at RESTART_MARKS_S seconds after the kill. */
  liveAt: Record<string, number>;
  /** Connections the kernel dropped at the full accept queue meanwhile (whole namespace). */
  listenOverflows: number;
  listenDrops: number;
  /** The restarted server's peak RSS until every session was back, MiB. */
  peakRssMib: number;
  /** From the kill until the server counted every session again (UDP probe every 100 ms), s. */
  sessionsBackS: number;
  /** From the kill until the server also listed every entry again, s. */
  entriesBackS: number;
  /** The generator's own count: sessions back, connection attempts, time since the first loss. */
  load: Record<string, unknown>;
  /** The server's counts once settled. */
  after: ServerCount;
  /** New server's CPU from its start until every session was back, % of one core. */
  serverCpu: number;
  command: string;
}

/** The report's bullet about a server restart (none when it was skipped). */
function restartLines(restart: RestartResult | undefined): string[] {
  if (!restart) return [];
  const load = restart.load;
  const a = restart.after;
  const verdict = restart.sessionsBackS < 30 ? "met" : "missed";
  const marks = Object.entries(restart.liveAt).map(([at, n]) => `${at} ${f(n)}`).join(", ");
  const detail =
    `  - restart detail: live sessions after the kill: ${marks}; kernel accept-queue ` +
    `overflows ${f(restart.listenOverflows)}, drops ${f(restart.listenDrops)}; restarted server ` +
    `peak RSS ${f(restart.peakRssMib)} MiB; start phases (ms) ${
      JSON.stringify(restart.startPhases ?? null)
    }; failed attempts by step ${JSON.stringify(load.failures ?? null)}`;
  if ("error" in load) {
    return [
      `- server restart (SIGKILL, same port, database and identity): listening again after ${
        f(restart.listeningS, 2)
      } s; NOT every session back within ${
        RESTART_BUDGET_MS / 1000
      } s: ${load.error}; server ${a.sessions} sessions (live map ${a.live}), ${a.entries} entries; target all back < 30 s: missed`,
      detail,
    ];
  }
  return [
    `- server restart (SIGKILL, same port, database and identity): listening again after ${
      f(restart.listeningS, 2)
    } s; every session back (server's live count) ${
      f(restart.sessionsBackS, 2)
    } s after the kill, every entry listed ${f(restart.entriesBackS, 1)} s after; generator: ${
      f(load.back)
    } of ${f(load.expected)} peers back (${
      f(load.kept)
    } with their entries kept, the others published everything), ${
      f(load.attempts)
    } connection attempts (${f(load.failedAttempts)} failed), last back ${
      f(load.secondsSinceFirstLoss, 2)
    } s after the first loss; server ${a.sessions} sessions (live map ${a.live}), ${a.entries} entries; new server CPU ${
      f(restart.serverCpu)
    } % until all were back; target all back < 30 s: ${verdict}`,
    detail,
  ];
}

/** How long a restarted server gets to count every session again before the run goes on. */
const RESTART_BUDGET_MS = 120_000;

/** Seconds after the kill at which the restart's report gives the live count. */
const RESTART_MARKS_S = [15, 20, 25, 30, 60];

/**
 * Polls the discovery port every 100 ms until it counts `sessions` live sessions (bounded).
 * `marks` gets the count last seen at each of RESTART_MARKS_S seconds after `fromMs`.
 */
async function waitForLive(
  udpPort: number,
  sessions: number,
  timeoutMs: number,
  fromMs = performance.now(),
  marks: Record<string, number> = {},
): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  let live = NaN;
  while (performance.now() < deadline) {
    const seen = await probeLive(udpPort, 2000);
    if (!Number.isNaN(seen)) live = seen;
    const elapsedS = (performance.now() - fromMs) / 1000;
    for (const mark of RESTART_MARKS_S) if (elapsedS >= mark) marks[`${mark}s`] ??= live;
    if (live === sessions) break;
    await sleep(100);
  }
  // Marks not reached: every session was back before them.
  for (const mark of RESTART_MARKS_S) marks[`${mark}s`] ??= live;
  return live;
}

/** The kernel's counts of connections dropped at a full accept queue (TcpExt, this namespace). */
async function listenDrops(): Promise<{ overflows: number; drops: number }> {
  const text = await Deno.readTextFile("/proc/net/netstat").catch(() => "");
  const lines = text.split("\n").filter((line) => line.startsWith("TcpExt:"));
  if (lines.length < 2) return { overflows: NaN, drops: NaN };
  const names = lines[0]!.split(/\s+/);
  const values = lines[1]!.split(/\s+/).map(Number);
  const value = (name: string) => values[names.indexOf(name)] ?? NaN;
  return { overflows: value("ListenOverflows"), drops: value("ListenDrops") };
}

/** Asks the server shell for `peers`: "N peer(s), M entries" then N lines. */
async function askPeers(server: Child): Promise<{ sessions: number; entries: number }> {
  server.clear();
  await server.write("peers\n");
  for (;;) {
    const line = await server.line(120_000, "peers");
    const match = line.text.match(/^(\d+) peer\(s\), (\d+) entr/);
    if (!match) continue;
    const sessions = Number(match[1]);
    for (let i = 0; i < sessions; i++) await server.line(120_000, "peers line");
    return { sessions, entries: Number(match[2]) };
  }
}

/** Asks the discovery port for an announce: it carries the server's in-memory live-session count. */
async function probeLive(udpPort: number, timeoutMs = 30_000): Promise<number> {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  // A server busy with a mass disconnect may answer late; NaN (no answer) lets the caller retry.
  const timer = setTimeout(() => socket.close(), timeoutMs);
  try {
    await socket.send(encodeProbe(), {
      transport: "udp",
      hostname: "127.0.0.1",
      port: udpPort,
    });
    for (;;) {
      const [bytes] = await socket.receive();
      const beacon = decodeBeacon(bytes);
      if (beacon.kind === "announce") return beacon.sessions;
    }
  } catch (err) {
    if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) {
      return NaN;
    }
    throw new Error(`Cannot probe 127.0.0.1:${udpPort}: ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    clearTimeout(timer);
    try {
      socket.close();
    } catch {
      // Closed by the timer.
    }
  }
}

/** Percentiles of the server's probe round trips over one stretch of the run, ms. */
interface LagSummary {
  probes: number;
  p50: number;
  p99: number;
  max: number;
}

/**
 * The server's event-loop lag, seen from outside: the round trip of a UDP discovery probe every
 * 250 ms, which the server answers from its event loop. Tells a stalled server apart from a
 * busy load generator when pings arrive late.
 */
class ServerLag {
  readonly #socket: Deno.DatagramConn;
  readonly #samples: number[] = [];
  #answered: (() => void) | undefined;
  #running = true;
  readonly #tasks: Promise<void>[];

  constructor(udpPort: number) {
    this.#socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    this.#tasks = [this.#receive(), this.#probe(udpPort)];
  }

  async #receive(): Promise<void> {
    try {
      for await (const [bytes] of this.#socket) {
        if (decodeBeacon(bytes).kind === "announce") this.#answered?.();
      }
    } catch {
      // Socket closed by stop().
    }
  }

  async #probe(port: number): Promise<void> {
    const probe = encodeProbe();
    while (this.#running) {
      const t0 = performance.now();
      const { promise, resolve } = Promise.withResolvers<void>();
      this.#answered = resolve;
      try {
        await this.#socket.send(probe, { transport: "udp", hostname: "127.0.0.1", port });
      } catch {
        return;
      }
      const timer = setTimeout(resolve, 30_000);
      await promise;
      clearTimeout(timer);
      if (!this.#running) return;
      this.#samples.push(performance.now() - t0);
      await sleep(250);
    }
  }

  /** Summary of the probes since the previous call. */
  take(): LagSummary {
    const sorted = this.#samples.splice(0).sort((a, b) => a - b);
    const at = (q: number) =>
      sorted.length === 0
        ? NaN
        : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
    return { probes: sorted.length, p50: at(0.5), p99: at(0.99), max: at(1) };
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#answered?.();
    try {
      this.#socket.close();
    } catch {
      // Already closed.
    }
    await Promise.allSettled(this.#tasks);
  }
}

/** Polls until the server's counts equal `want` (bounded); returns the last counts seen. */
async function settle(
  server: Child,
  udpPort: number,
  want: { sessions: number; entries: number },
  timeoutMs: number,
): Promise<ServerCount> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const count = { ...(await askPeers(server)), live: await probeLive(udpPort) };
    const same = count.sessions === want.sessions && count.entries === want.entries &&
      count.live === want.sessions;
    if (same || performance.now() > deadline) return count;
    await sleep(500);
  }
}

/** Creates a fresh benchmark database next to `base`; returns its URL and how to drop it. */
async function preparePostgres(
  base: string,
): Promise<{ url: string; drop: () => Promise<void> } | { reason: string }> {
  const storeFile = `${ROOT}/server/postgres_store.ts`;
  try {
    await Deno.stat(storeFile);
  } catch {
    return { reason: "server/postgres_store.ts is not in the tree yet" };
  }
  const selects = await Promise.all(
    ["server.ts", "open_store.ts"].map((f) =>
      Deno.readTextFile(`${ROOT}/server/${f}`).then((t) => t.includes("PostgresStore"), () => false)
    ),
  );
  if (!selects.some(Boolean)) {
    return { reason: "the server does not select PostgresStore for postgres:// URLs yet" };
  }
  const { default: postgres } = await import("postgres");
  const name = PG_BENCH_DB;
  const admin = postgres(base, { max: 1, connect_timeout: 5, onnotice: () => {} });
  try {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.unsafe(`CREATE DATABASE ${name}`);
  } catch (err) {
    await admin.end({ timeout: 2 }).catch(() => {});
    return { reason: `no PostgreSQL at ${base}: ${(err as Error).message}` };
  }
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      try {
        await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await admin.end({ timeout: 2 }).catch(() => {});
      }
    },
  };
}

function loadArgs(config: BenchConfig, port: number): string[] {
  return [
    "--port",
    String(port),
    "--sessions",
    String(config.sessions),
    "--files",
    String(config.files),
    "--replicas",
    String(config.replicas),
    "--seconds",
    String(config.seconds),
    "--conns",
    String(config.conns),
    "--depth",
    String(config.depth),
    "--search-conns",
    String(config.searchConns),
    "--churn-per-s",
    String(config.churnPerS),
    "--setup-concurrency",
    String(config.setupConcurrency),
    "--setup-timeout-s",
    String(config.setupTimeoutS),
  ];
}

async function runStore(config: BenchConfig, store: string, dir: string): Promise<StoreResult> {
  const result: StoreResult = { store, available: true, phases: [] };
  let db: string;
  let drop: (() => Promise<void>) | undefined;
  if (store === "postgres") {
    const pg = await preparePostgres(config.pgUrl);
    if ("reason" in pg) return { store, available: false, reason: pg.reason, phases: [] };
    db = pg.url;
    drop = pg.drop;
  } else {
    db = `${dir}/${store}/index.db`;
    await Deno.mkdir(`${dir}/${store}`, { recursive: true });
  }
  const serverArgs = [
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--announce-port",
    "0",
    "--broadcast",
    "127.255.255.255",
    "--db",
    db,
    "--log-level",
    "warning",
    // TLS, as peers reach it (the load generator pins its certificate, see loadArgs()), unless
    // BENCH_INSECURE_PLAINTEXT=1 asks for the plaintext comparison.
    ...(config.plaintext ? ["--insecure-plaintext"] : []),
    "--identity",
    `${dir}/server-identity`,
    // Every session of the load comes from 127.0.0.1, many at once before their Hello: the
    // per-address caps, meant for a LAN of hosts, must not refuse them.
    ...["--max-connections", "--max-sessions-per-address", "--max-unregistered-per-address"]
      .flatMap((flag) => [flag, String(config.sessions + 1000)]),
    "--ui",
    "off",
  ];
  result.command = `deno run -A ${SERVER_V8_FLAGS} server/main.ts ${serverArgs.join(" ")}`;
  const logPath = `${dir}/server-${store}.log`;
  const launch = (args: string[], log: string) =>
    new Child(
      "server",
      [
        ...pinnedTo("BENCH_SERVER_CPUS"),
        ...lineBufferedStdout(),
        DENO,
        "run",
        "-A",
        serverV8Flags(),
        ...cpuProfileFlags(),
        "--config",
        `${ROOT}/deno.json`,
        `${ROOT}/server/main.ts`,
        ...args,
      ],
      { nofile: config.nofile, stderrPath: log, ...serverStdoutCopy() },
    );
  let server = launch(serverArgs, logPath);
  let load: Child | undefined;
  let lag: ServerLag | undefined;
  try {
    const listening = await server.event("listening", 60_000);
    const tcp = Number(listening.tcp);
    let udp = Number(listening.udp);
    result.fdLimit = openFilesLimit(server.pid);
    lag = new ServerLag(udp);
    load = new Child(
      "load",
      [
        ...pinnedTo("BENCH_LOAD_CPUS"),
        DENO,
        "run",
        "-A",
        "--config",
        `${ROOT}/deno.json`,
        `${ROOT}/bench/index_load.ts`,
        ...loadArgs(config, tcp),
        ...(config.plaintext
          ? ["--insecure-plaintext"]
          : ["--server-cert", `${dir}/server-identity/cert.pem`]),
      ],
      { nofile: config.nofile },
    );
    await load.event("setup-start", 60_000);
    lag.take();
    const serverCpu = new CpuMeter(server.pid);
    // The generator and its lookup process (see index_load.ts).
    const loadPid = load.pid;
    const loadPids = () => [loadPid, ...childPids(loadPid)];
    const loadCpu = new CpuMeter(loadPids);
    const dbCpu = store === "postgres"
      ? new CpuMeter(() => postgresBackends(PG_BENCH_DB))
      : undefined;
    result.setup = await load.event("setup-done", (config.setupTimeoutS + 120) * 1000);
    result.setupServerCpu = serverCpu.lap();
    result.setupLoadCpu = loadCpu.lap();
    result.setupDbCpu = dbCpu?.lap() ?? NaN;
    result.setupServerLag = lag.take();
    result.rssAfterSetupMib = statusMib(server.pid, "VmRSS");
    const phaseCount = config.searchConns > 0 ? 2 : 1;
    for (let i = 0; i < phaseCount; i++) {
      await load.event("phase-start", 60_000);
      markServerStdout(`phase ${i} start`);
      serverCpu.lap();
      loadCpu.lap();
      dbCpu?.lap();
      lag.take();
      const done = await load.event("phase-done", (config.seconds + 90) * 1000);
      markServerStdout(`phase ${i} done`);
      result.phases.push({
        ...(done as unknown as Omit<Phase, "serverCpu" | "loadCpu" | "dbCpu" | "serverLag">),
        serverLag: lag.take(),
        serverCpu: serverCpu.lap(),
        loadCpu: loadCpu.lap(),
        dbCpu: dbCpu?.lap() ?? NaN,
      });
    }
    result.held = await load.event("held", 120_000);
    const held = Number(result.held.sessions);
    const want = { sessions: held, entries: Number(result.held.entries) };
    result.afterChurn = await settle(server, udp, want, 15_000);
    result.serverPeakRssMib = statusMib(server.pid, "VmHWM");
    result.loadPeakRssMib = loadPids().reduce((sum, pid) => sum + statusMib(pid, "VmHWM"), 0);
    if (config.restart) {
      // Kill the server (no goodbye to anyone), start it again on the same port, database
      // and identity; the generator's sessions come back as peers do (see index_load.ts).
      await load.write("restart\n");
      await load.event("restart-armed", 60_000);
      await lag.stop();
      lag = undefined;
      const restartArgs = serverArgs.map((arg, i) =>
        serverArgs[i - 1] === "--port" ? String(tcp) : arg
      );
      const dropsBefore = await listenDrops();
      const killedAt = performance.now();
      server.kill("SIGKILL");
      await server.stop(5000);
      server = launch(restartArgs, `${dir}/server-${store}-restarted.log`);
      const relisten = await server.event("listening", 60_000);
      const listeningS = (performance.now() - killedAt) / 1000;
      const cpu = new CpuMeter(server.pid);
      udp = Number(relisten.udp);
      const liveAt: Record<string, number> = {};
      const live = await waitForLive(udp, held, RESTART_BUDGET_MS, killedAt, liveAt);
      const sessionsBackS = live === held ? (performance.now() - killedAt) / 1000 : NaN;
      const serverCpu = cpu.lap();
      const dropsAfter = await listenDrops();
      const restartedPeakRssMib = statusMib(server.pid, "VmHWM");
      // Bounded: a server that cannot take every peer back must not hold the run for long.
      const restored = await load.event("restored", live === held ? 120_000 : 1000).catch((
        err,
      ) => ({ error: `${err instanceof Error ? err.message : err}; server live count ${live}` }));
      const after = await settle(server, udp, want, live === held ? 120_000 : 1000);
      result.restart = {
        listeningS,
        startPhases: relisten.startMs,
        liveAt,
        listenOverflows: dropsAfter.overflows - dropsBefore.overflows,
        listenDrops: dropsAfter.drops - dropsBefore.drops,
        peakRssMib: restartedPeakRssMib,
        sessionsBackS,
        entriesBackS: after.entries === want.entries ? (performance.now() - killedAt) / 1000 : NaN,
        load: restored,
        after,
        serverCpu,
        command: `deno run -A ${SERVER_V8_FLAGS} server/main.ts ${restartArgs.join(" ")}`,
      };
    }
    await load.write("close\n");
    await load.event("closed", 120_000);
    await load.stop(10_000);
    const closedAt = performance.now();
    result.afterClose = await settle(server, udp, { sessions: 0, entries: 0 }, 180_000);
    result.drainSeconds = (performance.now() - closedAt) / 1000;
    result.serverPeakRssMib = Math.max(result.serverPeakRssMib, statusMib(server.pid, "VmHWM"));
    const lost = Number(result.held.lost);
    const problems: string[] = [];
    const a = result.afterChurn;
    if (lost > 0) problems.push(`${lost} session(s) dropped by the server`);
    if (a.sessions !== want.sessions || a.live !== want.sessions || a.entries !== want.entries) {
      problems.push(
        `after churn: server ${a.sessions} sessions (live map ${a.live}), ${a.entries} entries; load holds ${want.sessions}, ${want.entries}`,
      );
    }
    const c = result.afterClose;
    if (c.sessions !== 0 || c.live !== 0 || c.entries !== 0) {
      problems.push(
        `after close: ${c.sessions} sessions (live map ${c.live}), ${c.entries} entries`,
      );
    }
    result.leak = {
      ok: problems.length === 0,
      detail: problems.length === 0
        ? `ok: ${a.sessions} = ${held} sessions, ${a.entries} entries; 0 after close`
        : problems.join("; "),
    };
  } catch (err) {
    result.available = false;
    result.reason = err instanceof Error ? err.message : String(err);
    const exited = await Promise.race([server.status, sleep(100).then(() => undefined)]);
    if (exited) {
      result.reason += `; the server had exited (code ${exited.code}, signal ${exited.signal})`;
    }
  } finally {
    await lag?.stop();
    if (load) await load.stop(5000);
    await server.write("quit\n").catch(() => {});
    await server.stop(15_000);
    await drop?.().catch((err) => console.error(`Cannot drop the benchmark database: ${err}`));
    const log = await Deno.readTextFile(logPath).catch(() => "");
    const lines = log.split("\n").filter((l) => l.trim() !== "");
    result.serverWarnings = lines.length;
    result.serverLogHead = lines.slice(0, 20);
    result.serverLogTail = lines.slice(-5);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Report

/** Bullet lines about the machine, then `free -m` as its own lines (rendered as a code block). */
async function machineInfo(): Promise<{ lines: string[]; free: string[] }> {
  const nproc = (await run("nproc", [])).stdout.trim();
  const free = (await run("free", ["-m"])).stdout.trimEnd();
  const date = (await run("date", ["-u", "+%Y-%m-%dT%H:%M:%SZ"])).stdout.trim();
  const kernel = (await run("uname", ["-sr"])).stdout.trim();
  const load = (await Deno.readTextFile("/proc/loadavg")).trim();
  return {
    lines: [
      `date: ${date}`,
      `nproc: ${nproc}; kernel: ${kernel}; load average at start: ${load}`,
      `deno: ${Deno.version.deno} (v8 ${Deno.version.v8})`,
    ],
    free: free.split("\n"),
  };
}

function f(value: unknown, digits = 0): string {
  const n = Number(value);
  return value === null || value === undefined || !Number.isFinite(n) ? "n/a" : n.toFixed(digits);
}

function render(
  config: BenchConfig,
  machine: { lines: string[]; free: string[] },
  reference: ReferenceResult,
  stores: StoreResult[],
): string {
  const out: string[] = [];
  const entriesTarget = config.sessions * config.files;
  out.push(
    `## Index benchmark: ${config.sessions} sessions × ${config.files} files, ${config.replicas} holders per name`,
    "",
    "| store (phase) | sessions held | entries | lookups/s | p50 / p99 / p999 ms | server CPU % | server peak RSS MiB | × opentracker | leak check |",
    "|---|---|---|---|---|---|---|---|---|",
  );
  if (reference.available) {
    out.push(
      `| opentracker (wrk announce, reference${
        reference.runsPerS && reference.runsPerS.length > 1
          ? `: mean of ${reference.runsPerS.map((v) => f(v)).join(" before and ")} after sqlite`
          : ""
      }) | – | 1000 torrents | ${f(reference.perS)} | ${f(reference.p50Ms, 2)} / ${
        f(reference.p99Ms, 2)
      } / n/a | ${f(reference.cpuPercent)} | ${f(reference.rssMib, 1)} | 1.00 | – |`,
    );
  } else {
    out.push(`| opentracker (reference) | not available: ${reference.reason} | | | | | | | |`);
  }
  for (const r of stores) {
    if (!r.available && r.phases.length === 0) {
      out.push(`| ${r.store} | not available: ${r.reason} | | | | | | | |`);
      continue;
    }
    for (const p of r.phases) {
      const total = p.whoHas.perS + p.search.perS;
      const label = p.name === "mixed" ? `${r.store} (who-has + search)` : `${r.store} (who-has)`;
      out.push(
        `| ${label} | ${f(r.held?.sessions)} | ${f(r.held?.entries)} | ${f(total)} | ${
          f(p.whoHas.p50, 2)
        } / ${f(p.whoHas.p99, 2)} / ${f(p.whoHas.p999, 2)} | ${f(p.serverCpu)}${
          Number.isNaN(p.dbCpu) ? "" : ` + ${f(p.dbCpu)} PostgreSQL`
        } | ${f(r.serverPeakRssMib, 0)} | ${
          reference.available ? f(total / reference.perS, 2) : "n/a"
        } | ${r.leak ? (r.leak.ok ? "ok" : "FAIL") : "n/a"} |`,
      );
    }
    if (!r.available) out.push(`| ${r.store} | failed: ${r.reason} | | | | | | | |`);
  }
  out.push("");
  out.push(
    "Latency columns are who-has round trips seen by the load generator (pipelined, so they include queueing behind the requests ahead on the same connection); the opentracker row is wrk's (p50 / p99). CPU % is of one core (200 % = both cores). Server loop lag is the round trip of a UDP discovery probe sent every 250 ms (the server answers it from its event loop); load loop lag is how late a 100 ms timer fires in the load generator (during the lookup phases: in its lookup process, which measures the latencies).",
    "",
  );

  for (const r of stores) {
    if (!r.setup) continue;
    const s = r.setup;
    const held = r.held ?? {};
    const churn = (held.churn ?? {}) as Record<string, unknown>;
    const reconnect = (churn.reconnectMs ?? {}) as Record<string, unknown>;
    out.push(`### ${r.store}: details`, "");
    out.push(
      `- setup: ${f(s.sessions)} sessions, ${f(s.entries)} entries in ${f(s.seconds, 1)} s (${
        f(s.sessionsPerS)
      } sessions/s, ${f(s.publishesPerS)} publishes/s); server CPU ${
        f(r.setupServerCpu)
      } %, load CPU ${f(r.setupLoadCpu)} %${
        Number.isNaN(r.setupDbCpu ?? NaN) ? "" : `, PostgreSQL backends CPU ${f(r.setupDbCpu)} %`
      }; server loop lag p99 ${f(r.setupServerLag?.p99, 1)} max ${
        f(r.setupServerLag?.max, 0)
      } ms, load loop lag max ${f(s.loadLagMaxMs, 0)} ms; server RSS after setup ${
        f(r.rssAfterSetupMib)
      } MiB; setup failures ${f(s.failures)} ${
        (s.firstErrors as string[] | undefined)?.length ? JSON.stringify(s.firstErrors) : ""
      }`,
    );
    for (const p of r.phases) {
      out.push(
        `- phase ${p.name} (${f(p.seconds, 1)} s): who-has ${f(p.whoHas.perS)}/s p50 ${
          f(p.whoHas.p50, 2)
        } p99 ${f(p.whoHas.p99, 2)} p999 ${f(p.whoHas.p999, 2)} max ${
          f(p.whoHas.max, 1)
        } ms; search ${f(p.search.perS, 1)}/s p50 ${f(p.search.p50, 1)} p99 ${
          f(p.search.p99, 1)
        } max ${f(p.search.max, 1)} ms; empty who-has answers ${p.emptyAnswers}; errors ${
          JSON.stringify(p.errors)
        }; server loop lag p99 ${f(p.serverLag.p99, 1)} max ${
          f(p.serverLag.max, 0)
        } ms, load loop lag max ${f(p.loadLagMaxMs, 0)} ms; server CPU ${
          f(p.serverCpu)
        } %, load CPU ${f(p.loadCpu)} %${
          Number.isNaN(p.dbCpu) ? "" : `, PostgreSQL backends CPU ${f(p.dbCpu)} %`
        }`,
      );
    }
    out.push(
      `- churn at ${f(churn.perS)}/s: ${f(churn.done)} reconnects (half with Goodbye: ${
        f(churn.goodbyes)
      }), ${f(churn.failed)} failed, ${
        f(churn.behind)
      } behind; reconnect + ${config.files} publishes p50 ${f(reconnect.p50, 1)} p99 ${
        f(reconnect.p99, 1)
      } ms ${
        (churn.firstErrors as string[] | undefined)?.length ? JSON.stringify(churn.firstErrors) : ""
      }`,
    );
    const a = r.afterChurn;
    const c = r.afterClose;
    out.push(
      `- sessions: load holds ${f(held.sessions)}, lost ${f(held.lost)} ${
        JSON.stringify(held.lostReasons ?? {})
      }; server after churn ${
        a ? `${a.sessions} (live map ${a.live}), ${a.entries} entries` : "n/a"
      }; after close ${
        c ? `${c.sessions} (live map ${c.live}), ${c.entries} entries` : "n/a"
      } (mass disconnect cleaned up in ${f(r.drainSeconds, 1)} s); leak check: ${
        r.leak?.detail ?? "n/a"
      }`,
      `- wire: ${JSON.stringify(held.wire ?? {})}; publish outcomes ${
        JSON.stringify(held.publish ?? {})
      }`,
      `- server peak RSS ${f(r.serverPeakRssMib)} MiB, load generator peak RSS ${
        f(r.loadPeakRssMib)
      } MiB (with its lookup process); open-file limit ${
        r.fdLimit ?? "?"
      }; server log lines (warning+) ${r.serverWarnings ?? 0}${
        r.serverLogHead?.length ? `, first: ${JSON.stringify(r.serverLogHead.slice(0, 3))}` : ""
      }`,
      ...restartLines(r.restart),
      `- server: \`${r.command}\``,
      "",
    );
  }

  const sqlite = stores.find((r) => r.store === "sqlite");
  const whoHas = sqlite?.phases.find((p) => p.name === "who-has");
  const check = (ok: boolean | undefined) => ok === undefined ? "n/a" : ok ? "PASS" : "FAIL";
  const held = (r: StoreResult | undefined) => Number(r?.held?.sessions ?? NaN);
  out.push("### Targets", "");
  for (const r of stores) {
    if (!r.held) continue;
    out.push(
      `- ${r.store}: 10,000 live sessions held: ${check(held(r) >= 10_000)} (${
        held(r)
      }; run asked ${config.sessions}); 1,000,000 entries: ${
        check(Number(r.held.entries) >= 1_000_000)
      } (${f(r.held.entries)}; asked ${entriesTarget}); server RSS < 1 GiB: ${
        check(Number(r.serverPeakRssMib) < 1024)
      } (${f(r.serverPeakRssMib)} MiB); zero lost or leaked: ${check(r.leak?.ok)}`,
    );
  }
  if (whoHas) {
    const ratio = whoHas.whoHas.perS / reference.perS;
    out.push(
      `- sqlite who-has ≥ 2× opentracker: ${reference.available ? check(ratio >= 2) : "n/a"} (${
        f(ratio, 2)
      }×); p99 < 5 ms: ${check(whoHas.whoHas.p99 < 5)} (${f(whoHas.whoHas.p99, 2)} ms)`,
    );
  }
  out.push("", "### Run", "");
  out.push(
    `- command: \`${
      Object.entries({
        BENCH_SESSIONS: config.sessions,
        BENCH_FILES: config.files,
        BENCH_SECONDS: config.seconds,
        BENCH_CONNS: config.conns,
        BENCH_DEPTH: config.depth,
        BENCH_SEARCH_CONNS: config.searchConns,
        BENCH_CHURN: config.churnPerS,
        BENCH_REPLICAS: config.replicas,
      }).map(([k, v]) => `${k}=${v}`).join(" ")
    } deno task bench:index\``,
    `- reference: \`opentracker -i 127.0.0.1 -p PORT -d DIR -w whitelist.txt -A 127.0.0.1 -u nobody\` (1000 whitelisted random info_hashes), \`${
      reference.command || "wrk (not run)"
    }\`; wrk ${
      reference.socketErrors || "reported no socket errors"
    } (opentracker closes the connection after each reply, so wrk counts one read error per request)`,
    "- the server and the load generator (and wrk) share the machine's cores; the generator is two Deno processes: one holds the idle sessions and churns, the other (its child) sends the lookups and measures them",
    `- open files: the server needs one descriptor per session plus about 20 (a deployment for 10,000 peers wants \`LimitNOFILE=65536\` in its systemd unit, or \`ulimit -n 65536\` before starting); Deno cannot raise the limit itself, so this driver starts both processes under \`bash -c 'ulimit -n ${config.nofile} || ulimit -n "$(ulimit -Hn)"; exec …'\` (the hard limit here: ${hardNofile()})`,
    ...machine.lines.map((l) => `- ${l}`),
    "- free -m at start:",
    "",
    "```",
    ...machine.free,
    "```",
  );
  return out.join("\n");
}

/** Runs the reference and every store, prints the report, and saves it under bench/out/. */
export async function main(): Promise<number> {
  let config: BenchConfig;
  try {
    config = resolveBenchConfig(Deno.env.toObject());
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    return 2;
  }
  const machine = await machineInfo();
  const dir = await Deno.makeTempDir({ prefix: "lanshare-index-bench-" });
  try {
    console.error(`index bench: temp dir ${dir}`);
    const say = (r: ReferenceResult) =>
      console.error(`opentracker: ${r.available ? `${f(r.perS)} announces/s` : r.reason}`);
    const references = [await runReference(config, dir, "opentracker-before")];
    say(references[0]!);
    const stores: StoreResult[] = [];
    for (const store of config.stores) {
      console.error(`index bench: ${store}`);
      const result = await runStore(config, store, dir);
      stores.push(result);
      if (result.reason) console.error(`${store}: ${result.reason}`);
      // The reference again right after the SQLite run, which the targets compare with it.
      if (store === "sqlite" && references[0]!.available) {
        references.push(await runReference(config, dir, "opentracker-after"));
        say(references[1]!);
      }
    }
    const reference = meanReference(references);
    machine.lines.push(`load average at end: ${(await Deno.readTextFile("/proc/loadavg")).trim()}`);
    const report = render(config, machine, reference, stores);
    console.log(report);
    await Deno.mkdir(`${ROOT}/bench/out`, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    await Deno.writeTextFile(`${ROOT}/bench/out/index_bench_${stamp}.md`, report + "\n");
    await Deno.writeTextFile(
      `${ROOT}/bench/out/index_bench_${stamp}.json`,
      JSON.stringify({ config, machine, reference, stores }, null, 2),
    );
    const failed = stores.some((r) => r.leak && !r.leak.ok);
    return failed ? 1 : 0;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) Deno.exit(await main());

/**
 * V8 CPU-profile flags for the server when BENCH_CPU_PROF_DIR names a folder (a .cpuprofile
 * written when it exits), to see where a lookup's CPU goes; with BENCH_SEARCH_CONNS=0 the
 * who-has phase is most of what the server does after the setup.
 */
function cpuProfileFlags(): string[] {
  const dir = Deno.env.get("BENCH_CPU_PROF_DIR");
  return dir ? ["--cpu-prof", `--cpu-prof-dir=${dir}`] : [];
}

/**
 * The server's `--v8-flags=…`: deno.json's (SERVER_V8_FLAGS), plus BENCH_SERVER_V8_EXTRA, a
 * comma-separated list of more V8 flags (e.g. `--trace-gc,--trace-gc-nvp` to see every
 * collection, or heap sizes to try), for diagnosis; the report's server command names only
 * deno.json's.
 */
function serverV8Flags(): string {
  const extra = Deno.env.get("BENCH_SERVER_V8_EXTRA");
  return extra ? `${SERVER_V8_FLAGS},${extra}` : SERVER_V8_FLAGS;
}

/**
 * `taskset -c LIST` when the variable `name` holds a CPU list (BENCH_SERVER_CPUS,
 * BENCH_LOAD_CPUS), else nothing: a diagnosis of how much of the lookups' tail is the server
 * and the generator waiting for each other's core. The report's figures are unpinned.
 */
function pinnedTo(name: string): string[] {
  const cpus = Deno.env.get(name);
  return cpus ? ["taskset", "-c", cpus] : [];
}

/**
 * `stdbuf -oL` when BENCH_SERVER_V8_EXTRA is set, else nothing. V8 prints (--trace-gc) through
 * the C library's stdout, which buffers a pipe by 4 KiB blocks, while Deno writes its lines at
 * once: a shell answer then landed inside a half-printed GC line ("…\"scavenge_throughput\":
 * 31155110000 peer(s), …", 2026-12-06 20:07 and again at every ask of one run), askPeers()
 * never read it and the run failed after the phases. Line-buffered, V8's lines come whole.
 */
function lineBufferedStdout(): string[] {
  return Deno.env.get("BENCH_SERVER_V8_EXTRA") ? ["stdbuf", "-oL"] : [];
}

/**
 * With BENCH_SERVER_STDOUT naming a file, every line the server prints on stdout is appended
 * there (V8's `--trace-gc` output goes to stdout), with a `# phase N start` / `# phase N done`
 * line around each lookup phase, so that what the server printed can be cut to a phase.
 */
function serverStdoutCopy(): { stdoutCopy?: string } {
  const path = Deno.env.get("BENCH_SERVER_STDOUT");
  return path ? { stdoutCopy: path } : {};
}

function markServerStdout(what: string): void {
  const path = Deno.env.get("BENCH_SERVER_STDOUT");
  if (path) {
    Deno.writeTextFileSync(path, `# ${what} ${new Date().toISOString()}\n`, { append: true });
  }
}

/** The `--v8-flags=…` argument of deno.json's `server` task. */
function serverTaskV8Flags(): string {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}/deno.json`));
  const flags = /--v8-flags=\S+/.exec(config.tasks.server);
  if (!flags) throw new Error("Cannot find --v8-flags in the server task of deno.json");
  return flags[0];
}
