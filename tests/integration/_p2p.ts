// A real peer-side P2P server on 127.0.0.1 port 0 over a real repository folder, and a bare
// client that sends GetInfo/GetRange on a fresh connection and reports what came back.
import { join } from "node:path";
import { request } from "../../shared/encode.ts";
import { FramedConn } from "../../shared/framing.ts";
import { type Message, MsgType } from "../../shared/protocol.ts";
import { Activity } from "../../peer/activity.ts";
import type { ConnectionCapsOptions } from "../../peer/connection_caps.ts";
import { startP2pServer } from "../../peer/p2p_server.ts";
import type { P2pAuth } from "../../peer/fetcher_check.ts";
import { TokenBucket } from "../../peer/rate.ts";
import { Repository } from "../../peer/repo.ts";
import { Shares } from "../../peer/shares.ts";
import { Slots } from "../../peer/slots.ts";
import type { Identity } from "../../shared/identity.ts";

/** A repository in a temporary folder with its share table and P2P server. */
export interface P2pFixture extends AsyncDisposable {
  /** The temporary folder: the repository is `dir/repo`, anything else is outside it. */
  dir: string;
  repo: Repository;
  shares: Shares;
  port: number;
  /** Hashes the repository file `rel` and shares it as `fname`. */
  publish(rel: string, fname: string): Promise<void>;
}

/** Starts a P2P server over a fresh repository in a temporary folder. */
export async function startP2pFixture(
  options: { caps?: ConnectionCapsOptions; identity?: Identity; auth?: P2pAuth } = {},
): Promise<P2pFixture> {
  const dir = await Deno.makeTempDir({ prefix: "lanshare-p2p-" });
  const repo = await Repository.open(join(dir, "repo"));
  const shares = await Shares.load(repo);
  const server = startP2pServer(
    { hostname: "127.0.0.1", port: 0 },
    {
      repo,
      shares,
      slots: new Slots({ max: 64, maxPerPeer: 64, maxQueue: 0 }),
      upload: new TokenBucket(0),
      activity: new Activity(),
      caps: options.caps ?? { maxTotal: 256, maxPerAddress: 64 },
      idleTimeoutMs: 10_000,
      stallTimeoutMs: 10_000,
      retryAfterMs: 100,
      debugCorrupt: false,
      ...(options.auth ? { auth: options.auth } : {}),
    },
    // Plain TCP unless an identity is given: most of these tests write raw frames.
    options.identity
      ? { plaintext: false, certPem: options.identity.certPem, keyPem: options.identity.keyPem }
      : { plaintext: true },
  );
  return {
    dir,
    repo,
    shares,
    port: server.port,
    async publish(rel, fname) {
      const path = await repo.resolveFile(rel);
      await shares.set({ fname, path, hashes: await shares.hashesOf(path) });
    },
    async [Symbol.asyncDispose]() {
      await server.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** What a GetRange on a fresh connection brought: the bytes, or the Error frame. */
export type RangeAnswer =
  | { kind: "data"; bytes: Uint8Array }
  | { kind: "error"; code: string; message: string };

/** Sends `message` as the first request of a fresh connection and returns the first reply. */
export async function askOnce(port: number, message: Message): Promise<Message | null> {
  const framed = new FramedConn(await Deno.connect({ hostname: "127.0.0.1", port }));
  try {
    await framed.send(message);
    return await framed.readMessage();
  } finally {
    framed.close();
  }
}

/** GetInfo then GetRange(offset, bytes) of `fname` on one fresh connection. */
export async function getRange(
  port: number,
  fname: string,
  range: { offset: number; bytes: number },
): Promise<RangeAnswer> {
  const framed = new FramedConn(await Deno.connect({ hostname: "127.0.0.1", port }));
  try {
    await framed.send(request(MsgType.GetInfo, 1, { fname }));
    const info = await framed.readMessage();
    if (info?.type === MsgType.Error) {
      return { kind: "error", code: info.body.code, message: info.body.message };
    }
    if (info?.type !== MsgType.Info) throw new Error(`Expected Info, got ${info?.type}`);
    await framed.send(
      request(MsgType.GetRange, 2, { fname, rootHash: info.body.rootHash, ...range }),
    );
    const answer = await framed.readMessage();
    if (answer?.type === MsgType.Error) {
      return { kind: "error", code: answer.body.code, message: answer.body.message };
    }
    if (answer?.type !== MsgType.Data) throw new Error(`Expected Data, got ${answer?.type}`);
    const bytes = new Uint8Array(answer.body.bytes);
    await framed.readRawInto(bytes);
    return { kind: "data", bytes };
  } finally {
    framed.close();
  }
}
