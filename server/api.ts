// The server dashboard's HTTP API: each route reads its arguments, calls one ServerOps
// operation and answers JSON. The routes are listed in docs/API.md.
import { RemoteError } from "../shared/errors.ts";
import {
  HttpError,
  intParam,
  jsonResponse,
  readJsonObject,
  stringField,
} from "../shared/http/json.ts";
import type { LogFeed } from "../shared/http/log_feed.ts";
import { MAX_PAGE, ServerOpError, type ServerOps } from "./ops.ts";
import type { StatsAnswer, StatsWithSamples } from "./answers.ts";

const GET_ROUTES = ["/api/stats", "/api/peers", "/api/files", "/api/logs"];
const POST_ROUTES = ["/api/discover", "/api/ping"];

/** Builds the /api/* handler of the dashboard. */
export function createServerApi(
  ops: ServerOps,
  logs: LogFeed,
  samples: () => readonly StatsAnswer[],
): (req: Request, url: URL) => Promise<Response> {
  return async (req, url) => {
    try {
      return await route(ops, logs, samples, req, url);
    } catch (err) {
      if (err instanceof ServerOpError) {
        throw new HttpError(err.kind === "invalid" ? 400 : 404, err.message);
      }
      if (err instanceof RemoteError) throw new HttpError(502, err.message);
      throw err;
    }
  };
}

async function route(
  ops: ServerOps,
  logs: LogFeed,
  samples: () => readonly StatsAnswer[],
  req: Request,
  url: URL,
): Promise<Response> {
  const page = () => ({
    pattern: url.searchParams.get("q") ?? "",
    offset: intParam(url, "offset", { min: 0, max: Number.MAX_SAFE_INTEGER, fallback: 0 }),
    limit: intParam(url, "limit", { min: 1, max: MAX_PAGE, fallback: 50 }),
  });
  switch (`${req.method} ${url.pathname}`) {
    case "GET /api/stats":
      return jsonResponse(
        { ok: true, ...await ops.stats(), samples: samples() } satisfies StatsWithSamples & {
          ok: true;
        },
      );
    case "GET /api/peers":
      return jsonResponse({ ok: true, ...await ops.peers(page()) });
    case "GET /api/files":
      return jsonResponse({ ok: true, ...await ops.files(page()) });
    case "GET /api/logs":
      return jsonResponse({ ok: true, lines: logs.lines });
    case "POST /api/discover": {
      const hostname = stringField(await readJsonObject(req), "hostname");
      return jsonResponse({ ok: true, hostname, sessions: await ops.discover(hostname) });
    }
    case "POST /api/ping": {
      const hostname = stringField(await readJsonObject(req), "hostname");
      return jsonResponse({ ok: true, hostname, sessions: await ops.ping(hostname) });
    }
  }
  if (GET_ROUTES.includes(url.pathname)) {
    throw new HttpError(405, `Cannot ${req.method} ${url.pathname}: use GET`);
  }
  if (POST_ROUTES.includes(url.pathname)) {
    throw new HttpError(405, `Cannot ${req.method} ${url.pathname}: use POST`);
  }
  throw new HttpError(404, `Cannot find ${req.method} ${url.pathname}`);
}
