// One UI's HTTP server (Deno.serve): the page and its assets from memory, the token trade, the
// event stream and the JSON API behind the access checks. Which API is the caller's business.
import { logger } from "../log.ts";
import { type EventHub } from "./event_hub.ts";
import {
  allowedHosts,
  checkHost,
  checkRequest,
  isLoopback,
  isWildcard,
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
  js: string;
  css: string;
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
   * API paths (GET) whose answers the page carries in its HTML, so that its first data needs
   * no request after the script has loaded (the client's firstAnswer() reads them).
   */
  firstAnswers?: readonly string[];
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
  const handler = (req: Request) => handle(req, bound.access!, options);
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

async function handle(req: Request, access: UiAccess, options: UiServerOptions): Promise<Response> {
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
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) response.headers.set(name, value);
  return response;
}

async function route(req: Request, access: UiAccess, options: UiServerOptions): Promise<Response> {
  const url = new URL(req.url);
  if (url.pathname === "/" && req.method === "GET") return await page(req, url, access, options);
  if (url.pathname === "/assets/app.css" && req.method === "GET") {
    // The style sheet holds no secret and dresses the page that asks for the token.
    checkHost(req, access);
    return await asset(req, options.assets.css, "text/css; charset=utf-8");
  }
  checkRequest(req, access);
  if (url.pathname === "/assets/app.js" && req.method === "GET") {
    return await asset(req, options.assets.js, "text/javascript; charset=utf-8");
  }
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
      return htmlResponse(loginPage(options.assets.title, "That token is not this UI's."), 401);
    }
    cookie = tokenCookie(access);
  } else {
    try {
      checkRequest(req, access);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      return htmlResponse(loginPage(options.assets.title, err.message), err.status);
    }
  }
  const first = await firstAnswers(url, options);
  const response = htmlResponse(appPage(options.assets.title, first), 200);
  if (cookie !== undefined) response.headers.set("set-cookie", cookie);
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

/** An asset gzipped, and its ETag. */
interface PackedAsset {
  gzip: Uint8Array<ArrayBuffer>;
  etag: string;
}

/** Each asset's text packed once, the first time it is asked for (a handful of strings). */
const packed = new Map<string, Promise<PackedAsset>>();

function pack(text: string): Promise<PackedAsset> {
  let entry = packed.get(text);
  if (!entry) {
    entry = (async () => {
      const bytes = new TextEncoder().encode(text);
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
      const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
      const gzip = new Uint8Array(await new Response(stream).arrayBuffer());
      return { gzip, etag: `"${digest.subarray(0, 12).toHex()}"` };
    })();
    packed.set(text, entry);
  }
  return entry;
}

/**
 * An asset: compressed once rather than per request, revalidated by ETag (a page load after
 * the first costs a 304 per asset, and the assets change only with the program).
 */
async function asset(req: Request, text: string, type: string): Promise<Response> {
  const { gzip, etag } = await pack(text);
  const headers: Record<string, string> = {
    "content-type": type,
    "cache-control": "no-cache",
    etag,
    vary: "accept-encoding",
  };
  if (req.headers.get("if-none-match") === etag) {
    return new Response(null, { status: 304, headers });
  }
  if (/\bgzip\b/.test(req.headers.get("accept-encoding") ?? "")) {
    return new Response(gzip, { headers: { ...headers, "content-encoding": "gzip" } });
  }
  return new Response(text, { headers });
}

function htmlResponse(html: string, status: number): Response {
  return new Response(html, {
    status,
    headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" },
  });
}

/** The id of the element holding the embedded first answers (ui/common/client.ts reads it). */
const FIRST_ANSWERS_ID = "first-answers";

function appPage(title: string, first: Record<string, unknown>): string {
  // A data block is never run, so the strict CSP needs no exception for it; "<" escaped, no
  // text can end the element early.
  const data = JSON.stringify(first).replace(/</g, "\\u003c");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<meta name="color-scheme" content="light dark"><title>${title}</title>` +
    `<link rel="stylesheet" href="/assets/app.css">` +
    // In the head: a module script is deferred anyway, and is asked for beside the style sheet.
    `<script type="module" src="/assets/app.js"></script>` +
    `<script type="application/json" id="${FIRST_ANSWERS_ID}">${data}</script>` +
    `</head><body><div id="app"></div></body></html>`;
}

function loginPage(title: string, why: string): string {
  const escaped = why.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<meta name="color-scheme" content="light dark"><title>${title}</title>` +
    `<link rel="stylesheet" href="/assets/app.css"></head><body><main class="login">` +
    `<h1>${title}</h1><p>${escaped}</p><p>Open the address the program printed when it ` +
    `started: it ends with <code>?token=…</code>. The token is also in the file named in ` +
    `docs/API.md.</p></main></body></html>`;
}
