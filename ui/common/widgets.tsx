// Pieces both UIs use: the live log with its level filter, the pager, notices.
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, clock, useEvents } from "./client.ts";
import { useFirstAnswer } from "./first_answers.ts";
import type { LogLine } from "../../shared/log_line.ts";

const LEVELS = ["debug", "info", "warning", "error"];

/** Where the log's records come from (the API's answer is embedded in the page). */
const LOGS_PATH = "/api/logs";

/** The log: the records kept by the program, then each new one as it comes. */
export function LiveLog() {
  const embedded = useFirstAnswer<{ lines: LogLine[] }>(LOGS_PATH);
  const [lines, setLines] = useState<LogLine[]>(() => embedded?.lines ?? []);
  useEffect(() => {
    if (embedded !== undefined) return;
    api<{ lines: LogLine[] }>(LOGS_PATH).then((r) =>
      setLines((later) => [...r.lines, ...later].slice(-300))
    ).catch((e: Error) =>
      setLines([{ timeMs: Date.now(), level: "error", category: "ui", message: e.message }])
    );
  }, []);
  useEvents({ log: (d) => setLines((old) => [...old.slice(-299), d as LogLine]) });
  return <LogView lines={lines} />;
}

/** The live log, newest last, with a level filter. */
export function LogView(props: { lines: LogLine[] }) {
  const [level, setLevel] = useState("info");
  const min = LEVELS.indexOf(level);
  const shown = props.lines.filter((l) => LEVELS.indexOf(l.level) >= min).slice(-200);
  return (
    <section class="card log" aria-labelledby="log-title">
      <div class="card-head">
        <h2 id="log-title">Log</h2>
        <label>
          level{" "}
          <select
            value={level}
            onChange={(e) => setLevel((e.target as HTMLSelectElement).value)}
            aria-label="lowest level shown"
          >
            {LEVELS.map((l) => <option key={l} value={l}>{l}</option>)}
          </select>
        </label>
      </div>
      {shown.length === 0
        ? <p class="empty">Nothing logged at this level yet.</p>
        : (
          <ol class="log-lines" aria-live="polite">
            {shown.map((l) => (
              <li class={`lvl-${l.level}`}>
                <time>{clock(l.timeMs)}</time> <b>{l.level}</b> <span>{l.category}</span>{" "}
                {l.message}
              </li>
            ))}
          </ol>
        )}
    </section>
  );
}

/** "21–40 of 1000" with previous/next buttons. */
export function Pager(
  props: {
    offset: number;
    limit: number;
    shown: number;
    total: number;
    capped?: boolean | undefined;
    onPage: (offset: number) => void;
  },
) {
  if (props.total === 0) return null;
  return (
    <div class="pager">
      <button
        type="button"
        disabled={props.offset === 0}
        onClick={() => props.onPage(Math.max(0, props.offset - props.limit))}
      >
        ‹ Previous
      </button>
      <span>
        {props.offset + 1}–{props.offset + props.shown} of {props.total}
        {props.capped ? "+" : ""}
      </span>
      <button
        type="button"
        disabled={props.offset + props.shown >= props.total}
        onClick={() => props.onPage(props.offset + props.limit)}
      >
        Next ›
      </button>
    </div>
  );
}

/** An error or hint banner. */
export function Notice(
  props: { kind: "error" | "info"; children: ComponentChildren; onClose?: () => void },
) {
  return (
    <div class={`notice ${props.kind}`} role={props.kind === "error" ? "alert" : "status"}>
      <span>{props.children}</span>
      {props.onClose && (
        <button type="button" class="link" onClick={props.onClose} aria-label="dismiss">
          ×
        </button>
      )}
    </div>
  );
}
