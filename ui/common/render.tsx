// The server side of both UIs: the first view as HTML, from the answers the page will carry,
// so that the first paint already shows data (the browser's script then hydrates it).
import type { ComponentChildren } from "preact";
import { renderToString } from "preact-render-to-string";
import { type FirstAnswers, FirstAnswersContext } from "./first_answers.ts";

/** The HTML of `app` rendered with `first` as its embedded answers (text escaped). */
export function renderApp(app: ComponentChildren, first: FirstAnswers): string {
  return renderToString(
    <FirstAnswersContext.Provider value={first}>{app}</FirstAnswersContext.Provider>,
  );
}
