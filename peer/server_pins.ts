// The index servers this peer trusts, by address: the first ID seen at an address is kept
// (trust on first use, as SSH's known_hosts) in the repository metadata, and a different ID
// there later is refused until the user forgets the pin or names the new ID.
import { shortId } from "../shared/identity.ts";
import type { Repository } from "./repo.ts";

/** The metadata file of the pins, in `.lanshare/`. */
export const PINS_FILE = "known_servers.json";

/** One pinned server. */
export interface ServerPin {
  id: string;
  certPem: string;
  firstSeenMs: number;
}

/** What `check()` found. */
export type PinCheck =
  | { kind: "pinned" }
  | { kind: "new" }
  | { kind: "changed"; pinned: ServerPin; message: string };

/** The pins of one repository (in memory for a read-only one, as its other metadata). */
export class ServerPins {
  readonly #repo: Repository;
  #pins: Record<string, ServerPin>;

  private constructor(repo: Repository, pins: Record<string, ServerPin>) {
    this.#repo = repo;
    this.#pins = pins;
  }

  /** Loads the pins of `repo` (none when the file does not exist yet). */
  static async load(repo: Repository): Promise<ServerPins> {
    return new ServerPins(repo, await repo.readMeta<Record<string, ServerPin>>(PINS_FILE) ?? {});
  }

  /** The pin of `address` ("host:port"), if any. */
  get(address: string): ServerPin | undefined {
    return Object.hasOwn(this.#pins, address) ? this.#pins[address] : undefined;
  }

  /** Whether `id` may be used at `address`, and if not, the SSH-like refusal to show. */
  check(address: string, id: string): PinCheck {
    const pinned = this.get(address);
    if (pinned === undefined) return { kind: "new" };
    if (pinned.id === id) return { kind: "pinned" };
    return { kind: "changed", pinned, message: changedMessage(address, pinned, id) };
  }

  /** Pins `id` at `address` (trust on first use) and saves the pins. */
  async pin(address: string, id: string, certPem: string): Promise<void> {
    this.#pins = { ...this.#pins, [address]: { id, certPem, firstSeenMs: Date.now() } };
    await this.#repo.writeMeta(PINS_FILE, this.#pins, { durable: true });
  }

  /** Forgets the pin of `address`. @returns whether there was one */
  async forget(address: string): Promise<boolean> {
    if (this.get(address) === undefined) return false;
    const { [address]: _forgotten, ...rest } = this.#pins;
    this.#pins = rest;
    await this.#repo.writeMeta(PINS_FILE, this.#pins, { durable: true });
    return true;
  }
}

/** The refusal of a changed server ID, naming both IDs and how to accept the new one. */
export function changedMessage(address: string, pinned: ServerPin, id: string): string {
  const since = new Date(pinned.firstSeenMs).toISOString().slice(0, 16).replace("T", " ");
  return `Cannot use the index at ${address}: its device ID has changed from ` +
    `${shortId(pinned.id)} (pinned ${since} UTC) to ${shortId(id)}. Someone may be ` +
    `intercepting the connection, or the server got a new identity. If you trust the new one, ` +
    `run \`forget-server ${address}\` in the peer shell, or restart with ` +
    `--server ${address}#${id}`;
}
