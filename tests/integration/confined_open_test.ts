// peer/confined_open.ts on real folders: what it opens, what it refuses, and that it leaves the
// working directory where it was.
import assert from "node:assert/strict";
import { join } from "node:path";
import { openConfined } from "../../peer/confined_open.ts";
import { PathError } from "../../peer/repo.ts";

async function withTree(fn: (root: string, outside: string) => Promise<void>): Promise<void> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "lanshare-confined-" }));
  try {
    const root = join(dir, "root");
    await Deno.mkdir(join(root, "a", "b"), { recursive: true });
    await Deno.writeTextFile(join(root, "a", "b", "f.txt"), "inside");
    await Deno.mkdir(join(dir, "outside"));
    await Deno.writeTextFile(join(dir, "outside", "f.txt"), "outside");
    await fn(root, join(dir, "outside"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("openConfined() opens a regular file below the root and restores the cwd", async () => {
  await withTree(async (root) => {
    const cwd = Deno.cwd();
    using file = await openConfined(root, ["a", "b", "f.txt"]);
    const bytes = new Uint8Array(16);
    const n = await file.read(bytes);
    assert.equal(new TextDecoder().decode(bytes.subarray(0, n ?? 0)), "inside");
    assert.equal(Deno.cwd(), cwd);
  });
});

Deno.test("openConfined() refuses a symlinked folder, a symlinked file, a folder and a dot-dot", async () => {
  await withTree(async (root, outside) => {
    const cwd = Deno.cwd();
    await Deno.symlink(outside, join(root, "link"));
    await Deno.symlink(join(outside, "f.txt"), join(root, "a", "file-link"));
    for (const names of [["link", "f.txt"], ["a", "file-link"], ["a", "b"], ["a", "..", "a"]]) {
      await assert.rejects(openConfined(root, names), PathError, names.join("/"));
      assert.equal(Deno.cwd(), cwd);
    }
    await assert.rejects(openConfined(root, ["a", "missing"]), Deno.errors.NotFound);
  });
});
