// A table's page from the API, for the dashboard's searchable tables: the first page comes
// with the page, later ones are asked for as the search field, the page or an update changes.
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "./client.ts";
import { useFirstAnswer } from "./first_answers.ts";

/**
 * The answer of the API `path`, asked again whenever `path` or `refresh` changes. The page's
 * embedded answer of `firstPath` is the first state, so it is not asked for again as the
 * component starts. A change of `typed` (the search field's text) waits `pauseMs` for the
 * typing to pause; the first page, a page turn or an update is asked for at once. Each answer
 * clears the problem (`onProblem(undefined)`), each failure reports its message.
 */
export function usePage<T>(
  firstPath: string,
  path: string,
  refresh: unknown,
  typed: string,
  pauseMs: number,
  onProblem: (message: string | undefined) => void,
): T | undefined {
  const embedded = useFirstAnswer<T>(firstPath);
  const [data, setData] = useState(embedded);
  const asked = useRef(typed);
  const hasFirstPage = useRef(embedded !== undefined);
  useEffect(() => {
    if (hasFirstPage.current) {
      hasFirstPage.current = false;
      return;
    }
    const delayMs = asked.current === typed ? 0 : pauseMs;
    asked.current = typed;
    const timer = setTimeout(() => {
      api<T>(path).then((d) => {
        setData(d);
        onProblem(undefined);
      }).catch((e: Error) => onProblem(e.message));
    }, delayMs);
    return () => clearTimeout(timer);
  }, [path, refresh]);
  return data;
}
