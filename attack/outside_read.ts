// Attack 4, reads outside the repository: a peer shares `sub/data.bin` while a racing loop
// swaps the folder `sub` for a symlink to an outside folder holding a file of the same size
// full of a marker, and shares `meta.txt` while another loop swaps it for a symlink to the
// repository's own `.lanshare/hashes.json`. Bounded GetInfo + GetRange requests must never
// return the marker or metadata, publishing through symlinks into `.lanshare/` must be
// refused, and no error text sent to the network may hold the repository's absolute path.
import { join } from "node:path";
import { MsgType } from "../shared/protocol.ts";
import { type Attack, Verdict } from "./_attack.ts";
import { formatHealth, probePeer } from "./_health.ts";
import { setUp } from "./_lab.ts";
import { frame, joinBytes } from "./_frames.ts";
import { errorText, hostAddress, WireClient } from "./_wire.ts";

const SIZE = 4096;
const INSIDE = "INSIDE-CONTENT-";
const OUTSIDE = "OUTSIDE-MARKER-";
const META_SIZE = 64;
/** Concurrent fetchers (at most the peer's default 4 slots, each with its own `from`). */
const WORKERS = 4;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function filled(pattern: string, size: number): Uint8Array {
  return encoder.encode(pattern.repeat(Math.ceil(size / pattern.length)).slice(0, size));
}

/** What the racing requests got back. */
interface Tally {
  requests: number;
  inside: number;
  outside: number;
  metadata: number;
  errors: number;
  other: number;
  /** The first failed connect, if any. */
  connectError?: string;
  /** Error texts that contained the repository's absolute path. */
  leaks: string[];
}

export const outsideRead: Attack = {
  name: "outside-read",
  summary:
    "symlink swap races on a shared folder and file → no outside bytes, no metadata, no paths",
  budgetMs: (scale) => scale.quick ? 40_000 : 60_000,
  async run(lab, scale) {
    const verdict = new Verdict();
    const repo = lab.repo("victim");
    const outsideDir = join(lab.dir, "outside");
    await Deno.mkdir(join(repo, "sub"), { recursive: true });
    await Deno.mkdir(outsideDir, { recursive: true });
    await Deno.writeFile(join(repo, "sub", "data.bin"), filled(INSIDE, SIZE));
    await Deno.writeFile(join(outsideDir, "data.bin"), filled(OUTSIDE, SIZE));
    await Deno.writeFile(join(repo, "meta.txt"), filled(INSIDE, META_SIZE));
    await Deno.writeFile(join(repo, "gone.txt"), filled(INSIDE, META_SIZE));
    // Outside every race: the health probe's file. A share the race swaps away is rightly
    // dropped when the peer's rescan (every 10 s) catches it gone, so it cannot be the probe.
    await Deno.writeFile(join(repo, "health.bin"), filled(INSIDE, META_SIZE));

    const server = await lab.server();
    const peer = await lab.peer("victim", { server });
    const data = (await setUp(peer, "publish sub/data.bin data.bin")) as Published;
    const meta = (await setUp(peer, "publish meta.txt")) as Published;
    const gone = (await setUp(peer, "publish gone.txt")) as Published;
    await setUp(peer, "publish health.bin");
    const hashes = join(repo, ".lanshare", "hashes.json");
    if ((await Deno.stat(hashes)).size < META_SIZE) {
      throw new Error(`Cannot attack: ${hashes} is smaller than ${META_SIZE} bytes`);
    }

    // Publishing through a symlink into the metadata folder must be refused.
    await Deno.symlink(hashes, join(repo, "meta-link"));
    await Deno.symlink(join(repo, ".lanshare"), join(repo, "meta-dir"));
    const viaLink = await peer.command("publish meta-link");
    const viaDir = await peer.command("publish meta-dir/hashes.json linked-hashes.json");
    const refused = [viaLink, viaDir].filter((a) => a.ok === false).length;
    verdict.require(refused === 2, `symlinks into .lanshare/ refused ${refused}/2 at publish`);

    const tally: Tally = {
      requests: 0,
      inside: 0,
      outside: 0,
      metadata: 0,
      errors: 0,
      other: 0,
      leaks: [],
    };
    const stop = { now: false };
    lab.defer(() => stop.now = true);
    const racers = [
      race(stop, join(repo, "sub"), outsideDir),
      race(stop, join(repo, "meta.txt"), hashes),
    ];
    const total = scale.quick ? 300 : 2000;
    const inTime = lab.within(scale.quick ? 8000 : 20_000);
    const targets = [data, meta];
    let next = 0;
    await Promise.all(Array.from({ length: WORKERS }, async (_, w) => {
      while (next < total && inTime()) {
        const target = targets[next++ % targets.length]!;
        await request(peer.p2pPort, target, w, [lab.dir, repo], tally);
      }
    }));
    stop.now = true;
    const raceErrors = (await Promise.all(racers)).filter((e) => e !== undefined);

    // A file removed after it was published: the error sent back must not name its path.
    await Deno.remove(join(repo, "gone.txt"));
    await request(peer.p2pPort, gone, WORKERS, [lab.dir, repo], tally);
    if (viaLink.ok) await request(peer.p2pPort, viaLink as Published, WORKERS, [repo], tally);
    if (viaDir.ok) await request(peer.p2pPort, viaDir as Published, WORKERS, [repo], tally);

    const health = await probePeer(peer.p2pPort, "health.bin");
    verdict.note(
      `${tally.requests} GetRange: ${tally.inside} inside, ${tally.errors} errors, ${tally.other} other`,
    );
    verdict.require(tally.outside === 0, `outside marker served ${tally.outside}`);
    verdict.require(tally.metadata === 0, `.lanshare metadata served ${tally.metadata}`);
    verdict.require(
      tally.leaks.length === 0,
      `error texts with the repository path ${tally.leaks.length}${
        tally.leaks.length > 0 ? ` (e.g. "${tally.leaks[0]!.replaceAll(lab.dir, "<tmp>")}")` : ""
      }`,
    );
    if (raceErrors.length > 0) verdict.note(`racer errors: ${raceErrors.join("; ")}`);
    if (tally.connectError) verdict.note(`first connect error: ${tally.connectError}`);
    verdict.require(await lab.alive(peer), `peer ${lab.describeExit(peer)}`);
    verdict.require(health.ok, `GetInfo on a fresh connection ${formatHealth(health)}`);
    return verdict.outcome();
  },
};

/** The peer's JSON answer to a publish. */
interface Published {
  fname: string;
  size: number;
  rootHash: string;
}

/**
 * Swaps `path` (a folder or file) for a symlink to `target` and back, as fast as it can, until
 * stopped; leaves the original in place. Returns the error that stopped it early, if any.
 */
async function race(stop: { now: boolean }, path: string, target: string) {
  const aside = `${path}.real`;
  try {
    while (!stop.now) {
      await Deno.rename(path, aside);
      try {
        await Deno.symlink(target, path);
        await Deno.remove(path);
      } finally {
        await Deno.rename(aside, path);
      }
    }
    return undefined;
  } catch (err) {
    return `${path}: ${errorText(err)}`;
  }
}

/**
 * One fresh connection from host `host`: GetInfo then GetRange of the whole file; tallies
 * what came back.
 */
async function request(
  port: number,
  target: Published,
  host: number,
  secretPaths: string[],
  tally: Tally,
): Promise<void> {
  tally.requests++;
  let client: WireClient;
  try {
    client = await WireClient.connect(port, { from: hostAddress(host) });
  } catch (err) {
    tally.other++;
    tally.connectError ??= errorText(err);
    return;
  }
  using _ = client;
  const from = `racer-${host}:1`;
  const { fname, rootHash, size } = target;
  let getInfo: Uint8Array;
  try {
    getInfo = await client.getInfoFrame({ fname, from });
  } catch (err) {
    tally.other++;
    tally.connectError ??= errorText(err);
    return;
  }
  await client.write(joinBytes([
    getInfo,
    frame(MsgType.GetRange, 2, { fname, rootHash, offset: 0, bytes: size }),
  ]));
  const noteError = (text: string) => {
    if (secretPaths.some((p) => text.includes(p))) tally.leaks.push(text);
  };
  const outcome = await client.until(
    (m) => m.requestId === 2 && m.type !== MsgType.Queued,
    5000,
    (m) => m.type === MsgType.Error && noteError(m.body.message),
  );
  if (outcome.kind !== "message") {
    tally.other++;
    return;
  }
  const { message } = outcome;
  if (message.type === MsgType.Error) {
    tally.errors++;
    noteError(message.body.message);
    return;
  }
  if (message.type !== MsgType.Data) {
    tally.other++;
    return;
  }
  const payload = await client.readRaw(message.body.bytes, 5000);
  const text = payload === undefined ? "" : decoder.decode(payload);
  if (text.includes(OUTSIDE)) tally.outside++;
  else if (text.startsWith("{")) tally.metadata++;
  else if (text.startsWith(INSIDE)) tally.inside++;
  else tally.other++;
}
