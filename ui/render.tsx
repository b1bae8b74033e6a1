// The first views of both pages, rendered by the programs themselves. scripts/build_ui.ts
// bundles this file for Deno into shared/http/ui_render.gen.js: the programs import that
// bundle, so their type checks never meet the DOM types of the browser code.
import { renderApp } from "./common/render.tsx";
import type { FirstAnswers } from "./common/first_answers.ts";
import { App as PeerApp, FIRST_PATHS as PEER_PATHS } from "./peer/app.tsx";
import { App as ServerApp, FIRST_PATHS as SERVER_PATHS } from "./server/app.tsx";

export { FIRST_ANSWERS_ID } from "./common/first_answers.ts";

/** The API paths the peer page carries the answers of. */
export const PEER_FIRST_PATHS: readonly string[] = Object.values(PEER_PATHS);

/** The HTML of the peer page's first view, from its embedded answers. */
export function renderPeerApp(first: FirstAnswers): string {
  return renderApp(<PeerApp />, first);
}

/** The API paths the dashboard carries the answers of. */
export const SERVER_FIRST_PATHS: readonly string[] = Object.values(SERVER_PATHS);

/** The HTML of the dashboard's first view, from its embedded answers. */
export function renderServerApp(first: FirstAnswers): string {
  return renderApp(<ServerApp />, first);
}
