// The committed UI assets are what the sources bundle to today, and stay small.
import assert from "node:assert/strict";
import { generateAssets } from "../../scripts/build_ui.ts";
import { PEER_ASSETS, SERVER_ASSETS } from "../../shared/http/ui_assets.gen.ts";

const GENERATED = new URL("../../shared/http/ui_assets.gen.ts", import.meta.url);

async function gzipBytes(text: string): Promise<number> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return (await new Response(stream).arrayBuffer()).byteLength;
}

Deno.test("shared/http/ui_assets.gen.ts is up to date with ui/ (else: deno task ui:build)", async () => {
  // Compared as a whole, reported in one line: the file is one long bundle.
  const fresh = await generateAssets();
  assert.ok(
    fresh === await Deno.readTextFile(GENERATED),
    "shared/http/ui_assets.gen.ts is out of date: run `deno task ui:build` and commit it",
  );
});

Deno.test("each UI's assets are under 150 KB compressed", async () => {
  for (const assets of [PEER_ASSETS, SERVER_ASSETS]) {
    const compressed = await gzipBytes(assets.js) + await gzipBytes(assets.css);
    assert.ok(compressed < 150_000, `${assets.title}: ${compressed} bytes gzipped`);
  }
});
