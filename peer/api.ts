// The peer's HTTP API: each route reads its arguments, calls one PeerOps operation and answers
// JSON. The routes are listed in docs/API.md.
import { RemoteError } from "../shared/errors.ts";
import {
  booleanField,
  HttpError,
  intParam,
  jsonResponse,
  readJsonObject,
  stringField,
} from "../shared/http/json.ts";
import type { LogFeed } from "../shared/http/log_feed.ts";
import { settleWithin } from "../shared/timeout.ts";
import { FetchError, type FetchErrorCode } from "./fetch.ts";
import { MAX_SEARCH_LIMIT, OpError, type PeerOps } from "./ops.ts";
import { PeerError, type PeerErrorCode } from "./peer.ts";
import { PathError } from "./repo.ts";

/** How long POST /api/fetch waits for the outcome before answering 202 (still running). */
const FETCH_OUTCOME_WAIT_MS = 1000;

const STATUS_OF_KIND = {
  "invalid": 400,
  "not-found": 404,
  "conflict": 409,
  "too-large": 413,
  "unavailable": 503,
} as const;

/** The HTTP status of each way a fetch fails (docs/API.md lists them). */
const STATUS_OF_FETCH_ERROR: Record<FetchErrorCode, number> = {
  "invalid-name": 400,
  "exists": 409,
  "busy": 409,
  "cancelled": 409,
  "not-shared": 404,
  "no-version": 404,
  "too-large": 413,
  "unproven": 502,
  "index-failed": 502,
  "sources-failed": 502,
  "index-unavailable": 503,
  "storage": 507,
};

/** Builds the /api/* handler of one peer. */
export function createPeerApi(
  ops: PeerOps,
  logs: LogFeed,
): (req: Request, url: URL) => Promise<Response> {
  return async (req, url) => {
    try {
      return await route(ops, logs, req, url);
    } catch (err) {
      throw asHttpError(err);
    }
  };
}

async function route(ops: PeerOps, logs: LogFeed, req: Request, url: URL): Promise<Response> {
  const key = `${req.method} ${url.pathname}`;
  switch (key) {
    case "GET /api/status":
      return jsonResponse({ ok: true, ...await ops.status() });
    case "GET /api/shares":
      return jsonResponse({ ok: true, files: ops.list() });
    case "GET /api/search":
      return jsonResponse({
        ok: true,
        ...await ops.search({
          pattern: url.searchParams.get("q") ?? "",
          offset: intParam(url, "offset", { min: 0, max: Number.MAX_SAFE_INTEGER, fallback: 0 }),
          limit: intParam(url, "limit", { min: 1, max: MAX_SEARCH_LIMIT, fallback: 50 }),
        }),
      });
    case "GET /api/files":
      return jsonResponse({
        ok: true,
        ...await ops.files({
          offset: intParam(url, "offset", { min: 0, max: Number.MAX_SAFE_INTEGER, fallback: 0 }),
          limit: intParam(url, "limit", { min: 1, max: 1000, fallback: 100 }),
        }),
      });
    case "POST /api/files":
      return await upload(ops, req, url);
    case "GET /api/download":
      return await download(ops, url);
    case "GET /api/logs":
      return jsonResponse({ ok: true, lines: logs.lines });
    case "POST /api/publish": {
      const body = await readJsonObject(req);
      const lname = stringField(body, "lname");
      const fname = stringField(body, "fname", "optional");
      return jsonResponse({ ok: true, ...await ops.publish({ lname, fname }) });
    }
    case "POST /api/unpublish": {
      const body = await readJsonObject(req);
      const result = await ops.unpublish(stringField(body, "fname"));
      if (!result.removed) {
        throw new HttpError(404, `Cannot unpublish "${result.fname}": not published`);
      }
      return jsonResponse({ ok: true, ...result });
    }
    case "POST /api/rename": {
      const body = await readJsonObject(req);
      return jsonResponse({
        ok: true,
        ...await ops.rename(stringField(body, "fname"), stringField(body, "to")),
      });
    }
    case "POST /api/fetch": {
      const body = await readJsonObject(req);
      const fname = stringField(body, "fname");
      const running = ops.fetch(fname, {
        hashPrefix: stringField(body, "hash", "optional"),
        force: booleanField(body, "force"),
      });
      // A fetch that fails at once (no such file, already there) is answered with its error;
      // a longer one is answered 202 and its outcome reaches the page as a fetch-ended event.
      if (!await settleWithin(running, FETCH_OUTCOME_WAIT_MS)) {
        running.catch(() => {}); // reported through the fetch-ended event and the history
        return jsonResponse({ ok: true, fname, running: true }, 202);
      }
      return jsonResponse({ ok: true, running: false, ...await running });
    }
    case "POST /api/cancel": {
      const body = await readJsonObject(req);
      return jsonResponse({ ok: true, ...await ops.cancel(stringField(body, "fname")) });
    }
  }
  if (
    ["/api/status", "/api/shares", "/api/search", "/api/download", "/api/logs"].includes(
      url.pathname,
    )
  ) {
    throw new HttpError(405, `Cannot ${req.method} ${url.pathname}: use GET`);
  }
  if (
    ["/api/publish", "/api/unpublish", "/api/rename", "/api/fetch", "/api/cancel"].includes(
      url.pathname,
    )
  ) {
    throw new HttpError(405, `Cannot ${req.method} ${url.pathname}: use POST`);
  }
  throw new HttpError(404, `Cannot find ${req.method} ${url.pathname}`);
}

/** POST /api/files?fname=NAME[&replace=true]: the body is the file's bytes. */
async function upload(ops: PeerOps, req: Request, url: URL): Promise<Response> {
  const fname = url.searchParams.get("fname");
  if (fname === null) throw new HttpError(400, `Cannot add a file: give ?fname=NAME`);
  if (!req.body) throw new HttpError(400, `Cannot add "${fname}": no body`);
  const length = req.headers.get("content-length");
  const declared = length === null ? undefined : Number(length);
  const result = await ops.addFile(fname, req.body, {
    declaredBytes: declared !== undefined && Number.isSafeInteger(declared) ? declared : undefined,
    replace: url.searchParams.get("replace") === "true",
  });
  return jsonResponse({ ok: true, ...result }, 201);
}

/** GET /api/download?path=REL: a repository file, as an attachment. */
async function download(ops: PeerOps, url: URL): Promise<Response> {
  const path = url.searchParams.get("path");
  if (path === null) throw new HttpError(400, `Cannot download: give ?path=NAME`);
  const { file, size, name } = await ops.openFile(path);
  return new Response(file.readable, {
    headers: {
      "content-type": "application/octet-stream",
      "content-length": String(size),
      "content-disposition": `attachment; filename*=UTF-8''${encodeURIComponent(name)}`,
      "cache-control": "no-store",
    },
  });
}

/** The HTTP status of each PeerError code. */
const STATUS_OF_PEER_ERROR: Readonly<Record<PeerErrorCode, number>> = {
  "not-shared": 404,
  "invalid-fname": 400,
  missing: 404,
  "bad-path": 400,
  "being-fetched": 409,
};

/** The HTTP status of an operation's failure, by its type and code (never by its text). */
export function asHttpError(err: unknown): unknown {
  if (err instanceof HttpError) return err;
  if (err instanceof OpError) return new HttpError(STATUS_OF_KIND[err.kind], err.message);
  if (err instanceof PathError) {
    return new HttpError(err.code === "missing" ? 404 : 400, err.message, err.code);
  }
  if (err instanceof PeerError) {
    return new HttpError(STATUS_OF_PEER_ERROR[err.code], err.message, err.code);
  }
  if (err instanceof FetchError) {
    return new HttpError(STATUS_OF_FETCH_ERROR[err.code], err.message, err.code);
  }
  if (err instanceof RemoteError) {
    return new HttpError(
      err.code === "invalid-fname" || err.code === "bad-body" ? 400 : 502,
      err.message,
    );
  }
  if (err instanceof Error && /Cannot reach the index server/.test(err.message)) {
    return new HttpError(503, err.message);
  }
  return err;
}
