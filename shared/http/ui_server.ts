// One UI's HTTP server (Deno.serve): the page (its first view rendered here, its script and
// style sheet inline), the token trade, the event stream and the JSON API behind the access
// checks. Which API and which view are the caller's business.
import { logger } from "../log.ts";
import { FIRST_ANSWERS_ID } from "./ui_render.gen.js";
import { type EventHub } from "./event_hub.ts";
import {
  allowedHosts,
  checkHost,
  checkRequest,
  contentSecurityPolicy,
  isLoopback,
  isWildcard,
  OPENER_POLICY,
  openerPolicy,
  sameToken,
  SECURITY_HEADERS,
  tokenCookie,
  type UiAccess,
} from "./guard.ts";
import { errorResponse, HttpError } from "./json.ts";

const log = logger("ui");

/** The page of one UI, held in memory (see shared/http/ui_assets.gen.ts). */
export interface UiAssets {
  title: string;
  /** The script (a classic script, inlined at the end of the page). */
  js: string;
  /** The CSP source allowing `js`: 'sha256-…'. */
  scriptHash: string;
  /** The style sheet (inlined in the page's head). */
  css: string;
  /** The CSP source allowing `css`: 'sha256-…'. */
  styleHash: string;
}

/** Options of startUiServer. */
export interface UiServerOptions {
  hostname: string;
  /** First port to try (0: any free port). */
  port: number;
  /** Ports tried after `port` when it is taken (0: fail at once). */
  nextPorts: number;
  token: string;
  assets: UiAssets;
  hub: EventHub;
  /** Answers /api/* requests that passed the checks (never /api/events). */
  api: (req: Request, url: URL) => Promise<Response>;
  /**
   * API paths (GET) whose answers the page carries in its HTML (ui/common/first_answers.ts):
   * its first view is rendered from them and its script starts from them, no request first.
   */
  firstAnswers?: readonly string[];
  /** The HTML of the page's first view from those answers (the script hydrates it). */
  render?: (first: Record<string, unknown>) => string;
}

/** A running UI server. */
export interface UiServer extends AsyncDisposable {
  hostname: string;
  port: number;
  /** Address to open, with the token: http://host:port/?token=… */
  url: string;
  token: string;
  close(): Promise<void>;
}

/**
 * Binds the UI (trying the next ports when the first is taken) and serves it.
 *
 * @throws {Deno.errors.AddrInUse} when every port tried is taken
 */
export function startUiServer(options: UiServerOptions): UiServer {
  let server: Deno.HttpServer<Deno.NetAddr> | undefined;
  // The checks need the bound port, known only once Deno.serve has bound it.
  const bound: { access?: UiAccess } = {};
  const csp = contentSecurityPolicy({
    script: options.assets.scriptHash,
    style: options.assets.styleHash,
  });
  const handler = (req: Request) => handle(req, bound.access!, csp, options);
  for (let i = 0;; i++) {
    const port = options.port === 0 ? 0 : options.port + i;
    try {
      server = Deno.serve({ hostname: options.hostname, port, onListen: () => {} }, handler);
      break;
    } catch (err) {
      if (!(err instanceof Deno.errors.AddrInUse) || i >= options.nextPorts) throw err;
    }
  }
  const port = server.addr.port;
  bound.access = {
    token: options.token,
    port,
    hosts: allowedHosts(options.hostname, port),
    anyIpHost: isWildcard(options.hostname),
  };
  if (!isLoopback(options.hostname)) {
    log.warn(
      "The UI listens on {host}:{port}, reachable from other machines; it still asks for its token",
      { host: options.hostname, port },
    );
  }
  const shownHost = isWildcard(options.hostname)
    ? "127.0.0.1"
    : options.hostname.includes(":")
    ? `[${options.hostname}]`
    : options.hostname;
  const close = async () => {
    options.hub.close();
    await server.shutdown();
  };
  return {
    hostname: options.hostname,
    port,
    url: `http://${shownHost}:${port}/?token=${options.token}`,
    token: options.token,
    close,
    [Symbol.asyncDispose]: close,
  };
}

async function handle(
  req: Request,
  access: UiAccess,
  csp: string,
  options: UiServerOptions,
): Promise<Response> {
  let response: Response;
  try {
    response = await route(req, access, options);
  } catch (err) {
    if (!(err instanceof HttpError)) {
      log.error("UI request {method} {path} failed: {error}", {
        method: req.method,
        path: new URL(req.url).pathname,
        error: err instanceof Error ? err.message : String(err),
      });
    }
    response = errorResponse(err);
  }
  response.headers.set("content-security-policy", csp);
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) response.headers.set(name, value);
  // The signed-in page chooses its own opener policy (see openerPolicy()); every other answer
  // gets the strict one.
  if (!response.headers.has(OPENER_POLICY)) response.headers.set(OPENER_POLICY, "same-origin");
  return response;
}

async function route(req: Request, access: UiAccess, options: UiServerOptions): Promise<Response> {
  const url = new URL(req.url);
  if (url.pathname === "/" && req.method === "GET") return await page(req, url, access, options);
  checkRequest(req, access);
  if (url.pathname === "/api/events" && req.method === "GET") {
    return new Response(options.hub.connect(), {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
      },
    });
  }
  if (url.pathname.startsWith("/api/")) return await options.api(req, url);
  throw new HttpError(404, `Cannot find ${req.method} ${url.pathname}`);
}

/**
 * The page. `/?token=…` with the right token sets the cookie on the page itself (the page's
 * script then takes the token out of the address bar and history with replaceState: no
 * redirect round trip before the page); with a valid cookie, the page; else a page saying how
 * in. The token never reaches a Referer (no-referrer) and the page's HTML never holds it.
 */
async function page(
  req: Request,
  url: URL,
  access: UiAccess,
  options: UiServerOptions,
): Promise<Response> {
  checkHost(req, access);
  const given = url.searchParams.get("token");
  let cookie: string | undefined;
  if (given !== null) {
    if (!sameToken(given, access.token)) {
      return htmlResponse(req, loginPage(options.assets, "That token is not this UI's."), 401);
    }
    cookie = tokenCookie(access);
  } else {
    try {
      checkRequest(req, access);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      return htmlResponse(req, loginPage(options.assets, err.message), err.status);
    }
  }
  const first = await firstAnswers(url, options);
  const html = appPage(options.assets, first, options.render?.(first) ?? "");
  const response = htmlResponse(req, html, 200);
  if (cookie !== undefined) response.headers.set("set-cookie", cookie);
  response.headers.set(OPENER_POLICY, openerPolicy(req));
  return response;
}

/**
 * The answers of `options.firstAnswers`, asked of the API in parallel, by path; a path that
 * fails is left out (the page asks for it itself and shows its error).
 */
async function firstAnswers(url: URL, options: UiServerOptions): Promise<Record<string, unknown>> {
  const answers: Record<string, unknown> = {};
  await Promise.all((options.firstAnswers ?? []).map(async (path) => {
    const target = new URL(path, url);
    try {
      const response = await options.api(new Request(target), target);
      if (response.ok) answers[path] = await response.json();
      else await response.body?.cancel();
    } catch {
      // Left out: the page asks again and shows the error.
    }
  }));
  return answers;
}

/**
 * A page, gzipped when the client takes it (its script and style sheet are inline: ~40 KB raw,
 * ~14 KB packed; gzip costs about a millisecond here).
 */
function htmlResponse(req: Request, html: string, status: number): Response {
  const headers: Record<string, string> = {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    vary: "accept-encoding",
  };
  if (!/\bgzip\b/.test(req.headers.get("accept-encoding") ?? "")) {
    return new Response(html, { status, headers });
  }
  const body = new Blob([html]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Response(body, { status, headers: { ...headers, "content-encoding": "gzip" } });
}

/** `<head>` and the start of `<body>`, the style sheet inline (its CSP hash allows it). */
function pageHead(assets: UiAssets): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<meta name="color-scheme" content="light dark"><title>${assets.title}</title>` +
    // No icon: an empty one spares the browser a request for /favicon.ico (and its 404).
    `<link rel="icon" href="data:,"><style>${assets.css}</style></head><body>`;
}

/**
 * The page: its first view already rendered (`view`), the answers it was rendered from as a
 * data block, and the script last, inline and classic: it runs once the view is parsed, with
 * no request, and hydrates the view from the same answers.
 */
function appPage(assets: UiAssets, first: Record<string, unknown>, view: string): string {
  // A data block is never run, so the strict CSP needs no exception for it; "<" escaped, no
  // text can end the element early.
  const data = JSON.stringify(first).replace(/</g, "\\u003c");
  return `${pageHead(assets)}<div id="app">${view}</div>` +
    `<script type="application/json" id="${FIRST_ANSWERS_ID}">${data}</script>` +
    `<script>${assets.js}</script></body></html>`;
}

function loginPage(assets: UiAssets, why: string): string {
  const escaped = why.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return `${pageHead(assets)}<main class="login">` +
    `<h1>${assets.title}</h1><p>${escaped}</p><p>Open the address the program printed when it ` +
    `started: it ends with <code>?token=…</code>. The token is also in the file named in ` +
    `docs/API.md.</p></main></body></html>`;
}
