// Browser side of both UIs: JSON calls to the API, the event stream, and number formatting.
import { useEffect, useRef } from "preact/hooks";

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

/**
 * A local time as "14:03:22". Written out rather than through toLocaleTimeString: in a fresh
 * browser its first call loads the locale data (30–45 ms measured) and every later one builds a
 * formatter again (0.2 ms each, a log of 200 lines: 40 ms), all before the first paint.
 */
export function clock(ms: number): string {
  const time = new Date(ms);
  const two = (n: number) => String(n).padStart(2, "0");
  return `${two(time.getHours())}:${two(time.getMinutes())}:${two(time.getSeconds())}`;
}
