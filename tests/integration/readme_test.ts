// The README's tables against the code they describe: a flag or variable renamed in one place
// and not the other is a user's wasted afternoon.
import assert from "node:assert/strict";
import { SERVER_OPTIONS } from "../../server/config.ts";

/** Rows `| \`--flag\` | \`ENV\` | ...` of the README's index-server table, as flag → env. */
async function serverTable(): Promise<Map<string, string>> {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const section = readme.slice(readme.indexOf("## Index server"), readme.indexOf("## Peer"));
  const rows = new Map<string, string>();
  for (const match of section.matchAll(/^\| `--([a-z-]+)`\s*\| `([A-Z_]+)`/gm)) {
    rows.set(match[1]!, match[2]!);
  }
  return rows;
}

Deno.test("README's index-server table lists every server option with the variable it reads", async () => {
  const documented = await serverTable();
  const actual = new Map(SERVER_OPTIONS.map((spec) => [spec.flag, spec.env ?? ""]));
  assert.deepEqual(Object.fromEntries(documented), Object.fromEntries(actual));
});
