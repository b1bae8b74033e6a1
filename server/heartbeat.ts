// The server's heartbeat: every tick, the next share of the live sessions is judged by its
// Liveness account and pinged or dropped; once per full round the leases are renewed. Works in
// `tick(nowMs)` with injected actions, so tests drive it with a fake clock; only
// `startHeartbeat()` owns a timer.
import { logger } from "../shared/log.ts";
import type { Liveness, LivenessPolicy } from "./liveness.ts";

const log = logger("server", "heartbeat");

/** The ping interval is worked through in this many ticks, each taking its share of sessions. */
const HEARTBEAT_SLICES = 50;
/** Shortest tick, ms (short ping intervals in tests would otherwise tick every millisecond). */
const MIN_TICK_MS = 20;
/** A tick this much later than planned means our own event loop was stalled, at least 1 s. */
const MIN_STALL_MS = 1000;

/** What the heartbeat needs of a session. */
export interface HeartbeatSession {
  readonly liveness: Liveness;
}

/** Options for `Heartbeat`. */
export interface HeartbeatOptions<S extends HeartbeatSession> extends LivenessPolicy {
  /** The live sessions, by id; read on every tick (sessions come and go between ticks). */
  sessions: ReadonlyMap<string, S>;
  /** Sends a ping to a session that has been quiet for an interval. */
  ping(session: S, nowMs: number): void;
  /** Ends a session that stayed silent past the timeout. */
  drop(session: S, silentMs: number): void;
  /** Extends the leases of the sessions held (once per round, at most twice per interval). */
  renewLeases(held: string[]): void;
}

/** Spreads liveness work over the ping interval. */
export class Heartbeat<S extends HeartbeatSession> {
  /** Time between ticks, ms. */
  readonly tickMs: number;
  readonly #options: HeartbeatOptions<S>;
  #cycle: Iterator<S>;
  #lastTickMs: number;
  /** No session is judged silent before this: the server itself was stalled until recently. */
  #graceUntilMs = 0;
  #lastRenewalMs = -Infinity;

  /** @param nowMs the time the heartbeat starts */
  constructor(options: HeartbeatOptions<S>, nowMs: number) {
    this.#options = options;
    this.tickMs = Math.max(MIN_TICK_MS, Math.floor(options.pingIntervalMs / HEARTBEAT_SLICES));
    this.#cycle = options.sessions.values();
    this.#lastTickMs = nowMs;
  }

  /**
   * One tick: judges the next share of the sessions (each comes up about once per interval, so
   * that 10,000 sessions cost a steady trickle of pings rather than a burst every interval that
   * would stall every lookup behind it) and renews leases after each full round.
   */
  tick(nowMs: number): void {
    const { sessions, pingIntervalMs, pingTimeoutMs } = this.#options;
    // If this tick came late, our own event loop was blocked (e.g. a long database write):
    // answers may be waiting unread in the sockets, so silence proves nothing until every
    // session had a full timeout of a running server to be heard.
    const lateMs = nowMs - this.#lastTickMs - this.tickMs;
    if (lateMs > Math.max(pingIntervalMs, MIN_STALL_MS)) {
      this.#graceUntilMs = nowMs + pingTimeoutMs;
      log.warn("Server was stalled for {ms} ms; not dropping silent sessions until it recovers", {
        ms: lateMs,
      });
    }
    this.#lastTickMs = nowMs;
    let share = Math.ceil(sessions.size * this.tickMs / pingIntervalMs);
    while (share-- > 0) {
      let next = this.#cycle.next();
      if (next.done) {
        this.#renewLeases(nowMs);
        this.#cycle = sessions.values();
        next = this.#cycle.next();
        if (next.done) break;
      }
      this.#check(next.value, nowMs);
    }
    if (sessions.size === 0) this.#renewLeases(nowMs);
  }

  #check(session: S, nowMs: number): void {
    const verdict = session.liveness.verdict(nowMs, this.#options);
    if (verdict === "silent" && nowMs >= this.#graceUntilMs) {
      this.#options.drop(session, nowMs - session.liveness.lastHeardMs);
    } else if (verdict === "ping") {
      this.#options.ping(session, nowMs);
    }
  }

  #renewLeases(nowMs: number): void {
    if (nowMs - this.#lastRenewalMs < this.#options.pingIntervalMs / 2) return;
    this.#lastRenewalMs = nowMs;
    this.#options.renewLeases([...this.#options.sessions.keys()]);
  }
}

/** A heartbeat ticking on a timer. */
export interface RunningHeartbeat extends Disposable {
  /** Stops the timer. */
  stop(): void;
}

/** Starts `new Heartbeat(options)` ticking every `tickMs` on the wall clock. */
export function startHeartbeat<S extends HeartbeatSession>(
  options: HeartbeatOptions<S>,
): RunningHeartbeat {
  const heartbeat = new Heartbeat(options, Date.now());
  const timer = setInterval(() => heartbeat.tick(Date.now()), heartbeat.tickMs);
  const stop = () => clearInterval(timer);
  return { stop, [Symbol.dispose]: stop };
}
