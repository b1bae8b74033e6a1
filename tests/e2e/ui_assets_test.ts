// The committed UI assets are what the sources bundle to today, and stay small.
import assert from "node:assert/strict";
import { generateUiFiles } from "../../scripts/build_ui.ts";
import { PEER_ASSETS, SERVER_ASSETS } from "../../shared/http/ui_assets.gen.ts";

const HTTP_DIR = new URL("../../shared/http/", import.meta.url);

async function gzipBytes(text: string): Promise<number> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return (await new Response(stream).arrayBuffer()).byteLength;
}

Deno.test("shared/http/ui_*.gen.* are up to date with ui/ (else: deno task ui:build)", async () => {
  for (const [name, fresh] of Object.entries(await generateUiFiles())) {
    // Compared as a whole, reported in one line: each file is one long bundle.
    assert.ok(
      fresh === await Deno.readTextFile(new URL(name, HTTP_DIR)),
      `shared/http/${name} is out of date: run \`deno task ui:build\` and commit it`,
    );
  }
});

Deno.test("each UI's assets are under 150 KB compressed", async () => {
  for (const assets of [PEER_ASSETS, SERVER_ASSETS]) {
    const compressed = await gzipBytes(assets.js) + await gzipBytes(assets.css);
    assert.ok(compressed < 150_000, `${assets.title}: ${compressed} bytes gzipped`);
  }
});
