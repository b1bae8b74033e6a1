// The API answers a page comes with (shared/http/ui_server.ts embeds them in its HTML), given
// to the components through a context: the server renders the first view from them, and the
// browser's first render, reading the same answers, matches it (hydration) without a request.
import { createContext } from "preact";
import { useContext } from "preact/hooks";

/** Answers of GET API paths, by path (with its query, exactly as the page asks for it). */
export type FirstAnswers = Readonly<Record<string, unknown>>;

/** The id of the element holding the embedded answers (a JSON data block). */
export const FIRST_ANSWERS_ID = "first-answers";

/** Holds the page's first answers; none outside a provider. */
export const FirstAnswersContext = createContext<FirstAnswers>({});

/** The embedded answer of `path`, for a component's first state, or undefined. */
export function useFirstAnswer<T>(path: string): T | undefined {
  return useContext(FirstAnswersContext)[path] as T | undefined;
}
