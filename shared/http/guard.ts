// Access control of the UIs' HTTP servers: the token (cookie or bearer), the Host header (DNS
// rebinding), the Origin of state-changing requests (CSRF) and the security headers. Pure: a
// request in, a refusal or nothing out.
import { HttpError } from "./json.ts";

/** Who may talk to one UI server. */
export interface UiAccess {
  /** The access token, 64 hex digits. */
  token: string;
  /** The port the UI listens on (part of the cookie name, since cookies ignore ports). */
  port: number;
  /** Host header values accepted (host:port), lower case. */
  hosts: ReadonlySet<string>;
  /** Also accept any IP-literal host on the port (the UI is bound to every interface). */
  anyIpHost: boolean;
}

/**
 * The Content-Security-Policy of a UI: its one inline script and its one inline style sheet
 * run by their hashes ('sha256-…', computed when the UI is built), nothing else does.
 */
export function contentSecurityPolicy(hashes: { script: string; style: string }): string {
  return `default-src 'self'; script-src ${hashes.script}; style-src ${hashes.style}; ` +
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; " +
    "form-action 'self'; object-src 'none'";
}

/**
 * The headers every UI response carries, besides its contentSecurityPolicy() and its
 * OPENER_POLICY (`same-origin` unless the answer chose its own, see openerPolicy()).
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-resource-policy": "same-origin",
};

/** The name of the Cross-Origin-Opener-Policy header. */
export const OPENER_POLICY = "cross-origin-opener-policy";

/**
 * The Cross-Origin-Opener-Policy of the signed-in page for `req`. `same-origin` puts the page
 * in a browsing context group of its own, so no other page holds a reference to its window;
 * Chromium pays for that with a second renderer process for the tab (80–100 ms of the first
 * load here). A navigation the user started (address bar, bookmark, a link opened from the
 * terminal: `Sec-Fetch-Site: none`) or that the page made itself (`same-origin`) has no
 * foreign opener to cut off, so it gets `unsafe-none`. Any other page's navigation keeps
 * `same-origin`: a cross-site one already gets only the sign-in page (the cookie is
 * SameSite=Strict), but a page of the same host on another port (same site: the cookie goes
 * with it) gets the signed-in page. Without Fetch Metadata (browsers that do not send it,
 * and every browser on a plain-HTTP LAN address) the answer keeps `same-origin`.
 * docs/SECURITY.md ("Web UIs") weighs the trade.
 */
export function openerPolicy(req: Request): "same-origin" | "unsafe-none" {
  const site = req.headers.get("sec-fetch-site");
  return site === "none" || site === "same-origin" ? "unsafe-none" : "same-origin";
}

/** Name of the cookie holding the token (one per port: cookies are shared across ports). */
export function cookieName(port: number): string {
  return `lanshare_ui_${port}`;
}

/** The Set-Cookie value that hands the token to the browser. */
export function tokenCookie(access: UiAccess): string {
  return `${cookieName(access.port)}=${access.token}; Path=/; HttpOnly; SameSite=Strict`;
}

/** Host header values a server bound to `hostname`:`port` answers to. */
export function allowedHosts(hostname: string, port: number): Set<string> {
  const hosts = new Set<string>();
  const add = (host: string) => hosts.add(`${host.toLowerCase()}:${port}`);
  add(hostname.includes(":") ? `[${hostname}]` : hostname);
  if (isLoopback(hostname) || isWildcard(hostname)) {
    add("localhost");
    add("127.0.0.1");
    add("[::1]");
  }
  return hosts;
}

/** true for 127.0.0.0/8, ::1 and "localhost". */
export function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/** true for the any-address binds (0.0.0.0, ::). */
export function isWildcard(hostname: string): boolean {
  return hostname === "0.0.0.0" || hostname === "::";
}

/**
 * Checks a request: Host first (a rebinding page is refused before the token is even looked
 * at), then the Origin of state-changing methods, then the token.
 *
 * @throws {HttpError} 403 foreign Host or Origin, 401 missing or wrong token
 */
export function checkRequest(req: Request, access: UiAccess): void {
  checkHost(req, access);
  if (req.method !== "GET" && req.method !== "HEAD") checkOrigin(req);
  if (!sameToken(presentedToken(req, access), access.token)) {
    throw new HttpError(
      401,
      "Cannot serve this request: no valid access token (open the UI address printed at start, with its ?token=)",
    );
  }
}

/** Refuses a Host header that is not this server's. @throws {HttpError} 403 */
export function checkHost(req: Request, access: UiAccess): void {
  const host = (req.headers.get("host") ?? "").toLowerCase();
  if (access.hosts.has(host)) return;
  if (access.anyIpHost && isIpHostOnPort(host, access.port)) return;
  throw new HttpError(403, `Cannot serve host "${host}": not this server's address`);
}

/**
 * Refuses a state-changing request sent by a page of another origin. Programs (curl, scripts)
 * send no Origin and no Sec-Fetch-Site, and are let through: they hold the token themselves.
 *
 * @throws {HttpError} 403
 */
export function checkOrigin(req: Request): void {
  const origin = req.headers.get("origin");
  const host = req.headers.get("host") ?? "";
  if (origin !== null) {
    if (origin.toLowerCase() !== `http://${host.toLowerCase()}`) {
      throw new HttpError(403, `Cannot accept a ${req.method} from origin "${origin}"`);
    }
    return;
  }
  const site = req.headers.get("sec-fetch-site");
  if (site !== null && site !== "same-origin" && site !== "none") {
    throw new HttpError(403, `Cannot accept a ${req.method} from a ${site} page`);
  }
}

/** The token the request carries: `Authorization: Bearer`, else the cookie. */
export function presentedToken(req: Request, access: UiAccess): string | undefined {
  const auth = req.headers.get("authorization");
  if (auth?.startsWith("Bearer ")) return auth.slice(7).trim();
  const name = cookieName(access.port);
  for (const part of (req.headers.get("cookie") ?? "").split(";")) {
    const [key, value] = part.trim().split("=", 2);
    if (key === name) return value;
  }
  return undefined;
}

/** Compares tokens in time independent of where they differ. */
export function sameToken(given: string | undefined, expected: string): boolean {
  if (given === undefined || given.length !== expected.length) return false;
  let diff = 0;
  for (let i = 0; i < expected.length; i++) diff |= given.charCodeAt(i) ^ expected.charCodeAt(i);
  return diff === 0;
}

function isIpHostOnPort(host: string, port: number): boolean {
  const suffix = `:${port}`;
  if (!host.endsWith(suffix)) return false;
  const name = host.slice(0, -suffix.length);
  return /^\d+\.\d+\.\d+\.\d+$/.test(name) || /^\[[0-9a-f:.]+\]$/.test(name);
}
