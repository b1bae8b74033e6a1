// The liveness account of one session: when it was last heard, when its ping was queued and
// written, and from that whether to ping it, leave it be, or drop it. Pure: no I/O, no clock of
// its own (every method takes the time).

/** How often a session is pinged and how long it may stay silent, ms. */
export interface LivenessPolicy {
  /** A session heard from within this long is not pinged. */
  pingIntervalMs: number;
  /** A ping unanswered this long after it reached the socket means the peer is gone. */
  pingTimeoutMs: number;
}

/** What the heartbeat should do with a session now. */
export type LivenessVerdict = "ok" | "ping" | "silent";

/**
 * A ping stuck in our own write queue this many timeouts long means the peer stopped reading:
 * give up on it even though it was never able to see the ping.
 */
const STUCK_PING_TIMEOUTS = 4;

/** One session's liveness bookkeeping. */
export class Liveness {
  /** Time of the last frame received, ms since the epoch. */
  lastHeardMs: number;
  /**
   * When the last ping actually reached the socket (0: none yet). Under load a ping can wait in
   * our own write queue for seconds; silence only counts from when the peer could see it.
   */
  lastPingWrittenMs = 0;
  /** When the oldest ping still waiting for its write was queued (0: none). */
  pingQueuedMs = 0;

  /** @param nowMs the time the session started: it counts as heard then */
  constructor(nowMs: number) {
    this.lastHeardMs = nowMs;
  }

  /** A frame arrived. */
  heard(nowMs: number): void {
    this.lastHeardMs = nowMs;
  }

  /** A ping was queued for writing at `queuedAtMs`. */
  pingQueued(queuedAtMs: number): void {
    if (this.pingQueuedMs === 0) this.pingQueuedMs = queuedAtMs;
  }

  /** The ping queued at `queuedAtMs` reached the socket at `nowMs`. */
  pingWritten(queuedAtMs: number, nowMs: number): void {
    this.lastPingWrittenMs = nowMs;
    if (this.pingQueuedMs <= queuedAtMs) this.pingQueuedMs = 0;
  }

  /**
   * Judges the session at `nowMs`: `silent` when a ping reached the socket and nothing came back
   * within the timeout, or a ping has been stuck in our write queue for far longer; `ping` when
   * it has been quiet for an interval and no ping is queued or unanswered; else `ok`.
   */
  verdict(nowMs: number, policy: LivenessPolicy): LivenessVerdict {
    const awaitingPong = this.lastPingWrittenMs > this.lastHeardMs;
    const unanswered = awaitingPong && nowMs - this.lastPingWrittenMs > policy.pingTimeoutMs;
    const stuck = this.pingQueuedMs > 0 &&
      nowMs - this.pingQueuedMs > STUCK_PING_TIMEOUTS * policy.pingTimeoutMs;
    if (unanswered || stuck) return "silent";
    // A peer heard from within the interval is alive: no ping (fewer writes at scale); and no
    // second ping while one is queued or unanswered (its write time is the clock).
    if (nowMs - this.lastHeardMs < policy.pingIntervalMs) return "ok";
    if (this.pingQueuedMs > 0 || awaitingPong) return "ok";
    return "ping";
  }
}
