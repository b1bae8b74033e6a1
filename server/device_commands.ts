// The shell's device commands (`pending`, `approve`, `revoke`): answer lines for the operator.
// Kept apart from shell.ts so that the commands and their texts live beside nothing else.
import { shortId } from "../shared/identity.ts";
import { approveDevice, pendingDevices, revokeDevice } from "./devices.ts";
import type { RunningServer } from "./server.ts";

/** Help lines of the device commands. */
export const DEVICE_HELP = [
  "pending               devices that asked to join and wait for approval (--join approve)",
  "approve <id|prefix>   let a device join (persisted)",
  "revoke <id|prefix>    refuse a device from now on, end its sessions, drop its files",
];

/** Runs a device command, or returns undefined when `command` is not one. */
export async function runDeviceCommand(
  server: RunningServer,
  command: string,
  args: string[],
): Promise<string[] | undefined> {
  switch (command) {
    case "pending": {
      const waiting = pendingDevices(server);
      if (waiting.length === 0) {
        return [`no device waits for approval (join mode: ${server.join.mode})`];
      }
      return waiting.map((device) =>
        `${shortId(device.id)}  ${device.hostname} from ${device.address}, last tried ${
          new Date(device.lastSeenMs).toISOString()
        }  (${device.id})`
      );
    }
    case "approve": {
      if (args.length !== 1) return ["usage: approve <id|prefix>"];
      const id = await approveDevice(server, args[0]!);
      return [`approved ${shortId(id)} (${id})`];
    }
    case "revoke": {
      if (args.length !== 1) return ["usage: revoke <id|prefix>"];
      const { id, sessions } = await revokeDevice(server, args[0]!);
      return [`revoked ${shortId(id)} (${id}); ${sessions} session(s) closed`];
    }
    default:
      return undefined;
  }
}
