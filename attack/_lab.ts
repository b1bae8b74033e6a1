// One attack's world: a temporary folder, the real server and peers spawned in it as users run
// them, and everything to undo afterwards. Disposing a Lab kills what it started (by its own
// child handle, i.e. by PID), runs the cleanups and removes the folder, even after a failure.
import { join } from "node:path";
import {
  type Answer,
  type PeerProgram,
  type Program,
  type ServerProgram,
  spawnPeer,
  spawnServer,
  writeRandomFile,
} from "../tests/e2e/_programs.ts";
import { RssWatch } from "./_meter.ts";
import { errorText, forgetPort, registeredWith, trustProgram, withinMs } from "./_wire.ts";

/** Labs not yet disposed, so that an interrupted run can still clean up. */
const open = new Set<Lab>();

/** Disposes every Lab still open (for a signal handler). */
export async function disposeAllLabs(): Promise<void> {
  await Promise.allSettled([...open].map((lab) => lab[Symbol.asyncDispose]()));
}

/** Runs a set-up command on a peer's shell; its failure is the attack's, not a finding. */
export async function setUp(peer: PeerProgram, line: string, timeoutMs = 30_000): Promise<Answer> {
  const answer = await peer.command(line, { timeoutMs });
  if (answer.ok !== true) throw new Error(`Cannot set up: "${line}" failed: ${answer.error}`);
  return answer;
}

/** Options for `Lab.peer()`. */
export interface LabPeerOptions {
  /** The index the peer connects to (by --server, no discovery). */
  server: ServerProgram;
  /** Extra flags. */
  args?: string[];
}

/** Temporary folder, processes and cleanups of one attack. */
export class Lab implements AsyncDisposable {
  readonly name: string;
  readonly dir: string;
  readonly #programs: Program[] = [];
  readonly #exits = new Map<Program, Deno.CommandStatus>();
  readonly #cleanups: (() => unknown)[] = [];
  #disposed = false;
  /** The one disposal, which every caller of dispose awaits (the driver and a signal alike). */
  #disposal: Promise<void> | undefined;

  private constructor(name: string, dir: string) {
    this.name = name;
    this.dir = dir;
    open.add(this);
  }

  /** Creates a Lab with a fresh temporary folder. */
  static async open(name: string): Promise<Lab> {
    return new Lab(name, await Deno.makeTempDir({ prefix: `lanshare-attack-${name}-` }));
  }

  #track<P extends Program>(program: P): P {
    this.#programs.push(program);
    void program.status.then((status) => {
      this.#exits.set(program, status);
    });
    return program;
  }

  /** Spawns the real index server (in-memory catalogue, ephemeral ports, loopback broadcast). */
  async server(args: string[] = []): Promise<ServerProgram> {
    this.#checkOpen();
    const server = this.#track(await spawnServer({ args }));
    // A server run with --insecure-plaintext is attacked in plaintext.
    if (!args.includes("--insecure-plaintext")) trustProgram(server.tcpPort, server);
    this.defer(() => forgetPort(server.tcpPort));
    return server;
  }

  /** Spawns a real peer whose repository is `<dir>/<hostname>`, read/write limited to it. */
  async peer(hostname: string, options: LabPeerOptions): Promise<PeerProgram> {
    this.#checkOpen();
    const peer = this.#track(
      await spawnPeer({
        repo: this.repo(hostname),
        hostname,
        server: options.server,
        direct: true,
        args: options.args ?? [],
      }),
    );
    if (!(options.args ?? []).includes("--insecure-plaintext")) trustProgram(peer.p2pPort, peer);
    registeredWith(peer.p2pPort, options.server.tcpPort);
    this.defer(() => forgetPort(peer.p2pPort));
    return peer;
  }

  /**
   * A time bound for a load loop: the returned check is true for `ms` from now and while the
   * Lab is open, so a loop of an attack that overran its budget stops once its Lab is gone.
   */
  within(ms: number): () => boolean {
    const deadline = performance.now() + ms;
    return () => !this.#disposed && performance.now() < deadline;
  }

  /** The repository folder of the peer named `hostname` (it may not exist yet). */
  repo(hostname: string): string {
    return join(this.dir, hostname);
  }

  /** Writes `size` pseudo-random bytes to `path` (folders created). */
  async randomFile(path: string, size: number, seed = 1): Promise<void> {
    await Deno.mkdir(join(path, ".."), { recursive: true });
    await writeRandomFile(path, size, seed);
  }

  /** How `program` ended, or undefined while it runs. */
  exitOf(program: Program): Deno.CommandStatus | undefined {
    return this.#exits.get(program);
  }

  /**
   * Whether `program` still runs, giving a death that is under way `graceMs` to be reported
   * (a refused connection comes before the exit status).
   */
  async alive(program: Program, graceMs = 500): Promise<boolean> {
    await withinMs(program.status, graceMs);
    return this.exitOf(program) === undefined;
  }

  /** "alive", or how it ended with the last lines of its log. */
  describeExit(program: Program): string {
    const status = this.exitOf(program);
    if (status === undefined) return "alive";
    const lines = program.stderr.trim().split("\n");
    const cause = lines.find((line) => /^error: /.test(line)) ?? lines.at(-1) ?? "";
    return `exited (code ${status.code}${status.signal ? `, ${status.signal}` : ""}: ${
      cause.slice(0, 200)
    })`;
  }

  /** Samples `program`'s RSS until stopped (or until the Lab is disposed). */
  watchRss(program: Program): RssWatch {
    const watch = new RssWatch(program.child.pid);
    this.defer(() => watch[Symbol.dispose]());
    return watch;
  }

  /** Runs `cleanup` when the Lab is disposed (last registered, first run). */
  defer(cleanup: () => unknown): void {
    this.#cleanups.push(cleanup);
  }

  #checkOpen(): void {
    if (this.#disposed) throw new Error(`Cannot start a process: lab "${this.name}" is closed`);
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.#disposed = true;
    this.#disposal ??= this.#dispose();
    return this.#disposal;
  }

  async #dispose(): Promise<void> {
    const problems: string[] = [];
    for (const cleanup of this.#cleanups.reverse()) {
      try {
        await cleanup();
      } catch (err) {
        problems.push(errorText(err));
      }
    }
    await Promise.all(this.#programs.map((program) => program.kill()));
    await Deno.remove(this.dir, { recursive: true }).catch((err) => {
      if (!(err instanceof Deno.errors.NotFound)) problems.push(errorText(err));
    });
    open.delete(this);
    if (problems.length > 0) {
      console.error(`attack ${this.name}: cleanup problems: ${problems.join("; ")}`);
    }
  }
}
