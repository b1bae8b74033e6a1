// Browser side of both UIs: JSON calls to the API, the event stream, and number formatting.
import { useEffect, useRef } from "preact/hooks";

// Opened with ?token=…: the answer set the cookie; the token leaves the address bar and the
// history entry before anything else runs.
if (new URLSearchParams(location.search).has("token")) {
  history.replaceState(null, "", `${location.pathname}${location.hash}`);
}

/** An API call that answered with an error. */
export class ApiError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

/** GETs (or sends `body` as JSON to) an API path; returns the JSON answer. */
export async function api<T>(path: string, body?: unknown, method = "POST"): Promise<T> {
  const init: RequestInit = body === undefined
    ? { method: "GET" }
    : { method, headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
  return await answerOf<T>(await fetch(path, init));
}

/** The answers the page came with, by API path (see shared/http/ui_server.ts). */
let embedded: Map<string, unknown> | undefined;
/** The paths whose embedded answer firstAnswer() gave already. */
const used = new Set<string>();

function embeddedAnswers(): Map<string, unknown> {
  embedded ??= new Map(
    Object.entries(JSON.parse(document.getElementById("first-answers")?.textContent || "{}")),
  );
  return embedded;
}

/**
 * The answer of a GET `path` the page's HTML carries (once: later calls ask the API), else
 * asked of the API: the first data of a page needs no round trip after its script.
 */
export function firstAnswer<T>(path: string): Promise<T> {
  const answers = embeddedAnswers();
  if (!answers.has(path) || used.has(path)) return api<T>(path);
  used.add(path);
  return Promise.resolve(answers.get(path) as T);
}

/**
 * The answer the page's HTML carries for `path`, for a component's first state: the first
 * render shows the data instead of waiting for effects (which run after a paint).
 */
export function embeddedAnswer<T>(path: string): T | undefined {
  return embeddedAnswers().get(path) as T | undefined;
}

/** The JSON of a response, or an ApiError with its message. */
export async function answerOf<T>(response: Response): Promise<T> {
  const type = response.headers.get("content-type") ?? "";
  const data = type.includes("json") ? await response.json() : { error: await response.text() };
  if (!response.ok) {
    if (response.status === 401) {
      throw new ApiError(401, "Not signed in: open the address the program printed (with ?token=)");
    }
    throw new ApiError(response.status, data.error ?? `HTTP ${response.status}`);
  }
  return data as T;
}

/** The page's one event stream, shared by every component that listens (see useEvents). */
const bus = new EventTarget();
let stream: EventSource | undefined;
const forwarded = new Set<string>();

/** Starts the stream if needed and forwards events called `name` to the bus. */
function listen(name: string): void {
  stream ??= new EventSource("/api/events");
  if (forwarded.has(name)) return;
  forwarded.add(name);
  if (name === "open" || name === "lost") {
    stream.addEventListener(name === "open" ? "open" : "error", () => {
      bus.dispatchEvent(new CustomEvent(name, { detail: null }));
    });
    return;
  }
  stream.addEventListener(name, (e) => {
    bus.dispatchEvent(new CustomEvent(name, { detail: JSON.parse((e as MessageEvent).data) }));
  });
}

/**
 * Calls each handler with the data of its event while the component lives ("open" and "lost"
 * for the connection itself). One stream serves the whole page, so only the components that
 * listen to an event render again when it arrives.
 */
export function useEvents(handlers: Record<string, (data: unknown) => void>): void {
  const current = useRef(handlers);
  current.current = handlers;
  useEffect(() => {
    const names = Object.keys(current.current);
    const listeners = names.map((name) => {
      listen(name);
      const listener = (e: Event) => current.current[name]?.((e as CustomEvent).detail);
      bus.addEventListener(name, listener);
      return listener;
    });
    return () => names.forEach((name, i) => bus.removeEventListener(name, listeners[i]!));
  }, []);
}

/** Calls `fn` every `ms` while the component lives. */
export function useInterval(fn: () => void, ms: number): void {
  const current = useRef(fn);
  current.current = fn;
  useEffect(() => {
    const timer = setInterval(() => current.current(), ms);
    return () => clearInterval(timer);
  }, [ms]);
}

/** 1536 → "1.5 KiB". */
export function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** 125 → "2 min 5 s". */
export function duration(seconds: number | null): string {
  if (seconds === null) return "–";
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor(seconds % 3600 / 60)} min`;
}

/** A time as "14:03:22". */
export function clock(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}

/**
 * Marks the moment the first data is on screen (after the next paint), once: the benchmark
 * reads it as `performance.getEntriesByName("lanshare-ready")`.
 */
export function markReady(): void {
  if (performance.getEntriesByName("lanshare-ready").length > 0) return;
  requestAnimationFrame(() => {
    if (performance.getEntriesByName("lanshare-ready").length === 0) {
      performance.mark("lanshare-ready");
    }
  });
}
