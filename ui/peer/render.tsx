// The peer page's first view, rendered by the peer itself (peer/ui_server.ts).
import { renderApp } from "../common/render.tsx";
import type { FirstAnswers } from "../common/first_answers.ts";
import { App, FIRST_PATHS } from "./app.tsx";

/** The API paths the page carries the answers of. */
export const PEER_FIRST_PATHS: readonly string[] = Object.values(FIRST_PATHS);

/** The HTML of the peer page's first view, from its embedded answers. */
export function renderPeerApp(first: FirstAnswers): string {
  return renderApp(<App />, first);
}
