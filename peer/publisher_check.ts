// Whose content: each source the index lists must prove that its device published that
// content, by its signature over (fname, size, root hash) under its ID. The index stores these
// signatures without checking them (a verify per publish would dominate its setup), so the
// fetcher checks before it uses a source; a source that cannot prove it is dropped.
import { verify } from "../shared/identity.ts";
import type { SourceInfo } from "../shared/protocol.ts";
import { publishStatement } from "../shared/statements.ts";

/** The sources split by whether their publish signature verifies. */
export interface CheckedSources {
  trusted: SourceInfo[];
  /** Sources with no ID, no signature, or a signature that does not verify. */
  lying: SourceInfo[];
}

/** Whether `source`'s signature proves its device published this content under `fname`. */
export async function publisherProven(fname: string, source: SourceInfo): Promise<boolean> {
  if (source.id === undefined || source.sig === undefined) return false;
  let signature: Uint8Array<ArrayBuffer>;
  try {
    signature = Uint8Array.fromBase64(source.sig);
  } catch (err) {
    if (err instanceof SyntaxError) return false;
    throw err;
  }
  return await verify(source.id, publishStatement(fname, source.size, source.rootHash), signature);
}

/** Splits `sources` into those whose publisher is proven and those that are not. */
export async function checkPublishers(
  fname: string,
  sources: readonly SourceInfo[],
): Promise<CheckedSources> {
  const proven = await Promise.all(sources.map((source) => publisherProven(fname, source)));
  const checked: CheckedSources = { trusted: [], lying: [] };
  sources.forEach((source, i) => (proven[i] ? checked.trusted : checked.lying).push(source));
  return checked;
}
