// The `--ui` flag of both programs: HOST:PORT, or `off`. Pure: no I/O.
import { parseHostPort } from "../cli.ts";

/** Where a UI listens; `nextPorts` further ports are tried when the first is taken. */
export interface UiListen {
  hostname: string;
  /** 0: any free port. */
  port: number;
  nextPorts: number;
}

/** Ports tried after the default one when it is taken (only for the default). */
const DEFAULT_NEXT_PORTS = 20;

/**
 * Reads a `--ui` value: "off" → null; "HOST:PORT" (port 0 allowed: any free port). The default
 * address falls back to the next free ports; an address given explicitly does not.
 *
 * @throws {RangeError} on anything else
 * @example
 * ```ts
 * import { parseUiFlag } from "./ui_flag.ts";
 * const ui = parseUiFlag("127.0.0.1:0", "127.0.0.1:7080");
 * if (ui?.port !== 0 || ui.nextPorts !== 0) throw new Error("explicit: no fallback");
 * if (parseUiFlag("off", "127.0.0.1:7080") !== null) throw new Error("off");
 * ```
 */
export function parseUiFlag(text: string, defaultAddress: string): UiListen | null {
  if (text === "off") return null;
  const zeroPort = /^(.*):0$/.exec(text);
  const { hostname, port } = zeroPort
    ? { hostname: parseHostPort(`${zeroPort[1]}:1`).hostname, port: 0 }
    : parseHostPort(text);
  return { hostname, port, nextPorts: text === defaultAddress ? DEFAULT_NEXT_PORTS : 0 };
}
