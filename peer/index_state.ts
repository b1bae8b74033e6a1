// Where the peer stands with the index (looking, connected, reconnecting, replaced), and the
// sentences that tell the user so. Pure: no I/O.

/** The peer's relation to the index server. */
export type IndexState =
  /** Never connected yet: discovering or trying the given servers. */
  | { kind: "looking"; attempts: number; lastError?: string }
  | { kind: "connected"; server: string }
  /** Was connected to `server`, lost it, and is trying again. */
  | { kind: "reconnecting"; server: string; attempts: number; lastError?: string }
  /**
   * Another peer registered with the same hostname and P2P port, so the index closed this
   * session; the peer does not fight back unless told to (`reconnect`).
   */
  | { kind: "replaced"; server: string; notice: string }
  /**
   * The index answered but refused this device (waiting for approval, wrong network key,
   * revoked, its {hostname, port} held by another device); the peer keeps asking.
   */
  | { kind: "refused"; server: string; attempts: number; reason: string }
  | { kind: "closed" };

/** What the descriptions need to know about the peer's setup. */
export interface IndexTarget {
  /** Servers given with --server, "host:port"; empty: discovery. */
  servers: readonly string[];
  /** UDP discovery port. */
  announcePort: number;
  /** This peer as registered: "hostname:p2pPort". */
  self: string;
}

/** The prefix the server puts before its reasons; the reason reads better without it. */
const NOTICE_PREFIX = "Cannot keep this session: ";

/** One line for `status`: where the peer stands with the index. */
export function describeIndexState(state: IndexState, target: IndexTarget): string {
  switch (state.kind) {
    case "looking":
      return state.attempts === 0
        ? `looking for an index server (${where(target)})`
        : `looking for an index server: ${notFoundYet(state, target)}`;
    case "connected":
      return `connected to the index server ${state.server}`;
    case "reconnecting":
      return `lost the index server ${state.server}; ${retrying(state)}`;
    case "replaced":
      return replacedText(state, target);
    case "refused":
      return refusedText(state);
    case "closed":
      return "disconnected from the index: the peer is stopping";
  }
}

/** Why an index request cannot be sent now, for "Cannot <action>: <reason>". */
export function unavailableReason(state: IndexState, target: IndexTarget): string {
  switch (state.kind) {
    case "looking":
      return notFoundYet(state, target);
    case "connected":
      return `the connection to ${state.server} was lost`;
    case "reconnecting":
      return `not connected: lost the index server ${state.server}; ${retrying(state)}`;
    case "replaced":
      return replacedText(state, target);
    case "refused":
      return refusedText(state);
    case "closed":
      return "the peer is stopping";
  }
}

function where(target: IndexTarget): string {
  return target.servers.length > 0
    ? `trying ${target.servers.join(", ")}`
    : `probing UDP ${target.announcePort}`;
}

function notFoundYet(
  state: { attempts: number; lastError?: string },
  target: IndexTarget,
): string {
  const tries = state.attempts === 1 ? "1 attempt" : `${state.attempts} attempts`;
  if (target.servers.length > 0) {
    return `no index server answers yet (still trying ${target.servers.join(", ")}, ${tries}` +
      `${state.lastError ? `; last error: ${state.lastError}` : ""}; ` +
      "is it running? start one with `make server`)";
  }
  return `no index server found yet (still looking on UDP ${target.announcePort}, ${tries}; ` +
    "start one with `make server` or give --server HOST:PORT)";
}

function retrying(state: { attempts: number; lastError?: string }): string {
  if (state.attempts === 0) return "reconnecting";
  return `reconnecting (attempt ${state.attempts}${
    state.lastError ? `, last error: ${state.lastError}` : ""
  })`;
}

function refusedText(state: { server: string; attempts: number; reason: string }): string {
  const tries = state.attempts === 1 ? "1 attempt" : `${state.attempts} attempts`;
  return `the index server ${state.server} refuses this peer: ${state.reason} (still asking, ${tries})`;
}

function replacedText(state: { server: string; notice: string }, target: IndexTarget): string {
  const notice = state.notice.startsWith(NOTICE_PREFIX)
    ? state.notice.slice(NOTICE_PREFIX.length)
    : state.notice;
  return `this peer's index session was replaced by another peer registering as ${target.self} ` +
    `(index ${state.server} says: ${notice}); run \`reconnect\` (or restart) to take it back`;
}
