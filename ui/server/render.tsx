// The dashboard's first view, rendered by the server itself (server/ui_server.ts).
import { renderApp } from "../common/render.tsx";
import type { FirstAnswers } from "../common/first_answers.ts";
import { App, FIRST_PATHS } from "./app.tsx";

/** The API paths the page carries the answers of. */
export const SERVER_FIRST_PATHS: readonly string[] = Object.values(FIRST_PATHS);

/** The HTML of the dashboard's first view, from its embedded answers. */
export function renderServerApp(first: FirstAnswers): string {
  return renderApp(<App />, first);
}
