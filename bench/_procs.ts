// Child processes for the benchmarks: lanshare programs driven over stdin/stdout JSON lines,
// nginx in its own prefix, one-shot commands, and /proc sampling (RSS, CPU time).
// Every wait is bounded; only processes started here are ever signalled, by their own handle.
import { readLines } from "../shared/cli.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A line a child printed on stdout, parsed when it is JSON, with when it arrived. */
export interface OutputLine {
  text: string;
  json: Record<string, unknown> | undefined;
  /** performance.now() when the line was read. */
  atMs: number;
}

/** How to start a LineProcess. */
export interface LineProcessOptions {
  /** Label used in error messages. */
  name: string;
  cmd: string;
  args: string[];
  /** Keep stdin open to send commands. @default true */
  stdin?: boolean;
  /** Working directory. @default the current one */
  cwd?: string;
}

/** Every LineProcess not yet stopped, so that an interrupted run can stop them all. */
const live = new Set<LineProcess>();

/** Stops every LineProcess still running (for a signal handler). */
export async function stopAllProcesses(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop(2000)));
}

/** Lines of stderr kept to explain a failure. */
const STDERR_TAIL_LINES = 40;

/**
 * A child process that prints one line per event on stdout and, optionally, takes commands on
 * stdin. Stdout and stderr are always drained, so the child never blocks on a full pipe.
 */
export class LineProcess implements AsyncDisposable {
  readonly name: string;
  readonly pid: number;
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array> | undefined;
  readonly #queue: OutputLine[] = [];
  readonly #stderrTail: string[] = [];
  readonly #pumps: Promise<void>[];
  readonly #wakers = new Set<() => void>();
  #exited = false;
  #status: Promise<Deno.CommandStatus>;

  constructor(options: LineProcessOptions) {
    this.name = options.name;
    const withStdin = options.stdin ?? true;
    const child = new Deno.Command(options.cmd, {
      args: options.args,
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      stdin: withStdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.pid = child.pid;
    live.add(this);
    this.#stdin = withStdin ? child.stdin.getWriter() : undefined;
    this.#status = child.status.finally(() => {
      this.#exited = true;
    });
    this.#pumps = [
      (async () => {
        for await (const text of readLines(child.stdout)) {
          this.#queue.push({ text, json: parseJson(text), atMs: performance.now() });
          this.#notify();
        }
      })(),
      (async () => {
        for await (const text of readLines(child.stderr)) {
          this.#stderrTail.push(text);
          if (this.#stderrTail.length > STDERR_TAIL_LINES) this.#stderrTail.shift();
        }
      })(),
    ];
    void this.#status.then(() => this.#notify());
  }

  #notify(): void {
    for (const wake of this.#wakers) wake();
    this.#wakers.clear();
  }

  /** The last lines the child wrote on stderr. */
  get stderrTail(): string {
    return this.#stderrTail.join("\n");
  }

  /** Writes one command line to the child's stdin. */
  async send(line: string): Promise<void> {
    if (!this.#stdin) throw new TypeError(`Cannot send to ${this.name}: started without stdin`);
    await this.#stdin.write(encoder.encode(`${line}\n`));
  }

  /**
   * Waits for the next stdout line whose JSON satisfies `match`; lines before it are dropped.
   *
   * @throws {Error} when the child exits or `timeoutMs` passes first
   */
  async next(
    match: (json: Record<string, unknown>) => boolean,
    timeoutMs: number,
    what = "an answer",
  ): Promise<OutputLine> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const at = this.#queue.findIndex((line) => line.json !== undefined && match(line.json));
      if (at >= 0) return this.#queue.splice(0, at + 1)[at]!;
      // Keep only a bounded backlog of lines nobody asked for (e.g. progress events).
      if (this.#queue.length > 1000) this.#queue.splice(0, this.#queue.length - 1000);
      if (this.#exited) {
        throw new Error(
          `Cannot read ${what} from ${this.name}: it exited (${
            (await this.#status).code
          })\n${this.stderrTail}`,
        );
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new Error(
          `Cannot read ${what} from ${this.name}: none within ${timeoutMs} ms\n${this.stderrTail}`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      let wake: (() => void) | undefined;
      await new Promise<void>((resolve) => {
        wake = resolve;
        this.#wakers.add(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.#wakers.delete(wake!);
    }
  }

  /** Sends `line` and waits for the answer whose `cmd` field is `cmd`. */
  async command(
    line: string,
    cmd: string,
    timeoutMs: number,
  ): Promise<{ answer: Record<string, unknown>; sentAtMs: number; atMs: number }> {
    const sentAtMs = performance.now();
    await this.send(line);
    const got = await this.next((j) => j.cmd === cmd, timeoutMs, `the answer to "${line}"`);
    if (got.json!.ok !== true) {
      throw new Error(`${this.name}: "${line}" failed: ${got.json!.error ?? got.text}`);
    }
    return { answer: got.json!, sentAtMs, atMs: got.atMs };
  }

  /** Stops the child: SIGTERM, then SIGKILL after `graceMs`. Idempotent. */
  async stop(graceMs = 5000): Promise<void> {
    await this.#stdin?.close().catch(() => {});
    if (!this.#exited) signal(this.#child, "SIGTERM");
    if (!await settlesWithin(this.#status, graceMs)) {
      signal(this.#child, "SIGKILL");
      await settlesWithin(this.#status, graceMs);
    }
    await settlesWithin(Promise.all(this.#pumps), graceMs);
    live.delete(this);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

function parseJson(text: string): Record<string, unknown> | undefined {
  if (!text.startsWith("{")) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null
      ? value as Record<string, unknown>
      : undefined;
  } catch {
    return undefined;
  }
}

function signal(child: Deno.ChildProcess, sig: Deno.Signal): void {
  try {
    child.kill(sig);
  } catch (err) {
    // Already exited between the check and the kill.
    if (!(err instanceof TypeError)) throw err;
  }
}

async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Result of a one-shot command. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit, ms. */
  wallMs: number;
}

/**
 * Runs a command to completion, killed after `timeoutMs`.
 *
 * @throws {Error} when it cannot start, or exits non-zero (unless `allowFailure`)
 */
export async function runCommand(
  cmd: string,
  args: string[],
  options: { timeoutMs: number; allowFailure?: boolean },
): Promise<CommandResult> {
  const started = performance.now();
  const out = await new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(options.timeoutMs),
  }).output();
  const result = {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
    wallMs: performance.now() - started,
  };
  if (result.code !== 0 && !options.allowFailure) {
    throw new Error(
      `Cannot run ${cmd} ${args.join(" ")}: exit ${result.code}${
        out.signal ? ` (${out.signal})` : ""
      }\n${result.stderr.slice(-2000)}`,
    );
  }
  return result;
}

/** A free TCP port on 127.0.0.1 right now (probed by binding port 0 and closing). */
export function probeFreePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/**
 * Waits until something accepts TCP connections on 127.0.0.1:`port`.
 *
 * @throws {Error} after `timeoutMs`
 */
export async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return;
    } catch (err) {
      if (performance.now() > deadline) {
        throw new Error(`Cannot reach 127.0.0.1:${port} within ${timeoutMs} ms`, { cause: err });
      }
      // A foreign program (nginx) has no readiness signal: poll, bounded by the deadline.
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** Resident set size of `pid` in KiB (VmRSS), or undefined when it is gone. */
export function readRssKib(pid: number): number | undefined {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** User + system CPU time of `pid` in seconds (assumes CLK_TCK = 100, as on Linux x86-64). */
export function readCpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the ")" closing the command name start at field 3 (state).
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Child PIDs of `pid` (its main thread's children). */
export function readChildPids(pid: number): number[] {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`).trim().split(/\s+/)
      .filter((s) => s !== "").map(Number);
  } catch {
    return [];
  }
}

/** Samples the RSS of some processes every `intervalMs` and keeps each one's peak. */
export class RssSampler {
  readonly #pids: number[];
  readonly #peakKib: Map<number, number> = new Map();
  readonly #timer: ReturnType<typeof setInterval>;
  #samples = 0;

  /**
   * @param pids processes to watch
   * @param intervalMs sampling period @default 100
   */
  constructor(pids: number[], intervalMs = 100) {
    this.#pids = pids;
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), intervalMs);
  }

  #sample(): void {
    this.#samples++;
    for (const pid of this.#pids) {
      const kib = readRssKib(pid);
      if (kib !== undefined) this.#peakKib.set(pid, Math.max(this.#peakKib.get(pid) ?? 0, kib));
    }
  }

  /** Stops sampling (after one last sample); returns each PID's peak in KiB and the count. */
  stop(): { peakKib: Map<number, number>; samples: number } {
    clearInterval(this.#timer);
    this.#sample();
    return { peakKib: this.#peakKib, samples: this.#samples };
  }
}

/** A running nginx serving one folder on 127.0.0.1. */
export interface RunningNginx extends AsyncDisposable {
  port: number;
  /** The master process (started here). */
  pid: number;
  /** The worker process (a child of the master). */
  workerPid: number;
  stop(): Promise<void>;
}

/**
 * Starts nginx (one worker, sendfile on) with its own config and prefix in `dir`, serving
 * `root` on 127.0.0.1 at a port probed free just before.
 *
 * @throws {Error} when nginx is missing or does not come up within 10 s
 */
export async function startNginx(root: string, dir: string): Promise<RunningNginx> {
  await Deno.mkdir(dir, { recursive: true });
  const port = probeFreePort();
  const conf = `# Written by bench/_procs.ts for one benchmark run.
worker_processes 1;
daemon off;
error_log ${dir}/error.log warn;
pid ${dir}/nginx.pid;
events { worker_connections 256; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  sendfile_max_chunk 2m;
  default_type application/octet-stream;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port};
    root ${root};
  }
}
`;
  await Deno.writeTextFile(`${dir}/nginx.conf`, conf);
  const proc = new LineProcess({
    name: "nginx",
    cmd: "nginx",
    args: ["-p", `${dir}/`, "-c", `${dir}/nginx.conf`, "-e", `${dir}/error.log`],
    stdin: false,
  });
  try {
    await waitForPort(port, 10_000);
    let workerPid: number | undefined;
    const deadline = performance.now() + 5000;
    while ((workerPid = readChildPids(proc.pid)[0]) === undefined) {
      if (performance.now() > deadline) throw new Error("Cannot find the nginx worker process");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const stop = () => proc.stop();
    return { port, pid: proc.pid, workerPid, stop, [Symbol.asyncDispose]: stop };
  } catch (err) {
    await proc.stop();
    const log = await Deno.readTextFile(`${dir}/error.log`).catch(() => "");
    throw new Error(`Cannot start nginx: ${(err as Error).message}\n${log}${proc.stderrTail}`, {
      cause: err,
    });
  }
}
