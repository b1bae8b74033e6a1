// Who may hold a connection or a session: counts per remote address and in total against the
// configured caps, so that no one address (or everyone together) can take the server's memory
// or slots. Pure bookkeeping: no sockets, no timers.

/** The caps, from the server's config. */
export interface AdmissionLimits {
  /** Connections open at once, registered or not. */
  maxConnections: number;
  /** Connections from one address that have not registered (sent a good Hello) yet. */
  maxUnregisteredPerAddress: number;
  /** Registered sessions from one address. */
  maxSessionsPerAddress: number;
}

/** Why a connection or a session was refused: text for the client, and the flag that sets it. */
export interface Refusal {
  /** "Cannot …" text sent to the client in an `Error` frame. */
  message: string;
  /** The option that sets the cap, for the log line. */
  flag: string;
}

/** One admitted connection's hold on its counts; release it when the connection ends. */
export interface Admitted {
  /**
   * Moves this connection from unregistered to registered session, if its address has room.
   * @returns undefined when registered, else why not
   */
  register(): Refusal | undefined;
  /**
   * Undoes `register()` when the registration then failed (a refused Hello): the connection
   * counts as unregistered again, even if that puts its address one over the cap for a while.
   */
  unregister(): void;
  /** Gives the counts back (idempotent). */
  release(): void;
}

/** Counts connections and sessions and refuses those over the caps. */
export class Admission {
  readonly #limits: AdmissionLimits;
  #connections = 0;
  readonly #unregistered = new Map<string, number>();
  readonly #sessions = new Map<string, number>();

  /** @param limits the caps */
  constructor(limits: AdmissionLimits) {
    this.#limits = limits;
  }

  /** Connections held now. */
  get connections(): number {
    return this.#connections;
  }

  /**
   * Admits a new connection from `remoteAddress` (counted by `addressKey()`), or says why not.
   *
   * @returns the connection's hold, or the refusal
   */
  admit(remoteAddress: string): Admitted | Refusal {
    const address = addressKey(remoteAddress);
    const limits = this.#limits;
    if (this.#connections >= limits.maxConnections) {
      return {
        message:
          `Cannot accept the connection: the server holds its limit of ${limits.maxConnections} connections`,
        flag: "--max-connections",
      };
    }
    if ((this.#unregistered.get(address) ?? 0) >= limits.maxUnregisteredPerAddress) {
      return {
        message:
          `Cannot accept the connection: ${address} already has ${limits.maxUnregisteredPerAddress} connections that have not sent Hello`,
        flag: "--max-unregistered-per-address",
      };
    }
    this.#connections++;
    increment(this.#unregistered, address);
    let state: "unregistered" | "registered" | "released" = "unregistered";
    return {
      register: () => {
        if (state !== "unregistered") {
          throw new Error(`Cannot register: the connection is ${state} already`);
        }
        if ((this.#sessions.get(address) ?? 0) >= limits.maxSessionsPerAddress) {
          return {
            message:
              `Cannot register: ${address} already holds ${limits.maxSessionsPerAddress} sessions`,
            flag: "--max-sessions-per-address",
          };
        }
        decrement(this.#unregistered, address);
        increment(this.#sessions, address);
        state = "registered";
        return undefined;
      },
      unregister: () => {
        if (state !== "registered") return;
        decrement(this.#sessions, address);
        increment(this.#unregistered, address);
        state = "unregistered";
      },
      release: () => {
        if (state === "released") return;
        decrement(state === "registered" ? this.#sessions : this.#unregistered, address);
        this.#connections--;
        state = "released";
      },
    };
  }
}

/**
 * The address as the caps count it: an IPv4 address as it is (also when written IPv4-mapped,
 * `::ffff:a.b.c.d`), an IPv6 address by its /64 prefix, since one host may use any number of
 * addresses of its /64 (privacy addresses) and would otherwise escape the per-address caps.
 */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(":")) return address;
  const [head = "", tail = ""] = address.split("%")[0]!.split("::");
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === "" ? [] : tail.split(":");
  const groups = address.includes("::")
    ? [...headGroups, ...Array(8 - headGroups.length - tailGroups.length).fill("0"), ...tailGroups]
    : headGroups;
  return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, "")).join(":")}::/64`;
}

function increment(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

/** Counts that reach 0 are deleted: the maps hold only addresses connected now. */
function decrement(counts: Map<string, number>, key: string): void {
  const n = (counts.get(key) ?? 0) - 1;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}

/** true when `value` is a refusal rather than an admitted connection. */
export function isRefusal(value: Admitted | Refusal): value is Refusal {
  return "message" in value;
}
