// The device ID and certificate of each live session's peer, by P2P address, as its Hello gave
// them: who-has answers carry them so that fetchers can pin TLS to each source.
//
// Kept in this server's memory, not in the store: sources registered through another server
// sharing the catalogue come without them (their fetchers cannot pin them and skip them).
// TODO(issue 11, merge with sec-auth): move `id`/`cert` into the sessions table, where the
// session is bound to its proven ID.
import type { SourceInfo } from "../shared/protocol.ts";

/** A device as its Hello described it. */
export interface DeviceCert {
  id: string;
  cert: string;
}

/** Live sessions' device certificates, by "address:port". */
export class DeviceCerts {
  readonly #byAddress = new Map<string, DeviceCert>();

  /** Records the device of the session whose peer listens on `address`:`port`. */
  set(address: string, port: number, device: DeviceCert): void {
    this.#byAddress.set(`${address}:${port}`, device);
  }

  /** Forgets it when its session ends (unless another session took that address since). */
  delete(address: string, port: number, device: DeviceCert): void {
    const key = `${address}:${port}`;
    if (this.#byAddress.get(key) === device) this.#byAddress.delete(key);
  }

  /** The sources with their devices' `id` and `cert` where known. */
  attach(sources: SourceInfo[]): SourceInfo[] {
    if (this.#byAddress.size === 0) return sources;
    return sources.map((source) => {
      const device = this.#byAddress.get(`${source.address}:${source.port}`);
      return device === undefined ? source : { ...source, id: device.id, cert: device.cert };
    });
  }
}
