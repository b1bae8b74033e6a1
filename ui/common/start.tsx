// The browser entry of both UIs: the token leaves the address bar, then the view the server
// rendered comes alive (hydrate) with the answers the page came with.
import { type ComponentChildren, hydrate } from "preact";
import { FIRST_ANSWERS_ID, type FirstAnswers, FirstAnswersContext } from "./first_answers.ts";

/** The performance mark set once the view is hydrated (its handlers work from then on). */
export const HYDRATED_MARK = "lanshare-hydrated";

/** How long hydration waits for the first paint before it goes ahead anyway, ms. */
const FIRST_PAINT_WAIT_MS = 1000;

/**
 * Hydrates the server-rendered `app` in #app (see shared/http/ui_server.ts for the page) once
 * the first paint is on screen: the view the server rendered, data included, is shown first,
 * and the page's handlers take over right after. Hydrating costs 20–100 ms of script here: run
 * from a task queued in a frame callback, as before, it ran while that frame was still being
 * rasterized (software raster, ~90 ms for the page here) and competed with it for 2 cores.
 * Waits at most FIRST_PAINT_WAIT_MS (a background tab paints nothing).
 */
export function start(app: ComponentChildren): void {
  // Opened with ?token=…: the answer set the cookie; the token leaves the address bar and the
  // history entry before anything else runs.
  if (new URLSearchParams(location.search).has("token")) {
    history.replaceState(null, "", `${location.pathname}${location.hash}`);
  }
  let done = false;
  // Called from a timer or an observer callback only: `timer` and `observer` are set by then.
  const go = () => {
    if (done) return;
    done = true;
    observer?.disconnect();
    clearTimeout(timer);
    hydrateNow(app);
  };
  const timer = setTimeout(go, FIRST_PAINT_WAIT_MS);
  const observer = afterFirstPaint(go);
}

/**
 * Calls `then` in a task once the first contentful paint is on screen (Paint Timing reports it
 * once the frame has been presented; a frame callback runs before the frame is even drawn).
 * Without Paint Timing, a task queued from the next frame callback.
 */
function afterFirstPaint(then: () => void): PerformanceObserver | undefined {
  if (!PerformanceObserver.supportedEntryTypes?.includes("paint")) {
    requestAnimationFrame(() => setTimeout(then));
    return undefined;
  }
  const observer = new PerformanceObserver((list) => {
    if (list.getEntriesByName("first-contentful-paint").length > 0) setTimeout(then);
  });
  observer.observe({ type: "paint", buffered: true });
  return observer;
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
