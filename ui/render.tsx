// The first views of both pages, rendered by the programs themselves. scripts/build_ui.ts
// bundles this file for Deno into shared/http/ui_render.gen.js: the programs import that
// bundle, so their type checks never meet the DOM types of the browser code.
export { PEER_FIRST_PATHS, renderPeerApp } from "./peer/render.tsx";
export { renderServerApp, SERVER_FIRST_PATHS } from "./server/render.tsx";
