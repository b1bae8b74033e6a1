// The browser entry of both UIs: the token leaves the address bar, then the view the server
// rendered comes alive (hydrate) with the answers the page came with.
import { type ComponentChildren, hydrate } from "preact";
import { FIRST_ANSWERS_ID, type FirstAnswers, FirstAnswersContext } from "./first_answers.ts";

/** The performance mark set once the view is hydrated (its handlers work from then on). */
export const HYDRATED_MARK = "lanshare-hydrated";

/**
 * Hydrates the server-rendered `app` in #app (see shared/http/ui_server.ts for the page) just
 * after the next frame: the view the server rendered, data included, is painted first, and the
 * page's handlers take over right after (hydrating the dashboard costs 50–100 ms of script
 * here, which would otherwise come before the first paint).
 */
export function start(app: ComponentChildren): void {
  // Opened with ?token=…: the answer set the cookie; the token leaves the address bar and the
  // history entry before anything else runs.
  if (new URLSearchParams(location.search).has("token")) {
    history.replaceState(null, "", `${location.pathname}${location.hash}`);
  }
  // A task queued from a frame callback runs once that frame is out.
  requestAnimationFrame(() => setTimeout(() => hydrateNow(app)));
}

function hydrateNow(app: ComponentChildren): void {
  const text = document.getElementById(FIRST_ANSWERS_ID)?.textContent;
  const first: FirstAnswers = text ? JSON.parse(text) : {};
  hydrate(
    <FirstAnswersContext.Provider value={first}>{app}</FirstAnswersContext.Provider>,
    document.getElementById("app")!,
  );
  performance.mark(HYDRATED_MARK);
}
