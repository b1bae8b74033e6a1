// The operator's commands about devices (shell `pending`, `approve`, `revoke`): decisions go
// through the join policy (persisted in the store); a revoked device's sessions end at once.
import { shortId } from "../shared/identity.ts";
import { logger } from "../shared/log.ts";
import type { Catalog } from "./catalog.ts";
import type { JoinPolicy, PendingDevice } from "./join_policy.ts";
import { closeWithNotice, type LiveSession } from "./session.ts";

const log = logger("server", "devices");

/** What the device commands act on. */
export interface DeviceAdmin {
  join: JoinPolicy;
  catalog: Catalog;
  live: Map<string, LiveSession>;
}

/** The devices waiting for approval. */
export function pendingDevices(admin: DeviceAdmin): PendingDevice[] {
  return admin.join.pending();
}

function liveIds(admin: DeviceAdmin): string[] {
  const ids: string[] = [];
  for (const session of admin.live.values()) {
    if (session.row.deviceId !== undefined) ids.push(session.row.deviceId);
  }
  return ids;
}

/**
 * Approves the device `text` names (an ID or a unique prefix). @returns its full ID
 *
 * @throws {Error} when `text` names no device or several
 */
export async function approveDevice(admin: DeviceAdmin, text: string): Promise<string> {
  const id = admin.join.resolve(text, liveIds(admin));
  await admin.join.decide(id, "approved");
  log.info("Device {id} approved", { id: shortId(id) });
  return id;
}

/**
 * Revokes the device `text` names: refused from now on in every mode; its sessions are told
 * why and closed, and their entries removed, before this resolves.
 *
 * @returns its full ID and how many sessions ended
 * @throws {Error} when `text` names no device or several
 */
export async function revokeDevice(
  admin: DeviceAdmin,
  text: string,
): Promise<{ id: string; sessions: number }> {
  const id = admin.join.resolve(text, liveIds(admin));
  await admin.join.decide(id, "revoked");
  const ended = [...admin.live.values()].filter((session) => session.row.deviceId === id);
  for (const session of ended) {
    // Out of `live` first: the session's own ending then leaves the catalogue to us.
    admin.live.delete(session.row.sessionId);
    closeWithNotice(session, {
      code: "revoked",
      message: "Cannot keep this session: this device was revoked by the operator of the index",
    }, "device revoked");
    await admin.catalog.unregister(session.row.sessionId);
  }
  log.info("Device {id} revoked; {n} session(s) closed", { id: shortId(id), n: ended.length });
  return { id, sessions: ended.length };
}
