// Network-namespace plumbing for benchmarks: a private LAN (a "switch" namespace holding a bridge,
// one namespace per host with a veth `eth0` plugged into it), uplink caps with tc, and processes
// run inside it that are always stopped. Creates nothing in the root namespace. Needs root.

const encoder = new TextEncoder();

/** Output of a finished command. */
export interface CommandOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of `run`. */
export interface RunOptions {
  /** Throw when the exit code is not 0. @default true */
  check?: boolean;
  /** Kill the command (SIGTERM) after this long, ms. @default 60_000 */
  timeoutMs?: number;
  cwd?: string;
  env?: Record<string, string>;
}

/**
 * Runs a short command to completion, bounded by a timeout.
 *
 * @throws {Error} when it cannot start, times out, or (with `check`) exits non-zero
 */
export async function run(
  program: string,
  args: string[],
  options: RunOptions = {},
): Promise<CommandOutput> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const command = new Deno.Command(program, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    ...(options.env === undefined ? {} : { env: options.env }),
  });
  const result = await command.output();
  const out = {
    code: result.code,
    stdout: new TextDecoder().decode(result.stdout),
    stderr: new TextDecoder().decode(result.stderr),
  };
  if (result.signal !== null) {
    throw new Error(
      `Cannot run "${program} ${args.join(" ")}": killed by ${result.signal} ` +
        `(timeout ${timeoutMs} ms?)`,
    );
  }
  if ((options.check ?? true) && out.code !== 0) {
    throw new Error(
      `Cannot run "${program} ${args.join(" ")}": exit code ${out.code}: ${out.stderr.trim()}`,
    );
  }
  return out;
}

/** Whether `program` is on PATH. */
export async function haveProgram(program: string): Promise<boolean> {
  const r = await run("sh", ["-c", 'command -v "$0"', program], { check: false });
  return r.code === 0;
}

/**
 * Installs the Debian packages whose programs are missing (`apt-get update` only if the first
 * install fails).
 *
 * @param programs program name → package that provides it
 * @returns the packages installed
 */
export async function ensurePrograms(programs: Record<string, string>): Promise<string[]> {
  const missing = new Set<string>();
  for (const [program, pkg] of Object.entries(programs)) {
    if (!await haveProgram(program)) missing.add(pkg);
  }
  if (missing.size === 0) return [];
  const install = ["install", "-y", "--no-install-recommends", ...missing];
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const first = await run("apt-get", install, { check: false, timeoutMs: 600_000, env });
  if (first.code !== 0) {
    await run("apt-get", ["update"], { timeoutMs: 600_000, env });
    await run("apt-get", install, { timeoutMs: 600_000, env });
  }
  return [...missing];
}

/** One host of the LAN. */
export interface LanHost {
  /** Short name, e.g. "s1"; its namespace is prefix + name. */
  name: string;
  /** IPv4 address inside the LAN's /24. */
  address: string;
}

/** Options of `startLan`. */
export interface LanOptions {
  /** Namespace name prefix, unique to this benchmark, e.g. "lsb-". */
  prefix: string;
  /** The hosts; all addresses in one /24. */
  hosts: LanHost[];
  /** Where process logs go (one file per process). */
  logDir: string;
}

/** Deletes namespaces left by an earlier, killed run (and stops what still runs in them). */
export async function removeStaleNamespaces(prefix: string): Promise<string[]> {
  const names = (await run("ip", ["netns", "list"])).stdout.split("\n")
    .map((line) => line.split(" ")[0] ?? "")
    .filter((name) => name.startsWith(prefix));
  for (const ns of names) {
    // Only processes of an earlier run of this benchmark can live in these namespaces.
    const pids = (await run("ip", ["netns", "pids", ns], { check: false })).stdout.split("\n")
      .map((p) => Number(p)).filter((p) => p > 0);
    for (const pid of pids) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await run("ip", ["netns", "del", ns], { check: false });
  }
  return names;
}

/**
 * Builds the LAN: namespace `<prefix>sw` with bridge br0 (STP off), and per host a namespace with
 * IPv6 disabled and `eth0` (a veth whose peer is a port of br0) carrying its /24 address.
 */
export async function startLan(options: LanOptions): Promise<Lan> {
  const { prefix, hosts } = options;
  if (hosts.length === 0) throw new RangeError("Cannot start a LAN: no hosts");
  const net = hosts[0]!.address.split(".").slice(0, 3).join(".");
  for (const h of hosts) {
    if (!h.address.startsWith(`${net}.`)) {
      throw new RangeError(`Cannot start a LAN: "${h.address}" is not in ${net}.0/24`);
    }
  }
  await Deno.mkdir(options.logDir, { recursive: true });
  const lan = new Lan(prefix, hosts, `${net}.255`, options.logDir);
  const sw = `${prefix}sw`;
  const noV6 = [
    "sysctl",
    "-qw",
    "net.ipv6.conf.all.disable_ipv6=1",
    "net.ipv6.conf.default.disable_ipv6=1",
  ];
  try {
    await run("ip", ["netns", "add", sw]);
    lan.created.push(sw);
    await run("ip", ["netns", "exec", sw, ...noV6]);
    await run("ip", ["-n", sw, "link", "set", "lo", "up"]);
    await run("ip", [
      "-n",
      sw,
      "link",
      "add",
      "br0",
      "type",
      "bridge",
      "stp_state",
      "0",
      "forward_delay",
      "0",
    ]);
    await run("ip", ["-n", sw, "link", "set", "br0", "up"]);
    let port = 0;
    for (const host of hosts) {
      const ns = lan.ns(host.name);
      const peerName = `p${++port}`;
      await run("ip", ["netns", "add", ns]);
      lan.created.push(ns);
      await run("ip", ["netns", "exec", ns, ...noV6]);
      await run("ip", ["-n", ns, "link", "set", "lo", "up"]);
      await run("ip", [
        "-n",
        ns,
        "link",
        "add",
        "eth0",
        "type",
        "veth",
        "peer",
        "name",
        peerName,
        "netns",
        sw,
      ]);
      await run("ip", ["-n", sw, "link", "set", peerName, "master", "br0"]);
      await run("ip", ["-n", sw, "link", "set", peerName, "up"]);
      await run("ip", ["-n", ns, "addr", "add", `${host.address}/24`, "dev", "eth0"]);
      await run("ip", ["-n", ns, "link", "set", "eth0", "up"]);
    }
  } catch (err) {
    await lan.close();
    throw err;
  }
  return lan;
}

/** Options of `Lan.spawn`. */
export interface SpawnOptions {
  /** Log file name (without directory), also the process's label in messages. */
  label: string;
  env?: Record<string, string>;
  cwd?: string;
  /** Keep stdin open for `send`. @default false */
  stdin?: boolean;
  /** Split stdout into lines for `nextLine`/`waitLine` (they are logged too). @default false */
  lines?: boolean;
}

/** A running LAN; `close()` stops its processes and deletes its namespaces. */
export class Lan implements AsyncDisposable {
  readonly prefix: string;
  readonly hosts: readonly LanHost[];
  /** The bridge's broadcast address. */
  readonly broadcast: string;
  readonly logDir: string;
  /** Namespaces created so far, in order. */
  readonly created: string[] = [];
  readonly #processes = new Set<NsProcess>();
  #closed = false;

  /** Use `startLan`. */
  constructor(prefix: string, hosts: LanHost[], broadcast: string, logDir: string) {
    this.prefix = prefix;
    this.hosts = hosts;
    this.broadcast = broadcast;
    this.logDir = logDir;
  }

  /** The namespace of a host. */
  ns(host: string): string {
    return `${this.prefix}${host}`;
  }

  /** The address of a host. */
  address(host: string): string {
    const found = this.hosts.find((h) => h.name === host);
    if (!found) throw new RangeError(`Cannot find host "${host}"`);
    return found.address;
  }

  /** The host with that address, if any. */
  hostOf(address: string): string | undefined {
    return this.hosts.find((h) => h.address === address)?.name;
  }

  /**
   * Caps a host's uplink (egress of its eth0) with tbf, as the anchors do; undefined removes it.
   *
   * @param rateMbit megabits (10^6) per second
   */
  async cap(host: string, rateMbit: number | undefined): Promise<void> {
    const ns = this.ns(host);
    await run("ip", ["netns", "exec", ns, "tc", "qdisc", "del", "dev", "eth0", "root"], {
      check: false,
    });
    if (rateMbit === undefined) return;
    await run("ip", [
      "netns",
      "exec",
      ns,
      "tc",
      "qdisc",
      "add",
      "dev",
      "eth0",
      "root",
      "tbf",
      "rate",
      `${rateMbit}mbit`,
      "burst",
      "256kb",
      "latency",
      "50ms",
    ]);
  }

  /** Bytes sent so far by a host's eth0 (its uplink, frames as counted by the kernel). */
  async txBytes(host: string): Promise<number> {
    const r = await run("ip", ["-n", this.ns(host), "-s", "-j", "link", "show", "eth0"]);
    const links = JSON.parse(r.stdout) as { stats64?: { tx?: { bytes?: number } } }[];
    const bytes = links[0]?.stats64?.tx?.bytes;
    if (typeof bytes !== "number") throw new Error(`Cannot read tx bytes of ${host}`);
    return bytes;
  }

  /** Runs a short command in a host's namespace. */
  exec(host: string, program: string, args: string[], options: RunOptions = {}) {
    return run("ip", ["netns", "exec", this.ns(host), program, ...args], options);
  }

  /**
   * Starts a long-running process in a host's namespace. `ip netns exec` execs the program, so
   * the child's PID is the program's own and signals reach it directly.
   */
  spawn(host: string, program: string, args: string[], options: SpawnOptions): NsProcess {
    if (this.#closed) throw new Error(`Cannot spawn ${options.label}: the LAN is closed`);
    const command = new Deno.Command("ip", {
      args: ["netns", "exec", this.ns(host), program, ...args],
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      ...(options.env === undefined ? {} : { env: options.env }),
    });
    const proc = new NsProcess(command.spawn(), options, `${this.logDir}/${options.label}.log`);
    this.#processes.add(proc);
    void proc.status.finally(() => this.#processes.delete(proc));
    return proc;
  }

  /** Processes still running. */
  get running(): NsProcess[] {
    return [...this.#processes];
  }

  /** Stops every process started here (SIGTERM, then SIGKILL), then deletes the namespaces. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(
      [...this.#processes].map((p) => p.stop({ signal: "SIGTERM", graceMs: 3000 })),
    );
    for (const ns of [...this.created].reverse()) {
      await run("ip", ["netns", "del", ns], { check: false });
    }
    this.created.length = 0;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Options of `NsProcess.stop`. */
export interface StopOptions {
  /** Sent once if the process has not exited (after `quitLine`, if any). @default "SIGTERM" */
  signal?: Deno.Signal;
  /** Wait this long after the quit line and after the signal, ms. @default 5000 */
  graceMs?: number;
  /** Written to stdin first, e.g. "quit". */
  quitLine?: string;
}

/** A process in a namespace: its stdout lines (if asked for) and a bounded stop. */
export class NsProcess {
  readonly label: string;
  readonly pid: number;
  /** Resolves when the process has exited and its output is logged. */
  readonly status: Promise<Deno.CommandStatus>;
  readonly logPath: string;
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  readonly #lines: string[] = [];
  readonly #tail: string[] = [];
  #wake = Promise.withResolvers<void>();
  #exited: Deno.CommandStatus | undefined;

  /** Use `Lan.spawn`. */
  constructor(child: Deno.ChildProcess, options: SpawnOptions, logPath: string) {
    this.label = options.label;
    this.pid = child.pid;
    this.logPath = logPath;
    this.#child = child;
    this.#writer = options.stdin ? child.stdin.getWriter() : undefined;
    const log = Deno.openSync(logPath, { create: true, append: true, write: true });
    const write = (text: string) => {
      const bytes = encoder.encode(text);
      let done = 0;
      while (done < bytes.length) done += log.writeSync(bytes.subarray(done));
    };
    const pumps = [
      this.#pump(child.stdout, options.lines ?? false, write),
      this.#pump(child.stderr, false, write),
    ];
    this.status = (async () => {
      const status = await child.status;
      this.#exited = status;
      await Promise.allSettled(pumps);
      log.close();
      this.#notify();
      return status;
    })();
  }

  async #pump(
    stream: ReadableStream<Uint8Array>,
    lines: boolean,
    write: (text: string) => void,
  ): Promise<void> {
    let buffer = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      write(text);
      buffer += text;
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        this.#tail.push(line);
        if (this.#tail.length > 20) this.#tail.shift();
        if (lines) this.#lines.push(line);
      }
      if (!lines && buffer.length > 4096) buffer = buffer.slice(-4096);
      this.#notify();
    }
    if (lines && buffer.length > 0) this.#lines.push(buffer);
  }

  #notify(): void {
    const old = this.#wake;
    this.#wake = Promise.withResolvers<void>();
    old.resolve();
  }

  /** Whether the process has exited. */
  get exited(): boolean {
    return this.#exited !== undefined;
  }

  /** The last lines it wrote (stdout and stderr), for error messages. */
  get tail(): string {
    return this.#tail.join("\n");
  }

  /**
   * The next stdout line.
   *
   * @throws {Error} after `timeoutMs`, or when the process has exited with no line left
   */
  async nextLine(timeoutMs: number): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const line = this.#lines.shift();
      if (line !== undefined) return line;
      if (this.#exited) {
        throw new Error(
          `Cannot read from ${this.label}: exited with code ${this.#exited.code}; ` +
            `log ${this.logPath}; last lines:\n${this.tail}`,
        );
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new Error(`Cannot read from ${this.label}: no line within ${timeoutMs} ms`);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#wake.promise,
        new Promise((resolve) => timer = setTimeout(resolve, left)),
      ]);
      clearTimeout(timer);
    }
  }

  /** Skips stdout lines until one matches (each skipped line goes to `onOther`). */
  async waitLine(
    match: (line: string) => boolean,
    timeoutMs: number,
    onOther?: (line: string) => void,
  ): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const left = Math.max(0, deadline - performance.now());
      const line = await this.nextLine(left).catch((err: Error) => {
        throw new Error(`${err.message} (waiting ${timeoutMs} ms for a matching line)`, {
          cause: err,
        });
      });
      if (match(line)) return line;
      onOther?.(line);
    }
  }

  /** Writes one line to stdin. */
  async send(line: string): Promise<void> {
    if (!this.#writer) throw new Error(`Cannot write to ${this.label}: stdin is not piped`);
    await this.#writer.write(encoder.encode(`${line}\n`));
  }

  /** Sends a signal if the process still runs. */
  kill(signal: Deno.Signal): void {
    if (this.#exited) return;
    try {
      this.#child.kill(signal);
    } catch {
      // exited meanwhile
    }
  }

  async #waitExit(ms: number): Promise<boolean> {
    if (this.#exited) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.status, new Promise((r) => timer = setTimeout(r, ms))]);
    clearTimeout(timer);
    return this.#exited !== undefined;
  }

  /**
   * Stops the process: the quit line (if any), else or then one signal, then SIGKILL; each step
   * bounded by `graceMs`.
   */
  async stop(options: StopOptions = {}): Promise<Deno.CommandStatus> {
    const graceMs = options.graceMs ?? 5000;
    if (!this.#exited && options.quitLine !== undefined && this.#writer) {
      await this.send(options.quitLine).catch(() => {});
      if (await this.#waitExit(graceMs)) return await this.status;
    }
    this.kill(options.signal ?? "SIGTERM");
    if (!await this.#waitExit(graceMs)) {
      this.kill("SIGKILL");
      await this.#waitExit(5000);
    }
    await this.#writer?.close().catch(() => {});
    return await this.status;
  }
}
