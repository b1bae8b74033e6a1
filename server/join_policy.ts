// Who may join the index (`--join open|key|approve`), and the operator's decisions about
// devices (approved, revoked). Checks a Hello's proofs; knows nothing of sockets. Decisions are
// persisted through the store; the IDs that asked to join while not approved are kept in
// memory (bounded), for the shell's `pending`.
import { shortId, verify } from "../shared/identity.ts";
import type { Bodies, MsgType } from "../shared/protocol.ts";
import { ProtocolError } from "../shared/errors.ts";
import { helloStatement } from "../shared/statements.ts";
import { type NetworkKey, networkProofValid } from "../shared/handshake.ts";
import { idOfCert } from "../shared/identity.ts";
import type { DeviceStatus, Store } from "./store.ts";

/** How the index admits devices. */
export type JoinMode = "open" | "key" | "approve";

/** How long the list of a shared catalogue's servers is reused before it is read again, ms. */
const INDEXES_TTL_MS = 5000;

/** Most not-yet-approved IDs remembered for `pending`: the oldest is forgotten beyond. */
const MAX_PENDING = 1000;

/** A device that asked to join and is not approved yet. */
export interface PendingDevice {
  id: string;
  hostname: string;
  address: string;
  lastSeenMs: number;
}

/** The join policy of one server. */
export class JoinPolicy {
  readonly mode: JoinMode;
  readonly #networkKey: NetworkKey | undefined;
  readonly #store: Store;
  readonly #decisions = new Map<string, DeviceStatus>();
  readonly #pending = new Map<string, PendingDevice>();
  #indexes: Promise<string[]> | undefined;
  #indexesReadAtMs = 0;

  /**
   * @param mode the `--join` mode
   * @param store where decisions are persisted (call `load()` once it is migrated)
   * @param networkKey the network key (HMAC), required in key mode
   */
  constructor(mode: JoinMode, store: Store, networkKey?: NetworkKey) {
    if (mode === "key" && networkKey === undefined) {
      throw new TypeError("Cannot use --join key: no network key (give --network-key-file)");
    }
    this.mode = mode;
    this.#store = store;
    this.#networkKey = networkKey;
  }

  /** Reads the persisted decisions. */
  async load(): Promise<void> {
    for (const [id, status] of await this.#store.deviceStatuses()) {
      this.#decisions.set(id, status);
    }
  }

  /**
   * Checks a Hello answering the challenge `nonce` of server `serverId`: the certificate is the
   * ID's, the proof is the ID's signature, and the join policy admits the ID.
   *
   * @throws {ProtocolError} bad-proof, revoked or not-approved, with a text for the user
   */
  async check(
    hello: Bodies[MsgType.Hello],
    nonce: string,
    serverId: string,
    from: string,
  ): Promise<void> {
    let certId: string;
    try {
      certId = idOfCert(hello.cert);
    } catch (err) {
      throw new ProtocolError("bad-proof", `Cannot register: ${(err as Error).message}`);
    }
    if (certId !== hello.id) {
      throw new ProtocolError(
        "bad-proof",
        `Cannot register: the certificate is device ${shortId(certId)}'s, not ${
          shortId(hello.id)
        }'s`,
      );
    }
    const proof = Uint8Array.fromBase64(hello.proof);
    if (!await verify(hello.id, helloStatement(nonce, serverId, hello.id), proof)) {
      throw new ProtocolError(
        "bad-proof",
        `Cannot register: the proof is not device ${shortId(hello.id)}'s signature`,
      );
    }
    const decision = this.#decisions.get(hello.id);
    if (decision === "revoked") {
      throw new ProtocolError(
        "revoked",
        `Cannot register: device ${shortId(hello.id)} was revoked by the operator of this index`,
      );
    }
    if (this.mode === "key" && !this.#networkProofValid(hello, nonce)) {
      throw new ProtocolError(
        "bad-proof",
        "Cannot register: wrong network key (check --network-key-file on this peer)",
      );
    }
    if (this.mode === "approve" && decision !== "approved") {
      this.#remember({
        id: hello.id,
        hostname: hello.hostname,
        address: from,
        lastSeenMs: Date.now(),
      });
      throw new ProtocolError(
        "not-approved",
        `Cannot register: waiting for approval: ask the operator to run \`approve ${
          shortId(hello.id)
        }\` on the index`,
      );
    }
  }

  #networkProofValid(hello: Bodies[MsgType.Hello], nonce: string): boolean {
    if (hello.networkProof === undefined) return false;
    return networkProofValid(this.#networkKey!, hello.networkProof, nonce, hello.id);
  }

  #remember(device: PendingDevice): void {
    this.#pending.delete(device.id);
    if (this.#pending.size >= MAX_PENDING) {
      const oldest = this.#pending.keys().next().value;
      if (oldest !== undefined) this.#pending.delete(oldest);
    }
    this.#pending.set(device.id, device);
  }

  /**
   * The indexes whose tickets a peer of this server should accept: `ownId` and, on a shared
   * store, every other server that recorded itself there (read at most every few seconds).
   */
  async indexIds(ownId: string): Promise<string[]> {
    if (!this.#store.shared) return [ownId];
    if (this.#indexes === undefined || Date.now() - this.#indexesReadAtMs > INDEXES_TTL_MS) {
      this.#indexesReadAtMs = Date.now();
      this.#indexes = this.#store.deviceStatuses().then((all) =>
        [...all].filter(([, status]) => status === "index").map(([id]) => id)
      );
      // A failed read is retried by the next Hello, not kept.
      this.#indexes.catch(() => this.#indexes = undefined);
    }
    const others = await this.#indexes;
    return [ownId, ...others.filter((id) => id !== ownId)];
  }

  /** The devices waiting for approval, oldest first. */
  pending(): PendingDevice[] {
    return [...this.#pending.values()];
  }

  /** The decision about a device, if any. */
  statusOf(id: string): DeviceStatus | undefined {
    return this.#decisions.get(id);
  }

  /**
   * The one ID that `text` names: a full ID, or a unique prefix (dashes of the short form
   * ignored) among the pending and decided devices and `known` (e.g. the live sessions).
   *
   * @throws {Error} when it names none or several
   */
  resolve(text: string, known: Iterable<string> = []): string {
    const prefix = text.replaceAll("-", "").toLowerCase();
    if (prefix.length === 0) throw new Error("Cannot find the device: give an ID or its prefix");
    const candidates = new Set<string>();
    for (const id of [...this.#pending.keys(), ...this.#decisions.keys(), ...known]) {
      if (id.startsWith(prefix)) candidates.add(id);
    }
    if (candidates.size === 1) return [...candidates][0]!;
    if (candidates.size === 0) {
      if (/^[a-z2-7]{52}$/.test(prefix)) return prefix;
      throw new Error(`Cannot find the device: no known ID starts with "${text}"`);
    }
    throw new Error(
      `Cannot find the device: "${text}" fits ${candidates.size} IDs (${
        [...candidates].map(shortId).join(", ")
      }); give more digits`,
    );
  }

  /** Records and persists a decision about a device. */
  async decide(id: string, status: DeviceStatus): Promise<void> {
    await this.#store.setDeviceStatus(id, status);
    this.#decisions.set(id, status);
    this.#pending.delete(id);
  }
}
