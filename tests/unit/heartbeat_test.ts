import assert from "node:assert/strict";
import { Heartbeat, type HeartbeatOptions } from "../../server/heartbeat.ts";
import { Liveness } from "../../server/liveness.ts";

interface FakeSession {
  id: string;
  liveness: Liveness;
}

/** A heartbeat over `count` sessions started at 0, recording what it does. */
function rig(count: number, policy = { pingIntervalMs: 1000, pingTimeoutMs: 3000 }) {
  const sessions = new Map<string, FakeSession>();
  for (let i = 0; i < count; i++) {
    sessions.set(`s${i}`, { id: `s${i}`, liveness: new Liveness(0) });
  }
  const pinged: string[] = [];
  const dropped: string[] = [];
  const renewals: string[][] = [];
  const options: HeartbeatOptions<FakeSession> = {
    sessions,
    ...policy,
    ping: (session, nowMs) => {
      pinged.push(session.id);
      session.liveness.pingQueued(nowMs);
      session.liveness.pingWritten(nowMs, nowMs);
    },
    drop: (session) => {
      dropped.push(session.id);
      sessions.delete(session.id);
    },
    renewLeases: (held) => renewals.push(held),
  };
  return { heartbeat: new Heartbeat(options, 0), sessions, pinged, dropped, renewals };
}

/** Ticks from `fromMs` to `toMs` on time. */
function run(heartbeat: Heartbeat<FakeSession>, fromMs: number, toMs: number): void {
  for (let t = fromMs; t <= toMs; t += heartbeat.tickMs) heartbeat.tick(t);
}

Deno.test("Heartbeat.tick() pings each quiet session once per interval, spread over the ticks", () => {
  const { heartbeat, pinged } = rig(100);
  assert.equal(heartbeat.tickMs, 20);
  heartbeat.tick(1000);
  assert.equal(pinged.length, 2, "a share of ceil(100 × 20 / 1000) per tick");
  run(heartbeat, 1020, 1980);
  assert.equal(new Set(pinged).size, 100);
  assert.equal(pinged.length, 100, "no session pinged twice while its ping is unanswered");
});

Deno.test("Heartbeat.tick() drops a session silent past the timeout and keeps one that answers", () => {
  const { heartbeat, sessions, dropped } = rig(2);
  run(heartbeat, 1000, 3000); // both pinged
  sessions.get("s0")!.liveness.heard(3000);
  run(heartbeat, 3020, 5000);
  assert.deepEqual(dropped, ["s1"]);
  assert.deepEqual([...sessions.keys()], ["s0"]);
});

Deno.test("Heartbeat.tick() drops no one right after the server itself stalled", () => {
  const { heartbeat, dropped } = rig(1);
  run(heartbeat, 1000, 1100); // pinged at about 1000
  heartbeat.tick(9000); // 7.9 s late: our event loop was blocked
  run(heartbeat, 9020, 11_900);
  assert.deepEqual(dropped, [], "grace of one timeout after the stall");
  run(heartbeat, 12_000, 12_100);
  assert.deepEqual(dropped, ["s0"]);
});

Deno.test("Heartbeat.tick() renews the leases once per round, at most twice per interval", () => {
  const { heartbeat, renewals } = rig(3);
  run(heartbeat, 20, 1000);
  assert.ok(renewals.length >= 1 && renewals.length <= 3, `${renewals.length} renewals`);
  assert.deepEqual(renewals[0], ["s0", "s1", "s2"]);
  const empty = rig(0);
  run(empty.heartbeat, 20, 1000);
  assert.equal(empty.renewals.length, 2, "no sessions: still renewed, every half interval");
});
