import assert from "node:assert/strict";
import { compareBytewise } from "../../shared/compare_bytewise.ts";
import {
  compilePattern,
  foldAscii,
  MemoryCatalogue,
  smallest,
} from "../../server/memory_catalogue.ts";
import { ConflictError, type SessionRow } from "../../server/store.ts";
import type { CatalogEntry, FileEntry, SourceInfo } from "../../shared/protocol.ts";
import { sharesDigest } from "../../shared/shares_digest.ts";
import { rng } from "./_rng.ts";

const utf8 = new TextEncoder();

function compareUtf8(a: string, b: string): number {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

Deno.test("compareBytewise() orders like the UTF-8 bytes, also across surrogates", () => {
  const alphabet = ["a", "B", "é", "\u{e000}", "\u{ffff}", "😀", "\u{10000}", "z", "中"];
  const random = rng(7);
  for (let i = 0; i < 2000; i++) {
    const word = () =>
      Array.from({ length: random.range(0, 4) }, () => random.pick(alphabet)).join("");
    const a = word();
    const b = word();
    assert.equal(Math.sign(compareBytewise(a, b)), Math.sign(compareUtf8(a, b)), `${a} vs ${b}`);
  }
});

Deno.test("compilePattern() matches substrings and anchored globs, ASCII case-insensitively", () => {
  const match = (pattern: string, name: string) => compilePattern(pattern)(foldAscii(name));
  assert.ok(match("SONG", "Music/Song.MP3"));
  assert.ok(match("", "anything"));
  assert.ok(!match("É", "é.txt"), "only ASCII letters fold, as in SQL LIKE");
  assert.ok(match("*.mp3", "a/b.MP3"));
  assert.ok(!match("*.mp3", "a/b.mp3.txt"));
  assert.ok(match("a?c", "a😀c"), "? is one character, not one UTF-16 unit");
  assert.ok(match("(x)[y].+$", "(x)[y].+$"), "regex syntax is literal");
  assert.ok(match("a*(b", "a--(b"));
  assert.ok(!match("a?c", "ac"));
});

Deno.test("smallest() returns the k smallest in order, by heap or by sort", () => {
  const random = rng(11);
  for (const size of [0, 1, 10, 1000]) {
    const items = Array.from({ length: size }, () => random.int(500));
    for (const k of [0, 1, 3, size >> 3, size]) {
      const expected = [...items].sort((a, b) => a - b).slice(0, k);
      assert.deepEqual(smallest([...items], k, (a, b) => a - b), expected, `${size} ${k}`);
    }
  }
});

Deno.test("MemoryCatalogue keeps its name index consistent through takeover, unpublish, close", () => {
  const catalogue = new MemoryCatalogue();
  const row = (sessionId: string, hostname: string) => ({
    sessionId,
    serverId: "s",
    hostname,
    address: "10.0.0.1",
    port: 4000,
    openedAtMs: 0,
    // One device: a takeover of its own {hostname, port}.
    deviceId: "d".repeat(52),
    cert: "(cert)",
  });
  const entry = { fname: "f", size: 1, mtimeMs: 0, rootHash: "aa", pieceSize: 1, sig: "c2ln" };
  const PUBLISH = { nowMs: 0, maxEntries: 10 };
  catalogue.registerSession(row("a", "alpha"), 100);
  catalogue.registerSession(row("b", "bravo"), 100);
  catalogue.publish("a", entry, PUBLISH);
  catalogue.publish("b", entry, PUBLISH);
  catalogue.publish("b", { ...entry, fname: "g" }, PUBLISH);
  assert.deepEqual(catalogue.whoHas("f", "", 0).map((s) => s.hostname), ["alpha", "bravo"]);
  assert.deepEqual(catalogue.registerSession(row("a2", "alpha"), 100), {
    replaced: row("a", "alpha"),
    resumedId: undefined,
  });
  assert.deepEqual(catalogue.whoHas("f", "", 0).map((s) => s.hostname), ["bravo"]);
  assert.equal(catalogue.unpublish("b", "f"), true);
  assert.deepEqual(catalogue.whoHas("f", "", 0), []);
  const names = () => [...catalogue.matchingNames("")].filter((n) => n !== undefined);
  const inOrder = () => [...catalogue.namesInOrder()].flat();
  assert.deepEqual(names().map((n) => n.fname), ["g"]);
  assert.deepEqual(inOrder().map((n) => n.fname), ["g"]);
  assert.equal(catalogue.visibleEntryCount(false, 0), 1);
  assert.equal(catalogue.closeSession("b"), "b", "the id its rows carry");
  assert.deepEqual(names(), []);
  assert.deepEqual(inOrder(), []);
  assert.equal(catalogue.visibleEntryCount(true, 0), 0);
  assert.deepEqual(catalogue.counts(0), { sessions: 1, entries: 0 });
  assert.throws(() => catalogue.publish("b", entry, PUBLISH), /Cannot publish "f": no session b/);
});

Deno.test("MemoryCatalogue.matchingNames() pauses within a costly glob scan, not only per 1024 names", () => {
  const catalogue = new MemoryCatalogue();
  catalogue.registerSession({
    sessionId: "s",
    serverId: "srv",
    hostname: "alpha",
    address: "10.0.0.1",
    port: 4000,
    openedAtMs: 0,
  }, 100);
  // 64 names of 255 "a"s but one character: each costs the glob ~100 × 255 steps.
  for (let i = 0; i < 64; i++) {
    const fname = `${"a".repeat(254 - String(i).length)}${i}b`;
    catalogue.publish("s", { fname, size: 1, mtimeMs: 0, rootHash: "aa", pieceSize: 1 }, {
      nowMs: 0,
      maxEntries: 100,
    });
  }
  const seen = [...catalogue.matchingNames(`*${"a".repeat(100)}c*`)];
  assert.equal(seen.filter((n) => n !== undefined).length, 0);
  // About 1.6 million steps in all: a pause point after every ~100,000 of them.
  assert.ok(seen.length >= 10, `${seen.length} pause points`);
});

Deno.test("MemoryCatalogue's who-has and search answers follow every change (model-based)", () => {
  // The catalogue indexes each entry by name and by owner, and keeps both in step through every
  // change (resuming a session after a restart included): checked here against a plain model
  // after every operation, with the exact JSON the answers are sent as.
  interface ModelSession {
    row: SessionRow;
    /** The id its rows carry: its own, or the one of the session it resumed. */
    storedId: string;
    online: boolean;
    leaseUntilMs: number;
    entries: Map<string, FileEntry>;
  }
  const random = rng(23);
  const catalogue = new MemoryCatalogue();
  const model = new Map<string, ModelSession>();
  const hosts = ["alpha", "bravo", "Charlie", "delta"];
  const names = ["a.txt", "b.txt", "c/é.txt", "d.bin"];
  const device = "d".repeat(52);
  let now = 1000;
  let nextId = 0;
  const live = (s: ModelSession) => s.online && s.leaseUntilMs > now;
  const byHost = (a: ModelSession, b: ModelSession) =>
    compareBytewise(a.row.hostname, b.row.hostname) || a.row.port - b.row.port;
  const expectedSources = (fname: string, asker: string) =>
    [...model.values()].filter((s) =>
      live(s) && s.row.sessionId !== asker && s.row.deviceId !== undefined &&
      s.entries.get(fname)?.sig !== undefined
    ).sort(byHost).map((s) => {
      const e = s.entries.get(fname)!;
      const source: SourceInfo = {
        fname,
        size: e.size,
        mtimeMs: e.mtimeMs,
        rootHash: e.rootHash,
        pieceSize: e.pieceSize,
        hostname: s.row.hostname,
        address: s.row.address,
        port: s.row.port,
        id: s.row.deviceId!,
        sig: e.sig!,
      };
      if (e.have !== undefined) source.have = e.have;
      return source;
    });
  const expectedEntries = (fname: string, includeOffline: boolean) =>
    [...model.values()].filter((s) => s.entries.has(fname) && (includeOffline || live(s)))
      .sort(byHost).map((s) => {
        const listed: CatalogEntry = {
          ...s.entries.get(fname)!,
          hostname: s.row.hostname,
          port: s.row.port,
          online: live(s),
        };
        if (s.row.deviceId !== undefined) listed.id = s.row.deviceId;
        return listed;
      });
  const check = (step: string) => {
    for (const fname of names) {
      for (const asker of ["nobody", ...model.keys()]) {
        assert.equal(
          JSON.stringify(catalogue.whoHas(fname, asker, now)),
          JSON.stringify(expectedSources(fname, asker)),
          `${step}: who-has ${fname} asked by ${asker}`,
        );
      }
    }
    const listedNames = [...catalogue.namesInOrder()].flat();
    for (const name of listedNames) {
      for (const includeOffline of [false, true]) {
        assert.equal(
          JSON.stringify(catalogue.visibleEntries(name, includeOffline, now)),
          JSON.stringify(expectedEntries(name.fname, includeOffline)),
          `${step}: search entries of ${name.fname}`,
        );
      }
    }
    const modelNames = new Set([...model.values()].flatMap((s) => [...s.entries.keys()]));
    assert.deepEqual(listedNames.map((n) => n.fname).sort(), [...modelNames].sort(), step);
    for (const [id, s] of model) {
      assert.deepEqual(
        catalogue.entriesOf(id),
        [...s.entries.values()].sort((a, b) => compareBytewise(a.fname, b.fname)),
        `${step}: entries of ${id}`,
      );
    }
  };
  const registers = { opened: 0, resumed: 0, refused: 0 };
  for (let step = 0; step < 600; step++) {
    const sessions = [...model.values()];
    const op = random.int(10);
    let what: string;
    if (op <= 1 || sessions.length === 0) {
      // Half the time a peer of an offline session comes back (after a restart), if there is one.
      const away = sessions.filter((s) => !s.online);
      const back = away.length > 0 && random.chance(0.5) ? random.pick(away) : undefined;
      const hostname = back?.row.hostname ?? random.pick(hosts);
      const row: SessionRow = {
        sessionId: `s${nextId++}`,
        serverId: "srv",
        hostname,
        address: `10.0.0.${random.int(3)}`,
        port: back?.row.port ?? 4000 + random.int(3),
        openedAtMs: now,
        cert: "(cert)",
      };
      // Mostly one device (a reconnect takes its endpoint over); now and then a session
      // without one, which who-has never lists.
      if (!random.chance(0.15)) row.deviceId = device;
      what = `open ${row.sessionId} ${hostname}:${row.port}`;
      const old = [...model.values()].find((s) =>
        s.row.hostname === hostname && s.row.port === row.port
      );
      let digest: string | undefined;
      if (back !== undefined || random.chance(0.2)) {
        // A peer back after a restart sends the digest of what it publishes: mostly that of
        // the offline session's entries, if there is one.
        digest = old && random.chance(0.8)
          ? sharesDigest([...old.entries.values()])
          : sharesDigest([]);
        what = `open ${row.sessionId} ${hostname}:${row.port} with a digest`;
      }
      // Resumed with its entries when the same device's session (live or not) holds exactly
      // what the digest says; else opened afresh, unless another device's live session keeps
      // the pair.
      const resumed = digest !== undefined && old !== undefined &&
        old.row.deviceId !== undefined && old.row.deviceId === row.deviceId &&
        digest === sharesDigest([...old.entries.values()]);
      const conflict = !resumed && old !== undefined && old.online &&
        old.row.deviceId !== undefined && old.row.deviceId !== row.deviceId;
      let outcome: ReturnType<MemoryCatalogue["registerSession"]> | undefined;
      try {
        outcome = catalogue.registerSession(row, now + 500, digest);
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
      }
      assert.equal(outcome === undefined, conflict, `${what}: a conflict`);
      registers[conflict ? "refused" : resumed ? "resumed" : "opened"]++;
      if (outcome !== undefined) {
        assert.deepEqual(outcome, {
          replaced: old?.online ? old.row : undefined,
          resumedId: resumed ? old!.storedId : undefined,
        }, what);
        for (const [id, s] of model) {
          const sameEndpoint = s.row.hostname === hostname && s.row.port === row.port;
          if (sameEndpoint || (s.row.hostname === hostname && !s.online)) model.delete(id);
        }
        model.set(
          row.sessionId,
          resumed ? { ...old!, row, online: true, leaseUntilMs: now + 500 } : {
            row,
            storedId: row.sessionId,
            online: true,
            leaseUntilMs: now + 500,
            entries: new Map(),
          },
        );
      }
    } else if (op <= 5) {
      const s = random.pick(sessions);
      const fname = random.pick(names);
      const entry: FileEntry = {
        fname,
        size: random.pick([1, 2_000_000_000]),
        mtimeMs: random.pick([0, 1_767_225_600_123]),
        rootHash: random.pick(["aa", "bb"]).repeat(32),
        pieceSize: 1 << 20,
      };
      if (random.chance(0.5)) entry.have = random.pick(["gA==", "wA=="]);
      if (!random.chance(0.1)) entry.sig = random.pick(["c2ln", "c2lnMg=="]);
      what = `publish ${s.row.sessionId} ${fname}`;
      catalogue.publish(s.row.sessionId, entry, { nowMs: now, maxEntries: 10 });
      s.entries.set(fname, entry);
    } else if (op === 6) {
      const s = random.pick(sessions);
      const fname = random.pick(names);
      what = `unpublish ${s.row.sessionId} ${fname}`;
      assert.equal(catalogue.unpublish(s.row.sessionId, fname), s.entries.delete(fname), what);
    } else if (op === 7) {
      const s = random.pick(sessions);
      what = `close ${s.row.sessionId}`;
      assert.equal(catalogue.closeSession(s.row.sessionId), s.storedId, what);
      model.delete(s.row.sessionId);
    } else if (op === 8) {
      now += random.pick([10, 300, 600]);
      what = `time ${now}`;
      if (random.chance(0.3)) {
        what += ", offline";
        catalogue.markOffline({}, now);
        for (const s of model.values()) {
          if (s.online) [s.online, s.leaseUntilMs] = [false, now];
        }
      }
    } else {
      what = "renew";
      catalogue.renewLeases("srv", [], now + 500);
      for (const s of model.values()) [s.online, s.leaseUntilMs] = [true, now + 500];
    }
    check(`step ${step} (${what})`);
  }
  // Every way a register can go was taken, more than once.
  for (const [how, n] of Object.entries(registers)) assert.ok(n >= 3, `${how}: ${n} time(s)`);
});
