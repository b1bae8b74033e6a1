// Which content to fetch when peers publish different contents under one fname. Pure: no I/O.
import { shortId } from "../shared/identity.ts";
import type { SourceInfo } from "../shared/protocol.ts";
import type { ContentVersion } from "./answers.ts";

/** Who publishes `source`: its device ID, or for a source without one its address. */
function publisherOf(source: SourceInfo): string {
  return source.id ?? `${source.hostname}:${source.port}`;
}

/** The distinct publishers of `sources`. */
function publishers(sources: readonly SourceInfo[]): Set<string> {
  return new Set(sources.map(publisherOf));
}

/** The version to fetch, its sources, and every version seen (most sources first). */
export interface VersionChoice {
  chosen: ContentVersion;
  sources: SourceInfo[];
  versions: ContentVersion[];
}

/**
 * Groups sources by content, most distinct publishing devices first (ties: more complete
 * sources first).
 */
export function groupVersions(sources: readonly SourceInfo[]): Map<string, SourceInfo[]> {
  const groups = new Map<string, SourceInfo[]>();
  for (const s of sources) {
    const list = groups.get(s.rootHash) ?? [];
    list.push(s);
    groups.set(s.rootHash, list);
  }
  const complete = (list: SourceInfo[]) => list.filter((s) => s.have === undefined).length;
  return new Map(
    [...groups].sort(([, a], [, b]) =>
      publishers(b).size - publishers(a).size || complete(b) - complete(a)
    ),
  );
}

/**
 * Chooses the content to fetch: the one whose root hash starts with `hashPrefix` (case does
 * not matter), or without a prefix the one with the most sources.
 *
 * @param sources every source the index listed (at least one)
 * @returns the choice, or a problem ("no version matches …") to put after "Cannot fetch x: "
 */
export function chooseVersion(
  sources: readonly SourceInfo[],
  hashPrefix?: string,
): VersionChoice | { problem: string; code: "not-shared" | "no-version" } {
  const groups = groupVersions(sources);
  const versions = [...groups].map(([root, list]) => {
    const devices = publishers(list);
    return {
      rootHash: root,
      size: list[0]!.size,
      sources: devices.size,
      publishers: [...devices].map((p) => list.find((s) => publisherOf(s) === p)!)
        .map((s) => s.id === undefined ? `${s.hostname}:${s.port}` : shortId(s.id)).sort(),
    };
  });
  if (versions.length === 0) return { problem: "no live peer shares it", code: "not-shared" };
  let chosen = versions[0]!;
  if (hashPrefix !== undefined) {
    const prefix = hashPrefix.toLowerCase();
    const matches = versions.filter((v) => v.rootHash.startsWith(prefix));
    if (matches.length !== 1) {
      const listed = versions
        .map((v) =>
          `${v.rootHash.slice(0, 12)} ${v.size} B, by ${
            v.publishers.join(", ")
          } (${v.sources} device(s))`
        )
        .join("; ");
      return {
        code: "no-version",
        problem: `${
          matches.length === 0 ? "no" : "more than one"
        } version matches --hash ${hashPrefix} (versions: ${listed})`,
      };
    }
    chosen = matches[0]!;
  }
  return { chosen, sources: groups.get(chosen.rootHash)!, versions };
}
